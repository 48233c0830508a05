package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

func httpPost(t *testing.T, url, ctype string, body []byte, gz bool) (int, []byte) {
	t.Helper()
	if gz {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = b.Bytes()
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// metricOf reads one sample of a metric from /metrics.
func metricOf(t *testing.T, addr, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return f
}

// duckdbQuery runs SQL over the archive under data with DuckDB.
func duckdbQuery(t *testing.T, data, query string, out any) {
	t.Helper()
	cmd := exec.Command("node", "duckdb_query.mjs", data, query)
	cmd.Dir = duckdbNodeDir(t)
	b, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("duckdb_query: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("duckdb_query printed %s: %v", b, err)
	}
}

// TestHTTPAndBentoMLEndToEnd: a real `lookout run` takes BentoML's OTLP
// export (protobuf, JSON and gzipped protobuf, each under a monitor name
// of its own) and JSON lines over HTTP;
// DuckDB reads the archive back with each model, version, request id and
// feature; the target column joins as a label (the feedback service's
// joined count); the lines' answer names the rejected line.
func TestHTTPAndBentoMLEndToEnd(t *testing.T) {
	data := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "lookout.yaml")
	if err := os.WriteFile(cfg, []byte("archive:\n  window: 300ms\n  max_rows: 100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lk := startLookout(t, data, "--config", cfg)
	logOnFailure(t, lk)
	base := "http://" + lk.HTTPAddr
	fixtures := filepath.Join("..", "..", "pkg", "httpingest", "testdata", "bentoml")
	pb, err := os.ReadFile(filepath.Join(fixtures, "logs.pb"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(filepath.Join(fixtures, "logs.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The JSON fixture goes to another monitor name, so that its rows and
	// labels are told apart from the protobuf ones.
	js = bytes.ReplaceAll(js, []byte("iris_classifier_prediction"), []byte("iris_json"))
	for _, c := range []struct {
		body  []byte
		ctype string
		gz    bool
	}{{pb, "application/x-protobuf", false}, {js, "application/json", false}} {
		status, out := httpPost(t, base+"/v1/logs", c.ctype, c.body, c.gz)
		if status != http.StatusOK || (c.ctype == "application/json" && strings.Contains(string(out), "rejected")) {
			t.Fatalf("/v1/logs %s: %d %s", c.ctype, status, out)
		}
	}
	// Gzipped protobuf, on a third monitor: renamed in the JSON form, since
	// protobuf strings carry their length.
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalJSON(bytes.ReplaceAll(js, []byte("iris_json"), []byte("iris_gzip_prediction"))); err != nil {
		t.Fatal(err)
	}
	gzpb, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	status, out := httpPost(t, base+"/v1/logs", "application/x-protobuf", gzpb, true)
	if status != http.StatusOK {
		t.Fatalf("/v1/logs gzip: %d %s", status, out)
	}
	lines := `{"id":"h1","version":"v1","prediction":0.5,"features":{"age":40}}` + "\n" + `{"version":"v1","prediction":0.5,"confidence":-1}`
	status, out = httpPost(t, base+"/v1/predictions/churn", "application/json", []byte(lines), false)
	if status != http.StatusOK || !strings.Contains(string(out), `"accepted":1`) || !strings.Contains(string(out), `"line":2`) {
		t.Fatalf("/v1/predictions: %d %s", status, out)
	}

	waitForArchive(t, data, 10)
	var rows []struct {
		Model     string  `json:"model"`
		Version   string  `json:"version"`
		RequestID string  `json:"request_id"`
		Sepal     float64 `json:"sepal"`
		Pred      string  `json:"prediction_label"`
	}
	duckdbQuery(t, data, `SELECT model, version, request_id, features."sepal length" AS sepal, prediction_label
		FROM {archive} WHERE model LIKE 'iris%' ORDER BY model, request_id`, &rows)
	if len(rows) != 9 {
		t.Fatalf("DuckDB reads %d iris rows, want 9: %+v", len(rows), rows)
	}
	wantSepal := []float64{5.1, 4.9, 6.3}
	for i, r := range rows {
		model := []string{"iris_classifier_prediction", "iris_gzip_prediction", "iris_json"}[i/3]
		if r.Model != model || r.Version != "2026-11-01.abc123" || r.RequestID != fmt.Sprint(6413930528999883196+i%3) ||
			r.Sepal != wantSepal[i%3] || r.Pred != []string{"setosa", "setosa", "virginica"}[i%3] {
			t.Errorf("row %d: %+v", i, r)
		}
	}
	natstest.WaitFor(t, 60*time.Second, func() error {
		if got := metricOf(t, lk.HTTPAddr, `lookout_feedback_events_total{result="joined"}`); got != 6 {
			return fmt.Errorf("feedback joined %v, want 6 (two targets per export)", got)
		}
		return nil
	})
	if got := metricOf(t, lk.HTTPAddr, `lookout_http_ingest_events_total{endpoint="otlp",result="accepted"}`); got != 9 {
		t.Errorf("otlp accepted %v, want 9", got)
	}
}

// TestConfigOTLPSection: otlp.models is read, a mapped model that is not
// a NATS token is an error naming its key, and a typo in the section is
// an unknown key.
func TestConfigOTLPSection(t *testing.T) {
	dir := t.TempDir()
	write := func(yaml string) string {
		p := filepath.Join(dir, fmt.Sprintf("c%d.yaml", len(yaml)))
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := loadConfig(write("otlp:\n  models:\n    iris_classifier_prediction: iris\n"))
	if err != nil || cfg.OTLP.Models["iris_classifier_prediction"] != "iris" {
		t.Fatalf("models %v, err %v", cfg.OTLP.Models, err)
	}
	if _, err := loadConfig(write("otlp:\n  models:\n    m: \"a.b\"\n")); err == nil || !strings.Contains(err.Error(), "config: otlp.models.m:") {
		t.Errorf("bad model: %v", err)
	}
	if _, err := loadConfig(write("otlp:\n  model: {}\n")); err == nil || !strings.Contains(err.Error(), "model") {
		t.Errorf("typo: %v", err)
	}
}
