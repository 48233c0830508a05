package alert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/notify/notifytest"
	"github.com/lookout-ml/lookout/pkg/service"
	"github.com/lookout-ml/lookout/services/alert"
)

// running is an alert service started by runAlert.
type running struct {
	svc    *alert.Service
	reg    *prometheus.Registry
	health *service.Health
	cancel context.CancelFunc
	done   chan error
}

// runAlert runs the alert service on nc and js (its own registry), with
// edit applied before Run. The caller ends it with cancel; the test's end
// does too.
func runAlert(t *testing.T, nc *nats.Conn, js jetstream.JetStream, cfg alert.Config, edit func(*alert.Service)) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	health := service.NewHealth()
	env := service.Env{NC: nc, JS: js, Subjects: subjects, Log: zaptest.NewLogger(t), Metrics: reg, Health: health}
	svc, err := alert.New(env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(svc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{svc: svc, reg: reg, health: health, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("alert Run did not return within 30s of its cancel")
		}
	})
	natstest.WaitFor(t, 10*time.Second, func() error {
		for _, c := range []struct{ stream, name string }{
			{subjects.StreamName(natsbus.StreamReports), "alert-reports"},
			{subjects.StreamName(natsbus.StreamAlerts), "alert-dispatch"},
		} {
			if _, err := js.Consumer(context.Background(), c.stream, c.name); err != nil {
				return fmt.Errorf("consumer %s: %w", c.name, err)
			}
		}
		return nil
	})
	return r
}

// healthy returns nil when every part of r's health is ok and part has
// reported.
func (r *running) healthy(part string) error {
	parts, ok := r.health.Snapshot()
	if _, seen := parts[part]; !seen {
		return fmt.Errorf("health: %s not reported (%v)", part, parts)
	}
	if !ok {
		return fmt.Errorf("health: %v", parts)
	}
	return nil
}

// counter returns the value of counter name with labels in reg (0 when
// absent).
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if matches(m, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := labels[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}

// deadLetter returns the last dead letter kept for sink.
func deadLetter(ctx context.Context, js jetstream.JetStream, sink string) (*jetstream.RawStreamMsg, error) {
	stream, err := js.Stream(ctx, subjects.StreamName("NOTIFY"))
	if err != nil {
		return nil, err
	}
	return stream.GetLastMsgForSubject(ctx, "lookout.notify.dead."+sink)
}

// A webhook that answers 400 to one notification must not hold up the
// next: the first is dead-lettered (counted and kept), the second is
// delivered at once.
func TestPermanentSinkErrorIsDeadLetteredAndNextDelivered(t *testing.T) {
	for _, status := range []int{400, 404, 410, 413} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			b := newBus(t)
			hook := notifytest.RunHTTP(t)
			hook.RefuseWhen(status, func(body []byte) bool { return bytes.Contains(body, []byte(`"model":"model-a"`)) })
			cfg := testConfig()
			cfg.Sinks = []alert.SinkConfig{{Type: "webhook", URL: hook.URL + "/hook?token=secret-token"}}
			r := runAlert(t, b.nc, b.js, cfg, nil)

			b.publishDrift(t, "model-a", 0, true)
			natstest.WaitFor(t, 10*time.Second, func() error {
				if hook.Refused.Load() < 1 {
					return errors.New("notification A not tried yet")
				}
				return nil
			})
			refusedAt := time.Now()
			b.publishDrift(t, "model-b", 0, true)
			natstest.WaitFor(t, 10*time.Second, func() error {
				if len(hook.Requests()) != 1 {
					return fmt.Errorf("%d delivered, %d refused", len(hook.Requests()), hook.Refused.Load())
				}
				return nil
			})
			// B waits only its group_wait (0.4s), not for A.
			if took := time.Since(refusedAt); took > 5*time.Second {
				t.Fatalf("notification B took %v after A was refused", took)
			}
			var n alerting.Notification
			if err := json.Unmarshal(hook.Requests()[0].Body, &n); err != nil || n.Model != "model-b" {
				t.Fatalf("delivered %+v (%v), want model-b", n, err)
			}
			if got := hook.Refused.Load(); got != 1 {
				t.Fatalf("A was tried %d times; a permanent failure is tried once", got)
			}
			natstest.WaitFor(t, 5*time.Second, func() error {
				if v := counter(t, r.reg, "lookout_notify_dead_letters_total", map[string]string{"sink": "webhook", "reason": "rejected"}); v != 1 {
					return fmt.Errorf("dead letters %v", v)
				}
				return nil
			})
			m, err := deadLetter(context.Background(), b.js, "webhook")
			if err != nil {
				t.Fatal(err)
			}
			var kept alerting.Notification
			if err := json.Unmarshal(m.Data, &kept); err != nil || kept.Model != "model-a" || len(kept.Alerts) == 0 {
				t.Fatalf("dead letter %s: %v", m.Data, err)
			}
			if m.Header.Get(alert.HeaderDeadReason) != "rejected" || !strings.Contains(m.Header.Get(alert.HeaderDeadError), fmt.Sprint(status)) {
				t.Fatalf("dead letter headers %v", m.Header)
			}
			if strings.Contains(m.Header.Get(alert.HeaderDeadError), "secret-token") {
				t.Fatalf("dead letter shows the URL: %v", m.Header)
			}
			b.settled(t, "model-b", "webhook")
		})
	}
}

// runSmallServer starts a JetStream server whose max payload is maxPayload
// bytes, with Lookout's streams.
func runSmallServer(t *testing.T, maxPayload int32) *bus {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, NoSigs: true,
		StoreDir: filepath.Join(t.TempDir(), "jetstream"), MaxPayload: maxPayload,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	nc, js := natstest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := natsbus.EnsureStreams(ctx, js, subjects, natsbus.DefaultStreamOptions()); err != nil {
		t.Fatal(err)
	}
	return &bus{nc: nc, js: js}
}

// publishAlerts publishes count firing alert events of model, each with a
// summary of summaryBytes.
func (b *bus) publishAlerts(t *testing.T, model string, count, summaryBytes int) {
	t.Helper()
	start := time.Now().UTC()
	for i := range count {
		labels := map[string]string{"feature": fmt.Sprintf("f%05d", i)}
		a := alerting.Alert{
			Fingerprint: alerting.Fingerprint("wide", model, labels), Status: alerting.StatusFiring, Rule: "wide",
			Model: model, Severity: "warning", Labels: labels, Summary: strings.Repeat("x", summaryBytes), StartsAt: start,
		}
		data, _ := json.Marshal(a)
		if _, err := b.js.PublishAsync(subjects.For(natsbus.KindAlerts, model), data); err != nil {
			t.Fatal(err)
		}
	}
	// Async, so that all of them are in before group_wait ends.
	select {
	case <-b.js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		t.Fatal("alert events not stored within 10s")
	}
}

// A group of many alerts with long summaries is larger than the max
// payload: the notification is cut to fit ("and N more"), never retried
// forever.
func TestHugeGroupIsCutToFitMaxPayload(t *testing.T) {
	b := runSmallServer(t, 64<<10)
	hook := notifytest.RunHTTP(t)
	cfg := testConfig()
	cfg.GroupWait = 3 * time.Second // all of them in the first notification
	cfg.Sinks = []alert.SinkConfig{{Type: "webhook", URL: hook.URL}}
	runAlert(t, b.nc, b.js, cfg, nil)
	const count = 300
	b.publishAlerts(t, "wide", count, 2000)
	natstest.WaitFor(t, 15*time.Second, func() error {
		if len(hook.Requests()) != 1 {
			return fmt.Errorf("%d delivered", len(hook.Requests()))
		}
		return nil
	})
	var n alerting.Notification
	if err := json.Unmarshal(hook.Requests()[0].Body, &n); err != nil {
		t.Fatal(err)
	}
	if n.Omitted == 0 || len(n.Alerts) == 0 || len(n.Alerts)+n.Omitted != count {
		t.Fatalf("notification lists %d alerts and %d more; want %d in all, some left out", len(n.Alerts), n.Omitted, count)
	}
	if len(n.Alerts[0].Summary) > 1100 {
		t.Fatalf("summary not shortened: %d bytes", len(n.Alerts[0].Summary))
	}
}

// A notification that still does not fit (here the service budgets for a
// larger max payload than the server's) fails with nats.ErrMaxPayload: it
// is dead-lettered as too_large, and the next one goes out.
func TestMaxPayloadIsDeadLetteredNotRetried(t *testing.T) {
	b := runSmallServer(t, 64<<10)
	hook := notifytest.RunHTTP(t)
	cfg := testConfig()
	cfg.Sinks = []alert.SinkConfig{{Type: "webhook", URL: hook.URL}}
	r := runAlert(t, b.nc, b.js, cfg, func(s *alert.Service) { alert.SetMaxPayload(s, 1<<20) })
	b.publishAlerts(t, "wide", 300, 2000)
	natstest.WaitFor(t, 15*time.Second, func() error {
		if v := counter(t, r.reg, "lookout_notify_dead_letters_total", map[string]string{"sink": "webhook", "reason": "too_large"}); v != 1 {
			return fmt.Errorf("too_large dead letters %v", v)
		}
		return nil
	})
	m, err := deadLetter(context.Background(), b.js, "webhook")
	if err != nil {
		t.Fatal(err)
	}
	var kept alerting.Notification
	if err := json.Unmarshal(m.Data, &kept); err != nil || kept.Model != "wide" || kept.Omitted == 0 {
		t.Fatalf("dead letter %.200s: %v", m.Data, err)
	}
	// The dispatcher moved on: a small group is delivered.
	b.publishDrift(t, "small", 0, true)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if len(hook.Requests()) != 1 {
			return fmt.Errorf("%d delivered", len(hook.Requests()))
		}
		return nil
	})
}

// A process killed while a sink was down (no Nak reaches the server) must
// not leave its in-flight notification waiting out a long AckWait: the
// next process delivers it within seconds of the sink coming back.
func TestRestartMidRetryDeliversWithinSeconds(t *testing.T) {
	ns, _, js := natstest.RunWithStreams(t)
	hook := notifytest.RunHTTP(t)
	hook.Refuse.Store(1 << 30)
	cfg := testConfig()
	cfg.Retry = alert.RetryConfig{Initial: 100 * time.Millisecond, Max: time.Second, GiveUpAfter: time.Hour}
	cfg.Sinks = []alert.SinkConfig{{Type: "webhook", URL: hook.URL}}

	nc1, js1 := natstest.Connect(t, ns)
	first := runAlert(t, nc1, js1, cfg, nil)
	b := &bus{js: js}
	b.publishDrift(t, "churn", 0, true)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if hook.Refused.Load() < 3 {
			return fmt.Errorf("%d refused", hook.Refused.Load())
		}
		return nil
	})
	// Kill: the connection goes first, so nothing is acked or naked.
	nc1.Close()
	first.cancel()
	<-first.done
	first.done <- nil // for the cleanup

	nc2, js2 := natstest.Connect(t, ns)
	runAlert(t, nc2, js2, cfg, nil)
	hook.Refuse.Store(0)
	back := time.Now()
	natstest.WaitFor(t, 30*time.Second, func() error {
		if len(hook.Requests()) != 1 {
			return fmt.Errorf("%d delivered", len(hook.Requests()))
		}
		return nil
	})
	if took := time.Since(back); took > 8*time.Second {
		t.Fatalf("delivered %v after the sink came back; want within seconds", took)
	}
}

// Deleting any of the service's consumers while it runs is repaired within
// seconds: the consumer is recreated, /healthz is ok again, Run goes on,
// and a report published after the delete still becomes an alert event and
// a webhook notification.
func TestDeletedConsumerIsRecreated(t *testing.T) {
	for _, c := range []struct{ stream, name string }{
		{"REPORTS", "alert-reports"},
		{"ALERTS", "alert-dispatch"},
		{"NOTIFY", "alert-sink-webhook"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBus(t)
			hook := notifytest.RunHTTP(t)
			cfg := testConfig()
			cfg.Sinks = []alert.SinkConfig{{Type: "webhook", URL: hook.URL}}
			r := runAlert(t, b.nc, b.js, cfg, nil)
			ctx := context.Background()
			stream := subjects.StreamName(c.stream)
			var before int64
			natstest.WaitFor(t, 10*time.Second, func() error {
				cons, err := b.js.Consumer(ctx, stream, c.name)
				if err != nil {
					return err
				}
				before = cons.CachedInfo().Created.UnixNano()
				return r.healthy("alert/" + c.name)
			})
			if err := b.js.DeleteConsumer(ctx, stream, c.name); err != nil {
				t.Fatal(err)
			}
			natstest.WaitFor(t, 15*time.Second, func() error {
				cons, err := b.js.Consumer(ctx, stream, c.name)
				if err != nil {
					return err
				}
				if cons.CachedInfo().Created.UnixNano() == before {
					return errors.New("not deleted yet")
				}
				return nil
			})
			ev := b.watchAlerts(t, "after")
			b.publishDrift(t, "after", 0, true)
			natstest.WaitFor(t, 15*time.Second, func() error {
				if n := ev.count(alerting.RuleDatasetDrift, alerting.StatusFiring); n != 1 {
					return fmt.Errorf("%d alert events", n)
				}
				if len(hook.Requests()) != 1 {
					return fmt.Errorf("%d notifications delivered", len(hook.Requests()))
				}
				return nil
			})
			var n alerting.Notification
			if err := json.Unmarshal(hook.Requests()[0].Body, &n); err != nil || n.Model != "after" {
				t.Fatalf("delivered %+v (%v), want model after", n, err)
			}
			natstest.WaitFor(t, 10*time.Second, func() error { return r.healthy("alert/" + c.name) })
			select {
			case err := <-r.done:
				r.done <- err
				t.Fatalf("Run returned %v after its consumer was deleted", err)
			default:
			}
		})
	}
}

// A 429 with Retry-After is transient and retried after the wait it asked
// for (up to retry.max), not after the first backoff.
func TestRetryAfterIsHonoured(t *testing.T) {
	b := newBus(t)
	hook := notifytest.RunHTTP(t)
	hook.Refuse.Store(1)
	hook.Status.Store(429)
	hook.RetryAfter.Store(1)
	cfg := testConfig()
	cfg.Retry = alert.RetryConfig{Initial: 50 * time.Millisecond, Max: 2 * time.Second, GiveUpAfter: time.Hour}
	cfg.Sinks = []alert.SinkConfig{{Type: "webhook", URL: hook.URL}}
	r := runAlert(t, b.nc, b.js, cfg, nil)
	b.publishDrift(t, "churn", 0, true)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if hook.Refused.Load() != 1 {
			return errors.New("not tried yet")
		}
		return nil
	})
	refused := time.Now()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if len(hook.Requests()) != 1 {
			return fmt.Errorf("%d delivered", len(hook.Requests()))
		}
		return nil
	})
	if took := hook.Requests()[0].At.Sub(refused); took < 800*time.Millisecond {
		t.Fatalf("retried %v after a Retry-After of 1s", took)
	}
	if v := counter(t, r.reg, "lookout_notify_dead_letters_total", map[string]string{"sink": "webhook"}); v != 0 {
		t.Fatalf("a 429 was dead-lettered (%v)", v)
	}
}

// A report and an alert event published while the service is down are
// handled when it starts again: its owned consumers are recreated at their
// acknowledgement floor, not "new" (which would skip them).
func TestWorkPublishedWhileDownIsHandledAtStart(t *testing.T) {
	b := newBus(t)
	hook := notifytest.RunHTTP(t)
	cfg := testConfig()
	cfg.Sinks = []alert.SinkConfig{{Type: "webhook", URL: hook.URL}}
	first := runAlert(t, b.nc, b.js, cfg, nil)
	first.cancel()
	if err := <-first.done; err != nil {
		t.Fatal(err)
	}
	first.done <- nil // for the cleanup

	ev := b.watchAlerts(t, "down")
	b.publishDrift(t, "down", 0, true)
	b.publishAlerts(t, "direct", 1, 10)
	runAlert(t, b.nc, b.js, cfg, nil)
	natstest.WaitFor(t, 15*time.Second, func() error {
		if n := ev.count(alerting.RuleDatasetDrift, alerting.StatusFiring); n != 1 {
			return fmt.Errorf("%d alert events for the report", n)
		}
		if len(hook.Requests()) != 2 {
			return fmt.Errorf("%d notifications delivered", len(hook.Requests()))
		}
		return nil
	})
}
