package canaryjudge

import (
	"strings"
	"testing"
	"time"
)

// TestDriftHoldsRollback checks that a window that would roll back (the
// canary twice as slow) is held when a drift window that shifted overlaps
// it in event time, kept across a snapshot, and rolls back otherwise.
func TestDriftHoldsRollback(t *testing.T) {
	// The pairs' event times are t0+2ms to t0+400ms, in the span
	// [t0, t0+5m).
	span := DriftWindow{Start: t0.Add(100 * time.Millisecond), End: t0.Add(time.Minute), Share: 0.5}
	shifted := span
	shifted.DatasetDrifted = true
	cases := []struct {
		name    string
		drift   *DriftWindow
		verdict string
		reason  string
	}{
		{"no drift report", nil, VerdictRollback, ""},
		{"drift window did not shift", &span, VerdictRollback, ""},
		{"dataset drifted", &shifted, VerdictHold, "inputs shifted in this window (drift share 0.5): not attributed to the canary"},
		{"confidence dropped", &DriftWindow{Start: t0, End: t0.Add(time.Minute), Share: 0.1, ConfidenceDropped: true},
			VerdictHold, "production's confidence dropped in this window (drift share 0.1): not attributed to the canary"},
		{"drifted an hour earlier", &DriftWindow{Start: t0.Add(-time.Hour), End: t0.Add(-time.Second), Share: 0.5, DatasetDrifted: true},
			VerdictRollback, ""},
		// Drift windows give their first and last event time: one whose
		// last event is the first pair's overlaps the pairs.
		{"drift window ends on the first pair", &DriftWindow{Start: t0.Add(-time.Minute), End: t0.Add(2 * time.Millisecond), Share: 0.5, DatasetDrifted: true},
			VerdictHold, "inputs shifted"},
		{"drift window ends just before the first pair", &DriftWindow{Start: t0.Add(-time.Minute), End: t0.Add(time.Millisecond), Share: 0.5, DatasetDrifted: true},
			VerdictRollback, ""},
		// Only the pairs' event time counts, not the whole span: a span
		// closed full (window_pairs) holds several windows.
		{"drifted later in the span", &DriftWindow{Start: t0.Add(time.Minute), End: t0.Add(2 * time.Minute), Share: 0.5, DatasetDrifted: true},
			VerdictRollback, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := defaultOptions(1)
			tr := NewTracker(opts)
			if c.drift != nil {
				tr.Drift(t0, "churn", *c.drift)
			}
			// Through a snapshot: the drift windows are state.
			data, err := tr.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			tr = NewTracker(opts)
			if err := tr.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			var out []Report
			at := t0
			for _, p := range (traffic{n: 200, slow: 2}).events() {
				at = at.Add(time.Millisecond)
				out = append(out, tr.Prediction(at, p)...)
			}
			out = append(out, tr.Advance(at.Add(opts.Window+opts.Wait))...)
			if len(out) != 1 {
				t.Fatalf("%d reports, want 1", len(out))
			}
			r := out[0]
			if r.Verdict != c.verdict {
				t.Fatalf("verdict %s %q, want %s", r.Verdict, r.Reasons, c.verdict)
			}
			if c.reason != "" && (len(r.Reasons) < 2 || !strings.HasPrefix(r.Reasons[0], c.reason) || !strings.HasPrefix(r.Reasons[1], "latency_p95_ratio")) {
				t.Errorf("reasons %q, want %q then the failed guardrail", r.Reasons, c.reason)
			}
		})
	}
}

// TestDriftHoldDoesNotCountTowardsRollback checks that a failing window
// held for its inputs is not one of consecutive_windows.
func TestDriftHoldDoesNotCountTowardsRollback(t *testing.T) {
	opts := defaultOptions(1)
	opts.Judge.Guardrails.ConsecutiveWindows = 2
	tr := NewTracker(opts)
	tr.Drift(t0, "churn", DriftWindow{Start: t0, End: t0.Add(time.Second), Share: 0.5, DatasetDrifted: true})
	var out []Report
	at := t0
	for w := range 3 {
		for _, p := range (traffic{n: 50, slow: 2}).events() {
			at = at.Add(time.Millisecond)
			p.RequestId += "-" + string(rune('a'+w))
			p.Id += "-" + string(rune('a'+w))
			out = append(out, tr.Prediction(at, p)...)
		}
		at = t0.Add(time.Duration(w+1) * opts.Window)
	}
	out = append(out, tr.Advance(at.Add(opts.Window+opts.Wait))...)
	var verdicts []string
	for _, r := range out {
		verdicts = append(verdicts, r.Verdict)
	}
	// Window 1 is the inputs'; window 2 is the first failing one, window
	// 3 the second: rollback.
	if want := []string{VerdictHold, VerdictHold, VerdictRollback}; strings.Join(verdicts, ",") != strings.Join(want, ",") {
		t.Fatalf("verdicts %v, want %v", verdicts, want)
	}
	if !strings.Contains(out[0].Reasons[0], "not attributed to the canary") || !strings.Contains(out[1].Reasons[0], "failing window 1 of 2") {
		t.Errorf("reasons %q, %q", out[0].Reasons, out[1].Reasons)
	}
}
