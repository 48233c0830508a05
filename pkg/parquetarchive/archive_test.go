package parquetarchive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	lookoutv1 "github.com/lookout-ml/lookout/proto/lookout/v1"
)

func ptr(f float64) *float64 { return &f }

func ts(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixNano()
}

// samples covers every column and value type, nulls, zero values and a
// feature whose type changes.
func samples() []*event.Prediction {
	return []*event.Prediction{
		{ // every field, numeric prediction
			Id: "a", RequestId: "req-1", Model: "churn", Version: "v1", Role: "production",
			TsUnixNano: proto.Int64(ts("2026-11-24T10:00:00.123456Z")),
			Features: map[string]*event.Value{
				"age": event.Number(42), "plan": event.Text("pro"), "trial": event.Flag(true), "income": event.Null(),
			},
			Prediction: event.Number(0.83), Confidence: ptr(0.91),
			Scores:    map[string]float64{"churn": 0.83, "stay": 0.17},
			LatencyMs: ptr(12.5), Tags: map[string]string{"region": "eu", "tier": ""},
			Embeddings: map[string]*lookoutv1.Embedding{"text": {Values: []float64{0.12, -0.4, 0}}, "img": {Values: []float64{1}}},
		},
		{ // zero values stay zero, not null; a label prediction
			Id: "b", Model: "churn", Version: "v1", Role: "canary",
			TsUnixNano: proto.Int64(ts("2026-11-24T10:00:01Z")),
			Features:   map[string]*event.Value{"age": event.Number(0), "plan": event.Text(""), "trial": event.Flag(false)},
			Prediction: event.Text("stay"), Confidence: ptr(0), LatencyMs: ptr(0),
			Scores:     map[string]float64{"churn": 0},
			Embeddings: map[string]*lookoutv1.Embedding{"text": {Values: []float64{0, 0, 5}}},
		},
		{ // no optional field at all, no features
			Id: "c", Model: "churn", Version: "v2", Role: "shadow",
			TsUnixNano: proto.Int64(ts("2026-11-24T10:00:02Z")),
			Prediction: event.Number(-1.5e-9),
		},
		{ // age changes type to a string, trial to a number
			Id: "d", Model: "churn", Version: "v2", Role: "production",
			TsUnixNano: proto.Int64(ts("2026-11-24T10:00:03Z")),
			Features:   map[string]*event.Value{"age": event.Text("unknown"), "trial": event.Number(1)},
			Prediction: event.Number(1),
		},
	}
}

// normalise drops null features, which the archive does not tell apart
// from absent ones, and truncates ts to microseconds.
func normalise(p *event.Prediction) *event.Prediction {
	p = proto.Clone(p).(*event.Prediction)
	for name, v := range p.Features {
		if v.GetKind() == nil || v.GetNull() {
			delete(p.Features, name)
		}
	}
	if len(p.Features) == 0 {
		p.Features = nil
	}
	p.TsUnixNano = proto.Int64(floorDiv(p.GetTsUnixNano(), 1000) * 1000)
	return p
}

func readAll(t *testing.T, paths []string, opts ReadOptions) []*event.Prediction {
	t.Helper()
	var got []*event.Prediction
	if err := ReadFiles(context.Background(), paths, opts, func(p *event.Prediction) error {
		got = append(got, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.parquet")
	rows := samples()
	stats, err := WriteFile(path, rows, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Rows != 4 || stats.TypeConflicts != 2 || stats.Bytes == 0 {
		t.Errorf("stats = %+v, want 4 rows and 2 type conflicts", stats)
	}
	got := readAll(t, []string{path}, ReadOptions{})
	if len(got) != len(rows) {
		t.Fatalf("read %d rows, want %d", len(got), len(rows))
	}
	for i := range rows {
		want := normalise(rows[i])
		if !proto.Equal(got[i], want) {
			t.Errorf("row %d:\n got %v\nwant %v", i, got[i], want)
		}
	}
}

func TestSchemaColumns(t *testing.T) {
	var buf bytes.Buffer
	if _, err := Encode(&buf, samples()); err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, path := range pf.Schema().Columns() {
		col, _ := pf.Schema().Lookup(path...)
		cols = append(cols, strings.Join(path, ".")+":"+col.Node.Type().String())
	}
	got := strings.Join(cols, " ")
	for _, want := range []string{
		"features.age:DOUBLE", "features.age__string:STRING", "features.trial:BOOLEAN",
		"features.trial__double:DOUBLE", "features.plan:STRING", "features.income:DOUBLE",
		"ts:TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)", "scores.key_value.value:DOUBLE",
		"tags.key_value.value:STRING", "prediction_label:STRING", "prediction_value:DOUBLE",
		"embeddings.text.list.element:DOUBLE", "embeddings.img.list.element:DOUBLE",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("schema lacks %s; columns: %s", want, got)
		}
	}
	if meta, _ := pf.Lookup(MetaFeatureColumns); !strings.Contains(meta, `"age__string":"age"`) {
		t.Errorf("metadata %s = %q, want it to map age__string to age", MetaFeatureColumns, meta)
	}
}

func TestTypeConflictChoosesMajority(t *testing.T) {
	// Two strings and one number: the main leaf is a string.
	rows := []*event.Prediction{
		{Id: "1", Model: "m", Version: "v", Role: "production", TsUnixNano: proto.Int64(1e18), Prediction: event.Number(1), Features: map[string]*event.Value{"x": event.Number(3)}},
		{Id: "2", Model: "m", Version: "v", Role: "production", TsUnixNano: proto.Int64(1e18), Prediction: event.Number(1), Features: map[string]*event.Value{"x": event.Text("a")}},
		{Id: "3", Model: "m", Version: "v", Role: "production", TsUnixNano: proto.Int64(1e18), Prediction: event.Number(1), Features: map[string]*event.Value{"x": event.Text("b"), "x__double": event.Flag(true)}},
	}
	lay, err := planLayout(rows)
	if err != nil {
		t.Fatal(err)
	}
	leaves := lay.byFeature["x"]
	if len(leaves) != 2 || leaves[0].typ != TypeString || leaves[1].typ != TypeDouble || leaves[1].leaf != "x__double_" {
		t.Fatalf("leaves of x = %+v %+v, want string main leaf and double leaf x__double_ (the name x__double is a feature)", *leaves[0], *leaves[1])
	}
	path := filepath.Join(t.TempDir(), "f.parquet")
	if _, err := WriteFile(path, rows, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, []string{path}, ReadOptions{})
	for i := range rows {
		if !proto.Equal(got[i], normalise(rows[i])) {
			t.Errorf("row %d: got %v, want %v", i, got[i], rows[i])
		}
	}
}

func TestSplitByDateAtMidnight(t *testing.T) {
	mk := func(id, at string) *event.Prediction {
		return &event.Prediction{Id: id, TsUnixNano: proto.Int64(ts(at))}
	}
	rows := []*event.Prediction{
		mk("1", "2026-11-24T23:59:59.999Z"), mk("2", "2026-11-25T00:00:00Z"), mk("3", "2026-11-24T23:00:00Z"),
	}
	got := SplitByDate(rows)
	if len(got) != 2 {
		t.Fatalf("got %d dates, want 2", len(got))
	}
	if d := got[0].Date.Format(time.DateOnly); d != "2026-11-24" || len(got[0].Rows) != 2 || got[0].Rows[0].Id != "1" || got[0].Rows[1].Id != "3" {
		t.Errorf("first date %s with %d rows, want 2026-11-24 with rows 1, 3", d, len(got[0].Rows))
	}
	if d := got[1].Date.Format(time.DateOnly); d != "2026-11-25" || len(got[1].Rows) != 1 {
		t.Errorf("second date %s with %d rows, want 2026-11-25 with 1", d, len(got[1].Rows))
	}
	if dir := Dir("/a", "churn", got[1].Date); dir != "/a/model=churn/date=2026-11-25" {
		t.Errorf("Dir = %s", dir)
	}
	first, last := TimeRange(got[0].Rows)
	// The name's end is rounded up: the row at 23:59:59.999 lies within it.
	if name := FileName(first, last, 7); name != "20261124T230000Z_20261125T000000Z_0000000007.parquet" {
		t.Errorf("FileName = %s", name)
	}
}

func TestWriteFileIsAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model=m", "date=2026-11-24")
	path := filepath.Join(dir, "w.parquet")
	// Before the rename, the complete file exists only under a temporary
	// name that a *.parquet glob does not match.
	var sawTemp bool
	_, err := WriteFile(path, samples(), WriteOptions{BeforeRename: func() error {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("final name exists before the rename: %v", err)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), TempPrefix) && !strings.HasSuffix(e.Name(), ".parquet") {
				sawTemp = true
				if _, err := Open(filepath.Join(dir, e.Name())); err != nil {
					t.Errorf("temporary file is not complete before the rename: %v", err)
				}
			}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !sawTemp {
		t.Error("no temporary file before the rename")
	}
	// A write that fails before the rename leaves neither name behind.
	failed := filepath.Join(dir, "x.parquet")
	boom := errors.New("boom")
	if _, err := WriteFile(failed, samples(), WriteOptions{BeforeRename: func() error { return boom }}); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "w.parquet" {
		t.Errorf("folder holds %v, want only w.parquet", entries)
	}
	// An existing file is never replaced.
	if _, err := WriteFile(path, samples(), WriteOptions{}); !errors.Is(err, os.ErrExist) {
		t.Errorf("overwrite: err = %v, want ErrExist", err)
	}
	// Leftover temporary files are found and removed.
	if err := os.WriteFile(filepath.Join(dir, TempPrefix+"y.parquet-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := RemoveTemp(filepath.Dir(dir)); err != nil || n != 1 {
		t.Errorf("RemoveTemp = %d, %v; want 1", n, err)
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "a-good.parquet")
	if _, err := WriteFile(good, samples(), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	var other bytes.Buffer
	type wrong struct {
		Name  string  `parquet:"name"`
		Score float64 `parquet:"score"`
	}
	if err := parquet.Write(&other, []wrong{{"x", 1}}); err != nil {
		t.Fatal(err)
	}
	var badTS bytes.Buffer
	type badTime struct {
		ID         string  `parquet:"id"`
		Model      string  `parquet:"model"`
		Version    string  `parquet:"version"`
		TS         string  `parquet:"ts"`
		Prediction float64 `parquet:"prediction_value"`
	}
	if err := parquet.Write(&badTS, []badTime{{"1", "m", "v", "yesterday", 1}}); err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"b-text.parquet":      []byte("id,model\n1,m\n"),                     // not Parquet at all
		"c-truncated.parquet": data[:len(data)/2],                            // cut in the middle
		"d-empty.parquet":     nil,                                           // zero bytes
		"e-schema.parquet":    other.Bytes(),                                 // Parquet, but not an archive file
		"f-ts.parquet":        badTS.Bytes(),                                 // ts is a string
		"g-tail.parquet":      append(data[:100:100], data[len(data)-8:]...), // footer magic, garbage inside
	}
	for name, b := range bad {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var failed []string
	got := 0
	err := ReadFiles(context.Background(), []string{dir}, ReadOptions{OnFileError: func(err *FileError) error {
		if !strings.Contains(err.Error(), err.Path) {
			t.Errorf("error %q does not name the file", err)
		}
		failed = append(failed, filepath.Base(err.Path))
		return nil
	}}, func(*event.Prediction) error { got++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got != 4 {
		t.Errorf("read %d rows from the good file, want 4", got)
	}
	if len(failed) != len(bad) {
		t.Errorf("bad files reported: %v, want all of %d", failed, len(bad))
	}
	// Without OnFileError the first bad file ends the read, named.
	err = ReadFiles(context.Background(), []string{dir}, ReadOptions{}, func(*event.Prediction) error { return nil })
	var fe *FileError
	if !errors.As(err, &fe) || !strings.HasSuffix(fe.Path, "b-text.parquet") {
		t.Errorf("err = %v, want a FileError for b-text.parquet", err)
	}
	if _, err := Open(filepath.Join(dir, "e-schema.parquet")); !errors.Is(err, ErrSchema) {
		t.Errorf("wrong schema: err = %v, want ErrSchema", err)
	}
}

func TestFiltersAndPaths(t *testing.T) {
	root := t.TempDir()
	base := ts("2026-11-24T22:00:00Z")
	write := func(model string, day time.Time, n int) {
		var rows []*event.Prediction
		for i := range n {
			rows = append(rows, &event.Prediction{
				Id: fmt.Sprintf("%s-%s-%d", model, day.Format("0102"), i), Model: model, Version: "v", Role: "production",
				TsUnixNano: proto.Int64(day.UnixNano() + int64(i)*int64(time.Hour)), Prediction: event.Number(float64(i)),
			})
		}
		if _, err := WriteFile(filepath.Join(Dir(root, model, day), FileName(day, day, 1)), rows, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	d1 := time.Unix(0, base).UTC().Truncate(24 * time.Hour)
	d2 := d1.Add(24 * time.Hour)
	write("a", d1, 3)
	write("a", d2, 3)
	write("b", d1, 2)
	// A temporary file and a non-Parquet file are not picked up.
	_ = os.WriteFile(filepath.Join(Dir(root, "a", d1), TempPrefix+"z.parquet-1"), nil, 0o644)
	_ = os.WriteFile(filepath.Join(root, "README.txt"), nil, 0o644)
	files, err := ExpandPaths([]string{root})
	if err != nil || len(files) != 3 {
		t.Fatalf("ExpandPaths = %v, %v; want 3 files", files, err)
	}
	cases := []struct {
		name string
		opts ReadOptions
		want int
	}{
		{"everything", ReadOptions{}, 8},
		{"one model", ReadOptions{Model: "a"}, 6},
		{"from the second day", ReadOptions{From: d2}, 3},
		{"to the second day, exclusive", ReadOptions{To: d2}, 5},
		{"one hour of one day", ReadOptions{From: d1.Add(time.Hour), To: d1.Add(2 * time.Hour)}, 2},
		{"model and range", ReadOptions{Model: "b", From: d2}, 0},
	}
	for _, c := range cases {
		if got := len(readAll(t, []string{root}, c.opts)); got != c.want {
			t.Errorf("%s: %d rows, want %d", c.name, got, c.want)
		}
	}
	if _, err := ExpandPaths([]string{filepath.Join(root, "missing")}); err == nil {
		t.Error("a missing path is not an error")
	}
}

// A file's name spans its rows: the start rounded down, the end rounded
// up to the second, so that no row's ts lies after the name's end (it
// once was truncated: 235959Z for a row at 23:59:59.7).
func TestFileNameSpansRows(t *testing.T) {
	at := func(s string) *event.Prediction { return &event.Prediction{TsUnixNano: proto.Int64(ts(s))} }
	for _, c := range []struct {
		rows []*event.Prediction
		want string
	}{
		{[]*event.Prediction{at("2026-11-24T10:00:00.3Z"), at("2026-11-24T10:05:07.7Z")}, "20261124T100000Z_20261124T100508Z_0000000001.parquet"},
		{[]*event.Prediction{at("2026-11-24T10:00:00Z"), at("2026-11-24T10:05:07Z")}, "20261124T100000Z_20261124T100507Z_0000000001.parquet"},
		{[]*event.Prediction{at("2026-11-24T23:59:59.7Z")}, "20261124T235959Z_20261125T000000Z_0000000001.parquet"},
	} {
		first, last := TimeRange(c.rows)
		name := FileName(first, last, 1)
		if name != c.want {
			t.Errorf("FileName = %s, want %s", name, c.want)
		}
		parts := strings.Split(name, "_")
		start, err1 := time.Parse(TimeFormat, parts[0])
		end, err2 := time.Parse(TimeFormat, parts[1])
		if err1 != nil || err2 != nil {
			t.Fatalf("name %s: %v %v", name, err1, err2)
		}
		for _, r := range c.rows {
			if at := event.Time(r); at.Before(start) || at.After(end) {
				t.Errorf("row at %v outside its file's name %s", at, name)
			}
		}
	}
}
