package dashboard_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/dashboard"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/versions"
	"github.com/lookout-ml/lookout/pkg/webauth"
	"github.com/lookout-ml/lookout/services/alert"
)

// driftReport builds a drift report of n features; feature f0 drifts most.
func driftReport(model string, end time.Time, n int) []byte {
	features := map[string]any{}
	for i := range n {
		p := 0.5
		if i < 3 {
			p = 1e-6 * float64(i+1)
		}
		features[fmt.Sprintf("f%d", i)] = map[string]any{"kind": "numerical", "method": "ks", "score": p,
			"threshold": 0.05, "drifted": p < 0.05, "psi": 0.1, "jensen_shannon": 0.1}
	}
	b, _ := json.Marshal(map[string]any{
		"model": model, "window": map[string]any{"start": end.Add(-5 * time.Minute), "end": end, "count": 100},
		"features": features, "drift_share": 3 / float64(n), "dataset_drifted": true,
		// "<" must come back as it is: the API answers the stored bytes.
		"reference":  map[string]any{"count": 10, "source": "a<b"},
		"confidence": map[string]any{"mean": 0.7, "reference_mean": 0.9, "p10": 0.4},
	})
	return bytes.ReplaceAll(b, []byte(`\u003c`), []byte("<"))
}

func start(t *testing.T, opts dashboard.Options) (*httptest.Server, jetstream.JetStream, natsbus.Subjects) {
	t.Helper()
	_, _, js := natstest.RunWithStreams(t)
	subjects := natsbus.NewSubjects("")
	opts.JS, opts.Subjects = js, subjects
	h := dashboard.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	// Served as `lookout run` serves it: behind webauth, which sets the
	// security headers.
	srv := httptest.NewServer(webauth.New(webauth.Options{}, h))
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return srv, js, subjects
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("%s: %s %s", url, res.Status, b)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestAPIServesTheStreams publishes reports of two models and a
// rejection of an unknown one: the reports API answers the stored bytes
// oldest window first (a window published late is put in its place),
// since cuts on window end, _unknown is no model, and the gauges export
// only the top features.
func TestAPIServesTheStreams(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, js, subjects := start(t, dashboard.Options{Metrics: reg, TopFeatures: 5,
		Firing: func(context.Context) ([]alerting.Alert, error) { return nil, nil }})
	ctx := context.Background()
	now := time.Now().UTC().Truncate(5 * time.Minute)
	// Windows 10 h, 3 h, 2 h and 1 h ago, the 3 h one published last.
	var stored [][]byte
	for _, ago := range []int{10, 2, 1, 3} {
		b := driftReport("churn", now.Add(-time.Duration(ago)*time.Hour), 30)
		if _, err := js.Publish(ctx, subjects.For(natsbus.KindDrift, "churn"), b); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, b)
	}
	if _, err := js.Publish(ctx, subjects.For(natsbus.KindDrift, "other"), driftReport("other", now, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, subjects.For(natsbus.KindRejected, dashboard.UnknownModel), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	var overview dashboard.Overview
	natstest.WaitFor(t, 10*time.Second, func() error {
		getJSON(t, srv.URL+"/api/v1/overview?since=24h", &overview)
		if len(overview.Models) != 2 || overview.Unknown != 1 {
			return fmt.Errorf("overview: %d models, %d unknown", len(overview.Models), overview.Unknown)
		}
		return nil
	})
	if overview.Models[0].Name != "churn" || overview.Models[1].Name != "other" || overview.Models[0].State != "drifting" {
		t.Errorf("models = %+v", overview.Models)
	}

	res, err := http.Get(srv.URL + "/api/v1/models/churn/reports?kind=drift&since=4h")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var got []json.RawMessage
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	// since=4h leaves out the 10 h old window; the rest oldest first.
	want := [][]byte{stored[3], stored[1], stored[2]}
	if len(got) != len(want) {
		t.Fatalf("got %d reports, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("report %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	if !bytes.Contains(body, []byte(`"a<b"`)) {
		t.Error("reports were re-encoded: < escaped")
	}
	if res, _ := http.Get(srv.URL + "/api/v1/models/churn/reports?kind=nope"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("kind=nope: %s", res.Status)
	}

	// A model whose newest window is days old still shows its last day.
	old := driftReport("old", now.Add(-72*time.Hour), 2)
	if _, err := js.Publish(ctx, subjects.For(natsbus.KindDrift, "old"), old); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		var list []json.RawMessage
		getJSON(t, srv.URL+"/api/v1/models/old/reports?kind=drift&since=24h", &list)
		if len(list) != 1 || !bytes.Equal(list[0], old) {
			return fmt.Errorf("old model: %d reports", len(list))
		}
		return nil
	})

	// Bounded: 5 of churn's 30 features, and the others' 2 each.
	if n := testutil.CollectAndCount(reg, "lookout_drift_score"); n != 9 {
		t.Errorf("lookout_drift_score series = %d, want 9", n)
	}
	if v := testutil.ToFloat64(mustGauge(t, reg, "lookout_drift_share", "churn")); v != 0.1 {
		t.Errorf("lookout_drift_share{churn} = %v", v)
	}
}

func mustGauge(t *testing.T, reg *prometheus.Registry, name, model string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "model" && l.GetValue() == model {
					g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
					g.Set(m.GetGauge().GetValue())
					return g
				}
			}
		}
	}
	t.Fatalf("no %s{model=%q}", name, model)
	return nil
}

// TestSilencesAndEvents adds and expires a silence through the API, as the
// page does; the store `lookout silence` reads holds it, a firing alert it
// matches is marked silenced, and the event stream tells of a new report.
func TestSilencesAndEvents(t *testing.T) {
	firing := alerting.Alert{Fingerprint: "x", Status: alerting.StatusFiring, Rule: "dataset_drift", Model: "churn", Severity: "warning"}
	srv, js, subjects := start(t, dashboard.Options{
		Firing: func(context.Context) ([]alerting.Alert, error) { return []alerting.Alert{firing}, nil }})
	ctx := context.Background()

	events, err := http.Get(srv.URL + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer events.Body.Close()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(events.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if l := <-lines; l != "event: hello" {
		t.Fatalf("first event line %q", l)
	}
	if _, err := js.Publish(ctx, subjects.For(natsbus.KindDrift, "churn"), driftReport("churn", time.Now(), 3)); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for seen := false; !seen; {
		select {
		case l := <-lines:
			seen = strings.HasPrefix(l, "data: ") && strings.Contains(l, `"kind":"drift"`) && strings.Contains(l, `"model":"churn"`)
		case <-deadline:
			t.Fatal("no update event for the drift report")
		}
	}

	body := `{"model":"churn","rule":"dataset_drift","duration":"1h","comment":"deploying"}`
	res, err := http.Post(srv.URL+"/api/v1/silences", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var sil alerting.Silence
	_ = json.NewDecoder(res.Body).Decode(&sil)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || sil.ID == "" {
		t.Fatalf("add silence: %s %+v", res.Status, sil)
	}
	store, err := alert.OpenSilences(ctx, js, subjects)
	if err != nil {
		t.Fatal(err)
	}
	list, err := store.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != sil.ID || list[0].Comment != "deploying" ||
		list[0].EndsAt.Sub(list[0].StartsAt) != time.Hour {
		t.Fatalf("store: %+v %v", list, err)
	}
	var alerts []dashboard.FiringAlert
	getJSON(t, srv.URL+"/api/v1/alerts", &alerts)
	if len(alerts) != 1 || !alerts[0].Silenced {
		t.Errorf("alerts = %+v, want one silenced", alerts)
	}
	if res, _ := http.Post(srv.URL+"/api/v1/silences", "application/json", strings.NewReader(`{"comment":"no model"}`)); res.StatusCode != http.StatusBadRequest {
		t.Errorf("silence without a model: %s", res.Status)
	}

	res, err = http.Post(srv.URL+"/api/v1/silences/"+sil.ID+"/expire", "application/json", strings.NewReader("{}"))
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("expire: %v %v", res.Status, err)
	}
	getJSON(t, srv.URL+"/api/v1/alerts", &alerts)
	if alerts[0].Silenced {
		t.Error("alert still silenced after expire")
	}
	if res, _ := http.Post(srv.URL+"/api/v1/silences/nope/expire", "application/json", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("expire unknown: %s", res.Status)
	}
}

// TestPagesHaveNoInlineCode checks what the CSP forbids: no inline
// script or style, no style attribute, nothing from another origin.
func TestPagesHaveNoInlineCode(t *testing.T) {
	srv, _, _ := start(t, dashboard.Options{Firing: func(context.Context) ([]alerting.Alert, error) { return nil, nil }})
	for _, path := range []string{"/", "/models/churn"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		page := string(b)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", path, res.Status)
		}
		for _, bad := range []string{"<script>", "<style", "style=", "http://", "https://", " on"} {
			if bad == " on" {
				if strings.Contains(page, " onclick=") || strings.Contains(page, " onload=") {
					t.Errorf("%s has an inline handler", path)
				}
				continue
			}
			if strings.Contains(page, bad) {
				t.Errorf("%s contains %q", path, bad)
			}
		}
		if !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("%s: CSP %q", path, res.Header.Get("Content-Security-Policy"))
		}
	}
	for _, asset := range []string{"/assets/vendor/uplot.min.js", "/assets/model.js", "/assets/app.css"} {
		res, err := http.Get(srv.URL + asset)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Errorf("%s: %v %v", asset, res.Status, err)
		}
		res.Body.Close()
	}
}

// TestGrafanaDashboardUsesTheGauges reads deploy/grafana/lookout.json: it
// must be JSON, and each gauge the dashboard package exports must be
// queried by a panel under the name it is registered with.
func TestGrafanaDashboardUsesTheGauges(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana/lookout.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var exprs strings.Builder
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs.WriteString(tg.Expr + "\n")
		}
	}
	reg := prometheus.NewRegistry()
	_ = dashboard.New(dashboard.Options{Metrics: reg})
	for _, name := range []string{"lookout_drift_score", "lookout_drift_share", "lookout_confidence_mean",
		"lookout_accuracy", "lookout_estimated_accuracy", "lookout_canary_score"} {
		if !strings.Contains(exprs.String(), name+"{") {
			t.Errorf("no panel queries %s", name)
		}
	}
}

// TestModelVersions: GET /api/v1/models lists each model's versions with
// the window start of the first report naming them, their roles and run;
// the versions bucket's run wins over a report's, and a version only the
// bucket knows comes last.
func TestModelVersions(t *testing.T) {
	srv, js, subjects := start(t, dashboard.Options{
		Firing: func(context.Context) ([]alerting.Alert, error) { return nil, nil }})
	ctx := context.Background()
	kv, err := versions.Ensure(ctx, js, subjects, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []versions.Record{{Model: "churn", Version: "v2", Run: "mlflow://abc"}, {Model: "churn", Version: "v9", Run: "https://runs/9"}} {
		if _, err := versions.Put(ctx, kv, r); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC().Truncate(5 * time.Minute)
	drift := func(version, run string, end time.Time) {
		var m map[string]any
		_ = json.Unmarshal(driftReport("churn", end, 2), &m)
		m["version"], m["run"] = version, run
		b, _ := json.Marshal(m)
		if _, err := js.Publish(ctx, subjects.For(natsbus.KindDrift, "churn"), b); err != nil {
			t.Fatal(err)
		}
	}
	drift("v1", "https://runs/1", now.Add(-3*time.Hour))
	drift("v1", "https://runs/1b", now.Add(-2*time.Hour))
	drift("v2", "mlflow://old", now.Add(-time.Hour))
	canary, _ := json.Marshal(map[string]any{"model": "churn",
		"window":     map[string]any{"start": now.Add(-35 * time.Minute), "end": now.Add(-30 * time.Minute), "pairs": 10},
		"production": map[string]any{"version": "v2"}, "canary": map[string]any{"version": "v3", "run": "wandb://e/p/r"},
		"score": 100, "verdict": "promote"})
	if _, err := js.Publish(ctx, subjects.For(natsbus.KindCanary, "churn"), canary); err != nil {
		t.Fatal(err)
	}
	var got []dashboard.ModelVersion
	natstest.WaitFor(t, 10*time.Second, func() error {
		var models []dashboard.ModelSummary
		getJSON(t, srv.URL+"/api/v1/models", &models)
		if len(models) != 1 || len(models[0].Versions) != 4 {
			return fmt.Errorf("models %+v", models)
		}
		got = models[0].Versions
		return nil
	})
	type want struct {
		version, run, roles string
		started             time.Time
	}
	wants := []want{
		{"v1", "https://runs/1b", "production", now.Add(-3*time.Hour - 5*time.Minute)},
		{"v2", "mlflow://abc", "production", now.Add(-time.Hour - 5*time.Minute)},
		{"v3", "wandb://e/p/r", "canary", now.Add(-35 * time.Minute)},
		{"v9", "https://runs/9", "", time.Time{}},
	}
	for i, w := range wants {
		g := got[i]
		if g.Version != w.version || g.Run != w.run || strings.Join(g.Roles, " ") != w.roles || !g.Started.Equal(w.started) {
			t.Errorf("version %d = %+v, want %+v", i, g, w)
		}
	}
	if got[3].SetAt.IsZero() || !got[0].SetAt.IsZero() {
		t.Errorf("set_at: v9 %v (want set), v1 %v (want none)", got[3].SetAt, got[0].SetAt)
	}
}
