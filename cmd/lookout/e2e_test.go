package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/dashboard"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// webhookReceiver is a real HTTP server that keeps every notification.
type webhookReceiver struct {
	mu   sync.Mutex
	got  []alerting.Notification
	srv  *httptest.Server
	errs []error
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	w := &webhookReceiver{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var n alerting.Notification
		w.mu.Lock()
		defer w.mu.Unlock()
		if err := json.Unmarshal(body, &n); err != nil {
			w.errs = append(w.errs, fmt.Errorf("webhook body %q: %w", body, err))
		}
		w.got = append(w.got, n)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhookReceiver) notifications() []alerting.Notification {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]alerting.Notification(nil), w.got...)
}

// TestDriftBecomesOneAlertEndToEnd drives the whole pipeline of a real
// `lookout run`: predictions published to lookout.ingest.* go through
// ingest and drift; a shift in two features makes a drift report, the
// alert service turns it into exactly one firing notification at the
// webhook, and once the data is back to normal exactly one resolved one.
func TestDriftBecomesOneAlertEndToEnd(t *testing.T) {
	hook := newWebhookReceiver(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lookout.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
drift:
  window: 1h
  window_events: 500
alert:
  group_wait: 300ms
  group_interval: 600ms
  sinks:
    - {type: webhook, url: %q}
`, hook.srv.URL+"/hook")), 0o644); err != nil {
		t.Fatal(err)
	}
	lk := startLookout(t, filepath.Join(dir, "data"), "--config", cfg)

	nc, err := nats.Connect(lk.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	subjects := natsbus.NewSubjects("")
	rng := rand.New(rand.NewPCG(7, 7))
	n := 0
	publishWindow := func(shifted bool) {
		t.Helper()
		for range 500 {
			n++
			age, plan := 40+8*rng.NormFloat64(), []string{"free", "pro"}[rng.IntN(2)]
			if shifted {
				age += 25
				plan = []string{"team", "enterprise"}[rng.IntN(2)]
			}
			conf := 0.8 + 0.1*rng.Float64()
			p := &event.Prediction{
				Id: fmt.Sprintf("e2e-%d", n), Version: "v1", Model: "e2e",
				Features:   map[string]*event.Value{"age": event.Number(age), "plan": event.Text(plan), "income": event.Number(50000 + 9000*rng.NormFloat64())},
				Prediction: event.Number(rng.Float64()), Confidence: &conf,
			}
			if _, err := js.PublishAsync(subjects.For(natsbus.KindIngest, "e2e"), event.AppendJSON(nil, p)); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			t.Fatal("publish not acknowledged")
		}
	}
	// The drift report of each window arrives on lookout.drift.e2e.
	reports, err := nc.SubscribeSync(subjects.For(natsbus.KindDrift, "e2e"))
	if err != nil {
		t.Fatal(err)
	}
	nextReport := func() map[string]any {
		t.Helper()
		msg, err := reports.NextMsg(60 * time.Second)
		if err != nil {
			t.Fatalf("no drift report: %v\n%s", err, lk.Logs())
		}
		var r map[string]any
		if err := json.Unmarshal(msg.Data, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	publishWindow(false) // the reference: the first full window, not reported against itself
	publishWindow(false)
	if r := nextReport(); r["dataset_drifted"] == true {
		t.Fatalf("a stable window drifted: %v", r)
	}
	publishWindow(true)
	r := nextReport()
	if r["dataset_drifted"] != true {
		t.Fatalf("the shifted window did not drift: %v", r)
	}
	features, _ := r["features"].(map[string]any)
	for _, name := range []string{"age", "plan"} {
		if f, _ := features[name].(map[string]any); f["drifted"] != true {
			t.Errorf("feature %s not flagged: %v", name, features[name])
		}
	}
	natstest.WaitFor(t, 60*time.Second, func() error {
		if got := hook.notifications(); len(got) != 1 {
			return fmt.Errorf("%d notifications, want 1 firing", len(got))
		}
		return nil
	})
	first := hook.notifications()[0]
	if first.Status != alerting.StatusFiring || first.Model != "e2e" || len(first.Firing()) == 0 {
		t.Fatalf("first notification: %+v", first)
	}
	for _, a := range first.Firing() {
		if a.Labels["version"] != "v1" {
			t.Errorf("alert %s lacks the model version label: %v", a.Rule, a.Labels)
		}
	}
	// The dashboard's API shows the model drifting, its version, the
	// alert, and the report with its drifted features.
	natstest.WaitFor(t, 10*time.Second, func() error {
		var models []dashboard.ModelSummary
		if err := getJSONInto("http://"+lk.HTTPAddr+"/api/v1/models", &models); err != nil {
			return err
		}
		if len(models) != 1 || models[0].Name != "e2e" || models[0].State != "drifting" ||
			models[0].Drift == nil || models[0].Drift.Version != "v1" {
			return fmt.Errorf("models: %+v", models)
		}
		var rules []string
		for _, a := range models[0].Alerts {
			rules = append(rules, a.Rule)
		}
		if !slices.Contains(rules, "dataset_drift") {
			return fmt.Errorf("alerts firing: %v", rules)
		}
		var reports []map[string]any
		if err := getJSONInto("http://"+lk.HTTPAddr+"/api/v1/models/e2e/reports?kind=drift", &reports); err != nil {
			return err
		}
		if len(reports) == 0 {
			return errors.New("no drift reports")
		}
		last, _ := reports[len(reports)-1]["features"].(map[string]any)
		for _, name := range []string{"age", "plan"} {
			if f, _ := last[name].(map[string]any); f["drifted"] != true {
				return fmt.Errorf("latest report: %s not drifted", name)
			}
		}
		return nil
	})

	// Back to normal: the alerts resolve after two calm windows, in one
	// notification.
	publishWindow(false)
	publishWindow(false)
	natstest.WaitFor(t, 60*time.Second, func() error {
		got := hook.notifications()
		if len(got) < 2 || got[len(got)-1].Status != alerting.StatusResolved {
			return fmt.Errorf("%d notifications, the last not resolved yet", len(got))
		}
		return nil
	})
	time.Sleep(2 * time.Second) // a quiet period: nothing more may arrive
	got := hook.notifications()
	if len(got) != 2 {
		for _, n := range got {
			t.Logf("notification: %s %d alerts", n.Status, len(n.Alerts))
		}
		t.Fatalf("%d notifications, want exactly one firing and one resolved", len(got))
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	for _, err := range hook.errs {
		t.Error(err)
	}
}

// getJSONInto decodes the JSON answer of a GET into v.
func getJSONInto(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
