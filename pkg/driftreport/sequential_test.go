package driftreport

import "testing"

// TestSequentialCreep: a confidence mean that falls by 1.5 standard errors
// a window never drops by the per-window rule (0.05) yet alarms the CUSUM
// within a few windows; stable windows (z around 0) never alarm. A drift
// share stuck at 0.2 alarms Page-Hinkley; one at 0 never does.
func TestSequentialCreep(t *testing.T) {
	var creep, stable SequentialState
	alarmAt := 0
	for i := 1; i <= 20; i++ {
		c := creep.Update(&Report{Confidence: &ConfidenceDrift{MeanZ: -1.5}})
		if c.ConfidenceMean.Alarm && alarmAt == 0 {
			alarmAt = i
		}
		z := []float64{0.3, -0.8, 1.1, -0.2, 0.5}[i%5]
		if s := stable.Update(&Report{Confidence: &ConfidenceDrift{MeanZ: z}}); s.ConfidenceMean.Alarm || s.DriftShare.Alarm {
			t.Fatalf("stable window %d alarmed: %+v", i, s)
		}
	}
	// S grows by 1.5 − 0.5 = 1 a window: above 5 at the 6th.
	if alarmAt != 6 {
		t.Errorf("creep alarmed at window %d, want 6", alarmAt)
	}
	var share SequentialState
	for i := 0; i < 5; i++ {
		share.Update(&Report{})
	}
	var last *Sequential
	for i := 0; i < 10; i++ {
		last = share.Update(&Report{DriftShare: 0.2})
	}
	if !last.DriftShare.Alarm || last.Windows != 15 || last.ConfidenceMean != nil {
		t.Errorf("drift share creep: %+v", last)
	}
}
