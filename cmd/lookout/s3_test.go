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
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
	"github.com/lookout-ml/lookout/pkg/parquetarchive/s3test"
)

// s3Config writes a config file with a short archive window and archive.s3
// at srv, bucket lake, prefix archive, and points this process's s3://
// reads at srv.
func s3Config(t *testing.T, endpoint, window string, maxRows int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lookout.yaml")
	yaml := fmt.Sprintf("archive:\n  window: %s\n  max_rows: %d\n  s3: {endpoint: %q, bucket: lake, prefix: archive, region: us-east-1}\n",
		window, maxRows, endpoint)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	parquetarchive.ConfigureS3(parquetarchive.S3Config{Endpoint: endpoint})
	t.Cleanup(func() { parquetarchive.ConfigureS3(parquetarchive.S3Config{}) })
	return path
}

// readS3Archive reads every object under s3://lake/archive.
func readS3Archive(t *testing.T) ([]*event.Prediction, []string, error) {
	t.Helper()
	files, err := parquetarchive.ExpandPaths([]string{"s3://lake/archive"})
	if err != nil {
		if strings.Contains(err.Error(), "no Parquet objects") {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	var rows []*event.Prediction
	err = parquetarchive.ReadFiles(context.Background(), files, parquetarchive.ReadOptions{}, func(p *event.Prediction) error {
		rows = append(rows, p)
		return nil
	})
	return rows, files, err
}

// download copies every object under s3://lake/archive to dir/archive/<key>,
// with plain HTTP GETs (path-style URLs), for DuckDB.
func download(t *testing.T, endpoint string, files []string, dir string) {
	t.Helper()
	for _, f := range files {
		key := strings.TrimPrefix(f, "s3://lake/archive/")
		resp, err := http.Get(endpoint + "/lake/archive/" + key)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %v %s", key, err, resp.Status)
		}
		path := filepath.Join(dir, "archive", filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestArchiveS3SurvivesKill publishes events with JetStream
// acknowledgements while `lookout run`, archiving to an S3 server, is
// killed (SIGKILL) twice and restarted on the same data folder: every
// acknowledged id is in S3 exactly once, under the local layout's keys,
// and DuckDB reads the objects as one table.
func TestArchiveS3SurvivesKill(t *testing.T) {
	srv := s3test.Run(t, "lake")
	cfg := s3Config(t, srv.URL, "100ms", 70)
	data := t.TempDir()
	base := time.Now().UTC()
	var all []map[string]any
	for i := range 3000 {
		all = append(all, archiveEvent([]string{"a", "b"}[i%2], i, base))
	}
	chunks := [][]map[string]any{all[:1000], all[1000:2000], all[2000:]}
	tried := map[string]bool{}
	acked := map[string]bool{}
	for round, chunk := range chunks {
		lk := startLookout(t, data, "--config", cfg)
		logOnFailure(t, lk)
		pub := newTestPublisher(t, lk.NATSURL)
		pub.pause = 30 * time.Millisecond
		last := round == len(chunks)-1
		done := make(chan error, 1)
		go func() { done <- pub.publish(chunk) }()
		if !last {
			before := len(acked)
			natstest.WaitFor(t, 60*time.Second, func() error {
				rows, _, err := readS3Archive(t)
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
			<-done
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
			natstest.WaitFor(t, 60*time.Second, func() error {
				rows, _, err := readS3Archive(t)
				if err != nil {
					return err
				}
				if len(rows) < len(acked) {
					return fmt.Errorf("%d rows archived, want %d", len(rows), len(acked))
				}
				return nil
			})
			lk.Stop(t)
			if !strings.Contains(lk.Logs(), "s3://lake/archive") {
				t.Errorf("the logs do not name the S3 archive")
			}
		}
	}
	if _, err := os.Stat(filepath.Join(data, "archive")); !os.IsNotExist(err) {
		t.Errorf("a local archive folder was written: %v", err)
	}
	rows, files, err := readS3Archive(t)
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
		t.Fatalf("%d acknowledged; S3 has %d rows: missing %d %v, duplicated %d %v, never published %v",
			len(acked), len(rows), len(missing), firstTen(missing), len(dup), firstTen(dup), firstTen(unknown))
	}
	if len(acked) < 1000+2*100 {
		t.Errorf("only %d events acknowledged; the test did not exercise much", len(acked))
	}
	for _, f := range files {
		parts := strings.Split(strings.TrimPrefix(f, "s3://lake/archive/"), "/")
		if len(parts) != 3 || !strings.HasPrefix(parts[0], "model=") || !strings.HasPrefix(parts[1], "date=") || !strings.HasSuffix(parts[2], ".parquet") {
			t.Errorf("object %s is not at archive/model=<m>/date=<d>/<name>.parquet", f)
		}
	}
	t.Logf("%d acknowledged, %d rows in %d objects, each once", len(acked), len(rows), len(files))

	// DuckDB, an independent reader, on the objects' bytes. (Its httpfs
	// extension is not available offline, so the objects are fetched
	// first.)
	node := duckdbNodeDir(t)
	local := t.TempDir()
	download(t, srv.URL, files, local)
	cmd := exec.Command("node", "duckdb_check.mjs", local, "age")
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
		Rows        int `json:"rows"`
		DistinctIDs int `json:"distinct_ids"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("duckdb_check printed %s: %v", out, err)
	}
	if got.Rows != len(rows) || got.DistinctIDs != len(rows) {
		t.Errorf("DuckDB reads %d rows, %d distinct ids; want %d of each", got.Rows, got.DistinctIDs, len(rows))
	}
}

// writeBoth writes rows to the same key in a local archive and in S3.
func writeBoth(t *testing.T, store parquetarchive.Store, local *parquetarchive.Folder, model string, rows []*event.Prediction) {
	t.Helper()
	first, last := parquetarchive.TimeRange(rows)
	key := parquetarchive.Key(model, first, parquetarchive.FileName(first, last, 1))
	for _, s := range []parquetarchive.Store{store, local} {
		if _, err := s.Write(context.Background(), key, rows, parquetarchive.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReplayAndDriftReadS3: `lookout drift` on s3:// paths prints the same
// report as on the same files in local folders, and `lookout replay
// s3://...` republishes every row of the objects.
func TestReplayAndDriftReadS3(t *testing.T) {
	srv := s3test.Run(t, "lake")
	cfg := s3Config(t, srv.URL, "1s", 1000)
	store, err := parquetarchive.NewS3(parquetarchive.S3Config{Endpoint: srv.URL, Bucket: "lake", Prefix: "archive"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	local := &parquetarchive.Folder{Root: t.TempDir()}
	refDay := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	curDay := refDay.Add(24 * time.Hour)
	mk := func(day time.Time, shift float64, n int) []*event.Prediction {
		var out []*event.Prediction
		for i := range n {
			out = append(out, &event.Prediction{
				Id: fmt.Sprintf("%s-%d", day.Format("0102"), i), Model: "churn", Version: "v1", Role: "production",
				TsUnixNano: proto.Int64(day.Add(time.Duration(i) * time.Second).UnixNano()),
				Features: map[string]*event.Value{
					"age":  event.Number(float64(i%50) + shift),
					"plan": event.Text([]string{"free", "pro", "team"}[(i+int(shift))%3]),
				},
				Prediction: event.Number(float64(i%100) / 100), Confidence: proto.Float64(0.5 + float64(i%50)/100),
			})
		}
		return out
	}
	ref, cur := mk(refDay, 0, 1500), mk(curDay, 10, 1200)
	writeBoth(t, store, local, "churn", ref)
	writeBoth(t, store, local, "churn", cur)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	drift := func(refPath, curPath string) map[string]any {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run(ctx, []string{"drift", "--config", cfg, "--json", "--reference", refPath, "--current", curPath}, &stdout, &stderr); code != 0 {
			t.Fatalf("drift %s %s: exit %d\n%s", refPath, curPath, code, &stderr)
		}
		var report map[string]any
		if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
			t.Fatal(err)
		}
		delete(report["reference"].(map[string]any), "source")
		return report
	}
	fromS3 := drift("s3://lake/archive/model=churn/date=2026-11-23", "s3://lake/archive/model=churn/date=2026-11-24")
	fromDisk := drift(filepath.Join(local.Root, "model=churn", "date=2026-11-23"), filepath.Join(local.Root, "model=churn", "date=2026-11-24"))
	a, _ := json.Marshal(fromS3)
	b, _ := json.Marshal(fromDisk)
	if !bytes.Equal(a, b) {
		t.Errorf("drift from S3 differs from drift from disk:\nS3   %s\ndisk %s", a, b)
	}
	if fromS3["dataset_drifted"] != true || fromS3["window"].(map[string]any)["count"].(float64) != 1200 {
		t.Errorf("drift from S3: want 1200 current rows, drifted; got %s", a)
	}

	// Replay every object under the prefix into a fresh server.
	ns, _, js := natstest.RunWithStreams(t)
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"replay", "--config", cfg, "--nats", ns.ClientURL(), "--no-progress", "s3://lake/archive"}, &stdout, &stderr); code != 0 {
		t.Fatalf("replay: exit %d\n%s\n%s", code, &stdout, &stderr)
	}
	want := len(ref) + len(cur)
	if !strings.Contains(stdout.String(), fmt.Sprintf("files 2, bad files 0, rows %d, published %d, acknowledged %d, failed 0", want, want, want)) {
		t.Errorf("replay summary:\n%s", &stdout)
	}
	stream, err := js.Stream(ctx, natsbus.NewSubjects("").StreamName(natsbus.StreamIngest))
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter("lookout.ingest.churn"))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(want) {
		t.Errorf("ingest stream holds %d messages, want %d", info.State.Msgs, want)
	}

	// A path that names nothing says so.
	stderr.Reset()
	if code := run(ctx, []string{"replay", "--config", cfg, "--nats", ns.ClientURL(), "--no-progress", "s3://lake/nothing"}, &stdout, &stderr); code == 0 ||
		!strings.Contains(stderr.String(), "s3://lake/nothing: no Parquet objects") {
		t.Errorf("replay of an empty prefix: exit %d\n%s", code, &stderr)
	}
}

// TestRunS3BadBucketOrEndpoint: `lookout run` with an archive.s3 that does
// not answer, or a bucket that does not exist, stops at start with an
// error naming the key.
func TestRunS3BadBucketOrEndpoint(t *testing.T) {
	srv := s3test.Run(t, "lake")
	for _, c := range []struct{ yaml, want string }{
		{fmt.Sprintf("archive:\n  s3: {endpoint: %q, bucket: missing}\n", srv.URL), `archive.s3.bucket: "missing" does not exist`},
		{"archive:\n  s3: {endpoint: \"http://127.0.0.1:1\", bucket: lake}\n", "archive.s3.endpoint: http://127.0.0.1:1"},
		{"archive:\n  s3: {endpoint: \"127.0.0.1:9000\", bucket: lake}\n", "archive.s3.endpoint:"},
	} {
		path := filepath.Join(t.TempDir(), "lookout.yaml")
		if err := os.WriteFile(path, []byte(c.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		cmd := exec.CommandContext(ctx, lookoutBinary(t), "run", "--listen", "127.0.0.1:-1", "--http", "127.0.0.1:0", "--data", t.TempDir(), "--config", path)
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err()
		cancel()
		if err == nil || timedOut != nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: exit %v (timeout %v), want an error naming %q:\n%s", c.yaml, err, timedOut, c.want, out)
		}
	}
}

// TestExportReadsS3: with archive.s3 in --config, `lookout export` reads
// the model's objects from the bucket and joins their labels from NATS;
// an explicit --data still reads that folder instead.
func TestExportReadsS3(t *testing.T) {
	srv := s3test.Run(t, "lake")
	cfg := s3Config(t, srv.URL, "1s", 1000)
	store, err := parquetarchive.NewS3(parquetarchive.S3Config{Endpoint: srv.URL, Bucket: "lake", Prefix: "archive"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	mk := func(prefix string, n int) []*event.Prediction {
		var out []*event.Prediction
		for i := range n {
			out = append(out, &event.Prediction{
				Id: fmt.Sprintf("%s-%d", prefix, i), Model: "churn", Version: "v1", Role: []string{"production", "canary"}[i%2],
				TsUnixNano: proto.Int64(day.Add(time.Duration(i) * time.Second).UnixNano()),
				Features:   map[string]*event.Value{"age": event.Number(float64(40 + i))},
				Prediction: event.Text("stay"),
			})
		}
		return out
	}
	inS3 := mk("s3", 4)
	first, last := parquetarchive.TimeRange(inS3)
	if _, err := store.Write(context.Background(), parquetarchive.Key("churn", first, parquetarchive.FileName(first, last, 1)), inS3, parquetarchive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	local := &parquetarchive.Folder{Root: filepath.Join(data, "archive")}
	onDisk := mk("disk", 2)
	first, last = parquetarchive.TimeRange(onDisk)
	if _, err := local.Write(context.Background(), parquetarchive.Key("churn", first, parquetarchive.FileName(first, last, 1)), onDisk, parquetarchive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	ns, _, js := natstest.RunWithStreams(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := js.Publish(ctx, "lookout.feedback.churn", []byte(`{"id":"s3-2","label":"churn"}`)); err != nil {
		t.Fatal(err)
	}
	export := func(args ...string) string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "out.parquet")
		var stdout, stderr bytes.Buffer
		all := append([]string{"export", "--config", cfg, "--nats", ns.ClientURL(), "--model", "churn"}, args...)
		if code := run(ctx, append(all, out), &stdout, &stderr); code != 0 {
			t.Fatalf("export %v: exit %d\n%s%s", args, code, &stdout, &stderr)
		}
		rows := duckdbSQL(t, "SELECT string_agg(id || ':' || coalesce(label_label, '-'), ',' ORDER BY id) AS ids FROM read_parquet('"+out+"')")
		return fmt.Sprint(rows[0][0]["ids"])
	}
	if got, want := export(), "s3-0:-,s3-1:-,s3-2:churn,s3-3:-"; got != want {
		t.Errorf("export from S3: %s, want %s", got, want)
	}
	if got, want := export("--role", "production", "--labelled"), "s3-2:churn"; got != want {
		t.Errorf("export from S3 --role production --labelled: %s, want %s", got, want)
	}
	if got, want := export("--data", data), "disk-0:-,disk-1:-"; got != want {
		t.Errorf("export --data with archive.s3: %s, want %s", got, want)
	}
}
