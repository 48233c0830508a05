package alert_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/notify"
	"github.com/lookout-ml/lookout/pkg/notify/notifytest"
	"github.com/lookout-ml/lookout/pkg/service"
	"github.com/lookout-ml/lookout/services/alert"
)

var subjects = natsbus.NewSubjects("")

// bus is a NATS server with Lookout's streams.
type bus struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func newBus(t *testing.T) *bus {
	_, nc, js := natstest.RunWithStreams(t)
	return &bus{nc: nc, js: js}
}

// start runs the alert service on b until stop is called (or the test
// ends), once its consumers exist.
func (b *bus) start(t *testing.T, cfg alert.Config) (stop func()) {
	t.Helper()
	svc, err := alert.New(natstest.Env(t, b.nc, b.js), cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop = natstest.RunService(t, svc)
	natstest.WaitFor(t, 10*time.Second, func() error {
		for _, c := range []struct{ stream, name string }{
			{subjects.StreamName(natsbus.StreamReports), "alert-reports"},
			{subjects.StreamName(natsbus.StreamAlerts), "alert-dispatch"},
		} {
			if _, err := b.js.Consumer(context.Background(), c.stream, c.name); err != nil {
				return fmt.Errorf("consumer %s: %w", c.name, err)
			}
		}
		return nil
	})
	return stop
}

// events subscribes to lookout.alerts.<model> and collects what arrives.
type events struct {
	mu   sync.Mutex
	list []alerting.Alert
}

func (b *bus) watchAlerts(t *testing.T, model string) *events {
	e := &events{}
	sub, err := b.nc.Subscribe(subjects.For(natsbus.KindAlerts, model), func(m *nats.Msg) {
		var a alerting.Alert
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Errorf("alert event: %v", err)
		}
		e.mu.Lock()
		e.list = append(e.list, a)
		e.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	_ = b.nc.Flush()
	return e
}

func (e *events) count(rule, status string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, a := range e.list {
		if a.Rule == rule && a.Status == status {
			n++
		}
	}
	return n
}

var windowStart = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// publishDrift publishes a drift report for window i.
func (b *bus) publishDrift(t testing.TB, model string, i int, drifted bool) {
	t.Helper()
	if _, err := b.js.Publish(context.Background(), subjects.For(natsbus.KindDrift, model), driftJSON(model, i, drifted)); err != nil {
		t.Fatal(err)
	}
}

// driftJSON returns a drift report (the contract's JSON) for window i.
func driftJSON(model string, i int, drifted bool) []byte {
	start := windowStart.Add(time.Duration(i) * 5 * time.Minute)
	feature := func(drift bool) map[string]any {
		score := 0.42
		if drift {
			score = 1e-9
		}
		return map[string]any{"kind": "numerical", "ks": map[string]any{"statistic": 0.21, "p_value": score},
			"wasserstein": 1.7, "psi": 0.31, "jensen_shannon": 0.12, "method": "ks", "score": score, "drifted": drift}
	}
	share := 0.0
	if drifted {
		share = 0.5
	}
	report := map[string]any{
		"model":           model,
		"window":          map[string]any{"start": start, "end": start.Add(5 * time.Minute), "count": 10000},
		"reference":       map[string]any{"count": 50000, "source": "test"},
		"features":        map[string]any{"age": feature(drifted), "plan": feature(false)},
		"prediction":      feature(false),
		"confidence":      map[string]any{"mean": 0.88, "reference_mean": 0.88, "p10": 0.41, "dropped": false},
		"drift_share":     share,
		"dataset_drifted": drifted,
	}
	data, _ := json.Marshal(report)
	return data
}

// settled waits until every queued notification was delivered and the
// model's group holds nothing waiting.
func (b *bus) settled(t *testing.T, model string, sinks ...string) {
	t.Helper()
	ctx := context.Background()
	natstest.WaitFor(t, 15*time.Second, func() error {
		kv, err := b.js.KeyValue(ctx, subjects.StreamName("ALERT_STATE"))
		if err != nil {
			return err
		}
		if e, err := kv.Get(ctx, "group."+model); err == nil {
			var g alerting.Group
			_ = json.Unmarshal(e.Value(), &g)
			for _, a := range g.Alerts {
				if !a.Firing() {
					return fmt.Errorf("group %s still holds a resolved alert", model)
				}
			}
			if g.LastFlush.IsZero() {
				return fmt.Errorf("group %s not flushed yet", model)
			}
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
		for _, s := range sinks {
			c, err := b.js.Consumer(ctx, subjects.StreamName("NOTIFY"), "alert-sink-"+s)
			if err != nil {
				return err
			}
			info, err := c.Info(ctx)
			if err != nil {
				return err
			}
			if info.NumPending+uint64(info.NumAckPending) > 0 {
				return fmt.Errorf("sink %s: %d pending", s, info.NumPending+uint64(info.NumAckPending))
			}
		}
		return nil
	})
}

func decodeHook(t *testing.T, recv *notifytest.HTTPReceiver, secret string) []alerting.Notification {
	t.Helper()
	var out []alerting.Notification
	for _, r := range recv.Requests() {
		if got := r.Header.Get(notify.HeaderSignature); got != notify.Sign(secret, r.Body) {
			t.Fatalf("bad signature %q", got)
		}
		var n alerting.Notification
		if err := json.Unmarshal(r.Body, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func decodeSlack(t *testing.T, recv *notifytest.HTTPReceiver) []notify.SlackMessage {
	t.Helper()
	var out []notify.SlackMessage
	for _, r := range recv.Requests() {
		var m notify.SlackMessage
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func testConfig() alert.Config {
	cfg := alert.DefaultConfig()
	cfg.GroupWait = 400 * time.Millisecond
	cfg.GroupInterval = 800 * time.Millisecond
	cfg.RepeatInterval = time.Hour
	cfg.EvaluationInterval = time.Hour
	cfg.Retry = alert.RetryConfig{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, GiveUpAfter: time.Hour}
	return cfg
}

func TestDriftFiresAndResolvesOncePerSink(t *testing.T) {
	b := newBus(t)
	hook, slack := notifytest.RunHTTP(t), notifytest.RunHTTP(t)
	smtpSrv := notifytest.RunSMTP(t, notifytest.SMTPOptions{Username: "lookout", Password: "mail-pw"})
	cfg := testConfig()
	cfg.Sinks = []alert.SinkConfig{
		{Type: "webhook", URL: hook.URL + "/hook", Secret: "hook-secret"},
		{Type: "slack", URL: slack.URL + "/services/T/B/X"},
		{Type: "email", SMTP: smtpSrv.Addr, From: "lookout@example.com", To: []string{"ops@example.com"}, Username: "lookout", Password: "mail-pw"},
	}
	b.start(t, cfg)
	ev := b.watchAlerts(t, "churn")
	sinks := []string{"webhook", "slack", "email"}

	b.publishDrift(t, "churn", 0, true)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if len(hook.Requests()) < 1 || len(slack.Requests()) < 1 || len(smtpSrv.Mail()) < 1 {
			return fmt.Errorf("webhook %d, slack %d, email %d", len(hook.Requests()), len(slack.Requests()), len(smtpSrv.Mail()))
		}
		return nil
	})
	b.settled(t, "churn", sinks...)
	if n, s, m := len(hook.Requests()), len(slack.Requests()), len(smtpSrv.Mail()); n != 1 || s != 1 || m != 1 {
		t.Fatalf("firing notifications: webhook %d, slack %d, email %d; want 1 each", n, s, m)
	}
	// The events are on the subject: dataset_drift and feature_drift(age).
	if ev.count(alerting.RuleDatasetDrift, alerting.StatusFiring) != 1 || ev.count(alerting.RuleFeatureDrift, alerting.StatusFiring) != 1 {
		t.Fatalf("events: %+v", ev.list)
	}
	// The webhook gets dataset_drift with feature_drift(age) inside it.
	n := decodeHook(t, hook, "hook-secret")[0]
	if n.Status != alerting.StatusFiring || len(n.Alerts) != 1 || n.Alerts[0].Rule != alerting.RuleDatasetDrift ||
		len(n.Alerts[0].Inhibited) != 1 || n.Alerts[0].Inhibited[0].Labels["feature"] != "age" {
		t.Fatalf("webhook notification: %+v", n)
	}
	if a := n.Alerts[0]; a.Value == nil || *a.Value != 0.5 || a.Source.Subject != "lookout.drift.churn" || a.Source.Window == nil {
		t.Fatalf("alert: %+v", a)
	}
	if att := decodeSlack(t, slack)[0].Attachments; len(att) != 1 || att[0].Color != notify.ColorFiring {
		t.Fatalf("slack: %+v", att)
	}
	m := smtpSrv.Mail()[0]
	if m.User != "lookout" {
		t.Fatalf("email not authenticated: %+v", m)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
	if err != nil {
		t.Fatal(err)
	}
	if mt, _, _ := mime.ParseMediaType(msg.Header.Get("Content-Type")); mt != "multipart/alternative" || !strings.Contains(msg.Header.Get("Subject"), "FIRING") {
		t.Fatalf("email: %s %q", mt, msg.Header.Get("Subject"))
	}

	// Two calm windows resolve it: one resolved notification each.
	b.publishDrift(t, "churn", 1, false)
	b.publishDrift(t, "churn", 2, false)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if len(hook.Requests()) < 2 || len(slack.Requests()) < 2 || len(smtpSrv.Mail()) < 2 {
			return fmt.Errorf("webhook %d, slack %d, email %d", len(hook.Requests()), len(slack.Requests()), len(smtpSrv.Mail()))
		}
		return nil
	})
	b.settled(t, "churn", sinks...)
	if n, s, m := len(hook.Requests()), len(slack.Requests()), len(smtpSrv.Mail()); n != 2 || s != 2 || m != 2 {
		t.Fatalf("notifications: webhook %d, slack %d, email %d; want 2 each", n, s, m)
	}
	resolved := decodeHook(t, hook, "hook-secret")[1]
	if resolved.Status != alerting.StatusResolved || resolved.Alerts[0].EndsAt == nil || resolved.Alerts[0].Fingerprint != n.Alerts[0].Fingerprint {
		t.Fatalf("resolved notification: %+v", resolved)
	}
	if att := decodeSlack(t, slack)[1].Attachments; att[0].Color != notify.ColorResolved {
		t.Fatalf("slack resolved colour: %s", att[0].Color)
	}
	if ev.count(alerting.RuleDatasetDrift, alerting.StatusResolved) != 1 || ev.count(alerting.RuleFeatureDrift, alerting.StatusResolved) != 1 {
		t.Fatalf("events: %+v", ev.list)
	}
	// Nothing fires now.
	firing, err := alert.FiringAlerts(context.Background(), b.js, subjects)
	if err != nil || len(firing) != 0 {
		t.Fatalf("firing after resolve: %v %v", firing, err)
	}
}

func TestSilenceStopsNotificationNotEvent(t *testing.T) {
	b := newBus(t)
	hook := notifytest.RunHTTP(t)
	cfg := testConfig()
	cfg.Sinks = []alert.SinkConfig{{Type: "webhook", URL: hook.URL}}
	b.start(t, cfg)
	ctx := context.Background()
	silences, err := alert.OpenSilences(ctx, b.js, subjects)
	if err != nil {
		t.Fatal(err)
	}
	sil, err := silences.Add(ctx, alerting.Silence{Model: "quiet", Rule: alerting.RuleDatasetDrift, StartsAt: time.Now(), EndsAt: time.Now().Add(time.Hour), Comment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// Silence feature_drift too (by label), so nothing of model quiet is sent.
	if _, err := silences.Add(ctx, alerting.Silence{Model: "quiet", Labels: map[string]string{"feature": "age"}, StartsAt: time.Now(), EndsAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ev := b.watchAlerts(t, "quiet")
	natstest.WaitFor(t, 5*time.Second, func() error {
		// The dispatcher has loaded the silences once its watcher runs;
		// listing them proves they are stored.
		list, err := silences.List(ctx)
		if err != nil || len(list) != 2 {
			return fmt.Errorf("silences %d %v", len(list), err)
		}
		return nil
	})
	b.publishDrift(t, "quiet", 0, true)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if ev.count(alerting.RuleDatasetDrift, alerting.StatusFiring) != 1 {
			return errors.New("no firing event on lookout.alerts.quiet")
		}
		return nil
	})
	b.settled(t, "quiet", "webhook")
	if n := len(hook.Requests()); n != 0 {
		t.Fatalf("silenced alert notified %d times", n)
	}
	firing, err := alert.FiringAlerts(ctx, b.js, subjects)
	if err != nil || len(firing) != 2 {
		t.Fatalf("firing: %d %v", len(firing), err)
	}

	// Expiring the dataset silence lets it through at the next tick.
	if _, err := silences.Expire(ctx, sil.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		if len(hook.Requests()) != 1 {
			return fmt.Errorf("%d notifications", len(hook.Requests()))
		}
		return nil
	})
	if _, err := silences.Expire(ctx, "nope", time.Now()); !errors.Is(err, alert.ErrNotFound) {
		t.Fatalf("expire unknown: %v", err)
	}
}

func TestNoDataAndRejectionRate(t *testing.T) {
	b := newBus(t)
	hook := notifytest.RunHTTP(t)
	cfg := testConfig()
	cfg.EvaluationInterval = 50 * time.Millisecond
	cfg.NoData = 400 * time.Millisecond
	cfg.RejectionRate = alert.RejectionRateConfig{Threshold: 0.2, Window: time.Minute, MinCount: 10}
	cfg.Sinks = []alert.SinkConfig{{Type: "webhook", URL: hook.URL, Rules: []string{alerting.RuleNoData}}}
	b.start(t, cfg)
	ev := b.watchAlerts(t, "*")
	ctx := context.Background()
	for i := range 12 {
		subj := subjects.For(natsbus.KindPredictions, "m1")
		if i%3 == 0 {
			subj = subjects.For(natsbus.KindRejected, "m1")
		}
		if _, err := b.js.Publish(ctx, subj, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	// 4 of 12 rejected: rejection_rate fires; then the model falls silent.
	natstest.WaitFor(t, 10*time.Second, func() error {
		if ev.count(alerting.RuleRejectionRate, alerting.StatusFiring) != 1 || ev.count(alerting.RuleNoData, alerting.StatusFiring) != 1 {
			return fmt.Errorf("events: %d rejection_rate, %d no_data", ev.count(alerting.RuleRejectionRate, alerting.StatusFiring), ev.count(alerting.RuleNoData, alerting.StatusFiring))
		}
		return nil
	})
	// The sink takes no_data only.
	natstest.WaitFor(t, 10*time.Second, func() error {
		if len(hook.Requests()) != 1 {
			return fmt.Errorf("%d notifications", len(hook.Requests()))
		}
		return nil
	})
	var n alerting.Notification
	_ = json.Unmarshal(hook.Requests()[0].Body, &n)
	if len(n.Alerts) != 1 || n.Alerts[0].Rule != alerting.RuleNoData || n.Alerts[0].Model != "m1" {
		t.Fatalf("notification: %+v", n)
	}
	// Data again resolves no_data.
	if _, err := b.js.Publish(ctx, subjects.For(natsbus.KindPredictions, "m1"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		if ev.count(alerting.RuleNoData, alerting.StatusResolved) < 1 {
			return errors.New("no_data not resolved")
		}
		return nil
	})
}

func TestFailingSinkGetsEachOnceAndStateSurvivesRestart(t *testing.T) {
	b := newBus(t)
	hook := notifytest.RunHTTP(t)
	hook.Refuse.Store(4)
	cfg := testConfig()
	cfg.Sinks = []alert.SinkConfig{{Type: "webhook", URL: hook.URL, Secret: "s"}}
	stop := b.start(t, cfg)
	b.publishDrift(t, "churn", 0, true)
	natstest.WaitFor(t, 15*time.Second, func() error {
		if len(hook.Requests()) != 1 {
			return fmt.Errorf("%d delivered, %d refused", len(hook.Requests()), hook.Refused.Load())
		}
		return nil
	})
	b.settled(t, "churn", "webhook")
	if hook.Refused.Load() != 4 || len(hook.Requests()) != 1 {
		t.Fatalf("refused %d, delivered %d", hook.Refused.Load(), len(hook.Requests()))
	}

	// Restart: the firing alert is remembered, so a still-drifting window
	// sends nothing, and calm windows resolve it once.
	stop()
	hook.Refuse.Store(2)
	b.start(t, cfg)
	b.publishDrift(t, "churn", 1, true)
	b.publishDrift(t, "churn", 2, false)
	b.publishDrift(t, "churn", 3, false)
	natstest.WaitFor(t, 15*time.Second, func() error {
		if len(hook.Requests()) != 2 {
			return fmt.Errorf("%d delivered", len(hook.Requests()))
		}
		return nil
	})
	b.settled(t, "churn", "webhook")
	got := decodeHook(t, hook, "s")
	if len(got) != 2 || got[1].Status != alerting.StatusResolved {
		t.Fatalf("after restart: %+v", got)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	env := service.Env{Subjects: subjects, Metrics: prometheus.NewRegistry()}
	for _, tc := range []struct {
		comment string
		edit    func(*alert.Config)
	}{
		{"unknown sink type", func(c *alert.Config) { c.Sinks = []alert.SinkConfig{{Type: "pager"}} }},
		{"webhook without url", func(c *alert.Config) { c.Sinks = []alert.SinkConfig{{Type: "webhook"}} }},
		{"two sinks with one name", func(c *alert.Config) {
			c.Sinks = []alert.SinkConfig{{Name: "a", Type: "webhook", URL: "http://x"}, {Name: "a", Type: "slack", URL: "http://y"}}
		}},
		{"bad rule", func(c *alert.Config) { c.Rules = []alerting.Rule{{Name: "x", Source: "drift", Field: "a", Op: "~"}} }},
	} {
		cfg := alert.DefaultConfig()
		tc.edit(&cfg)
		if _, err := alert.New(env, cfg); err == nil {
			t.Errorf("%s: no error", tc.comment)
		}
	}
}

// TestReportBeforeConsumersExistIsNotified: a report stored after the
// alert service was made but before its consumers exist (drift's first
// report racing the alert service's start, a slow cluster) is evaluated
// and notified; a consumer created with DeliverNew skipped it.
func TestReportBeforeConsumersExistIsNotified(t *testing.T) {
	b := newBus(t)
	hook := notifytest.RunHTTP(t)
	cfg := testConfig()
	cfg.Sinks = []alert.SinkConfig{{Type: "webhook", URL: hook.URL + "/hook", Secret: "s"}}
	svc, err := alert.New(natstest.Env(t, b.nc, b.js), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.publishDrift(t, "early", 0, true)
	natstest.RunService(t, svc)
	natstest.WaitFor(t, 20*time.Second, func() error {
		for _, n := range decodeHook(t, hook, "s") {
			if n.Model == "early" && n.Status == alerting.StatusFiring {
				return nil
			}
		}
		return fmt.Errorf("%d notifications, none firing for the early report", len(hook.Requests()))
	})
}
