package archive

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
	"github.com/lookout-ml/lookout/pkg/parquetarchive/s3test"
)

const s3Prefix = "team/archive"

// s3Archive starts an S3 server with bucket "lake" and points s3:// reads
// at it; the config goes to archive.s3.
func s3Archive(t *testing.T) (*s3test.Server, *parquetarchive.S3Config) {
	t.Helper()
	srv := s3test.Run(t, "lake")
	parquetarchive.ConfigureS3(parquetarchive.S3Config{Endpoint: srv.URL})
	t.Cleanup(func() { parquetarchive.ConfigureS3(parquetarchive.S3Config{}) })
	return srv, &parquetarchive.S3Config{Endpoint: srv.URL, Bucket: "lake", Prefix: s3Prefix, Region: "us-east-1"}
}

// s3IDs reads every object under the archive prefix and counts each id.
func s3IDs(root string) (map[string]int, []string, error) {
	ids := map[string]int{}
	files, err := parquetarchive.ExpandPaths([]string{root})
	if err != nil {
		if strings.Contains(err.Error(), "no Parquet objects") {
			return ids, nil, nil
		}
		return nil, nil, err
	}
	err = parquetarchive.ReadFiles(context.Background(), files, parquetarchive.ReadOptions{}, func(p *event.Prediction) error {
		ids[p.Id]++
		return nil
	})
	return ids, files, err
}

func waitForS3Rows(t *testing.T, root string, want int) (map[string]int, []string) {
	t.Helper()
	var ids map[string]int
	var files []string
	natstest.WaitFor(t, 30*time.Second, func() error {
		var err error
		if ids, files, err = s3IDs(root); err != nil {
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
	return ids, files
}

// TestArchiveS3SameKeysAsLocal: the same stream archived to a folder and
// to S3 gives the same keys under the root and the same rows, each once.
func TestArchiveS3SameKeysAsLocal(t *testing.T) {
	_, s3cfg := s3Archive(t)
	midnight := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	var preds []*event.Prediction
	for i := range 100 {
		preds = append(preds, prediction("a", i, midnight.Add(time.Duration(i-50)*time.Second)))
	}
	for i := range 10 {
		preds = append(preds, prediction("b", i, midnight.Add(time.Hour)))
	}
	keysOf := func(s3 *parquetarchive.S3Config) []string {
		_, nc, js := natstest.RunWithStreams(t)
		data := t.TempDir()
		// Windows close by size, then at shutdown: the same cuts both times.
		r := startService(t, nc, js, data, Config{Window: time.Hour, MaxRows: 40, S3: s3})
		publishPredictions(t, js, preds, nil)
		natstest.WaitFor(t, 20*time.Second, func() error {
			if n := value(r.svc.metrics.rows.WithLabelValues("a")) + value(r.svc.metrics.buffered); n < 80 {
				return fmt.Errorf("%v rows taken", n)
			}
			return nil
		})
		r.stop(t)
		var keys []string
		if s3 != nil {
			if r.svc.Root() != "s3://lake/"+s3Prefix {
				t.Errorf("root %s", r.svc.Root())
			}
			ids, files := waitForS3Rows(t, r.svc.Root(), len(preds))
			for _, p := range preds {
				if ids[p.Id] != 1 {
					t.Errorf("%s in S3 %d times, want once", p.Id, ids[p.Id])
				}
			}
			for _, f := range files {
				keys = append(keys, strings.TrimPrefix(f, r.svc.Root()+"/"))
			}
			return keys
		}
		files, err := parquetarchive.ExpandPaths([]string{r.svc.Root()})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			keys = append(keys, filepath.ToSlash(mustRel(t, r.svc.Root(), f)))
		}
		return keys
	}
	local := keysOf(nil)
	remote := keysOf(s3cfg)
	if len(local) < 4 || !slices.Equal(local, remote) {
		t.Errorf("keys differ:\nlocal %v\nS3    %v", local, remote)
	}
}

// TestArchiveS3RecoversFromCrash sets up in S3 the state a kill -9 leaves:
// an object in the journal whose messages were never acknowledged, a
// journal entry whose PUT never happened, and a staged temporary file.
// Restarted, the service writes each row once.
func TestArchiveS3RecoversFromCrash(t *testing.T) {
	_, s3cfg := s3Archive(t)
	_, nc, js := natstest.RunWithStreams(t)
	data := t.TempDir()
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
	state := filepath.Join(data, "archive-state")
	store, err := parquetarchive.NewS3(*s3cfg, filepath.Join(state, "staging"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := openJournal(filepath.Join(state, "journal.jsonl"), func(f string) (bool, error) { return store.Exists(ctx, f) },
		journalHeader{Stream: info.Config.Name, Created: info.Created.UTC().Format(time.RFC3339Nano)})
	if err != nil {
		t.Fatal(err)
	}
	var committed seqSet
	for s := uint64(1); s <= 5; s++ {
		committed.add(s)
	}
	key := parquetarchive.Key("m", now, parquetarchive.FileName(now, now, 1))
	if _, err := store.Write(ctx, key, preds[:5], parquetarchive.WriteOptions{BeforeRename: func() error {
		_, err := j.append(key, committed)
		return err
	}}); err != nil {
		t.Fatal(err)
	}
	var lost seqSet
	lost.add(6)
	lost.add(7)
	if _, err := j.append("model=m/date=x/never.parquet", lost); err != nil {
		t.Fatal(err)
	}
	j.close()
	tmp := filepath.Join(state, "staging", parquetarchive.TempPrefix+"never.parquet-42")
	if err := os.WriteFile(tmp, []byte("half a file"), 0o644); err != nil {
		t.Fatal(err)
	}

	r := startService(t, nc, js, data, Config{Window: 200 * time.Millisecond, MaxRows: 1000, S3: s3cfg})
	ids, files := waitForS3Rows(t, r.svc.Root(), 10)
	for _, p := range preds {
		if ids[p.Id] != 1 {
			t.Errorf("%s archived %d times, want once", p.Id, ids[p.Id])
		}
	}
	if n := value(r.svc.metrics.skipped.WithLabelValues("duplicate")); n != 5 {
		t.Errorf("duplicates skipped = %v, want 5", n)
	}
	if !slices.Contains(files, r.svc.Root()+"/"+key) || len(files) != 2 {
		t.Errorf("objects %v, want the committed %s and one more", files, key)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("staged file left behind: %v", err)
	}
}

// TestArchiveS3RestartKeepsGoing stops and starts the service several times
// while events arrive: each id is in S3 once.
func TestArchiveS3RestartKeepsGoing(t *testing.T) {
	_, s3cfg := s3Archive(t)
	_, nc, js := natstest.RunWithStreams(t)
	data := t.TempDir()
	now := time.Now()
	total := 0
	for round := range 3 {
		r := startService(t, nc, js, data, Config{Window: 50 * time.Millisecond, MaxRows: 7, S3: s3cfg})
		var preds []*event.Prediction
		for i := range 30 {
			preds = append(preds, prediction(fmt.Sprintf("m%d", i%2), round*100+i, now))
		}
		publishPredictions(t, js, preds, nil)
		total += len(preds)
		r.stop(t)
	}
	r := startService(t, nc, js, data, Config{Window: 50 * time.Millisecond, MaxRows: 7, S3: s3cfg})
	ids, _ := waitForS3Rows(t, r.svc.Root(), total)
	for id, n := range ids {
		if n != 1 {
			t.Errorf("%s archived %d times", id, n)
		}
	}
	if len(ids) != total {
		t.Errorf("%d distinct ids, want %d", len(ids), total)
	}
	if _, err := os.Stat(filepath.Join(data, "archive")); !os.IsNotExist(err) {
		t.Errorf("a local archive folder was made: %v", err)
	}
}

// TestArchiveS3BadBucketStops: a bucket that does not exist stops the
// service at start with an error naming archive.s3.bucket.
func TestArchiveS3BadBucketStops(t *testing.T) {
	_, s3cfg := s3Archive(t)
	s3cfg.Bucket = "missing"
	_, nc, js := natstest.RunWithStreams(t)
	r := startService(t, nc, js, t.TempDir(), Config{S3: s3cfg})
	select {
	case err := <-r.done:
		r.cancel = nil
		if err == nil || !strings.Contains(err.Error(), `archive.s3.bucket: "missing" does not exist`) {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("service with a missing bucket still running after 60s")
	}
}

// TestArchiveS3UnknownOutcomeStopsThenSettles: the store takes a PUT but
// the answer is an error, and then it cannot say whether the object is
// there. The service stops rather than acknowledge (loss) or write the rows
// elsewhere (duplicates); restarted, its journal finds the object and the
// redelivered rows are acknowledged without a second object.
func TestArchiveS3UnknownOutcomeStopsThenSettles(t *testing.T) {
	srv, s3cfg := s3Archive(t)
	var put atomic.Bool
	srv.SetFault(func(r *http.Request) s3test.Fault {
		switch {
		case r.Method == http.MethodPut:
			put.Store(true)
			return s3test.ServeThenRefuse
		case put.Load():
			return s3test.Refuse
		}
		return s3test.Serve
	})
	_, nc, js := natstest.RunWithStreams(t)
	data := t.TempDir()
	now := time.Now().UTC()
	var preds []*event.Prediction
	for i := range 10 {
		preds = append(preds, prediction("m", i, now))
	}
	publishPredictions(t, js, preds, nil)
	cfg := Config{Window: 200 * time.Millisecond, MaxRows: 1000, S3: s3cfg}
	r := startService(t, nc, js, data, cfg)
	select {
	case err := <-r.done:
		r.cancel = nil
		if err == nil || !strings.Contains(err.Error(), "write model=m/") {
			t.Fatalf("Run = %v, want the write whose outcome is unknown", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("service still running after its store stopped answering")
	}
	srv.SetFault(nil)
	if ids, files, err := s3IDs(r.svc.Root()); err != nil || len(files) != 1 || len(ids) != 10 {
		t.Fatalf("before the restart: %d objects, %d ids, %v; want the one object the store took", len(files), len(ids), err)
	}

	r = startService(t, nc, js, data, cfg)
	natstest.WaitFor(t, 30*time.Second, func() error {
		if n := value(r.svc.metrics.skipped.WithLabelValues("duplicate")); n != 10 {
			return fmt.Errorf("%v duplicates acknowledged, want 10", n)
		}
		return nil
	})
	r.stop(t)
	ids, files, err := s3IDs(r.svc.Root())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || len(ids) != 10 {
		t.Errorf("%d objects, %d ids; want 1 and 10", len(files), len(ids))
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("%s archived %d times", id, n)
		}
	}
}
