package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/notify/notifytest"
	"github.com/lookout-ml/lookout/services/alert"
)

// driftEvery returns driftJSON's report for window i with windows of
// length long, starting at windowStart.
func driftEvery(model string, i int, drifted bool, long time.Duration) []byte {
	var r map[string]any
	_ = json.Unmarshal(driftJSON(model, i, drifted), &r)
	start := windowStart.Add(time.Duration(i) * long)
	r["window"] = map[string]any{"start": start, "end": start.Add(long), "count": 10000}
	data, _ := json.Marshal(r)
	return data
}

// sequence renders the webhook's notifications as "status rule:status,…"
// lines, in the order they were delivered.
func sequence(t *testing.T, hook *notifytest.HTTPReceiver) []string {
	var out []string
	for _, n := range decodeHook(t, hook, "s") {
		var as []string
		for _, a := range n.Alerts {
			as = append(as, a.Model+"/"+a.Rule+":"+a.Status)
		}
		out = append(out, n.Status+" "+strings.Join(as, ","))
	}
	return out
}

// pending returns how many messages consumer name of stream has not
// acknowledged yet.
func (b *bus) pending(stream, name string) (uint64, error) {
	c, err := b.js.Consumer(context.Background(), subjects.StreamName(stream), name)
	if err != nil {
		return 0, err
	}
	info, err := c.Info(context.Background())
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

// drained waits until the evaluator and the dispatcher acknowledged all.
func (b *bus) drained(t *testing.T) {
	t.Helper()
	natstest.WaitFor(t, 15*time.Second, func() error {
		for _, c := range []struct{ stream, name string }{{natsbus.StreamReports, "alert-reports"}, {natsbus.StreamAlerts, "alert-dispatch"}} {
			if n, err := b.pending(c.stream, c.name); err != nil || n > 0 {
				return fmt.Errorf("%s: %d pending (%v)", c.name, n, err)
			}
		}
		return nil
	})
}

// An hour of 5-minute drift windows with a 3-window incident in the middle,
// published at full speed, is notified as the same reports paced.
func TestBacklogIsNotifiedAsPaced(t *testing.T) {
	const windows = 12
	incident := func(i int) bool { return i >= 5 && i < 8 }
	want := []string{
		"firing churn/dataset_drift:firing", // feature_drift(age) inside it
		"resolved churn/dataset_drift:resolved",
	}
	notified := func(t *testing.T, paced bool) []string {
		b := newBus(t)
		hook := notifytest.RunHTTP(t)
		cfg := testConfig()
		// The default group_interval: in event time it spans a window, so
		// each change is its own notification, live or from a backlog.
		// group_wait is short only because the last flush waits for it in
		// wall time once the reports stop.
		cfg.GroupWait, cfg.GroupInterval, cfg.RepeatInterval = 500*time.Millisecond, 5*time.Minute, 4*time.Hour
		cfg.Sinks = []alert.SinkConfig{{Type: "webhook", URL: hook.URL, Secret: "s"}}
		b.start(t, cfg)
		for i := range windows {
			b.publishDrift(t, "churn", i, incident(i))
			if paced {
				// Live: each window's events wait out group_wait in wall time.
				b.drained(t)
				since := time.Now()
				natstest.WaitFor(t, 10*time.Second, func() error {
					if time.Since(since) < 2*cfg.GroupWait {
						return fmt.Errorf("pacing")
					}
					return nil
				})
			}
		}
		b.drained(t)
		natstest.WaitFor(t, 15*time.Second, func() error {
			if len(hook.Requests()) < len(want) {
				return fmt.Errorf("%d notifications", len(hook.Requests()))
			}
			return nil
		})
		b.settled(t, "churn", "webhook")
		got := decodeHook(t, hook, "s")
		if n := got[0]; len(n.Alerts) != 1 || len(n.Alerts[0].Inhibited) != 1 {
			t.Fatalf("firing notification: %+v", n)
		}
		wantEnd := windowStart.Add(10 * 5 * time.Minute) // resolved by window 9's end
		if a := got[1].Alerts[0]; a.EndsAt == nil || !a.EndsAt.Equal(wantEnd) || !a.StartsAt.Equal(windowStart.Add(6*5*time.Minute)) {
			t.Fatalf("resolved alert: %+v", a)
		}
		return sequence(t, hook)
	}
	backlog := notified(t, false)
	if strings.Join(backlog, "\n") != strings.Join(want, "\n") {
		t.Fatalf("backlog:\n%s\nwant:\n%s", strings.Join(backlog, "\n"), strings.Join(want, "\n"))
	}
	paced := notified(t, true)
	if strings.Join(paced, "\n") != strings.Join(backlog, "\n") {
		t.Fatalf("paced:\n%s\nbacklog:\n%s", strings.Join(paced, "\n"), strings.Join(backlog, "\n"))
	}
}

// An incident that fires and resolves within group_wait (in event time) is
// notified: one resolved notification carrying both its times.
func TestFiredAndResolvedWithinGroupWaitIsNotified(t *testing.T) {
	b := newBus(t)
	hook := notifytest.RunHTTP(t)
	cfg := testConfig()
	cfg.GroupWait = 2 * time.Second // 10 windows of 200ms
	cfg.Sinks = []alert.SinkConfig{{Type: "webhook", URL: hook.URL, Secret: "s"}}
	b.start(t, cfg)
	const long = 200 * time.Millisecond
	for i, drifted := range []bool{true, false, false} {
		if _, err := b.js.Publish(context.Background(), subjects.For(natsbus.KindDrift, "churn"), driftEvery("churn", i, drifted, long)); err != nil {
			t.Fatal(err)
		}
	}
	natstest.WaitFor(t, 15*time.Second, func() error {
		if len(hook.Requests()) < 1 {
			return fmt.Errorf("no notification")
		}
		return nil
	})
	b.settled(t, "churn", "webhook")
	got := decodeHook(t, hook, "s")
	if seq := strings.Join(sequence(t, hook), "\n"); seq != "resolved churn/dataset_drift:resolved,churn/feature_drift:resolved" {
		t.Fatalf("notifications:\n%s", seq)
	}
	for _, a := range got[0].Alerts {
		if a.Status != alerting.StatusResolved {
			t.Fatalf("alert status: %+v", a)
		}
		if !a.StartsAt.Equal(windowStart.Add(long)) || a.EndsAt == nil || !a.EndsAt.Equal(windowStart.Add(3*long)) {
			t.Fatalf("alert times: %+v", a)
		}
	}
}

// driftAt returns driftJSON's report, drifted or not, for the 5-minute
// window starting at start; plan drifts too when asked.
func driftAt(model string, start time.Time, drifted, plan bool) []byte {
	var r map[string]any
	_ = json.Unmarshal(driftJSON(model, 0, drifted), &r)
	if plan {
		f := r["features"].(map[string]any)["plan"].(map[string]any)
		f["drifted"], f["score"] = true, 1e-9
		f["ks"].(map[string]any)["p_value"] = 1e-9
	}
	r["window"] = map[string]any{"start": start, "end": start.Add(5 * time.Minute), "count": 10000}
	data, _ := json.Marshal(r)
	return data
}

// A model whose first reports name windows far in the past (predictions
// with ts near 0, or two years old) and whose later ones are live jumps its
// group's clock by years while an alert fires: the jump is notified by a
// bounded count of notifications, not one per repeat_interval of it. A
// no_data alert (wall time) joins in between.
func TestEventTimeJumpDoesNotFlood(t *testing.T) {
	for _, past := range []time.Time{time.Unix(0, 0).UTC(), windowStart.AddDate(-2, 0, 0)} {
		t.Run(past.Format("2006"), func(t *testing.T) {
			b := newBus(t)
			hook := notifytest.RunHTTP(t)
			cfg := testConfig()
			cfg.GroupWait, cfg.GroupInterval, cfg.RepeatInterval = 200*time.Millisecond, 400*time.Millisecond, time.Hour
			cfg.NoData = 300 * time.Millisecond
			cfg.EvaluationInterval = 100 * time.Millisecond
			cfg.Sinks = []alert.SinkConfig{{Type: "webhook", URL: hook.URL, Secret: "s"}}
			b.start(t, cfg)
			publish := func(data []byte) {
				t.Helper()
				if _, err := b.js.Publish(context.Background(), subjects.For(natsbus.KindDrift, "churn"), data); err != nil {
					t.Fatal(err)
				}
			}
			// A prediction so that the model is known, then silence: no_data.
			if _, err := b.js.Publish(context.Background(), subjects.For(natsbus.KindPredictions, "churn"), []byte(`{"id":"1","model":"churn","features":{"age":1},"prediction":1}`)); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				publish(driftAt("churn", past.Add(time.Duration(i)*5*time.Minute), true, false))
			}
			natstest.WaitFor(t, 15*time.Second, func() error {
				if len(hook.Requests()) < 1 {
					return fmt.Errorf("no notification")
				}
				return nil
			})
			b.drained(t)
			// Live reports, interleaved with past ones, still drifted; the
			// live ones drift plan too: a new alert at live event time.
			for i := range 4 {
				publish(driftAt("churn", windowStart.Add(time.Duration(i)*5*time.Minute), true, true))
				publish(driftAt("churn", past.Add(time.Duration(3+i)*5*time.Minute), true, false))
			}
			b.drained(t)
			// Give the wall-time fallbacks some turns, then count.
			since := time.Now()
			natstest.WaitFor(t, 15*time.Second, func() error {
				if n := len(hook.Requests()); n > 8 {
					t.Fatalf("%d notifications:\n%s", n, strings.Join(sequence(t, hook)[:8], "\n"))
				}
				if time.Since(since) < 10*cfg.GroupInterval {
					return fmt.Errorf("waiting")
				}
				return nil
			})
			b.settled(t, "churn", "webhook")
			if n := len(hook.Requests()); n > 8 {
				t.Fatalf("%d notifications:\n%s", n, strings.Join(sequence(t, hook), "\n"))
			}
			t.Logf("notifications:\n%s", strings.Join(sequence(t, hook), "\n"))
		})
	}
}
