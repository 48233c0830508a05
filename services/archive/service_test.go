package archive

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
	"github.com/lookout-ml/lookout/pkg/service"
)

// running is an archive service started for a test.
type running struct {
	svc    *Service
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func startService(t *testing.T, nc *nats.Conn, js jetstream.JetStream, dataDir string, cfg Config) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	env := service.Env{NC: nc, JS: js, Subjects: natsbus.NewSubjects(""), Log: zaptest.NewLogger(t), Metrics: reg, DataDir: dataDir}
	svc, err := New(env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{svc: svc, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the service and waits for it to return.
func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("archive did not stop within 30s")
	}
}

func prediction(model string, i int, at time.Time) *event.Prediction {
	return &event.Prediction{
		Id: fmt.Sprintf("%s-%04d", model, i), Model: model, Version: "v1", Role: "production",
		TsUnixNano: proto.Int64(at.UnixNano()),
		Features: map[string]*event.Value{
			"age": event.Number(float64(i % 50)), "plan": event.Text([]string{"free", "pro"}[i%2]), "trial": event.Flag(i%3 == 0),
		},
		Prediction: event.Number(float64(i%100) / 100), Confidence: ptr(0.5),
	}
}

func ptr(f float64) *float64 { return &f }

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		return -1
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}

// publishPredictions publishes as ingest does: contract JSON with the
// event id as Nats-Msg-Id, plus any extra header.
func publishPredictions(t testing.TB, js jetstream.JetStream, preds []*event.Prediction, header nats.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	subjects := natsbus.NewSubjects("")
	var futures []jetstream.PubAckFuture
	wait := func() {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				t.Fatal(err)
			case <-ctx.Done():
				t.Fatal("publish not acknowledged")
			}
		}
		futures = futures[:0]
	}
	for _, p := range preds {
		msg := nats.NewMsg(subjects.For(natsbus.KindPredictions, p.Model))
		msg.Data = event.AppendJSON(nil, p)
		msg.Header.Set(jetstream.MsgIDHeader, p.Id)
		for k, v := range header {
			msg.Header[k] = v
		}
		f, err := js.PublishMsgAsync(msg)
		if err != nil {
			t.Fatal(err)
		}
		if futures = append(futures, f); len(futures) == 1000 {
			wait()
		}
	}
	wait()
}

// archivedIDs reads the whole archive and counts each id.
func archivedIDs(t *testing.T, root string) (map[string]int, error) {
	t.Helper()
	ids := map[string]int{}
	if _, err := os.Stat(root); os.IsNotExist(err) {
		return ids, nil
	}
	err := parquetarchive.ReadFiles(context.Background(), []string{root}, parquetarchive.ReadOptions{}, func(p *event.Prediction) error {
		ids[p.Id]++
		return nil
	})
	return ids, err
}

func waitForRows(t *testing.T, root string, want int) map[string]int {
	t.Helper()
	var ids map[string]int
	natstest.WaitFor(t, 30*time.Second, func() error {
		var err error
		ids, err = archivedIDs(t, root)
		if err != nil {
			return err
		}
		total := 0
		for _, n := range ids {
			total += n
		}
		if total != want {
			return fmt.Errorf("archive holds %d rows, want %d", total, want)
		}
		return nil
	})
	return ids
}

func TestArchiveWritesWindows(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	data := t.TempDir()
	r := startService(t, nc, js, data, Config{Window: 300 * time.Millisecond, MaxRows: 40})

	midnight := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	var preds []*event.Prediction
	for i := range 100 {
		// Rows of model a straddle midnight; model b is one day.
		preds = append(preds, prediction("a", i, midnight.Add(time.Duration(i-50)*time.Second)))
	}
	for i := range 10 {
		preds = append(preds, prediction("b", i, midnight.Add(time.Hour)))
	}
	publishPredictions(t, js, preds, nil)
	// Replayed events are not written again, unless the replay asks.
	replayed := []*event.Prediction{prediction("a", 1000, midnight), prediction("a", 1001, midnight)}
	publishPredictions(t, js, replayed[:1], nats.Header{event.HeaderReplay: []string{event.ReplayOnly}})
	publishPredictions(t, js, replayed[1:], nats.Header{event.HeaderReplay: []string{event.ReplayArchive}})

	ids := waitForRows(t, r.svc.Root(), 111)
	for _, p := range preds {
		if ids[p.Id] != 1 {
			t.Errorf("%s archived %d times, want once", p.Id, ids[p.Id])
		}
	}
	if ids["a-1000"] != 0 || ids["a-1001"] != 1 {
		t.Errorf("replayed: a-1000 archived %d times (want 0), a-1001 %d times (want 1)", ids["a-1000"], ids["a-1001"])
	}
	// Each file holds one date of one model, in its Hive folder.
	files, err := parquetarchive.ExpandPaths([]string{r.svc.Root()})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(r.svc.Root(), f)
		parts := strings.Split(rel, string(filepath.Separator))
		if len(parts) != 3 || !strings.HasPrefix(parts[0], "model=") || !strings.HasPrefix(parts[1], "date=") {
			t.Errorf("file %s is not at model=<m>/date=<d>/<name>", rel)
			continue
		}
		err := parquetarchive.ReadFile(context.Background(), f, parquetarchive.ReadOptions{}, func(p *event.Prediction) error {
			if "model="+p.Model != parts[0] || "date="+event.Time(p).Format(time.DateOnly) != parts[1] {
				return fmt.Errorf("row %s (%s, %s) in %s", p.Id, p.Model, event.Time(p), rel)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	if n := value(r.svc.metrics.skipped.WithLabelValues("replay")); n != 1 {
		t.Errorf("skipped replay = %v, want 1", n)
	}
	if n := value(r.svc.metrics.windows.WithLabelValues(reasonSize)); n < 2 {
		t.Errorf("windows closed by size = %v, want at least 2 (100 rows of a, max 40)", n)
	}
	if n := value(r.svc.metrics.windows.WithLabelValues(reasonTime)); n < 1 {
		t.Errorf("windows closed by time = %v, want at least 1", n)
	}
	if n := value(r.svc.metrics.rows.WithLabelValues("a")); n != 101 {
		t.Errorf("rows written for a = %v, want 101", n)
	}
}

func TestArchiveFlushesOnShutdown(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	data := t.TempDir()
	r := startService(t, nc, js, data, Config{Window: time.Hour, MaxRows: 1000})
	now := time.Now()
	var preds []*event.Prediction
	for i := range 25 {
		preds = append(preds, prediction("m", i, now))
	}
	publishPredictions(t, js, preds, nil)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if n := value(r.svc.metrics.buffered); n != 25 {
			return fmt.Errorf("%v rows buffered, want 25", n)
		}
		return nil
	})
	r.stop(t)
	ids, err := archivedIDs(t, r.svc.Root())
	if err != nil || len(ids) != 25 {
		t.Fatalf("after shutdown the archive holds %d ids (%v), want 25", len(ids), err)
	}
	// The journal's floor, where the next start reads from, passed every
	// row written: a restart reads none of them again.
	j, err := openJournal(filepath.Join(data, "archive-state", "journal.jsonl"), folderExists(r.svc.Root()),
		journalHeader{Stream: r.svc.journal.header.Stream, Created: r.svc.journal.header.Created})
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	if j.header.Floor != 25 {
		t.Errorf("journal floor %d after shutdown, want 25", j.header.Floor)
	}
	// Nothing is left on the server: the reader acknowledges nothing and
	// removes its consumer when it stops.
	names := streamConsumers(t, js)
	if len(names) != 0 {
		t.Errorf("consumers left on the predictions stream: %v", names)
	}
}

// streamConsumers lists the consumers on the predictions stream.
func streamConsumers(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	stream, err := js.Stream(context.Background(), natsbus.NewSubjects("").StreamName(natsbus.StreamPredictions))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	lister := stream.ConsumerNames(context.Background())
	for n := range lister.Name() {
		names = append(names, n)
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

func TestArchiveRecoversFromCrash(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	data := t.TempDir()
	root := filepath.Join(data, "archive")
	now := time.Now().UTC()
	var preds []*event.Prediction
	for i := range 10 {
		preds = append(preds, prediction("m", i, now))
	}
	publishPredictions(t, js, preds, nil) // stream sequences 1..10

	ctx := context.Background()
	stream, err := js.Stream(ctx, natsbus.NewSubjects("").StreamName(natsbus.StreamPredictions))
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	folder := &parquetarchive.Folder{Root: root}
	j, err := openJournal(filepath.Join(data, "archive-state", "journal.jsonl"), func(file string) (bool, error) {
		return folder.Exists(context.Background(), file)
	}, journalHeader{
		Stream: info.Config.Name, Created: info.Created.UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Rows 1..5 (sequences 1..5) are in a committed file.
	var committed seqSet
	for s := uint64(1); s <= 5; s++ {
		committed.add(s)
	}
	dir := parquetarchive.Dir(root, "m", now)
	written := filepath.Join(dir, parquetarchive.FileName(now, now, 1))
	if _, err := parquetarchive.WriteFile(written, preds[:5], parquetarchive.WriteOptions{BeforeRename: func() error {
		_, err := j.append(mustRel(t, root, written), committed)
		return err
	}}); err != nil {
		t.Fatal(err)
	}
	// Rows 6..7 were journaled but the process died before the rename.
	var lost seqSet
	lost.add(6)
	lost.add(7)
	if _, err := j.append("model=m/date=x/never.parquet", lost); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, parquetarchive.TempPrefix+"never.parquet-42")
	if err := os.WriteFile(tmp, []byte("half a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	j.close()
	// And a torn last line from a crash in the middle of an append.
	f, err := os.OpenFile(filepath.Join(data, "archive-state", "journal.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(`{"file":"model=m/da`)
	f.Close()

	r := startService(t, nc, js, data, Config{Window: 200 * time.Millisecond, MaxRows: 1000})
	ids := waitForRows(t, root, 10)
	for _, p := range preds {
		if ids[p.Id] != 1 {
			t.Errorf("%s archived %d times, want once", p.Id, ids[p.Id])
		}
	}
	if n := value(r.svc.metrics.skipped.WithLabelValues("duplicate")); n != 5 {
		t.Errorf("duplicates skipped = %v, want 5", n)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func mustRel(t *testing.T, root, path string) string {
	t.Helper()
	rel, err := filepath.Rel(root, path)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// TestArchiveRestartKeepsGoing stops and starts the service several times
// while events arrive: each id is archived once.
func TestArchiveRestartKeepsGoing(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	data := t.TempDir()
	now := time.Now()
	total := 0
	for round := range 3 {
		r := startService(t, nc, js, data, Config{Window: 50 * time.Millisecond, MaxRows: 7})
		var preds []*event.Prediction
		for i := range 30 {
			preds = append(preds, prediction(fmt.Sprintf("m%d", i%2), round*100+i, now))
		}
		publishPredictions(t, js, preds, nil)
		total += len(preds)
		r.stop(t)
	}
	// What the last stop left unacknowledged comes to the next process.
	startService(t, nc, js, data, Config{Window: 50 * time.Millisecond, MaxRows: 7})
	ids := waitForRows(t, filepath.Join(data, "archive"), total)
	var dups []string
	for id, n := range ids {
		if n != 1 {
			dups = append(dups, id)
		}
	}
	sort.Strings(dups)
	if len(ids) != total || len(dups) > 0 {
		t.Errorf("%d distinct ids of %d; archived more than once: %v", len(ids), total, dups)
	}
}

func TestSeqSet(t *testing.T) {
	var s seqSet
	for _, seq := range []uint64{1, 2, 3, 7, 5, 4, 10, 9, 3, 100} {
		s.add(seq)
	}
	// 1..5 merged, 7 alone, 9..10, 100.
	want := []seqRange{{1, 5}, {7, 7}, {9, 10}, {100, 100}}
	if fmt.Sprint(s.ranges) != fmt.Sprint(want) {
		t.Errorf("ranges = %v, want %v", s.ranges, want)
	}
	for seq, in := range map[uint64]bool{0: false, 1: true, 5: true, 6: false, 8: false, 10: true, 99: false, 100: true, 101: false} {
		if s.contains(seq) != in {
			t.Errorf("contains(%d) = %v, want %v", seq, !in, in)
		}
	}
	text, _ := s.MarshalText()
	var back seqSet
	if err := back.UnmarshalText(text); err != nil || fmt.Sprint(back.ranges) != fmt.Sprint(want) {
		t.Errorf("round trip of %s: %v, %v", text, back.ranges, err)
	}
	if s.count() != 9 || s.max() != 100 {
		t.Errorf("count %d max %d, want 9 and 100", s.count(), s.max())
	}
	// Interleaved with another model: every other sequence, two bytes each.
	var odd seqSet
	for seq := uint64(1); seq < 20000; seq += 2 {
		odd.add(seq)
	}
	if text, _ := odd.MarshalText(); len(text) > 3*10000 {
		t.Errorf("10,000 interleaved sequences take %d bytes", len(text))
	}
}

func TestJournalCompactsAndResets(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "archive")
	path := filepath.Join(dir, "state", "journal.jsonl")
	head := journalHeader{Stream: "S", Created: "t1"}
	j, err := openJournal(path, folderExists(root), head)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"a.parquet", "b.parquet"} {
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		var s seqSet
		s.add(uint64(10*i + 1))
		s.add(uint64(10*i + 2))
		if _, err := j.append(name, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.compact(5); err != nil { // a.parquet (1, 2) is acknowledged
		t.Fatal(err)
	}
	j.close()
	j, err = openJournal(path, folderExists(root), head)
	if err != nil {
		t.Fatal(err)
	}
	if j.committed(1) || !j.committed(12) || j.header.Floor != 5 {
		t.Errorf("after compaction: committed(1)=%v committed(12)=%v floor=%d; want false, true, 5", j.committed(1), j.committed(12), j.header.Floor)
	}
	j.close()
	// A recreated stream of the same name: the journal starts afresh.
	j, err = openJournal(path, folderExists(root), journalHeader{Stream: "S", Created: "t2"})
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	if j.committed(12) || j.header.Floor != 0 {
		t.Errorf("journal of an earlier stream still applies: committed(12)=%v floor=%d", j.committed(12), j.header.Floor)
	}
}

// Deleting the archive's consumer from outside (`nats consumer rm
// LOOKOUT_PREDICTIONS <name>`) used to stop archiving silently. The
// reader's consumer is recreated from the message after the last one read:
// what came before and after is archived, once.
func TestArchiveRecreatesDeletedConsumer(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	data := t.TempDir()
	startService(t, nc, js, data, Config{Window: 50 * time.Millisecond, MaxRows: 5})
	now := time.Now()
	var before, after []*event.Prediction
	for i := range 20 {
		before = append(before, prediction("m", i, now))
		after = append(after, prediction("m", 100+i, now))
	}
	publishPredictions(t, js, before, nil)
	root := filepath.Join(data, "archive")
	waitForRows(t, root, len(before))
	stream := natsbus.NewSubjects("").StreamName(natsbus.StreamPredictions)
	names := streamConsumers(t, js)
	if len(names) != 1 || !strings.HasPrefix(names[0], ConsumerName+"_") {
		t.Fatalf("consumers %v, want one of the archive's", names)
	}
	if err := js.DeleteConsumer(context.Background(), stream, names[0]); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 15*time.Second, func() error {
		if now := streamConsumers(t, js); len(now) != 1 || now[0] == names[0] {
			return fmt.Errorf("consumers %v, want a new one of the archive's", now)
		}
		return nil
	})
	publishPredictions(t, js, after, nil)
	ids := waitForRows(t, root, len(before)+len(after))
	for id, n := range ids {
		if n != 1 {
			t.Errorf("%s archived %d times", id, n)
		}
	}
}

// folderExists is the journal's check that a file exists, for a local archive at root.
func folderExists(root string) func(string) (bool, error) {
	folder := &parquetarchive.Folder{Root: root}
	return func(file string) (bool, error) { return folder.Exists(context.Background(), file) }
}

// TestArchiveFileNamesSpanTheirRows: rows at .7 s past the second, the
// last at 23:59:59.7, land in files whose names' times hold every row's
// ts: the end is rounded up (it once was truncated, naming 235959Z for a
// file holding a row after it).
func TestArchiveFileNamesSpanTheirRows(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	data := t.TempDir()
	r := startService(t, nc, js, data, Config{Window: 300 * time.Millisecond, MaxRows: 4})
	midnight := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	var preds []*event.Prediction
	for i := range 10 {
		preds = append(preds, prediction("m", i, midnight.Add(time.Duration(i-10)*time.Second+700*time.Millisecond)))
	}
	publishPredictions(t, js, preds, nil)
	waitForRows(t, r.svc.Root(), len(preds))
	files, err := parquetarchive.ExpandPaths([]string{r.svc.Root()})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("%d files, want at least 3 (10 rows, max 4 a file)", len(files))
	}
	for _, f := range files {
		parts := strings.Split(strings.TrimSuffix(filepath.Base(f), ".parquet"), "_")
		start, err1 := time.Parse(parquetarchive.TimeFormat, parts[0])
		end, err2 := time.Parse(parquetarchive.TimeFormat, parts[1])
		if len(parts) != 3 || err1 != nil || err2 != nil {
			t.Fatalf("file name %s: %v %v", f, err1, err2)
		}
		err := parquetarchive.ReadFile(context.Background(), f, parquetarchive.ReadOptions{}, func(p *event.Prediction) error {
			if at := event.Time(p); at.Before(start) || at.After(end) {
				return fmt.Errorf("row %s at %s outside its file's name %s", p.Id, at.Format(time.RFC3339Nano), filepath.Base(f))
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
}

// A file that cannot be written keeps its rows: they are tried again (they
// were once handed back to the server, which a reader without
// acknowledgements cannot do) and written once the fault is gone.
func TestArchiveRetriesFailedWrite(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	data := t.TempDir()
	root := filepath.Join(data, "archive")
	// A file where the model's folder belongs makes every write fail.
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(root, "model=m")
	if err := os.WriteFile(blocker, []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startService(t, nc, js, data, Config{Window: time.Hour, MaxRows: 5})
	now := time.Now()
	var preds []*event.Prediction
	for i := range 5 {
		preds = append(preds, prediction("m", i, now))
	}
	publishPredictions(t, js, preds, nil)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if n := value(r.svc.metrics.writeErrors); n < 1 {
			return fmt.Errorf("%v write errors, want one", n)
		}
		return nil
	})
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	ids := waitForRows(t, root, len(preds))
	for id, n := range ids {
		if n != 1 {
			t.Errorf("%s archived %d times", id, n)
		}
	}
}

// MaxPending bounds the rows held in memory: at the bound the fullest
// window is written, long before its time.
func TestArchiveBoundsBufferedRows(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	data := t.TempDir()
	r := startService(t, nc, js, data, Config{Window: time.Hour, MaxRows: 1000, MaxPending: 10})
	now := time.Now()
	var preds []*event.Prediction
	for i := range 30 {
		preds = append(preds, prediction(fmt.Sprintf("m%d", i%3), i, now))
	}
	publishPredictions(t, js, preds, nil)
	natstest.WaitFor(t, 10*time.Second, func() error {
		ids, err := archivedIDs(t, filepath.Join(data, "archive"))
		if err != nil {
			return err
		}
		if written, buffered := len(ids), value(r.svc.metrics.buffered); written+int(buffered) != len(preds) || buffered >= 10 {
			return fmt.Errorf("%d rows written and %v buffered; want %d in all, under 10 buffered", written, buffered, len(preds))
		}
		return nil
	})
}
