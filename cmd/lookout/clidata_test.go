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
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// clidataConfig closes archive files and performance windows quickly.
const clidataConfig = `
archive: {window: 1s}
feedback: {window_labels: 3, idle_timeout: 2s}
`

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readReport returns the first report on subject that ok accepts.
func readReport(t *testing.T, url, subject string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, natsbus.NewSubjects("").StreamName(natsbus.StreamReports), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatalf("no matching report on %s: %v", subject, err)
		}
		var r map[string]any
		if json.Unmarshal(msg.Data(), &r) == nil && ok(r) {
			return r
		}
	}
}

// TestPublishVerdictsAndFeedbackJoin publishes predictions and feedback
// with `lookout publish` against a real `lookout run`: the counts printed
// are ingest's and feedback's verdicts (a valid-JSON line with confidence
// 1.5 is stored by JetStream but rejected), a line without a model is
// refused naming its line, and the labels join: a performance report
// counts them.
func TestPublishVerdictsAndFeedbackJoin(t *testing.T) {
	lk := startLookout(t, "", "--config", writeTemp(t, "lookout.yaml", clidataConfig))
	ts := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)
	preds := fmt.Sprintf(`{"id":"p1","request_id":"r1","version":"v1","prediction":"churn","confidence":0.9,"ts":%q,"features":{"age":40}}
{"id":"p2","version":"v1","prediction":"stay","confidence":0.8,"ts":%q,"features":{"age":41}}
{"id":"p3","version":"v1","prediction":"stay","confidence":0.7,"ts":%q,"features":{"age":42}}
{"id":"p4","version":"v1","prediction":"stay","confidence":1.5,"ts":%q,"features":{"age":43}}
`, ts, ts, ts, ts)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"publish", "--nats", lk.NATSURL, "--model", "pm", writeTemp(t, "p.jsonl", preds)}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "sent 4, acknowledged 4, failed 0, accepted 3, rejected 1") ||
		!strings.Contains(stdout.String(), "rejected line 4: confidence:") {
		t.Fatalf("publish exit %d:\n%s%s", code, stdout.String(), stderr.String())
	}

	// No --model: a line without one is refused by line, the others go.
	stdout.Reset()
	stderr.Reset()
	mixed := `{"model":"pm","id":"p5","version":"v1","prediction":"stay","ts":"` + ts + `"}
{"id":"p6","version":"v1","prediction":"stay"}
`
	code = run(context.Background(), []string{"publish", "--nats", lk.NATSURL, writeTemp(t, "m.jsonl", mixed)}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stdout.String(), "refused line 2: no model") || !strings.Contains(stdout.String(), "accepted 1, rejected 1") ||
		!strings.Contains(stderr.String(), "line 2") {
		t.Fatalf("publish without --model: exit %d:\n%s%s", code, stdout.String(), stderr.String())
	}

	// Feedback from CSV: by id, by request_id, and a helpful that is not
	// a boolean (rejected by the feedback service, with its line).
	stdout.Reset()
	stderr.Reset()
	fbTS := time.Now().UTC().Format(time.RFC3339Nano)
	fb := "id,request_id,label,helpful,ts\n" +
		",r1,churn,true," + fbTS + "\n" +
		"p2,,churn,false," + fbTS + "\n" +
		"p3,,stay,maybe," + fbTS + "\n" +
		"p3,,stay,," + fbTS + "\n"
	code = run(context.Background(), []string{"publish", "--feedback", "--nats", lk.NATSURL, "--model", "pm", writeTemp(t, "fb.csv", fb)}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "sent 4, acknowledged 4, failed 0, accepted 3, rejected 1") ||
		!strings.Contains(stdout.String(), "rejected line 4: helpful:") {
		t.Fatalf("publish --feedback exit %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	report := readReport(t, lk.NATSURL, "lookout.performance.pm", func(r map[string]any) bool {
		n, _ := r["labelled"].(float64)
		return n > 0
	})
	// p1 churn=churn right, p2 stay≠churn wrong, p3 stay=stay right.
	if report["labelled"] != 3.0 || report["accuracy"] == nil || fmt.Sprintf("%.4f", report["accuracy"]) != "0.6667" {
		t.Fatalf("performance report: %v", report)
	}
}

// TestWandbHookRunInDriftReport registers a version through a W&B-shaped
// automation webhook on a real `lookout run`, and finds its run in the
// next drift report; `version set` and `version list` read and write the
// same bucket, and a server where Lookout never ran is named as such.
func TestWandbHookRunInDriftReport(t *testing.T) {
	ns := natstest.RunServer(t)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"version", "list", "--nats", ns.ClientURL()}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "start `lookout run`") {
		t.Fatalf("version list where Lookout never ran: exit %d, %s", code, stderr.String())
	}

	cfg := writeTemp(t, "lookout.yaml", "drift: {window: 1h, window_events: 300}\nwandb: {secret: s3cret}\n")
	lk := startLookout(t, "", "--config", cfg, "--only", "ingest,drift")
	payload := `{"event_type": "ADD_ARTIFACT_ALIAS", "artifact_version_string": "team/proj/wb:v7",
		"artifact_collection_name": "wb", "alias": "production"}`
	post := func(token, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+lk.HTTPAddr+"/v1/hooks/wandb", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("wrong", payload); code != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d %s", code, body)
	}
	if code, body := post("s3cret", strings.Replace(payload, "production", "staging", 1)); code != http.StatusAccepted || !strings.Contains(body, `"registered":false`) {
		t.Fatalf("another alias: %d %s", code, body)
	}
	if code, body := post("s3cret", payload); code != http.StatusOK || !strings.Contains(body, `"registered":true`) {
		t.Fatalf("hook: %d %s", code, body)
	}
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"version", "set", "--nats", lk.NATSURL, "--model", "wb", "--version", "v8", "--run", "mlflow://abc123"}, &stdout, &stderr); code != 0 {
		t.Fatalf("version set: %d %s", code, stderr.String())
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"version", "list", "--nats", lk.NATSURL, "--model", "wb"}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "wb\tv7\twandb://team/proj/wb:v7") || !strings.Contains(stdout.String(), "wb\tv8\tmlflow://abc123") {
		t.Fatalf("version list: %d\n%s%s", code, stdout.String(), stderr.String())
	}

	nc, err := nats.Connect(lk.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	reports, err := nc.SubscribeSync("lookout.drift.wb")
	if err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	for i := range 600 {
		fmt.Fprintf(&lines, `{"id":"w%d","version":"v7","prediction":%d,"features":{"x":%d}}`+"\n", i, i%2, i%17)
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"publish", "--nats", lk.NATSURL, "--model", "wb", writeTemp(t, "w.jsonl", lines.String())}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "accepted 600") {
		t.Fatalf("publish: %d %s %s", code, stdout.String(), stderr.String())
	}
	msg, err := reports.NextMsg(90 * time.Second)
	if err != nil {
		t.Fatalf("no drift report: %v\n%s", err, lk.Logs())
	}
	var r map[string]any
	_ = json.Unmarshal(msg.Data, &r)
	if r["version"] != "v7" || r["run"] != "wandb://team/proj/wb:v7" {
		t.Fatalf("drift report version %v run %v, want v7 and wandb://team/proj/wb:v7", r["version"], r["run"])
	}
}
