package feedback_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/service"
	"github.com/lookout-ml/lookout/services/feedback"
)

// The failure paths of issue 9 for the feedback service: each test does
// what a tester did and counts where the feedback ends.

// startEnv runs the service on env (to read its health and metrics).
func startEnv(t *testing.T, env service.Env, cfg feedback.Config) (stop func()) {
	t.Helper()
	svc, err := feedback.New(env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return natstest.RunService(t, svc)
}

// setReportsStream changes the reports stream's configuration.
func setReportsStream(t *testing.T, js jetstream.JetStream, change func(*jetstream.StreamConfig)) {
	t.Helper()
	ctx := context.Background()
	stream, err := js.Stream(ctx, subjects.StreamName(natsbus.StreamReports))
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	change(&cfg)
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}

func consumerInfo(js jetstream.JetStream) (*jetstream.ConsumerInfo, error) {
	c, err := js.Consumer(context.Background(), subjects.StreamName(natsbus.StreamFeedback), feedback.ConsumerName)
	if err != nil {
		return nil, err
	}
	return c.Info(context.Background())
}

// waitAckPending waits until the feedback consumer holds n messages
// unacknowledged and has delivered at least through seq.
func waitAckPending(t *testing.T, js jetstream.JetStream, n int, seq uint64) {
	t.Helper()
	natstest.WaitFor(t, 10*time.Second, func() error {
		info, err := consumerInfo(js)
		if err != nil {
			return err
		}
		if info.NumAckPending != n || info.Delivered.Stream < seq {
			return fmt.Errorf("ack pending %d (want %d), delivered through %d (want %d)", info.NumAckPending, n, info.Delivered.Stream, seq)
		}
		return nil
	})
}

func waitHealthy(t *testing.T, h *service.Health) {
	t.Helper()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if parts, ok := h.Snapshot(); !ok || parts["feedback"] != "ok" || parts["feedback-predictions"] != "ok" {
			return fmt.Errorf("health %v", parts)
		}
		return nil
	})
}

func metricValue(t *testing.T, g prometheus.Gatherer, name string, label ...string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := true
			for i := 0; i+1 < len(label); i += 2 {
				for _, l := range m.GetLabel() {
					if l.GetName() == label[i] && l.GetValue() != label[i+1] {
						match = false
					}
				}
			}
			if match {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func feedbackRejections(t *testing.T, js jetstream.JetStream, model string) []*event.Rejection {
	t.Helper()
	var out []*event.Rejection
	for _, m := range stored(t, js, natsbus.StreamRejected, subjects.For(natsbus.KindRejected, model)) {
		if m.Header.Get(event.HeaderInput) != event.InputFeedback {
			t.Errorf("rejected feedback is not marked %s: %v", event.HeaderInput, m.Header)
		}
		r, err := event.UnmarshalRejection(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// Deleting the feedback consumer used to stop the service silently. It is
// recreated at its floor; what was reported above the floor (model fast's
// first window, while model slow's window holds an earlier message) is
// delivered again and must not be counted again; feedback published after
// is joined and reported, and health says ok again. The same holds for a
// restart, which recreates the consumer at its floor too.
func TestFeedbackConsumerRecreatedAtItsFloor(t *testing.T) {
	for _, how := range []string{"deleted", "restarted"} {
		t.Run(how, func(t *testing.T) {
			_, nc, js := natstest.RunWithStreams(t)
			// A short duplicate window on the reports stream, so that a
			// report rebuilt from feedback delivered again is not hidden
			// by its Nats-Msg-Id (as after a restart 10 minutes later).
			const dupWindow = 100 * time.Millisecond
			setReportsStream(t, js, func(c *jetstream.StreamConfig) { c.Duplicates = dupWindow })
			for _, id := range []string{"f1", "f2", "f3", "f4"} {
				predict(t, js, "fast", id, "v1", event.Text("yes"))
			}
			predict(t, js, "slow", "s1", "v1", event.Text("yes"))
			env := natstest.Env(t, nc, js)
			cfg := feedback.Config{WindowLabels: 2, Window: time.Hour, Wait: 5 * time.Second}
			stop := startEnv(t, env, cfg)
			waitHealthy(t, env.Health)

			send(t, js, "slow", at(`{"id":"s1","label":"yes"}`, time.Minute))  // seq 1: held in slow's open window
			send(t, js, "fast", at(`{"id":"f1","label":"no"}`, 2*time.Minute)) // seq 2: wrong
			send(t, js, "fast", at(`{"id":"f2","label":"no"}`, 3*time.Minute)) // seq 3: wrong; reported, acked above the floor
			if r := waitReports(t, js, "fast", 1)[0]; r.Feedback != 2 {
				t.Fatalf("first report: %+v", r)
			}
			send(t, js, "fast", at(`{"id":"f3","label":"yes"}`, 4*time.Minute)) // seq 4: right, held
			waitAckPending(t, js, 2, 4)
			first := stored(t, js, natsbus.StreamReports, subjects.For(natsbus.KindPerformance, "fast"))[0]
			natstest.WaitFor(t, 5*time.Second, func() error {
				if time.Since(first.Time) < 3*dupWindow {
					return fmt.Errorf("the first report is still within the duplicate window")
				}
				return nil
			})

			switch how {
			case "deleted":
				if err := js.DeleteConsumer(context.Background(), subjects.StreamName(natsbus.StreamFeedback), feedback.ConsumerName); err != nil {
					t.Fatal(err)
				}
				natstest.WaitFor(t, 10*time.Second, func() error {
					info, err := consumerInfo(js)
					if err != nil {
						return fmt.Errorf("consumer not recreated: %w", err)
					}
					if info.Delivered.Stream < 4 {
						return fmt.Errorf("recreated consumer delivered through %d", info.Delivered.Stream)
					}
					return nil
				})
			case "restarted":
				stop()
				env = natstest.Env(t, nc, js)
				startEnv(t, env, cfg)
			}
			send(t, js, "fast", at(`{"id":"f4","label":"yes"}`, 5*time.Minute)) // seq 5: right; closes the window with f3

			got := waitReports(t, js, "fast", 2)
			if r := got[1]; r.Feedback != 2 || r.Labelled != 2 {
				t.Fatalf("second report: %+v", r)
			}
			near(t, "second accuracy (f1 and f2 counted again?)", got[1].Accuracy, 1)
			// Only slow's message is still held; nothing else is reported.
			waitAckPending(t, js, 1, 5)
			if n := len(reports(t, js, "fast")); n != 2 {
				t.Fatalf("%d reports for fast, want 2", n)
			}
			waitHealthy(t, env.Health)
		})
	}
}

// Feedback that cannot be handled (here: its rejection has no stream to go
// to) used to be handed back every second for ever. After max_deliveries it
// is rejected as undeliverable and acknowledged.
func TestFeedbackDeadLettersUndeliverable(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	ctx := context.Background()
	if err := js.DeleteStream(ctx, subjects.StreamName(natsbus.StreamRejected)); err != nil {
		t.Fatal(err)
	}
	startEnv(t, natstest.Env(t, nc, js), feedback.Config{MaxDeliveries: 2})
	send(t, js, "m", `{"id":"x"}`) // invalid: no label nor helpful
	// Delivered past the limit while its rejection cannot be stored.
	natstest.WaitFor(t, 20*time.Second, func() error {
		info, err := consumerInfo(js)
		if err != nil {
			return err
		}
		if info.Delivered.Consumer < 3 {
			return fmt.Errorf("delivered %d times", info.Delivered.Consumer)
		}
		return nil
	})
	if err := natsbus.EnsureStreams(ctx, js, subjects, natsbus.DefaultStreamOptions()); err != nil {
		t.Fatal(err)
	}
	var got []*event.Rejection
	natstest.WaitFor(t, 20*time.Second, func() error {
		if got = feedbackRejections(t, js, "m"); len(got) == 0 {
			return fmt.Errorf("no rejection")
		}
		return nil
	})
	if len(got) != 1 || got[0].Reasons[0].GetCode() != event.CodeUndeliverable || string(got[0].Original) != `{"id":"x"}` {
		t.Fatalf("rejections %v, want one undeliverable", got)
	}
	waitAckPending(t, js, 0, 1)
}

// A report that no retry can store (here: larger than the reports stream
// takes) used to be retried for ever, holding its window's feedback. It is
// counted, its feedback is rejected as undeliverable and acknowledged, and
// the model's later windows are reported again.
func TestFeedbackUnstorableReport(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	setMaxMsgSize := func(n int32) {
		t.Helper()
		setReportsStream(t, js, func(c *jetstream.StreamConfig) { c.MaxMsgSize = n })
	}
	setMaxMsgSize(64)
	predict(t, js, "m", "p1", "v1", event.Text("yes"))
	predict(t, js, "m", "p2", "v1", event.Text("yes"))
	env := natstest.Env(t, nc, js)
	reg := prometheus.NewRegistry()
	env.Metrics = reg
	startEnv(t, env, feedback.Config{WindowLabels: 1})
	send(t, js, "m", `{"id":"p1","label":"yes"}`)

	natstest.WaitFor(t, 20*time.Second, func() error {
		if n := len(feedbackRejections(t, js, "m")); n != 1 {
			return fmt.Errorf("%d rejections, want 1", n)
		}
		return nil
	})
	if r := feedbackRejections(t, js, "m")[0]; r.Reasons[0].GetCode() != event.CodeUndeliverable {
		t.Fatalf("reasons %v, want undeliverable", r.Reasons)
	}
	waitAckPending(t, js, 0, 1)
	if v := metricValue(t, reg, "lookout_feedback_unstorable_total", "kind", "report"); v != 1 {
		t.Fatalf("unstorable reports counted %v, want 1", v)
	}

	setMaxMsgSize(-1)
	send(t, js, "m", `{"id":"p2","label":"yes"}`)
	r := waitReports(t, js, "m", 1)[0]
	if r.Feedback != 1 {
		t.Fatalf("report after the unstorable one: %+v", r)
	}
	near(t, "accuracy", r.Accuracy, 1)
	waitAckPending(t, js, 0, 2)
}
