package parquetarchive_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
	"github.com/lookout-ml/lookout/pkg/parquetarchive/s3test"
)

func rowsFor(model string, n int, at time.Time) []*event.Prediction {
	var out []*event.Prediction
	for i := range n {
		out = append(out, &event.Prediction{
			Id: fmt.Sprintf("%s-%d", model, i), Model: model, Version: "v1", Role: "production",
			TsUnixNano: proto.Int64(at.Add(time.Duration(i) * time.Second).UnixNano()),
			Features:   map[string]*event.Value{"age": event.Number(float64(i)), "plan": event.Text("pro")},
			Prediction: event.Number(float64(i) / float64(n)),
		})
	}
	return out
}

// TestS3StoreWritesTheLocalLayout: the S3 store puts a file at
// <prefix>/<key>, with the same key as the folder store, refuses to
// replace it, and the object reads back through s3:// paths row for row.
func TestS3StoreWritesTheLocalLayout(t *testing.T) {
	srv := s3test.Run(t, "lake")
	ctx := context.Background()
	cfg := parquetarchive.S3Config{Endpoint: srv.URL, Bucket: "lake", Prefix: "/lookout/archive/", Region: "eu-west-1"}
	store, err := parquetarchive.NewS3(cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got := store.Location(); got != "s3://lake/lookout/archive" {
		t.Errorf("Location = %q", got)
	}
	day := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	rows := rowsFor("churn", 2000, day)
	key := parquetarchive.Key("churn", day, parquetarchive.FileName(day, day.Add(time.Hour), 7))
	local := &parquetarchive.Folder{Root: t.TempDir()}
	if _, err := local.Write(ctx, key, rows, parquetarchive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	before := 0
	stats, err := store.Write(ctx, key, rows, parquetarchive.WriteOptions{BeforeRename: func() error {
		// The object must not be visible yet when the journal is written.
		if ok, _ := store.Exists(ctx, key); ok {
			t.Error("object visible before BeforeRename returned")
		}
		before++
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if before != 1 || stats.Rows != 2000 {
		t.Errorf("BeforeRename ran %d times, %d rows", before, stats.Rows)
	}
	if _, err := store.Write(ctx, key, rows[:1], parquetarchive.WriteOptions{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second write of %s: %v, want ErrExist", key, err)
	}
	// A failing BeforeRename leaves nothing behind.
	key2 := parquetarchive.Key("churn", day, parquetarchive.FileName(day, day, 8))
	if _, err := store.Write(ctx, key2, rows, parquetarchive.WriteOptions{BeforeRename: func() error { return errors.New("journal full") }}); err == nil {
		t.Error("write with failing BeforeRename succeeded")
	}
	if ok, _ := store.Exists(ctx, key2); ok {
		t.Error("object written although BeforeRename failed")
	}

	parquetarchive.ConfigureS3(parquetarchive.S3Config{Endpoint: srv.URL, Region: "eu-west-1"})
	t.Cleanup(func() { parquetarchive.ConfigureS3(parquetarchive.S3Config{}) })
	files, err := parquetarchive.ExpandPaths([]string{"s3://lake/lookout/archive"})
	if err != nil {
		t.Fatal(err)
	}
	want := "s3://lake/lookout/archive/" + key
	if len(files) != 1 || files[0] != want {
		t.Fatalf("files = %v, want [%s]", files, want)
	}
	localFiles, err := parquetarchive.ExpandPaths([]string{local.Root})
	if err != nil || len(localFiles) != 1 {
		t.Fatalf("local files %v, %v", localFiles, err)
	}
	if rel, _ := filepath.Rel(local.Root, localFiles[0]); filepath.ToSlash(rel) != strings.TrimPrefix(files[0], "s3://lake/lookout/archive/") {
		t.Errorf("local key %s, S3 key %s", rel, files[0])
	}
	var got []*event.Prediction
	if err := parquetarchive.ReadFiles(ctx, files, parquetarchive.ReadOptions{}, func(p *event.Prediction) error {
		got = append(got, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) {
		t.Fatalf("read %d rows, want %d", len(got), len(rows))
	}
	for i := range rows {
		if !proto.Equal(got[i], rows[i]) {
			t.Fatalf("row %d: got %v, want %v", i, got[i], rows[i])
		}
	}
	// One object by its full path, and a filter by Hive folder.
	if one, err := parquetarchive.ExpandPaths([]string{want}); err != nil || len(one) != 1 {
		t.Errorf("ExpandPaths(%s) = %v, %v", want, one, err)
	}
	n := 0
	if err := parquetarchive.ReadFiles(ctx, files, parquetarchive.ReadOptions{Model: "other"}, func(*event.Prediction) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("model filter: %d rows, %v", n, err)
	}
}

// TestS3Errors: each mistake names its key or path.
func TestS3Errors(t *testing.T) {
	srv := s3test.Run(t, "lake")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cases := []struct {
		name string
		cfg  parquetarchive.S3Config
		want string
	}{
		// A bucket that is not there.
		{"bucket", parquetarchive.S3Config{Endpoint: srv.URL, Bucket: "nope"}, `archive.s3.bucket: "nope" does not exist`},
		// Nothing listens at the endpoint.
		{"endpoint", parquetarchive.S3Config{Endpoint: "http://127.0.0.1:1", Bucket: "lake"}, "archive.s3.endpoint: http://127.0.0.1:1"},
	}
	for _, c := range cases {
		store, err := parquetarchive.NewS3(c.cfg, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		err = store.Check(ctx)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Check = %v, want %q", c.name, err, c.want)
		}
	}
	// Settings checked without a server.
	for cfg, want := range map[parquetarchive.S3Config]string{
		{Endpoint: "127.0.0.1:9000", Bucket: "lake"}: "endpoint:",
		{Endpoint: srv.URL}:                          "bucket: must be set",
		{Endpoint: srv.URL, Bucket: "Bad_Bucket"}:    "bucket:",
	} {
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%+v) = %v, want %q", cfg, err, want)
		}
	}
	parquetarchive.ConfigureS3(parquetarchive.S3Config{Endpoint: srv.URL})
	t.Cleanup(func() { parquetarchive.ConfigureS3(parquetarchive.S3Config{}) })
	if _, err := parquetarchive.ExpandPaths([]string{"s3://nope/x"}); err == nil || !strings.Contains(err.Error(), `bucket "nope" does not exist`) {
		t.Errorf("missing bucket: %v", err)
	}
	if _, err := parquetarchive.ExpandPaths([]string{"s3://lake/empty"}); err == nil || !strings.Contains(err.Error(), "no Parquet objects") {
		t.Errorf("empty prefix: %v", err)
	}
}
