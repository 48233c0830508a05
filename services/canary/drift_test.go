package canary

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	judge "github.com/lookout-ml/lookout/pkg/canaryjudge"
	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// publishDrift stores a drift report of model on lookout.drift.<model> as
// the drift service does (the JSON of a driftreport.Report).
func publishDrift(t *testing.T, js jetstream.JetStream, model string, rep driftreport.Report) {
	t.Helper()
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(subjects.For(natsbus.KindDrift, model))
	msg.Data = data
	msg.Header.Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
}

// TestSharedInputShiftHolds runs the service on a window where production
// and the canary degrade together (agreement 0.9 < 0.95, no labels,
// agreement_rollback on, so the window's own verdict is rollback): with a
// drift report marking production's inputs shifted over that event time,
// the verdict is hold for the inputs; without one, or with one that did
// not shift or covers other event time, it stays rollback.
func TestSharedInputShiftHolds(t *testing.T) {
	// pairs() puts its 200 pairs at eventBase plus up to 200µs.
	shifted := func(start, end time.Time) *driftreport.Report {
		return &driftreport.Report{Model: "churn", Window: driftreport.Window{Start: start, End: end, Count: 200},
			DriftShare: 0.5, DatasetDrifted: true}
	}
	calm := shifted(eventBase, eventBase.Add(200*time.Microsecond))
	calm.DatasetDrifted, calm.DriftShare = false, 0.1
	dropped := shifted(eventBase, eventBase.Add(200*time.Microsecond))
	dropped.DatasetDrifted, dropped.DriftShare = false, 0
	dropped.Confidence = &driftreport.ConfidenceDrift{Mean: 0.6, ReferenceMean: 0.9, Dropped: true}
	cases := []struct {
		name    string
		drift   *driftreport.Report
		model   string
		restart bool // stop and start the service between the drift report and the predictions
		verdict string
		reason  string
	}{
		{"no drift report", nil, "churn", false, judge.VerdictRollback, ""},
		{"inputs shifted", shifted(eventBase, eventBase.Add(200*time.Microsecond)), "churn", false, judge.VerdictHold,
			"inputs shifted in this window (drift share 0.5): not attributed to the canary"},
		{"inputs shifted, across a restart", shifted(eventBase.Add(-time.Minute), eventBase.Add(50*time.Microsecond)), "churn", true, judge.VerdictHold,
			"inputs shifted in this window (drift share 0.5): not attributed to the canary"},
		{"production's confidence dropped", dropped, "churn", false, judge.VerdictHold,
			"production's confidence dropped in this window (drift share 0): not attributed to the canary"},
		{"drift report that did not shift", calm, "churn", false, judge.VerdictRollback, ""},
		{"inputs shifted an hour earlier", shifted(eventBase.Add(-time.Hour), eventBase.Add(-time.Second)), "churn", false, judge.VerdictRollback, ""},
		{"another model's inputs shifted", shifted(eventBase, eventBase.Add(time.Second)), "fraud", false, judge.VerdictRollback, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, nc, js := natstest.RunWithStreams(t)
			cfg := testConfig()
			cfg.AgreementRollback = true
			svc := start(t, nc, js, cfg)
			if c.drift != nil {
				// Before the predictions: only drift reports read when the
				// window closes count.
				publishDrift(t, js, c.model, *c.drift)
				natstest.WaitFor(t, 10*time.Second, func() error {
					if svc.sum(t, "lookout_canary_drift_reports_total") < 1 {
						return errors.New("drift report not read yet")
					}
					return nil
				})
			}
			if c.restart {
				svc.stop()
				start(t, nc, js, cfg)
			}
			prod, can := pairs("churn", 200, 10, 1)
			publish(t, js, shuffled(prod, can))
			r := waitReports(t, js, "churn", 1)[0]
			if r.Agreement == nil || *r.Agreement != 0.9 || r.Quality != nil {
				t.Fatalf("agreement %v quality %+v, want 0.9 without labels", r.Agreement, r.Quality)
			}
			if r.Verdict != c.verdict {
				t.Fatalf("verdict %s %q, want %s", r.Verdict, r.Reasons, c.verdict)
			}
			switch {
			case c.reason != "":
				if len(r.Reasons) != 2 || r.Reasons[0] != c.reason || !strings.HasPrefix(r.Reasons[1], "agreement 0.9 < 0.95") {
					t.Errorf("reasons %q, want %q then the agreement's", r.Reasons, c.reason)
				}
			default:
				for _, reason := range r.Reasons {
					if strings.Contains(reason, "not attributed to the canary") {
						t.Errorf("reasons %q: held for the inputs", r.Reasons)
					}
				}
			}
		})
	}
}

// TestOwnReportsAreNoDriftBacklog restarts the service over a reports
// stream that holds its own canary report and no drift report: the drift
// reader has no backlog to wait for, so the idle timeout (which runs only
// once every stream is caught up) still closes the next model's window.
func TestOwnReportsAreNoDriftBacklog(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := testConfig()
	cfg.Wait, cfg.Window, cfg.WindowPairs, cfg.IdleTimeout = 300*time.Millisecond, time.Hour, 1000, 300*time.Millisecond
	first := start(t, nc, js, cfg)
	prod, can := pairs("churn", 50, 0, 1)
	publish(t, js, shuffled(prod, can))
	waitReports(t, js, "churn", 1)
	first.stop()

	start(t, nc, js, cfg)
	prod, can = pairs("fraud", 50, 0, 1)
	publish(t, js, shuffled(prod, can))
	if r := waitReports(t, js, "fraud", 1)[0]; r.Window.Pairs != 50 {
		t.Errorf("pairs %d, want 50", r.Window.Pairs)
	}
}

// TestInputShiftHoldsOnlyItsPart fills one event-time span with two
// windows (window_pairs 200), both degraded: a drift report that covers
// the second window's pairs only holds the second, the first rolls back.
func TestInputShiftHoldsOnlyItsPart(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := testConfig()
	cfg.AgreementRollback = true
	svc := start(t, nc, js, cfg)
	// Pairs 200 to 399 are at eventBase plus 200 to 399µs.
	publishDrift(t, js, "churn", driftreport.Report{Model: "churn",
		Window:     driftreport.Window{Start: eventBase.Add(250 * time.Microsecond), End: eventBase.Add(time.Millisecond), Count: 100},
		DriftShare: 0.75, DatasetDrifted: true})
	natstest.WaitFor(t, 10*time.Second, func() error {
		if svc.sum(t, "lookout_canary_drift_reports_total") < 1 {
			return errors.New("drift report not read yet")
		}
		return nil
	})
	prod, can := pairs("churn", 400, 10, 1)
	publish(t, js, interleaved(prod, can))
	reps := waitReports(t, js, "churn", 2)
	if reps[0].Verdict != judge.VerdictRollback || reps[1].Verdict != judge.VerdictHold ||
		reps[1].Reasons[0] != "inputs shifted in this window (drift share 0.75): not attributed to the canary" {
		t.Errorf("verdicts %s %q, %s %q; want rollback, then hold for the inputs", reps[0].Verdict, reps[0].Reasons, reps[1].Verdict, reps[1].Reasons)
	}
	// Two parts of one span: the second starts where the first ended.
	if !reps[0].Window.End.Equal(reps[1].Window.Start) || !reps[0].Window.Start.Before(reps[0].Window.End) {
		t.Errorf("windows %v-%v and %v-%v, want contiguous parts of one span",
			reps[0].Window.Start, reps[0].Window.End, reps[1].Window.Start, reps[1].Window.End)
	}
}
