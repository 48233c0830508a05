package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// chromiumPath is Debian's chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// dashboardModel is the model whose reports the browser test publishes.
const dashboardModel = "shop"

// dashboardToken is the http.token the browser test's `lookout run`
// has: the page must work behind the login and its CSP.
const dashboardToken = "browser-test-token"

// dashboardHistory is how many 5-minute windows the test publishes before
// the browser looks: 20 hours, most of the default 24 h range.
const dashboardHistory = 240

// TestDashboardInBrowser runs a real `lookout run`, publishes a model's
// drift, canary and performance reports (and an alert) on their subjects
// while headless Chromium signs in with the http.token on /login and loads
// the overview and the model page; every chart (the feature distribution
// among them) must have drawn points, the console must stay free of
// errors and CSP violations, a silence added with the page's form must be
// listed by `lookout silence list`, and expired with the page's button
// must be expired there. The model page's screenshot is saved under
// $LOOKOUT_ARTEFACTS (default: a folder in the temp dir); with
// LOOKOUT_SCREENSHOT=path it is written there too (docs/dashboard.png).
func TestDashboardInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: .ci/run installs Debian's chromium", chromiumPath)
		}
		t.Skipf("%s is missing (apt-get install -y chromium); the browser test needs it", chromiumPath)
	}
	cfg := filepath.Join(t.TempDir(), "lookout.yaml")
	if err := os.WriteFile(cfg, []byte("http:\n  token: "+dashboardToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startLookout(t, "", "--config", cfg)
	nc, err := nats.Connect(p.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subjects := natsbus.NewSubjects("")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// History first (20 hours of 5-minute windows), then a report every
	// 300 ms while the browser looks: the page must follow live.
	pubCtx, stopPub := context.WithCancel(ctx)
	var pubWG sync.WaitGroup
	pubWG.Add(1)
	base := time.Now().UTC().Add(-dashboardHistory * 5 * time.Minute).Truncate(5 * time.Minute)
	go func() {
		defer pubWG.Done()
		for i := 0; pubCtx.Err() == nil; i++ {
			if err := publishDashboardWindow(pubCtx, js, subjects, base, i); err != nil {
				if pubCtx.Err() == nil {
					t.Errorf("publish window %d: %v", i, err)
				}
				return
			}
			if i >= dashboardHistory {
				select {
				case <-pubCtx.Done():
				case <-time.After(300 * time.Millisecond):
				}
			}
		}
	}()
	defer func() { stopPub(); pubWG.Wait() }()
	firing := alerting.Alert{Fingerprint: "fp-shop-dataset", Status: alerting.StatusFiring, Rule: "dataset_drift",
		Model: dashboardModel, Severity: "warning", Summary: "share 0.67 >= 0.5", StartsAt: base.Add(13 * time.Hour)}
	b, _ := json.Marshal(firing)
	if _, err := js.Publish(ctx, subjects.For(natsbus.KindAlerts, dashboardModel), b); err != nil {
		t.Fatal(err)
	}
	// A rejection of unknown models: a note on the overview, not a card.
	if _, err := js.Publish(ctx, subjects.For(natsbus.KindRejected, "_unknown"), []byte(`{"reasons":["not JSON"]}`)); err != nil {
		t.Fatal(err)
	}
	base0 := "http://" + p.HTTPAddr
	waitHTTP(t, ctx, base0+"/api/v1/models/"+dashboardModel+"/reports?kind=canary&since=7d", func(body []byte) bool {
		var list []json.RawMessage
		return json.Unmarshal(body, &list) == nil && len(list) >= dashboardHistory
	})
	// The API answers reports exactly as stored: the first drift report is
	// byte for byte the message on the subject.
	assertFirstReportExact(t, ctx, js, subjects, base0)

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	var (
		consoleMu sync.Mutex
		problems  []string
	)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatal(err)
	}
	messages := chromedp.Console(bctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == "error" || m.IsException() {
				consoleMu.Lock()
				problems = append(problems, m.String()+" at "+m.URL)
				consoleMu.Unlock()
			}
		}
	}()

	// Behind the token a page sends the browser to the login form; signed
	// in, it comes back to the page asked for.
	if err := chromedp.Do(bctx, chromedp.Navigate(base0+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, pollEval[bool](`location.pathname === '/login' && document.querySelector('input[name="token"]') ? true : null`)); err != nil {
		t.Fatalf("no login form in front of the page: %v", err)
	}
	if err := chromedp.Do(bctx,
		chromedp.SetValue(chromedp.CSS(`input[name="token"]`), dashboardToken),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, pollEval[bool](`location.pathname === '/' && document.getElementById('cards') ? true : null`)); err != nil {
		t.Fatalf("login did not lead back to the overview: %v", err)
	}
	// The overview: a card for shop, none for _unknown, every sparkline drawn.
	overview := waitCharts(t, bctx, []string{"spark-events", "spark-rejection-share", "spark-drift-share",
		"spark-confidence", "spark-accuracy", "spark-canary-score"})
	t.Logf("overview charts: %v", overview)
	overviewShot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	cards, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('.card')].map(c => c.dataset.model)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cards) != 1 || cards[0] != dashboardModel {
		t.Errorf("overview cards = %v, want only %s (no _unknown)", cards, dashboardModel)
	}

	// The model page.
	if err := chromedp.Do(bctx, chromedp.Navigate(base0+"/models/"+dashboardModel)); err != nil {
		t.Fatal(err)
	}
	charts := waitCharts(t, bctx, []string{"drift-share", "feature-heatmap", "confidence", "accuracy", "canary",
		"alerts", "feature-drift", "feature-distribution"})
	t.Logf("model charts: %v", charts)
	rows, err := chromedp.Run(bctx, pollEval[int](`document.querySelectorAll('#features tbody tr').length || null`))
	if err != nil || rows != 3 {
		t.Errorf("feature table rows = %d (%v), want 3", rows, err)
	}
	// The distribution follows a heatmap cell's window: a click on the
	// first column chooses the oldest window, "later" the one after it
	// (both fixed while newer windows arrive).
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => {
		const c = document.querySelector('#c-feature-heatmap canvas'), r = c.getBoundingClientRect();
		return c.dispatchEvent(new MouseEvent('click', { clientX: r.left + 141, clientY: r.top + 8, bubbles: true }));
	})()`)); err != nil {
		t.Fatal(err)
	}
	windowText := func(start time.Time) string { return "window " + start.Format("2006-01-02 15:04") }
	waitWindow := func(start time.Time) {
		t.Helper()
		if got, err := chromedp.Run(bctx, pollEval[string](fmt.Sprintf(
			`(t => t.includes(%q) ? t : null)(document.getElementById('dist-window').textContent)`, windowText(start)))); err != nil {
			t.Errorf("distribution window: want %q: %v (%q)", windowText(start), err, got)
		}
	}
	waitWindow(base)
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#win-next`))); err != nil {
		t.Fatal(err)
	}
	waitWindow(base.Add(5 * time.Minute))
	if n, err := chromedp.Run(bctx, pollEval[int](`(n => n > 0 ? n : null)(+document.querySelector('[data-chart="feature-distribution"]').dataset.points)`)); err != nil {
		t.Errorf("feature-distribution drew no bars for the chosen window: %v", err)
	} else if n != 2*len(dashboardBins)+2 {
		t.Errorf("feature-distribution drew %d bars, want %d (reference and window per bin)", n, 2*len(dashboardBins)+2)
	}
	// Back to following the newest window, for the screenshot.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#win-latest`))); err != nil {
		t.Fatal(err)
	}
	// Versions: v1 and v2 (canary), each with its run; an http(s) run is a
	// link, a wandb:// one text.
	links, err := chromedp.Run(bctx, pollEval[map[string]string](`(() => {
		const m = {};
		for (const tr of document.querySelectorAll('#versions tbody tr')) {
			const a = tr.querySelector('a');
			m[tr.dataset.version] = a ? 'link ' + a.href : 'text ' + tr.lastElementChild.textContent;
		}
		return m.v1 && m.v2 ? m : null;
	})()`))
	if err != nil {
		t.Errorf("versions table: %v", err)
	} else if links["v1"] != "link "+dashboardRunV1 || links["v2"] != "text "+dashboardRunV2 {
		t.Errorf("versions table runs = %v, want v1 linked to %s and v2 as text %s", links, dashboardRunV1, dashboardRunV2)
	}
	// Live: the "last report" line and a chart's point count move on while
	// reports flow, without a reload.
	before := charts["drift-share"]
	after, err := chromedp.Run(bctx, pollEval[int](fmt.Sprintf(
		`(n => n > %d ? n : null)(+document.querySelector('[data-chart="drift-share"]').dataset.points)`, before)))
	if err != nil {
		t.Errorf("drift-share stayed at %d points while reports flowed: %v", before, err)
	}
	live, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById('live').textContent`))
	if !strings.Contains(live, "last report") {
		t.Errorf("live line = %q, want it to say when the last report came", live)
	}
	t.Logf("drift-share points %d -> %d; %q", before, after, live)

	// A silence from the page's form.
	comment := "from the browser test"
	if err := chromedp.Do(bctx,
		chromedp.SetValue(chromedp.CSS(`#silence-form input[name="rule"]`), "dataset_drift"),
		chromedp.SetValue(chromedp.CSS(`#silence-form input[name="duration"]`), "1h"),
		chromedp.SetValue(chromedp.CSS(`#silence-form input[name="comment"]`), comment),
		chromedp.Click(chromedp.CSS(`#silence-add`)),
	); err != nil {
		t.Fatal(err)
	}
	msg, err := chromedp.Run(bctx, pollEval[string](`(t => t.startsWith('added') || t.startsWith('not') ? t : null)(document.getElementById('silence-msg').textContent)`))
	if err != nil || !strings.HasPrefix(msg, "added ") {
		t.Fatalf("silence form: %q (%v)", msg, err)
	}
	var out bytes.Buffer
	if err := silenceCommand(ctx, []string{"list", "--json", "--nats", p.NATSURL}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var s alerting.Silence
		if json.Unmarshal([]byte(line), &s) == nil && s.Model == dashboardModel && s.Rule == "dataset_drift" && s.Comment == comment {
			found = "added "+s.ID == msg
		}
	}
	if !found {
		t.Errorf("lookout silence list has no silence %q from the page:\n%s", msg, out.String())
	}
	// The page marks the firing alert silenced once it knows the silence.
	if _, err := chromedp.Run(bctx, pollEval[bool](`document.querySelector('#firing li.silenced') ? true : null`)); err != nil {
		t.Errorf("firing alert not marked silenced: %v", err)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}

	// Expired with the page's button, the silence is expired for the CLI.
	id := strings.TrimPrefix(msg, "added ")
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#silences button[data-id=%q]`, id)))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, pollEval[bool](fmt.Sprintf(`document.querySelector('#silences tr[data-silence=%q]') ? null : true`, id))); err != nil {
		t.Errorf("expired silence still in the page's list: %v", err)
	}
	expired := func() error {
		var all, current bytes.Buffer
		if err := silenceCommand(ctx, []string{"list", "--all", "--json", "--nats", p.NATSURL}, &all, io.Discard); err != nil {
			return err
		}
		if err := silenceCommand(ctx, []string{"list", "--json", "--nats", p.NATSURL}, &current, io.Discard); err != nil {
			return err
		}
		if strings.Contains(current.String(), `"`+id+`"`) {
			return fmt.Errorf("lookout silence list still lists %s:\n%s", id, current.String())
		}
		for _, line := range strings.Split(strings.TrimSpace(all.String()), "\n") {
			var s alerting.Silence
			if json.Unmarshal([]byte(line), &s) == nil && s.ID == id {
				if s.EndsAt.After(time.Now()) {
					return fmt.Errorf("silence %s ends at %v, not expired", id, s.EndsAt)
				}
				return nil
			}
		}
		return fmt.Errorf("lookout silence list --all has no %s:\n%s", id, all.String())
	}
	deadline := time.Now().Add(30 * time.Second)
	for err := expired(); err != nil; err = expired() {
		if time.Now().After(deadline) {
			t.Errorf("after the expire button: %v", err)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	dir := os.Getenv("LOOKOUT_ARTEFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "lookout-artefacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dashboard-model.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dashboard-overview.png"), overviewShot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots: %s (%d bytes), dashboard-overview.png beside it", filepath.Join(dir, "dashboard-model.png"), len(shot))
	if path := os.Getenv("LOOKOUT_SCREENSHOT"); path != "" {
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	consoleMu.Lock()
	defer consoleMu.Unlock()
	if len(problems) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(problems, "\n"))
	}
}

// pollEval evaluates expr until it gives a value other than null, for up
// to 30 s.
func pollEval[T any](expr string) chromedp.Action[T] {
	return func(ctx context.Context, tg *chromedp.Target) (T, error) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			var ptr *T
			ptr, err := chromedp.Evaluate[*T](expr)(ctx, tg)
			if err == nil && ptr != nil {
				return *ptr, nil
			}
			if time.Now().After(deadline) {
				var zero T
				if err == nil {
					err = fmt.Errorf("%s: still null after 30s", expr)
				}
				return zero, err
			}
			select {
			case <-ctx.Done():
				var zero T
				return zero, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// waitCharts waits until each named chart is on the page and every chart
// there has drawn points; it returns the points by chart name.
func waitCharts(t *testing.T, ctx context.Context, names []string) map[string]int {
	t.Helper()
	want, _ := json.Marshal(names)
	got, err := chromedp.Run(ctx, pollEval[map[string]int](fmt.Sprintf(`(() => {
		const els = [...document.querySelectorAll('[data-chart]')];
		const m = {};
		for (const e of els) m[e.dataset.chart] = Math.min(m[e.dataset.chart] ?? Infinity, +e.dataset.points);
		const ok = %s.every(n => m[n] > 0) && Object.values(m).every(v => v > 0);
		return ok ? m : null;
	})()`, want)))
	if err != nil {
		now, _ := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](
			`Object.fromEntries([...document.querySelectorAll('[data-chart]')].map(e => [e.dataset.chart, e.dataset.points]))`))
		t.Fatalf("charts %v never all drew points: %v; on the page: %v", names, err, now)
	}
	return got
}

// getAuthorized GETs url with the browser test's token as a bearer.
func getAuthorized(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+dashboardToken)
	return http.DefaultClient.Do(req)
}

func waitHTTP(t *testing.T, ctx context.Context, url string, ok func([]byte) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := getAuthorized(url)
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK && ok(body) {
				return
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: not ready after 30s", url)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func assertFirstReportExact(t *testing.T, ctx context.Context, js jetstream.JetStream, subjects natsbus.Subjects, base string) {
	t.Helper()
	stream, err := js.Stream(ctx, subjects.StreamName(natsbus.StreamReports))
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subjects.For(natsbus.KindDrift, dashboardModel)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := getAuthorized(base + "/api/v1/models/" + dashboardModel + "/reports?kind=drift&since=7d")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var list []json.RawMessage
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if len(list) < 5 {
		t.Fatalf("drift reports: %d, want at least 5", len(list))
	}
	if !bytes.Equal(list[0], first.Data) {
		t.Errorf("first report differs from the stream's:\n%s\n%s", list[0], first.Data)
	}
	var prev time.Time
	for _, r := range list {
		var w struct {
			Window struct{ End time.Time } `json:"window"`
		}
		if err := json.Unmarshal(r, &w); err != nil {
			t.Fatal(err)
		}
		if w.Window.End.Before(prev) {
			t.Errorf("reports not oldest first: %v after %v", w.Window.End, prev)
		}
		prev = w.Window.End
	}
}

// The browser test's histogram edges and training runs.
var dashboardBins = []float64{18, 25, 32, 40, 48, 57, 66, 75, 84}

const (
	dashboardRunV1 = "https://mlflow.example.com/#/experiments/1/runs/abc123"
	dashboardRunV2 = "wandb://acme/shop/churn-model:v2"
)

// publishDashboardWindow publishes window i's drift, canary and
// performance reports: drift grows after window 160, the canary degrades
// after window 200.
func publishDashboardWindow(ctx context.Context, js jetstream.JetStream, subjects natsbus.Subjects, base time.Time, i int) error {
	start := base.Add(time.Duration(i) * 5 * time.Minute)
	end := start.Add(5 * time.Minute)
	shift := 0.0
	if i > 160 {
		shift = min(1, float64(i-160)/12)
	}
	// The window's shares move one bin up as the drift grows.
	cur := make([]float64, len(dashboardBins)+1)
	ref := make([]float64, len(dashboardBins)+1)
	for k := range ref {
		ref[k] = 1 / float64(len(ref))
		cur[k] = ref[k] * (1 - shift)
		if k > 0 {
			cur[k] += ref[k-1] * shift
		}
	}
	ks := func(p float64) map[string]any {
		return map[string]any{"kind": "numerical", "ks": map[string]any{"statistic": 0.05 + shift/3, "p_value": p},
			"wasserstein": 0.1 + shift, "psi": 0.02 + shift/4, "jensen_shannon": 0.01 + shift/5,
			"method": "ks", "score": p, "threshold": 0.05, "threshold_source": "default", "drifted": p < 0.05,
			"histogram": map[string]any{"edges": dashboardBins, "reference": ref, "current": cur}}
	}
	pAge := 0.6*(1-shift) + 1e-9
	drifted := 0
	if pAge < 0.05 {
		drifted = 2
	}
	drift := map[string]any{
		"model": dashboardModel, "version": "v1", "run": dashboardRunV1,
		"window":    map[string]any{"start": start, "end": end, "count": 1500 + 10*i},
		"reference": map[string]any{"count": 5000, "source": "test"},
		"features": map[string]any{
			"age":    ks(pAge),
			"income": ks(pAge * 0.5),
			"plan": map[string]any{"kind": "categorical", "chi2": map[string]any{"statistic": 1.2, "p_value": 0.55, "dof": 2},
				"psi": 0.01, "jensen_shannon": 0.01, "method": "chi2", "score": 0.55, "threshold": 0.05, "drifted": false,
				"histogram": map[string]any{"categories": []string{"free", "pro", "team"}, "reference": []float64{0.6, 0.3, 0.1},
					"current": []float64{0.58, 0.31, 0.11}}},
		},
		"confidence": map[string]any{"mean": 0.88 - 0.2*shift, "reference_mean": 0.88, "p10": 0.6 - 0.3*shift,
			"reference_p10": 0.6, "dropped": shift > 0.5},
		"estimated_performance": map[string]any{"accuracy": 0.9 - 0.15*shift, "reference_accuracy": 0.9, "method": "cbpe"},
		"data_quality":          map[string]any{"features": map[string]any{"age": map[string]any{"null_share": 0.01}}},
		"drift_share":           float64(drifted) / 3, "dataset_drifted": drifted >= 2,
	}
	verdict, agreement := "promote", 0.98
	if i > 200 {
		verdict, agreement = "rollback", 0.9
	}
	canary := map[string]any{
		"model": dashboardModel, "window": map[string]any{"start": start, "end": end, "pairs": 800},
		"production": map[string]any{"version": "v1", "latency_ms": map[string]any{"p50": 4, "p95": 6, "p99": 7}},
		"canary":     map[string]any{"version": "v2", "run": dashboardRunV2, "latency_ms": map[string]any{"p50": 5, "p95": 7.5, "p99": 9}},
		"agreement":  agreement,
		"quality":    map[string]any{"labelled_pairs": 200, "metric": "accuracy", "production": 0.95, "canary": 0.95 - (0.98 - agreement), "difference": agreement - 0.98},
		"score":      map[bool]float64{true: 100, false: 40}[verdict == "promote"], "verdict": verdict, "reasons": []string{},
	}
	perf := map[string]any{
		"model": dashboardModel, "window": map[string]any{"start": start, "end": end, "feedback": 300},
		"feedback": 300, "labelled": 300, "accuracy": 0.93 - 0.2*shift, "accuracy_count": 300,
		"estimated_accuracy": 0.9 - 0.15*shift, "estimated_accuracy_count": 300,
	}
	for kind, report := range map[string]any{natsbus.KindDrift: drift, natsbus.KindCanary: canary, natsbus.KindPerformance: perf} {
		b, err := json.Marshal(report)
		if err != nil {
			return err
		}
		if _, err := js.Publish(ctx, subjects.For(kind, dashboardModel), b); err != nil {
			return err
		}
	}
	return nil
}
