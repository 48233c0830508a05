package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// The contract test checks what ../shared/CONTRACT.md promises an outside
// user, field by field, against a real `lookout run`: it publishes over
// HTTP, as a client in any language would, and reads the reports, alerts
// and rejections back from their subjects and the JSON API.

// contractModel is the model the contract test publishes.
const contractModel = "contract"

// jsonPath returns the value at a dotted path of decoded JSON, and whether
// every step was there.
func jsonPath(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// keyCheck reports, as test errors, every dotted path of a JSON object
// that is missing or of the wrong JSON type.
type keyCheck struct {
	t     *testing.T
	where string
	obj   any
}

func (c keyCheck) has(path string) any {
	c.t.Helper()
	v, ok := jsonPath(c.obj, path)
	if !ok {
		c.t.Errorf("%s: no %s", c.where, path)
	}
	return v
}

func (c keyCheck) number(paths ...string) {
	c.t.Helper()
	for _, p := range paths {
		if v := c.has(p); v != nil {
			if _, ok := v.(float64); !ok {
				c.t.Errorf("%s: %s = %v (%T), want a number", c.where, p, v, v)
			}
		}
	}
}

func (c keyCheck) str(paths ...string) {
	c.t.Helper()
	for _, p := range paths {
		if v := c.has(p); v != nil {
			if s, ok := v.(string); !ok || s == "" {
				c.t.Errorf("%s: %s = %v (%T), want a non-empty string", c.where, p, v, v)
			}
		}
	}
}

func (c keyCheck) boolean(paths ...string) {
	c.t.Helper()
	for _, p := range paths {
		if v := c.has(p); v != nil {
			if _, ok := v.(bool); !ok {
				c.t.Errorf("%s: %s = %v (%T), want a boolean", c.where, p, v, v)
			}
		}
	}
}

func (c keyCheck) object(paths ...string) {
	c.t.Helper()
	for _, p := range paths {
		if v := c.has(p); v != nil {
			if _, ok := v.(map[string]any); !ok {
				c.t.Errorf("%s: %s = %v (%T), want an object", c.where, p, v, v)
			}
		}
	}
}

func (c keyCheck) time(paths ...string) {
	c.t.Helper()
	for _, p := range paths {
		if v := c.has(p); v != nil {
			s, _ := v.(string)
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				c.t.Errorf("%s: %s = %v, want an RFC 3339 time", c.where, p, v)
			}
		}
	}
}

func (c keyCheck) equal(path string, want any) {
	c.t.Helper()
	if v, ok := jsonPath(c.obj, path); !ok || !reflect.DeepEqual(v, want) {
		c.t.Errorf("%s: %s = %v, want %v", c.where, path, v, want)
	}
}

// subjectMessages returns every message the stream holds on subject, in
// stream order, decoded.
func subjectMessages(t *testing.T, js jetstream.JetStream, stream, subject string) []any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, natsbus.NewSubjects("").StreamName(stream))
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	// Direct gets, as a reader may: no consumer (the streams cap them).
	var out []any
	for seq := uint64(1); ; {
		msg, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			t.Fatalf("%s: after %d messages: %v", subject, len(out), err)
		}
		var v any
		if err := json.Unmarshal(msg.Data, &v); err != nil {
			t.Fatalf("%s: not JSON: %v: %s", subject, err, msg.Data)
		}
		out = append(out, v)
		seq = msg.Sequence + 1
	}
	return out
}

// waitMessages waits until subject holds a message that ok accepts and
// returns them all.
func waitMessages(t *testing.T, lk *lookoutProcess, js jetstream.JetStream, stream, subject string, ok func(any) bool) []any {
	t.Helper()
	var msgs []any
	natstest.WaitFor(t, 90*time.Second, func() error {
		msgs = subjectMessages(t, js, stream, subject)
		if slices.ContainsFunc(msgs, ok) {
			return nil
		}
		return fmt.Errorf("%s: %d messages, none wanted yet", subject, len(msgs))
	})
	return msgs
}

// getBody returns the status and body of a GET.
func getBody(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// postLines posts JSON lines and returns the decoded answer.
func postLines(t *testing.T, url string, lines []string) map[string]any {
	t.Helper()
	code, body := httpPost(t, url, "application/json", []byte(strings.Join(lines, "\n")+"\n"), false)
	if code != http.StatusOK {
		t.Fatalf("POST %s: %d %s", url, code, body)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("POST %s: %v: %s", url, err, body)
	}
	return out
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestContract publishes, over HTTP, a model's predictions (a reference
// window, a calm one and a shifted one, with a canary answering a share of
// the requests and a region tag), its labels and one invalid line, and
// checks the shape of everything the contract names: the HTTP answers, the
// rejection on lookout.rejected.*, the drift, canary and performance
// reports, the alert event, the JSON API (reports exactly as on their
// subjects, oldest first), /healthz, /metrics and the dashboard's charts.
func TestContract(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lookout.yaml")
	if err := os.WriteFile(cfg, []byte(`
drift:
  window: 1h
  window_events: 300
canary:
  wait: 2s
  window_pairs: 50
  window: 1h
  min_pairs: 10
feedback:
  window: 1h
  window_labels: 1000
  idle_timeout: 5s
  wait: 2s
alert:
  group_wait: 200ms
  group_interval: 400ms
`), 0o644); err != nil {
		t.Fatal(err)
	}
	lk := startLookout(t, filepath.Join(dir, "data"), "--config", cfg)
	logOnFailure(t, lk)
	base := "http://" + lk.HTTPAddr
	nc, err := nats.Connect(lk.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	subjects := natsbus.NewSubjects("")

	// POST /v1/predictions/{model}: line 3 is invalid (confidence 1.7);
	// the answer counts the others and names line 3 with its reasons.
	start := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	ts := func(i int) string {
		return start.Add(time.Duration(i) * 50 * time.Millisecond).Format(time.RFC3339Nano)
	}
	bad := `{"version":"v1","prediction":"stay","confidence":1.7,"ts":"` + ts(2) + `"}`
	answer := postLines(t, base+"/v1/predictions/"+contractModel, []string{
		`{"id":"p-0","version":"v1","prediction":"stay","confidence":0.9,"ts":"` + ts(0) + `","features":{"age":40,"plan":"free","trial":false,"income":null},"tags":{"region":"us"}}`,
		`{"id":"p-1","version":"v1","prediction":"stay","confidence":0.9,"ts":"` + ts(1) + `","features":{"age":41,"plan":"pro","trial":true,"income":50000},"tags":{"region":"eu"}}`,
		bad,
	})
	ak := keyCheck{t, "POST /v1/predictions answer", answer}
	ak.equal("accepted", 2.0)
	rejected, _ := answer["rejected"].([]any)
	if len(rejected) != 1 {
		t.Fatalf("answer: rejected = %v, want one line", answer["rejected"])
	}
	rk := keyCheck{t, "POST /v1/predictions rejected[0]", rejected[0]}
	rk.equal("line", 3.0)
	if reasons, _ := rejected[0].(map[string]any)["reasons"].([]any); len(reasons) == 0 {
		t.Errorf("answer: line 3 without reasons: %v", rejected[0])
	}
	for k := range answer {
		if k != "accepted" && k != "rejected" && k != "duplicates" {
			t.Errorf("answer: unexpected key %q: %v", k, answer)
		}
	}

	// The rejection record: the original, its size and SHA-256, every
	// reason with its code.
	rej := waitMessages(t, lk, js, natsbus.StreamRejected, subjects.For(natsbus.KindRejected, contractModel), func(any) bool { return true })
	jk := keyCheck{t, "rejection", rej[0]}
	jk.equal("model", contractModel)
	jk.equal("subject", subjects.For(natsbus.KindIngest, contractModel))
	jk.equal("original", bad)
	jk.equal("original_size", float64(len(bad)))
	sum := sha256.Sum256([]byte(bad))
	jk.equal("original_sha256", hex.EncodeToString(sum[:]))
	jk.time("received_at")
	if reasons, _ := jsonPath(rej[0], "reasons"); true {
		list, _ := reasons.([]any)
		if len(list) == 0 {
			t.Errorf("rejection without reasons: %v", rej[0])
		}
		for _, r := range list {
			rc := keyCheck{t, "rejection reason", r}
			rc.equal("code", "out_of_range")
			rc.equal("field", "confidence")
			rc.str("message")
		}
	}

	// Three drift windows of 300: the reference, a calm one, and one where
	// age and plan shift in region eu. Every fifth request also goes to a
	// canary v2 that answers the other way on trial customers.
	rng := rand.New(rand.NewPCG(11, 11))
	var preds, canaries []string
	n := 2
	for w := range 3 {
		count := 300
		if w == 0 {
			count = 298 // p-0 and p-1 came with the invalid line
		}
		for range count {
			i := n
			n++
			region := []string{"eu", "us"}[rng.IntN(2)]
			age, plan := 40+8*rng.NormFloat64(), []string{"free", "pro"}[rng.IntN(2)]
			emb := []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
			if w == 2 && region == "eu" {
				age += 30
				emb[0] += 3
				plan = []string{"team", "enterprise"}[rng.IntN(2)]
			}
			trial := rng.IntN(2) == 0
			label := []string{"churn", "stay"}[rng.IntN(2)]
			p := map[string]any{
				"id": fmt.Sprintf("p-%d", i), "request_id": fmt.Sprintf("r-%d", i), "version": "v1",
				"ts": ts(i), "prediction": label, "confidence": 0.7 + 0.25*rng.Float64(),
				"scores":     map[string]float64{"churn": 0.6, "stay": 0.4},
				"latency_ms": 4 + rng.Float64(),
				"features":   map[string]any{"age": age, "plan": plan, "trial": trial, "income": 50000 + 9000*rng.NormFloat64()},
				"tags":       map[string]string{"region": region},
				"embeddings": map[string][]float64{"text": emb},
			}
			preds = append(preds, mustJSON(p))
			if w == 0 && i%5 == 0 {
				c := copyMap(p)
				c["id"], c["role"], c["version"], c["latency_ms"] = fmt.Sprintf("c-%d", i), "canary", "v2", 9+rng.Float64()
				if trial {
					c["prediction"] = map[string]string{"churn": "stay", "stay": "churn"}[label]
				}
				canaries = append(canaries, mustJSON(c))
			}
		}
	}
	if a := postLines(t, base+"/v1/predictions/"+contractModel, preds[:298]); a["accepted"] != 298.0 {
		t.Fatalf("accepted %v of 298: %v", a["accepted"], a["rejected"])
	}
	// Labels (for production by id, for the canary's requests by
	// request_id, so that both sides get one), 20 s after the prediction;
	// one names a prediction that never was.
	var labels []string
	for i := 2; i < 300; i++ {
		var f map[string]any
		if i%5 == 0 {
			f = map[string]any{"request_id": fmt.Sprintf("r-%d", i)}
		} else {
			f = map[string]any{"id": fmt.Sprintf("p-%d", i)}
		}
		f["label"], f["helpful"] = []string{"churn", "stay"}[i%2], i%3 != 0
		f["ts"] = start.Add(time.Duration(i)*50*time.Millisecond + 20*time.Second).Format(time.RFC3339Nano)
		labels = append(labels, mustJSON(f))
	}
	labels = append(labels, `{"id":"never-was","label":"stay","ts":"`+start.Add(30*time.Second).Format(time.RFC3339Nano)+`"}`)
	if a := postLines(t, base+"/v1/feedback/"+contractModel, labels); a["accepted"] != float64(len(labels)) {
		t.Fatalf("feedback accepted %v of %d: %v", a["accepted"], len(labels), a["rejected"])
	}
	// The canary's predictions come after the labels, so that its first
	// window (closed at 50 pairs) has them; the feedback service joins
	// them to their request's label too.
	for _, batch := range [][]string{canaries, preds[298:]} {
		if a := postLines(t, base+"/v1/predictions/"+contractModel, batch); a["accepted"] != float64(len(batch)) {
			t.Fatalf("accepted %v of %d: %v", a["accepted"], len(batch), a["rejected"])
		}
	}

	// The drift report of the shifted window.
	driftSubject := subjects.For(natsbus.KindDrift, contractModel)
	drifts := waitMessages(t, lk, js, natsbus.StreamReports, driftSubject, func(r any) bool {
		v, _ := jsonPath(r, "dataset_drifted")
		return v == true
	})
	var drifted any
	for _, r := range drifts {
		if v, _ := jsonPath(r, "dataset_drifted"); v == true {
			drifted = r
			break
		}
	}
	dk := keyCheck{t, "drift report", drifted}
	dk.equal("model", contractModel)
	dk.time("window.start", "window.end")
	dk.equal("window.count", 300.0)
	dk.number("reference.count", "drift_share")
	dk.str("reference.source")
	dk.boolean("dataset_drifted")
	dk.object("features", "prediction", "confidence", "multivariate", "root_cause")
	for _, f := range []string{"age", "income"} {
		p := "features." + f
		dk.equal(p+".kind", "numerical")
		dk.str(p+".method", p+".threshold_source")
		dk.number(p+".wasserstein", p+".psi", p+".jensen_shannon", p+".score", p+".threshold")
		dk.boolean(p + ".drifted")
		if m, _ := jsonPath(drifted, p+".method"); m == "ks" {
			dk.number(p+".ks.statistic", p+".ks.p_value")
		}
	}
	for _, f := range []string{"plan", "trial"} {
		p := "features." + f
		dk.equal(p+".kind", "categorical")
		dk.str(p+".method", p+".threshold_source")
		dk.number(p+".psi", p+".jensen_shannon", p+".score", p+".threshold")
		dk.boolean(p + ".drifted")
		if m, _ := jsonPath(drifted, p+".method"); m == "chi2" {
			dk.number(p+".chi2.statistic", p+".chi2.p_value", p+".chi2.dof")
		}
	}
	dk.equal("features.age.drifted", true)
	dk.equal("features.plan.drifted", true)
	dk.str("prediction.kind", "prediction.method")
	dk.number("confidence.mean", "confidence.reference_mean", "confidence.p10")
	dk.boolean("confidence.dropped")
	dk.number("estimated_performance.accuracy", "estimated_performance.reference_accuracy")
	dk.str("estimated_performance.method")
	dk.boolean("estimated_performance.calibrated")
	dk.number("embeddings.text.centroid_distance", "embeddings.text.mmd2", "embeddings.text.p_value")
	dk.equal("embeddings.text.drifted", true)
	dk.str("multivariate.method")
	dk.number("multivariate.error", "multivariate.reference_mean", "multivariate.threshold")
	dk.boolean("multivariate.drifted")
	if rc, _ := jsonPath(drifted, "root_cause.features"); true {
		if list, _ := rc.([]any); !slices.Contains(list, any("age")) || !slices.Contains(list, any("plan")) {
			t.Errorf("root_cause.features = %v, want age and plan", rc)
		}
	}
	if segs, _ := jsonPath(drifted, "root_cause.segments"); true {
		list, _ := segs.([]any)
		if len(list) == 0 {
			t.Errorf("root_cause.segments = %v, want the eu segment", segs)
		}
		for _, s := range list {
			sk := keyCheck{t, "root_cause segment", s}
			sk.str("tag", "value")
			sk.number("rows", "drift_share")
		}
		if len(list) > 0 {
			keyCheck{t, "root_cause first segment", list[0]}.equal("value", "eu")
		}
	}

	// The canary report: every requested pair of the first window.
	canarySubject := subjects.For(natsbus.KindCanary, contractModel)
	canaryReports := waitMessages(t, lk, js, natsbus.StreamReports, canarySubject, func(any) bool { return true })
	ck := keyCheck{t, "canary report", canaryReports[0]}
	ck.equal("model", contractModel)
	ck.time("window.start", "window.end")
	ck.number("window.pairs", "canary_share", "unmatched.production", "unmatched.canary", "agreement", "score")
	ck.equal("production.version", "v1")
	ck.equal("canary.version", "v2")
	for _, side := range []string{"production", "canary"} {
		ck.number(side+".latency_ms.p50", side+".latency_ms.p95", side+".latency_ms.p99", side+".confidence_mean")
	}
	ck.number("quality.labelled_pairs", "quality.production", "quality.canary", "quality.difference", "quality.p_value")
	ck.equal("quality.metric", "accuracy")
	ck.equal("quality.test", "mcnemar")
	if v, _ := jsonPath(canaryReports[0], "verdict"); !slices.Contains([]any{"promote", "hold", "rollback"}, v) {
		t.Errorf("canary verdict = %v", v)
	}
	if checks, _ := jsonPath(canaryReports[0], "checks"); true {
		list, _ := checks.([]any)
		if len(list) == 0 {
			t.Errorf("canary checks = %v", checks)
		}
		for _, c := range list {
			kk := keyCheck{t, "canary check", c}
			kk.str("name")
			kk.number("value", "threshold")
			kk.boolean("passed")
		}
	}
	if reasons, _ := jsonPath(canaryReports[0], "reasons"); reflect.TypeOf(reasons) != reflect.TypeOf([]any{}) {
		t.Errorf("canary reasons = %v, want an array", reasons)
	}

	// The performance report: realised and estimated accuracy, with the
	// same figures per version and role.
	perfSubject := subjects.For(natsbus.KindPerformance, contractModel)
	perfs := waitMessages(t, lk, js, natsbus.StreamReports, perfSubject, func(r any) bool {
		v, _ := jsonPath(r, "unmatched")
		return v != nil && v.(float64) > 0
	})
	var perf any
	for _, r := range perfs {
		if v, _ := jsonPath(r, "roles.canary"); v != nil {
			perf = r
			break
		}
	}
	if perf == nil {
		t.Fatalf("no performance report with a canary role: %v", perfs)
	}
	pk := keyCheck{t, "performance report", perf}
	pk.equal("model", contractModel)
	pk.time("window.start", "window.end")
	pk.number("accuracy", "accuracy_count", "estimated_accuracy", "helpful_rate", "helpful_count", "delay_seconds")
	for _, p := range []string{"versions.v1", "versions.v2", "roles.production", "roles.canary"} {
		pk.number(p+".accuracy", p+".accuracy_count", p+".estimated_accuracy", p+".delay_seconds")
	}
	if d, _ := jsonPath(perf, "delay_seconds"); d != nil && (d.(float64) < 19 || d.(float64) > 21) {
		t.Errorf("delay_seconds = %v, want 20 (event time)", d)
	}
	unmatched := 0.0
	for _, r := range perfs {
		if v, ok := jsonPath(r, "unmatched"); ok {
			unmatched += v.(float64)
		}
	}
	if unmatched != 1 {
		t.Errorf("unmatched over the reports = %v, want 1 (never-was)", unmatched)
	}

	// The alert event of the shifted window's feature drift.
	alertSubject := subjects.For(natsbus.KindAlerts, contractModel)
	alerts := waitMessages(t, lk, js, natsbus.StreamAlerts, alertSubject, func(a any) bool {
		r, _ := jsonPath(a, "rule")
		f, _ := jsonPath(a, "labels.feature")
		return r == "feature_drift" && f == "age"
	})
	var alert any
	for _, a := range alerts {
		r, _ := jsonPath(a, "rule")
		f, _ := jsonPath(a, "labels.feature")
		if r == "feature_drift" && f == "age" {
			alert = a
			break
		}
	}
	ek := keyCheck{t, "alert event", alert}
	ek.str("fingerprint", "severity", "summary")
	ek.equal("status", "firing")
	ek.equal("model", contractModel)
	ek.equal("labels.version", "v1")
	ek.number("value", "threshold")
	ek.time("starts_at")
	ek.equal("ends_at", nil)
	ek.equal("source.subject", driftSubject)
	ek.equal("source.window.start", mustPath(drifted, "window.start"))
	ek.equal("source.window.end", mustPath(drifted, "window.end"))
	// starts_at is the report's event time, not the wall clock.
	if s, _ := jsonPath(alert, "starts_at"); true {
		at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(s))
		if at.After(start.Add(time.Hour)) {
			t.Errorf("alert starts_at %v: not the event time of its report (window from %v)", s, start)
		}
	}
	if s, _ := jsonPath(alert, "summary"); !strings.Contains(fmt.Sprint(s), "age") {
		t.Errorf("alert summary %q does not name its feature", s)
	}
	// Every default rule these reports break fires.
	natstest.WaitFor(t, 60*time.Second, func() error {
		alerts = subjectMessages(t, js, natsbus.StreamAlerts, alertSubject)
		var rules []string
		for _, a := range alerts {
			r, _ := jsonPath(a, "rule")
			rules = append(rules, fmt.Sprint(r))
		}
		for _, rule := range []string{"dataset_drift", "feature_drift", "multivariate_drift", "embedding_drift", "canary_rollback"} {
			if !slices.Contains(rules, rule) {
				return fmt.Errorf("alert rules %v lack %s", rules, rule)
			}
		}
		return nil
	})
	for _, a := range alerts {
		if r, _ := jsonPath(a, "rule"); r == "canary_rollback" {
			rb := keyCheck{t, "canary_rollback alert", a}
			rb.equal("labels.production_version", "v1")
			rb.equal("labels.canary_version", "v2")
			rb.equal("source.subject", canarySubject)
		}
	}

	// The JSON API: models, reports exactly as on their subjects (oldest
	// first), alerts.
	code, body := getBody(t, base+"/api/v1/models")
	var models []map[string]any
	if err := json.Unmarshal(body, &models); code != http.StatusOK || err != nil {
		t.Fatalf("/api/v1/models: %d %v %s", code, err, body)
	}
	if !slices.ContainsFunc(models, func(m map[string]any) bool { return m["name"] == contractModel }) {
		t.Errorf("/api/v1/models lacks %s: %s", contractModel, body)
	}
	for kind, subject := range map[string]string{"drift": driftSubject, "canary": canarySubject, "performance": perfSubject} {
		natstest.WaitFor(t, 30*time.Second, func() error {
			want := subjectMessages(t, js, natsbus.StreamReports, subject)
			code, body := getBody(t, base+"/api/v1/models/"+contractModel+"/reports?kind="+kind+"&since=24h")
			var got []any
			if err := json.Unmarshal(body, &got); code != http.StatusOK || err != nil {
				return fmt.Errorf("reports?kind=%s: %d %v %s", kind, code, err, body)
			}
			if !reflect.DeepEqual(got, want) {
				return fmt.Errorf("reports?kind=%s: %d reports, not the %d on %s in order", kind, len(got), len(want), subject)
			}
			return nil
		})
	}
	code, body = getBody(t, base+"/api/v1/alerts")
	var firing []map[string]any
	if err := json.Unmarshal(body, &firing); code != http.StatusOK || err != nil {
		t.Fatalf("/api/v1/alerts: %d %v %s", code, err, body)
	}
	if !slices.ContainsFunc(firing, func(a map[string]any) bool {
		return a["rule"] == "feature_drift" && a["fingerprint"] == mustPath(alert, "fingerprint") && a["status"] == "firing"
	}) {
		t.Errorf("/api/v1/alerts lacks the firing feature_drift alert %v: %s", mustPath(alert, "fingerprint"), body)
	}

	// /healthz is JSON; /metrics has the drift scores and report count.
	code, body = getBody(t, base+"/healthz")
	var health map[string]any
	if err := json.Unmarshal(body, &health); code != http.StatusOK || err != nil {
		t.Errorf("/healthz: %d %v %s", code, err, body)
	}
	code, body = getBody(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	score := regexp.MustCompile(`(?m)^lookout_drift_score\{([^}]*)\} \S+$`)
	found := false
	for _, m := range score.FindAllSubmatch(body, -1) {
		l := string(m[1])
		if strings.Contains(l, `model="contract"`) && strings.Contains(l, `feature="age"`) && strings.Contains(l, `method="`) {
			found = true
		}
	}
	if !found {
		t.Errorf("/metrics: no lookout_drift_score{model,feature,method} for contract/age")
	}
	if !regexp.MustCompile(`(?m)^lookout_drift_reports_total(\{[^}]*\})? [1-9]`).Match(body) {
		t.Errorf("/metrics: no lookout_drift_reports_total above 0")
	}

	// Two calm windows resolve the age alert: the resolved event repeats
	// the fingerprint and sets ends_at, in event time.
	// Their rows are the reference window's own, so nothing drifts by
	// chance.
	var calm []string
	for k := range 600 {
		var p map[string]any
		if err := json.Unmarshal([]byte(preds[k%298]), &p); err != nil {
			t.Fatal(err)
		}
		i := n
		n++
		p["id"], p["request_id"], p["ts"] = fmt.Sprintf("p-%d", i), fmt.Sprintf("r-%d", i), ts(i)
		calm = append(calm, mustJSON(p))
	}
	if a := postLines(t, base+"/v1/predictions/"+contractModel, calm); a["accepted"] != float64(len(calm)) {
		t.Fatalf("accepted %v of %d: %v", a["accepted"], len(calm), a["rejected"])
	}
	fingerprint := mustPath(alert, "fingerprint")
	resolvedOf := func(a any) bool {
		f, _ := jsonPath(a, "fingerprint")
		s, _ := jsonPath(a, "status")
		return f == fingerprint && s == "resolved"
	}
	alerts = waitMessages(t, lk, js, natsbus.StreamAlerts, alertSubject, resolvedOf)
	resolved := alerts[slices.IndexFunc(alerts, resolvedOf)]
	vk := keyCheck{t, "resolved alert event", resolved}
	vk.equal("rule", "feature_drift")
	vk.equal("labels.feature", "age")
	vk.equal("starts_at", mustPath(alert, "starts_at"))
	vk.time("ends_at")
	if e, _ := jsonPath(resolved, "ends_at"); e != nil {
		end, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(e))
		if !end.After(start) || end.After(start.Add(time.Hour)) {
			t.Errorf("resolved ends_at %v: not the event time of the calm windows (from %v)", e, start)
		}
	}

	// The dashboard: each chart an element with data-chart and
	// data-points, set by the page's script once it has drawn (so a
	// browser, not the HTML as served, shows them).
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Logf("%s is missing: the dashboard's charts are not checked", chromiumPath)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	for _, page := range []string{"/", "/models/" + contractModel} {
		if err := chromedp.Do(bctx, chromedp.Navigate(base+page)); err != nil {
			t.Fatalf("%s: %v", page, err)
		}
		// Every element with data-chart states its points as a number; at
		// least one chart has drawn some.
		charts, err := chromedp.Run(bctx, pollEval[map[string]string](`(() => {
			const els = [...document.querySelectorAll('[data-chart]')];
			const m = Object.fromEntries(els.map(e => [e.dataset.chart, e.dataset.points]));
			return els.some(e => +e.dataset.points > 0) ? m : null;
		})()`))
		if err != nil {
			t.Errorf("%s: no chart with data-chart and data-points > 0: %v", page, err)
			continue
		}
		for name, points := range charts {
			if !regexp.MustCompile(`^\d+$`).MatchString(points) {
				t.Errorf("%s: chart %q: data-points %q, want a count", page, name, points)
			}
		}
		want := map[string]string{"/": "spark-drift-share", "/models/" + contractModel: "drift-share"}[page]
		if p, ok := charts[want]; !ok || p == "0" {
			t.Errorf("%s: chart %q draws %q points, want the drift reports", page, want, p)
		}
		t.Logf("%s: charts %v", page, charts)
	}
}

// copyMap returns a shallow copy of m.
func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// mustPath is jsonPath's value alone.
func mustPath(v any, path string) any {
	out, _ := jsonPath(v, path)
	return out
}
