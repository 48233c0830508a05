package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// nodeDir is where `make test-deps` installs the JavaScript clients.
const nodeDir = "../../testdata/node"

func requireNodeModules(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "nats")); err != nil {
		t.Fatalf("the Node test clients are not installed: run `make test-deps` (%v)", err)
	}
}

// subscribePredictions collects what arrives on lookout.predictions.<model>
// by reading the stream, so nothing published before the call is missed.
func readPredictions(t *testing.T, url, model string, want int) []*event.Prediction {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	subjects := natsbus.NewSubjects("")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, subjects.StreamName(natsbus.StreamPredictions), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjects.For(natsbus.KindPredictions, model)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []*event.Prediction
	for len(out) < want {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatalf("after %d of %d predictions: %v", len(out), want, err)
		}
		p, reasons := event.DecodePrediction(msg.Data(), event.DecodeOptions{SubjectModel: model})
		if len(reasons) > 0 {
			t.Fatalf("invalid prediction %s: %v", msg.Data(), reasons)
		}
		out = append(out, p)
	}
	return out
}

// TestNodeClientPublishes: a JavaScript client (nats.js) publishes to a
// running `lookout run`, half through JetStream and half as plain NATS
// publishes; every event comes out validated and normalised.
func TestNodeClientPublishes(t *testing.T) {
	requireNodeModules(t)
	lk := startLookout(t, "", "--only", "ingest")
	const n = 20
	cmd := exec.Command("node", "publish.mjs", lk.NATSURL, "js-model", fmt.Sprint(n))
	cmd.Dir = nodeDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node publish: %v\n%s", err, out)
	}
	got := readPredictions(t, lk.NATSURL, "js-model", n)
	ids := map[string]bool{}
	for _, p := range got {
		ids[p.Id] = true
		if p.Model != "js-model" || p.Version != "js-1" || p.Role != event.RoleProduction || p.GetTsUnixNano() == 0 {
			t.Errorf("not normalised: %v", p)
		}
		if p.Features["plan"].GetText() == "" || p.Features["trial"].GetKind() == nil {
			t.Errorf("features lost: %v", p.Features)
		}
	}
	for i := range n {
		if !ids[fmt.Sprintf("node-%d", i)] {
			t.Errorf("node-%d missing", i)
		}
	}
}

// TestRunHealthMetricsAndCleanStop: /healthz and /metrics answer, publish
// prints its summary, and SIGTERM ends the process with exit code 0 (Stop
// checks it).
func TestRunHealthMetricsAndCleanStop(t *testing.T) {
	lk := startLookout(t, "", "--only", "ingest")
	resp, err := http.Get("http://" + lk.HTTPAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Status   string          `json:"status"`
		Services map[string]bool `json:"services"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != 200 || health.Status != "ok" || !health.Services["ingest"] {
		t.Fatalf("healthz %d %+v", resp.StatusCode, health)
	}

	csv := "id,version,prediction,confidence,age,plan\na1,v1,0.5,0.9,40,pro\na2,v1,0.7,1.5,41,free\n"
	path := filepath.Join(t.TempDir(), "preds.csv")
	if err := os.WriteFile(path, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"publish", "--nats", lk.NATSURL, "--model", "csvm", path}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "sent 2, acknowledged 2, failed 0") {
		t.Fatalf("publish exit %d: %s %s", code, stdout.String(), stderr.String())
	}
	got := readPredictions(t, lk.NATSURL, "csvm", 1)
	if got[0].Id != "a1" || got[0].Features["age"].GetNumber() != 40 || got[0].Features["plan"].GetText() != "pro" {
		t.Fatalf("csv row arrived as %v", got[0])
	}

	// tail --since reads what the stream kept: the rejected row, with its
	// original bytes and reason.
	stdout.Reset()
	stderr.Reset()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = run(ctx, []string{"tail", "--nats", lk.NATSURL, "--since", "1h", "-n", "1", "lookout.rejected.csvm"}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), `"code":"out_of_range"`) || !strings.Contains(stdout.String(), `a2`) {
		t.Fatalf("tail --since exit %d: %s %s", code, stdout.String(), stderr.String())
	}

	natstest.WaitFor(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + lk.HTTPAddr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		for _, want := range []string{"lookout_ingest_accepted_total 1", `lookout_ingest_rejected_total{reason="out_of_range"} 1`} {
			if !strings.Contains(body.String(), want) {
				return fmt.Errorf("/metrics lacks %q", want)
			}
		}
		return nil
	})
	lk.Stop(t)
	if !strings.Contains(lk.Logs(), "embedded nats stopped") {
		t.Errorf("no clean shutdown in the logs:\n%s", lk.Logs())
	}
}

// TestRunRejectsUnknownConfigKey: a typo in the config is an error that
// names the key, not a silent default.
func TestRunRejectsUnknownConfigKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lookout.yaml")
	if err := os.WriteFile(path, []byte("archive:\n  windw: 5m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"run", "--config", path, "--listen", "127.0.0.1:-1", "--http", "127.0.0.1:0", "--data", t.TempDir()}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "windw") {
		t.Fatalf("exit %d, stderr %q: want an error naming the key", code, stderr.String())
	}
}

// TestPythonClientPublishes: a Python program with the standard library
// only (NATS's text protocol over a socket) publishes to a running
// `lookout run` and gets JetStream acknowledgements; every event comes out
// on lookout.predictions.<model>.
func TestPythonClientPublishes(t *testing.T) {
	lk := startLookout(t, "", "--only", "ingest")
	const n = 50
	out, err := exec.Command("python3", "../../testdata/python/publish.py", lk.NATSURL, "py-model", fmt.Sprint(n)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("published %d, acknowledged %d", n, n)) {
		t.Fatalf("python publish: %v\n%s", err, out)
	}
	got := readPredictions(t, lk.NATSURL, "py-model", n)
	for i, p := range got {
		if p.Version != "py-1" || p.Features["age"].GetNumber() == 0 || p.Confidence == nil {
			t.Fatalf("event %d arrived as %v", i, p)
		}
	}
}

// TestOnlyAgainstAnExistingServer: `lookout run --nats URL --only ingest`
// runs just ingest against a server another process owns (here the
// embedded server of a `lookout run --only drift`), and two such ingest
// processes share the work without losing or doubling an event.
func TestOnlyAgainstAnExistingServer(t *testing.T) {
	owner := startLookout(t, "", "--only", "drift")
	startLookout(t, "", "--nats", owner.NATSURL, "--only", "ingest")
	startLookout(t, "", "--nats", owner.NATSURL, "--only", "ingest")

	nc, err := nats.Connect(owner.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	subjects := natsbus.NewSubjects("")
	const n = 400
	for i := range n {
		body := fmt.Appendf(nil, `{"id":"ext-%d","version":"v1","prediction":%d}`, i, i)
		if _, err := js.PublishAsync(subjects.For(natsbus.KindIngest, "ext"), body); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publish not acknowledged")
	}
	seen := map[string]int{}
	for _, p := range readPredictions(t, owner.NATSURL, "ext", n) {
		seen[p.Id]++
	}
	if len(seen) != n {
		t.Fatalf("%d distinct ids, want %d", len(seen), n)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		stream, err := js.Stream(context.Background(), subjects.StreamName(natsbus.StreamPredictions))
		if err != nil {
			return err
		}
		if got := stream.CachedInfo().State.Msgs; got != n {
			return fmt.Errorf("predictions stream holds %d messages, want %d", got, n)
		}
		return nil
	})
}
