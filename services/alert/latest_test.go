package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/services/alert"
)

// TestFiringAlertShowsLatestWindow: the firing alert `lookout alerts`
// reads from the state bucket tells the latest drift window's summary,
// value and source, not the first one's, and publishes no second firing
// event for it.
func TestFiringAlertShowsLatestWindow(t *testing.T) {
	b := newBus(t)
	b.start(t, testConfig())
	ev := b.watchAlerts(t, "churn")
	publish := func(i int, score float64) {
		t.Helper()
		start := windowStart.Add(time.Duration(i) * 5 * time.Minute)
		data, _ := json.Marshal(map[string]any{
			"model": "churn", "window": map[string]any{"start": start, "end": start.Add(5 * time.Minute), "count": 1000},
			"features": map[string]any{"px56": map[string]any{"kind": "numerical", "wasserstein": 10 * score,
				"method": "wasserstein", "score": score, "threshold": 0.1, "drifted": true}},
			"drift_share": 0.5, "dataset_drifted": false,
		})
		if _, err := b.js.Publish(context.Background(), subjects.For(natsbus.KindDrift, "churn"), data); err != nil {
			t.Fatal(err)
		}
	}
	firing := func(want string, value float64) alerting.Alert {
		t.Helper()
		var got alerting.Alert
		natstest.WaitFor(t, 10*time.Second, func() error {
			alerts, err := alert.FiringAlerts(context.Background(), b.js, subjects)
			if err != nil {
				return err
			}
			for _, a := range alerts {
				if a.Rule == alerting.RuleFeatureDrift && a.Summary == want && a.Value != nil && *a.Value == value {
					got = a
					return nil
				}
			}
			return fmt.Errorf("firing %+v, want summary %q", alerts, want)
		})
		return got
	}
	publish(0, 0.62)
	first := firing("px56 drifted: wasserstein 6.2 (0.62 reference std) >= 0.1 in window 10:00-10:05", 0.62)
	publish(1, 0.9)
	latest := firing("px56 drifted: wasserstein 9 (0.9 reference std) >= 0.1 in window 10:05-10:10", 0.9)
	if !latest.StartsAt.Equal(first.StartsAt) || latest.Source.Window == nil || !latest.Source.Window.Start.Equal(windowStart.Add(5*time.Minute)) {
		t.Errorf("latest starts %v window %+v, want start %v and the second window", latest.StartsAt, latest.Source.Window, first.StartsAt)
	}
	// The update is stored, not published again: one firing event.
	natstest.WaitFor(t, 10*time.Second, func() error {
		if n := ev.count(alerting.RuleFeatureDrift, alerting.StatusFiring); n != 1 {
			return fmt.Errorf("%d firing events, want 1", n)
		}
		return nil
	})
}
