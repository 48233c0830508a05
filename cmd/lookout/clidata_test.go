package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/services/feedback"
	"github.com/lookout-ml/lookout/services/ingest"
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
	data := t.TempDir()
	lk := startLookout(t, data, "--config", writeTemp(t, "lookout.yaml", clidataConfig))
	ts := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)
	preds := fmt.Sprintf(`{"id":"p1","request_id":"r1","version":"v1","prediction":"churn","confidence":0.9,"ts":%q,"features":{"age":40}}
{"id":"p2","version":"v1","prediction":"stay","confidence":0.8,"ts":%q,"features":{"age":41}}
{"id":"p3","version":"v1","prediction":"stay","confidence":0.7,"ts":%q,"features":{"age":42}}
{"id":"p4","version":"v1","prediction":"stay","confidence":1.5,"ts":%q,"features":{"age":43}}
{"id":"p1c","request_id":"r1","version":"v2","role":"canary","prediction":"stay","confidence":0.6,"ts":%q,"features":{"age":40}}
`, ts, ts, ts, ts, ts)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"publish", "--nats", lk.NATSURL, "--model", "pm", writeTemp(t, "p.jsonl", preds)}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "sent 5, acknowledged 5, failed 0, accepted 4, rejected 1") ||
		!strings.Contains(stdout.String(), "rejected line 4: confidence:") {
		t.Fatalf("publish exit %d:\n%s%s", code, stdout.String(), stderr.String())
	}

	// No --model: a line without one is refused by line, the others go.
	stdout.Reset()
	stderr.Reset()
	old := time.Now().UTC().Add(-2 * time.Hour).Format(time.RFC3339Nano)
	mixed := `{"model":"pm","id":"p5","version":"v1","prediction":"stay","ts":"` + old + `","features":{"age":50}}
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
	// r1's label reaches p1 (churn, right) and its canary p1c (stay,
	// wrong); p2 stay≠churn wrong, p3 stay=stay right.
	if report["labelled"] != 4.0 || report["accuracy"] == nil || fmt.Sprintf("%.4f", report["accuracy"]) != "0.5000" {
		t.Fatalf("performance report: %v", report)
	}

	// export: the archive joined with the labels, read back by DuckDB.
	waitForArchive(t, data, 5)
	export := func(args ...string) (string, int, string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "out.parquet")
		var stdout, stderr bytes.Buffer
		all := append([]string{"export", "--nats", lk.NATSURL, "--model", "pm", "--data", data}, args...)
		code := run(context.Background(), append(all, out), &stdout, &stderr)
		return out, code, stdout.String() + stderr.String()
	}
	out, code, msg := export()
	if code != 0 || !strings.Contains(msg, "exported 5 predictions of pm (4 labelled)") {
		t.Fatalf("export: %d %s", code, msg)
	}
	res := duckdbSQL(t,
		"SELECT id, role, label_label, label_value, helpful, feedback_ts IS NOT NULL AS has_ts, features.age AS age FROM read_parquet('"+out+"') ORDER BY id",
		"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('"+out+"')) WHERE column_name IN ('label_value', 'label_label', 'helpful', 'feedback_ts') ORDER BY 1")
	got := ""
	for _, r := range res[0] {
		got += fmt.Sprintf("%v %v %v %v %v %v %v\n", r["id"], r["role"], r["label_label"], r["label_value"], r["helpful"], r["has_ts"], r["age"])
	}
	want := "p1 production churn <nil> true true 40\n" +
		"p1c canary churn <nil> true true 40\n" +
		"p2 production churn <nil> false true 41\n" +
		"p3 production stay <nil> <nil> true 42\n" +
		"p5 production <nil> <nil> <nil> false 50\n"
	if got != want {
		t.Errorf("DuckDB reads the export as\n%swant\n%s", got, want)
	}
	types := fmt.Sprint(res[1])
	if !strings.Contains(types, "feedback_ts") || !strings.Contains(types, "TIMESTAMP") || !strings.Contains(types, "BOOLEAN") || !strings.Contains(types, "DOUBLE") {
		t.Errorf("label column types: %s", types)
	}
	count := func(args ...string) string {
		t.Helper()
		out, code, msg := export(args...)
		if code != 0 {
			return fmt.Sprintf("exit %d: %s", code, msg)
		}
		rows := duckdbSQL(t, "SELECT string_agg(id, ',' ORDER BY id) AS ids FROM read_parquet('"+out+"')")
		return fmt.Sprint(rows[0][0]["ids"])
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--labelled"}, "p1,p1c,p2,p3"},
		{[]string{"--version", "v2"}, "p1c"},
		{[]string{"--role", "production", "--labelled"}, "p1,p2,p3"},
		{[]string{"--from", "90m"}, "p1,p1c,p2,p3"},
		{[]string{"--to", "90m"}, "p5"},
		{[]string{"--from", time.Now().UTC().Add(-3 * time.Hour).Format(time.RFC3339), "--to", "90m"}, "p5"},
	} {
		if got := count(c.args...); got != c.want {
			t.Errorf("export %v: %s, want %s", c.args, got, c.want)
		}
	}

	// Without NATS: an error that says how to go on, and with
	// --without-labels the predictions alone.
	out = filepath.Join(t.TempDir(), "nolabels.parquet")
	stdout.Reset()
	stderr.Reset()
	code = run(context.Background(), []string{"export", "--nats", "nats://127.0.0.1:1", "--model", "pm", "--data", data, out}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "--without-labels") {
		t.Errorf("export without NATS: exit %d %s", code, stderr.String())
	}
	code = run(context.Background(), []string{"export", "--nats", "nats://127.0.0.1:1", "--without-labels", "--model", "pm", "--data", data, out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("export --without-labels: exit %d %s", code, stderr.String())
	}
	if rows := duckdbSQL(t, "SELECT count(*) AS n, count(label_label) AS l FROM read_parquet('"+out+"')"); fmt.Sprintf("%v %v", rows[0][0]["n"], rows[0][0]["l"]) != "5 0" {
		t.Errorf("export --without-labels: %v", rows)
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

// duckdbQuery runs queries with DuckDB and returns each one's rows.
func duckdbSQL(t *testing.T, queries ...string) [][]map[string]any {
	t.Helper()
	cmd := exec.Command("node", append([]string{"duckdb_sql.mjs"}, queries...)...)
	cmd.Dir = duckdbNodeDir(t)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("duckdb: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var res [][]map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var rows []map[string]any
		if err := json.Unmarshal([]byte(line), &rows); err != nil {
			t.Fatalf("duckdb printed %q: %v", line, err)
		}
		res = append(res, rows)
	}
	return res
}

// TestPythonClientVerdicts runs testdata/python/publish.py against a real
// embedded server whose client user has only the publisher role's
// permissions (publish lookout.ingest.> and lookout.feedback.>, receive
// _INBOX.>), with ingest and feedback running as another user: the
// client's CONNECT with user and password is accepted (a wrong password is
// not), and it reports JetStream acknowledgements and the services'
// verdicts, accepted and rejected, for predictions and feedback.
func TestPythonClientVerdicts(t *testing.T) {
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
		Users: []*server.User{
			{Username: "lookout", Password: "internal"},
			{Username: "app", Password: "pw", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{"lookout.ingest.>", "lookout.feedback.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("lookout", "internal"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := natsbus.EnsureStreams(ctx, js, natsbus.NewSubjects(""), natsbus.DefaultStreamOptions()); err != nil {
		t.Fatal(err)
	}
	env := natstest.Env(t, nc, js)
	natstest.RunService(t, ingest.New(env.With("ingest"), ingest.DefaultConfig()))
	fbSvc, err := feedback.New(env.With("feedback"), feedback.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	natstest.RunService(t, fbSvc)

	py := func(args ...string) (string, error) {
		out, err := exec.Command("python3", append([]string{"../../testdata/python/publish.py"}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := py("--user", "app", "--password", "wrong", ns.ClientURL(), "pym", "3"); err == nil || !strings.Contains(out, "Authorization Violation") {
		t.Fatalf("a wrong password: %v\n%s", err, out)
	}
	preds := writeTemp(t, "p.jsonl", `{"id":"a","version":"v1","prediction":"x","confidence":0.9}
{"id":"b","version":"v1","prediction":"y","confidence":1.5}
{"id":"c","version":"v1","prediction":"y"}
`)
	out, err := py("--user", "app", "--password", "pw", ns.ClientURL(), "pym", preds)
	if err != nil || !strings.Contains(out, "published 3, acknowledged 3, accepted 2, rejected 1") || !strings.Contains(out, "rejected line 2: confidence:") {
		t.Fatalf("python predictions: %v\n%s", err, out)
	}
	fb := writeTemp(t, "f.jsonl", `{"id":"a","label":"x"}
{"id":"c","helpful":"yes"}
`)
	u := strings.Replace(ns.ClientURL(), "nats://", "nats://app:pw@", 1) // credentials in the URL
	out, err = py("--feedback", u, "pym", fb)
	if err != nil || !strings.Contains(out, "published 2, acknowledged 2, accepted 1, rejected 1") || !strings.Contains(out, "rejected line 2: helpful:") {
		t.Fatalf("python feedback: %v\n%s", err, out)
	}
}

// TestWandbConfig: the wandb section is read, and a typo in it is an
// error naming the key.
func TestWandbConfig(t *testing.T) {
	cfg, err := loadConfig(writeTemp(t, "ok.yaml", "wandb: {secret: x, aliases: [prod]}\ndrift: {window: 5m}\n"))
	if err != nil || cfg.Wandb.Secret != "x" || len(cfg.Wandb.Aliases) != 1 || cfg.Wandb.Aliases[0] != "prod" {
		t.Fatalf("wandb config %+v, %v", cfg.Wandb, err)
	}
	if _, err := loadConfig(writeTemp(t, "bad.yaml", "wandb: {secert: x}\n")); err == nil || !strings.Contains(err.Error(), "secert") {
		t.Fatalf("a typo in wandb: %v", err)
	}
}
