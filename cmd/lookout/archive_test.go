package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
)

// archiveConfig writes a config file with a short archive window.
func archiveConfig(t *testing.T, window string, maxRows int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lookout.yaml")
	yaml := fmt.Sprintf("archive:\n  window: %s\n  max_rows: %d\n", window, maxRows)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// archiveEvent is a client's prediction event, varied across i so that every
// column and value type shows up.
func archiveEvent(model string, i int, base time.Time) map[string]any {
	e := map[string]any{
		"id":      fmt.Sprintf("%s-%05d", model, i),
		"model":   model,
		"version": fmt.Sprintf("v%d", 1+i%2),
		"ts":      base.Add(time.Duration(i) * 1500 * time.Microsecond).Format(time.RFC3339Nano),
		"features": map[string]any{
			"age": 20 + i%50, "plan": []string{"free", "pro", "team"}[i%3], "trial": i%4 == 0, "income": nil,
		},
		"confidence": float64(i%10) / 10,
	}
	if i%2 == 0 {
		e["prediction"] = float64(i%100) / 100
		e["scores"] = map[string]any{"churn": float64(i%100) / 100, "stay": 1 - float64(i%100)/100}
	} else {
		e["prediction"] = []string{"churn", "stay"}[i%4/2]
	}
	if i%3 == 0 {
		e["request_id"] = fmt.Sprintf("req-%d", i)
		e["role"] = "canary"
		e["latency_ms"] = 0.0
		e["tags"] = map[string]any{"region": "eu"}
	}
	if i%7 == 0 {
		e["features"].(map[string]any)["age"] = "unknown" // a type change mid-window
	}
	return e
}

// testPublisher publishes events to lookout.ingest.<model> with JetStream
// acknowledgements and remembers which ids were acknowledged.
type testPublisher struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	mu    sync.Mutex
	acked map[string]bool
	tried map[string]bool
	pause time.Duration // between batches
}

func newTestPublisher(t *testing.T, url string) *testPublisher {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(512))
	if err != nil {
		t.Fatal(err)
	}
	return &testPublisher{nc: nc, js: js, acked: map[string]bool{}, tried: map[string]bool{}}
}

// publish sends events in batches of 100, waiting for each batch's
// acknowledgements; it stops at the first failure and returns it.
func (p *testPublisher) publish(events []map[string]any) error {
	for start := 0; start < len(events); start += 100 {
		if start > 0 && p.pause > 0 {
			time.Sleep(p.pause) // pacing, not waiting for a condition
		}
		batch := events[start:min(start+100, len(events))]
		futures := make([]jetstream.PubAckFuture, 0, len(batch))
		for _, e := range batch {
			data, _ := json.Marshal(e)
			p.mu.Lock()
			p.tried[e["id"].(string)] = true
			p.mu.Unlock()
			f, err := p.js.PublishAsync("lookout.ingest."+e["model"].(string), data)
			if err != nil {
				return err
			}
			futures = append(futures, f)
		}
		for i, f := range futures {
			select {
			case <-f.Ok():
				p.mu.Lock()
				p.acked[batch[i]["id"].(string)] = true
				p.mu.Unlock()
			case err := <-f.Err():
				return err
			case <-time.After(10 * time.Second):
				return errors.New("no acknowledgement in 10s")
			}
		}
	}
	return nil
}

// readArchive reads every row under <dataDir>/archive.
func readArchive(t *testing.T, dataDir string) ([]*event.Prediction, error) {
	t.Helper()
	root := filepath.Join(dataDir, "archive")
	if _, err := os.Stat(root); os.IsNotExist(err) {
		return nil, nil
	}
	var rows []*event.Prediction
	err := parquetarchive.ReadFiles(context.Background(), []string{root}, parquetarchive.ReadOptions{}, func(p *event.Prediction) error {
		rows = append(rows, p)
		return nil
	})
	return rows, err
}

func waitForArchive(t *testing.T, dataDir string, want int) []*event.Prediction {
	t.Helper()
	var rows []*event.Prediction
	natstest.WaitFor(t, 60*time.Second, func() error {
		var err error
		rows, err = readArchive(t, dataDir)
		if err != nil {
			return err
		}
		if len(rows) < want {
			return fmt.Errorf("archive holds %d rows, want %d", len(rows), want)
		}
		return nil
	})
	return rows
}

func duckdbNodeDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "node"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api")); err != nil {
		t.Fatalf("testdata/node/node_modules lacks @duckdb/node-api: run make test-deps (%v)", err)
	}
	return dir
}

// TestArchiveReadByDuckDB archives events through a real `lookout run` and
// checks the files with DuckDB, an independent Parquet reader.
func TestArchiveReadByDuckDB(t *testing.T) {
	node := duckdbNodeDir(t)
	data := t.TempDir()
	lk := startLookout(t, data, "--config", archiveConfig(t, "300ms", 200))
	logOnFailure(t, lk)
	pub := newTestPublisher(t, lk.NATSURL)
	// Rows of churn cross midnight UTC: two date folders.
	base := time.Date(2026, 11, 24, 23, 59, 59, 0, time.UTC)
	var events []map[string]any
	sum, n := 0.0, 0
	for i := range 900 {
		model := []string{"churn", "fraud"}[i%3/2]
		e := archiveEvent(model, i, base)
		events = append(events, e)
		if age, ok := e["features"].(map[string]any)["age"].(int); ok {
			sum += float64(age)
			n++
		}
	}
	if err := pub.publish(events); err != nil {
		t.Fatal(err)
	}
	waitForArchive(t, data, len(events))
	lk.Stop(t)

	cmd := exec.Command("node", "duckdb_check.mjs", data, "age")
	cmd.Dir = node
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("duckdb_check: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("duckdb_check: %v", err)
	}
	var got struct {
		Rows        int               `json:"rows"`
		DistinctIDs int               `json:"distinct_ids"`
		Mean        float64           `json:"mean"`
		Models      map[string]int    `json:"models"`
		Dates       map[string]int    `json:"dates"`
		Types       map[string]string `json:"types"`
		Features    map[string]string `json:"features"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("duckdb_check printed %s: %v", out, err)
	}
	if got.Rows != len(events) || got.DistinctIDs != len(events) {
		t.Errorf("DuckDB reads %d rows, %d distinct ids; want %d of each", got.Rows, got.DistinctIDs, len(events))
	}
	if want := sum / float64(n); math.Abs(got.Mean-want) > 1e-9 {
		t.Errorf("DuckDB mean of features.age = %v, want %v", got.Mean, want)
	}
	if got.Models["churn"] != 600 || got.Models["fraud"] != 300 {
		t.Errorf("rows per model = %v, want churn 600, fraud 300", got.Models)
	}
	if len(got.Dates) != 2 || got.Dates["2026-11-24"] == 0 || got.Dates["2026-11-25"] == 0 {
		t.Errorf("rows per date = %v, want both 2026-11-24 and 2026-11-25", got.Dates)
	}
	wantTypes := map[string]string{
		"id": "VARCHAR", "request_id": "VARCHAR", "model": "VARCHAR", "version": "VARCHAR", "role": "VARCHAR",
		"ts": "TIMESTAMP WITH TIME ZONE", "prediction_value": "DOUBLE", "prediction_label": "VARCHAR",
		"confidence": "DOUBLE", "latency_ms": "DOUBLE", "scores": "MAP(VARCHAR, DOUBLE)", "tags": "MAP(VARCHAR, VARCHAR)",
	}
	for col, typ := range wantTypes {
		if got.Types[col] != typ {
			t.Errorf("DuckDB type of %s = %q, want %q", col, got.Types[col], typ)
		}
	}
	wantFeatures := map[string]string{"age": "DOUBLE", "age__string": "VARCHAR", "plan": "VARCHAR", "trial": "BOOLEAN", "income": "DOUBLE"}
	for leaf, typ := range wantFeatures {
		if got.Features[leaf] != typ {
			t.Errorf("DuckDB type of features.%s = %q, want %q (all: %v)", leaf, got.Features[leaf], typ, got.Features)
		}
	}
}

// TestArchiveSurvivesKill publishes events with JetStream acknowledgements
// while `lookout run` is killed (SIGKILL) three times and restarted on the
// same data folder: every acknowledged id is archived exactly once.
func TestArchiveSurvivesKill(t *testing.T) {
	data := t.TempDir()
	cfg := archiveConfig(t, "100ms", 70)
	base := time.Now().UTC()
	var all []map[string]any
	for i := range 4000 {
		all = append(all, archiveEvent([]string{"a", "b"}[i%2], i, base))
	}
	chunks := [][]map[string]any{all[:1000], all[1000:2000], all[2000:3000], all[3000:]}
	tried := map[string]bool{}
	acked := map[string]bool{}
	for round, chunk := range chunks {
		lk := startLookout(t, data, "--config", cfg)
		logOnFailure(t, lk)
		pub := newTestPublisher(t, lk.NATSURL)
		// Batches 30ms apart, so windows close (and files are renamed and
		// acknowledged) while events arrive and when the kill comes.
		pub.pause = 30 * time.Millisecond
		last := round == len(chunks)-1
		done := make(chan error, 1)
		go func() { done <- pub.publish(chunk) }()
		if !last {
			// Kill part way, once files of this round are written, while
			// events arrive and windows close.
			before := len(acked)
			natstest.WaitFor(t, 60*time.Second, func() error {
				rows, err := readArchive(t, data)
				if err != nil {
					return err
				}
				if len(rows) < before+100+50*round {
					return fmt.Errorf("%d rows archived", len(rows))
				}
				return nil
			})
			lk.Kill(t)
			pub.nc.Close()
			<-done // fails: the server is gone
		} else if err := <-done; err != nil {
			t.Fatal(err)
		}
		pub.mu.Lock()
		for id := range pub.acked {
			acked[id] = true
		}
		for id := range pub.tried {
			tried[id] = true
		}
		pub.mu.Unlock()
		if last {
			start := time.Now()
			waitForArchive(t, data, len(acked))
			t.Logf("archived in %v", time.Since(start))
			start = time.Now()
			lk.Stop(t)
			t.Logf("stopped in %v", time.Since(start))
		}
		for _, line := range strings.Split(lk.Logs(), "\n") {
			if strings.Contains(line, "archive started") {
				t.Logf("round %d: %s", round, line)
			}
		}
	}
	rows, err := readArchive(t, data)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, p := range rows {
		count[p.Id]++
	}
	var missing, dup, unknown []string
	for id := range acked {
		if count[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id, n := range count {
		if n > 1 {
			dup = append(dup, id)
		}
		if !tried[id] {
			unknown = append(unknown, id)
		}
	}
	sort.Strings(missing)
	sort.Strings(dup)
	if len(missing) > 0 || len(dup) > 0 || len(unknown) > 0 {
		t.Fatalf("%d acknowledged; archive has %d rows: missing %d %v, duplicated %d %v, never published %v",
			len(acked), len(rows), len(missing), firstTen(missing), len(dup), firstTen(dup), firstTen(unknown))
	}
	if len(acked) < 1000+3*100 {
		t.Errorf("only %d events acknowledged; the test did not exercise much", len(acked))
	}
	t.Logf("%d acknowledged, %d published without acknowledgement, %d rows archived once each", len(acked), len(tried)-len(acked), len(rows))
}

// logOnFailure prints the process's logs when the test has failed.
func logOnFailure(t *testing.T, lk *lookoutProcess) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lookout logs (%s):\n%s", lk.DataDir, lk.Logs())
		}
	})
}

func firstTen(s []string) []string { return s[:min(len(s), 10)] }

// TestReplayRoundTrip archives events, replays the archive into a fresh
// `lookout run`, and compares what arrives on lookout.predictions.* with
// the archived rows, field by field.
func TestReplayRoundTrip(t *testing.T) {
	dataA := t.TempDir()
	cfg := archiveConfig(t, "200ms", 1000)
	a := startLookout(t, dataA, "--config", cfg)
	logOnFailure(t, a)
	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var events []map[string]any
	for i := range 600 {
		events = append(events, archiveEvent([]string{"churn", "fraud"}[i%2], i, base))
	}
	if err := newTestPublisher(t, a.NATSURL).publish(events); err != nil {
		t.Fatal(err)
	}
	archived := waitForArchive(t, dataA, len(events))
	a.Stop(t)
	byID := map[string]*event.Prediction{}
	for _, p := range archived {
		byID[p.Id] = p
	}

	b := startLookout(t, "", "--config", cfg)
	logOnFailure(t, b)
	nc, err := nats.Connect(b.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var (
		mu       sync.Mutex
		received []*nats.Msg
	)
	sub, err := nc.Subscribe("lookout.predictions.>", func(m *nats.Msg) {
		mu.Lock()
		received = append(received, m)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// A bad file among the paths is named, and the rest is replayed.
	bad := filepath.Join(t.TempDir(), "broken.parquet")
	if err := os.WriteFile(bad, []byte("PAR1 this is not parquet PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(lookoutBinary(t), "replay", "--nats", b.NATSURL, filepath.Join(dataA, "archive"), bad).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("replay with a bad file: %v, want exit code 1\n%s", err, out)
	}
	if !strings.Contains(string(out), bad) || !strings.Contains(string(out), "bad files 1") ||
		!strings.Contains(string(out), fmt.Sprintf("acknowledged %d", len(events))) {
		t.Errorf("replay output does not name the bad file or count %d acknowledged:\n%s", len(events), out)
	}
	natstest.WaitFor(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(received) < len(events) {
			return fmt.Errorf("%d of %d predictions arrived", len(received), len(events))
		}
		return nil
	})
	mu.Lock()
	got := received
	mu.Unlock()
	seen := map[string]bool{}
	for _, m := range got {
		p, reasons := event.DecodePrediction(m.Data, event.DecodeOptions{SubjectModel: natsbus.NewSubjects("").Model(m.Subject)})
		if len(reasons) > 0 {
			t.Fatalf("replayed prediction does not decode: %v\n%s", reasons, m.Data)
		}
		if m.Header.Get(event.HeaderReplay) != event.ReplayOnly {
			t.Errorf("%s arrived without %s: true", p.Id, event.HeaderReplay)
		}
		want := byID[p.Id]
		if want == nil || seen[p.Id] {
			t.Errorf("unexpected or repeated id %q", p.Id)
			continue
		}
		seen[p.Id] = true
		if !proto.Equal(p, want) {
			t.Errorf("replayed %s differs from the archived row:\n got %v\nwant %v", p.Id, p, want)
		}
	}
	if len(seen) != len(events) {
		t.Errorf("%d distinct ids replayed, want %d", len(seen), len(events))
	}

	// --archive asks the archive to write the events again; --model keeps
	// one model.
	out, err = exec.Command(lookoutBinary(t), "replay", "--nats", b.NATSURL, "--archive", "--model", "fraud", filepath.Join(dataA, "archive")).CombinedOutput()
	if err != nil {
		t.Fatalf("replay --archive: %v\n%s", err, out)
	}
	waitForArchive(t, b.DataDir, len(events)/2)
	b.Stop(t)
	rows, err := readArchive(t, b.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	// Only the --archive replay is in the new archive: the first replay is
	// not written a second time.
	ids := map[string]int{}
	for _, p := range rows {
		ids[p.Id]++
		if p.Model != "fraud" || !proto.Equal(p, byID[p.Id]) {
			t.Errorf("re-archived %s differs: got %v, want %v", p.Id, p, byID[p.Id])
		}
	}
	if len(rows) != len(events)/2 || len(ids) != len(events)/2 {
		t.Errorf("new archive holds %d rows (%d ids), want the %d fraud events once each", len(rows), len(ids), len(events)/2)
	}
}

// BenchmarkReplay compares replay (read Parquet, encode JSON, publish with
// acknowledgements, at most 4096 pending) with raw JetStream async publish
// of the same events already encoded, under the same bound. One op = all
// 50,000 events.
func BenchmarkReplay(b *testing.B) {
	const n = 50000
	ns := natstest.RunServer(b)
	nc, _ := natstest.Connect(b, ns)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		b.Fatal(err)
	}
	if err := natsbus.EnsureStreams(context.Background(), js, natsbus.NewSubjects(""), natsbus.DefaultStreamOptions()); err != nil {
		b.Fatal(err)
	}
	base := time.Now().UTC()
	preds := make([]*event.Prediction, n)
	msgs := make([]*nats.Msg, n)
	for i := range preds {
		raw, _ := json.Marshal(archiveEvent("bench", i, base))
		p, reasons := event.DecodePrediction(raw, event.DecodeOptions{})
		if len(reasons) > 0 {
			b.Fatal(reasons)
		}
		preds[i] = p
		msgs[i] = &nats.Msg{Subject: "lookout.ingest.bench", Data: event.AppendJSON(nil, p),
			Header: nats.Header{event.HeaderReplay: []string{event.ReplayOnly}}}
	}
	dir := b.TempDir()
	path := filepath.Join(parquetarchive.Dir(dir, "bench", base), "bench.parquet")
	if _, err := parquetarchive.WriteFile(path, preds, parquetarchive.WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Run("raw-publish", func(b *testing.B) {
		for b.Loop() {
			futures := make(chan jetstream.PubAckFuture, 4096)
			done := make(chan int)
			go func() {
				acked := 0
				for f := range futures {
					select {
					case <-f.Ok():
						acked++
					case <-f.Err():
					}
				}
				done <- acked
			}()
			for _, m := range msgs {
				f, err := js.PublishMsgAsync(m)
				if err != nil {
					b.Fatal(err)
				}
				futures <- f
			}
			close(futures)
			if acked := <-done; acked != n {
				b.Fatalf("%d acknowledged", acked)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	files, err := parquetarchive.ExpandPaths([]string{dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("replay", func(b *testing.B) {
		for b.Loop() {
			sum, err := replay(context.Background(), js, files, replayOptions{
				subject: "lookout.ingest." + modelToken, header: "true", maxPending: 4096,
			})
			if err != nil || sum.acked != n {
				b.Fatalf("replay: %v, %d acknowledged", err, sum.acked)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// TestArchiveEmbeddingsReadByDuckDB: events carrying `embeddings`, sent
// through `lookout run`, are archived as one list<double> column per
// embedding name under the embeddings group, which DuckDB reads back as
// DOUBLE[] with every value as sent, in order; an event without an
// embedding has NULL there.
func TestArchiveEmbeddingsReadByDuckDB(t *testing.T) {
	duckdbNodeDir(t)
	data := t.TempDir()
	lk := startLookout(t, data, "--config", archiveConfig(t, "300ms", 200))
	logOnFailure(t, lk)
	pub := newTestPublisher(t, lk.NATSURL)
	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	want := map[string]map[string][]float64{}
	var events []map[string]any
	for i := range 12 {
		e := archiveEvent("emb", i, base)
		emb := map[string][]float64{}
		if i%4 != 3 {
			emb["text"] = []float64{float64(i) / 10, -2.5e-7 * float64(i), 1e300, 0, 3}[:2+i%4]
		}
		if i%3 == 0 {
			emb["img"] = []float64{float64(i) + 0.5}
		}
		if len(emb) > 0 {
			e["embeddings"] = emb
		}
		want[e["id"].(string)] = emb
		events = append(events, e)
	}
	if err := pub.publish(events); err != nil {
		t.Fatal(err)
	}
	waitForArchive(t, data, len(events))
	lk.Stop(t)

	glob := filepath.Join(data, "archive", "model=emb", "**", "*.parquet")
	res := duckdbSQL(t,
		"SELECT id, embeddings.text AS text, embeddings.img AS img FROM read_parquet('"+glob+"', union_by_name = true) ORDER BY id",
		"SELECT column_type FROM (DESCRIBE SELECT embeddings.text AS text FROM read_parquet('"+glob+"', union_by_name = true))")
	if len(res[0]) != len(events) {
		t.Fatalf("DuckDB reads %d rows, want %d: %v", len(res[0]), len(events), res[0])
	}
	for _, row := range res[0] {
		id := row["id"].(string)
		for _, name := range []string{"text", "img"} {
			w, ok := want[id][name]
			got, isList := row[name].([]any)
			if !ok {
				if row[name] != nil {
					t.Errorf("%s: embeddings.%s = %v, want NULL", id, name, row[name])
				}
				continue
			}
			if !isList || len(got) != len(w) {
				t.Errorf("%s: embeddings.%s = %v, want %v", id, name, row[name], w)
				continue
			}
			for k := range w {
				if v, _ := got[k].(float64); v != w[k] {
					t.Errorf("%s: embeddings.%s[%d] = %v, want %v", id, name, k, got[k], w[k])
				}
			}
		}
	}
	if typ := res[1][0]["column_type"]; typ != "DOUBLE[]" {
		t.Errorf("DuckDB type of embeddings.text = %v, want DOUBLE[]", typ)
	}
}
