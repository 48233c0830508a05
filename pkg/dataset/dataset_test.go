package dataset

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoadCSV checks the CSV rules: prediction and confidence are those
// fields, metadata columns are not features, a column of numbers is
// numerical, anything else categorical, and an empty cell is null.
func TestLoadCSV(t *testing.T) {
	path := writeFile(t, "data.csv", "id,model,version,role,ts,latency_ms,request_id,age,plan,code,trial,prediction,confidence\n"+
		"a,churn,v1,production,2026-11-24T10:00:00Z,3,r1,42,pro,7,true,0.8,0.9\n"+
		"b,churn,v1,production,2026-11-24T10:00:01Z,4,r2,,basic,x9,false,0.2,\n"+
		"c,other,v1,production,2026-11-24T10:00:02Z,5,r3,30.5,,8,true,0.5,0.4\n")
	d, info, err := Load(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Rows != 3 || info.Rows != 3 || info.Format != FormatCSV {
		t.Fatalf("rows %d, info %+v", d.Rows, info)
	}
	if want := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC); !info.First.Equal(want) || !info.Last.Equal(want.Add(2*time.Second)) {
		t.Errorf("times %v to %v", info.First, info.Last)
	}
	var names []string
	for n := range d.Features {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"age", "code", "plan", "trial"}; !slices.Equal(names, want) {
		t.Fatalf("features %v, want %v", names, want)
	}
	cases := []struct {
		name    string
		kind    string
		nums    []float64
		strs    []string
		nulls   int
		comment string
	}{
		{"age", driftreport.KindNumerical, []float64{42, 30.5}, nil, 1, "numbers with an empty cell: numerical, one null"},
		{"code", driftreport.KindNumerical, []float64{7, 8}, []string{"x9"}, 0, "mostly numbers: numerical, the text a stray kept apart"},
		{"plan", driftreport.KindCategorical, nil, []string{"pro", "basic"}, 1, "text with an empty cell"},
		{"trial", driftreport.KindCategorical, nil, []string{"true", "false", "true"}, 0, "booleans are categories"},
	}
	for _, c := range cases {
		col := d.Features[c.name]
		if col.Kind() != c.kind || !slices.Equal(col.Numbers, c.nums) || !slices.Equal(col.Strings, c.strs) || col.Nulls != c.nulls {
			t.Errorf("%s (%s): kind %s, numbers %v, strings %v, nulls %d", c.name, c.comment, col.Kind(), col.Numbers, col.Strings, col.Nulls)
		}
	}
	if !slices.Equal(d.Prediction.Numbers, []float64{0.8, 0.2, 0.5}) || !slices.Equal(d.Confidence.Numbers, []float64{0.9, 0.4}) {
		t.Errorf("prediction %v, confidence %v", d.Prediction.Numbers, d.Confidence.Numbers)
	}

	// The model filter keeps that model's rows.
	d, _, err = Load(context.Background(), path, Options{Model: "churn"})
	if err != nil {
		t.Fatal(err)
	}
	// Within churn's rows, code is one number and one text: no majority of
	// numbers, so every cell is a category as written.
	if d.Rows != 2 || !slices.Equal(d.Features["code"].Strings, []string{"7", "x9"}) {
		t.Errorf("filtered: rows %d, code %v", d.Rows, d.Features["code"].Strings)
	}
}

// TestLoadErrorsNameTheFile checks that every unreadable input is an error
// that names the file.
func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	headerOnly := writeFile(t, "header.csv", "a,b\n")
	cases := []struct {
		name, path string
		want       string
	}{
		// a missing file
		{"missing", filepath.Join(dir, "nope.csv"), "no such file"},
		// a CSV whose rows have the wrong number of cells
		{"ragged", writeFile(t, "ragged.csv", "a,b\n1,2\n3\n"), "wrong number of fields"},
		// a bad confidence
		{"confidence", writeFile(t, "conf.csv", "a,confidence\n1,high\n"), `confidence "high" is not a number`},
		// an empty file
		{"empty", writeFile(t, "empty.csv", ""), "empty file"},
		// only a header
		{"no rows", headerOnly, "no rows"},
		// a file named .parquet that is not Parquet
		{"not parquet", writeFile(t, "bad.parquet", "hello"), "Parquet"},
	}
	for _, c := range cases {
		_, _, err := Load(context.Background(), c.path, Options{})
		if err == nil || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %s and saying %q", c.name, err, c.path, c.want)
		}
	}
	if _, _, err := Load(context.Background(), headerOnly, Options{}); !errors.Is(err, ErrNoRows) {
		t.Errorf("no rows: %v, want ErrNoRows", err)
	}
}

func archiveRows() []*event.Prediction {
	conf := 0.7
	ts := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC).UnixNano()
	var rows []*event.Prediction
	for i := range 50 {
		p := &event.Prediction{
			Id: string(rune('a' + i%26)), Model: "churn", Version: "v1", Role: "production", TsUnixNano: proto.Int64(ts + int64(i)*1e9),
			Features: map[string]*event.Value{
				"age": event.Number(float64(i)), "plan": event.Text([]string{"basic", "pro"}[i%2]), "trial": event.Flag(i%3 == 0),
			},
			Prediction: event.Number(float64(i) / 50), Confidence: &conf,
		}
		if i%5 == 0 {
			p.Features["age"] = event.Null()
		}
		if i%7 == 0 {
			delete(p.Features, "plan")
		}
		rows = append(rows, p)
	}
	return rows
}

// TestLoadParquetMatchesRows checks that the column reader gives the same
// dataset as adding the archive reader's predictions row by row, for a file
// and for an archive folder with another model in it.
func TestLoadParquetMatchesRows(t *testing.T) {
	root := t.TempDir()
	rows := archiveRows()
	file := filepath.Join(parquetarchive.Dir(root, "churn", time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)), "w1.parquet")
	if _, err := parquetarchive.WriteFile(file, rows, parquetarchive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	other := archiveRows()
	for _, p := range other {
		p.Model = "other"
		p.Features["age"] = event.Number(1000)
	}
	if _, err := parquetarchive.WriteFile(filepath.Join(parquetarchive.Dir(root, "other", time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)), "w1.parquet"), other, parquetarchive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := driftreport.NewDataset(driftreport.SampleOptions{})
	for _, p := range rows {
		if err := want.Add(RowOf(p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		path string
		opts Options
	}{
		{"file", file, Options{}},
		{"folder filtered by model", root, Options{Model: "churn"}},
	} {
		got, info, err := Load(context.Background(), c.path, c.opts)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if info.Format != FormatParquet || got.Rows != want.Rows || !info.First.Equal(event.Time(rows[0])) || !info.Last.Equal(event.Time(rows[len(rows)-1])) {
			t.Errorf("%s: rows %d, info %+v", c.name, got.Rows, info)
		}
		sameDataset(t, c.name, got, want)
	}
	// Without the filter, the folder holds both models.
	got, _, err := Load(context.Background(), root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Rows != 100 {
		t.Errorf("whole folder: %d rows, want 100", got.Rows)
	}
}

func sameDataset(t *testing.T, name string, got, want *driftreport.Dataset) {
	t.Helper()
	if len(got.Features) != len(want.Features) {
		t.Fatalf("%s: %d features, want %d", name, len(got.Features), len(want.Features))
	}
	sameColumn := func(what string, g, w *driftreport.Column) {
		gn, wn := slices.Sorted(slices.Values(g.Numbers)), slices.Sorted(slices.Values(w.Numbers))
		gs, ws := slices.Sorted(slices.Values(g.Strings)), slices.Sorted(slices.Values(w.Strings))
		if g.Kind() != w.Kind() || !slices.Equal(gn, wn) || !slices.Equal(gs, ws) || g.Seen != w.Seen {
			t.Errorf("%s: %s: kind %s/%s, numbers %v/%v, strings %v/%v, seen %d/%d", name, what,
				g.Kind(), w.Kind(), gn, wn, gs, ws, g.Seen, w.Seen)
		}
	}
	for n, w := range want.Features {
		sameColumn(n, got.Features[n], w)
	}
	sameColumn("prediction", got.Prediction, want.Prediction)
	sameColumn("confidence", got.Confidence, want.Confidence)
	// Nulls as the report sees them: identical reports.
	a, b := driftreport.Compare(want, got, driftreport.Options{}), driftreport.Compare(want, want, driftreport.Options{})
	if a.DataQuality.Features["age"].NullShare != b.DataQuality.Features["age"].NullShare ||
		a.DataQuality.Features["plan"].NullShare != b.DataQuality.Features["plan"].NullShare {
		t.Errorf("%s: null shares differ: %+v vs %+v", name, a.DataQuality.Features, b.DataQuality.Features)
	}
}

// TestEncodeRoundTrip checks that a stored dataset reads back the same,
// sample and counts included.
func TestEncodeRoundTrip(t *testing.T) {
	d := driftreport.NewDataset(driftreport.SampleOptions{Cap: 10})
	for _, p := range archiveRows() {
		if err := d.Add(RowOf(p)); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := Encode(&buf, d); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&buf, driftreport.SampleOptions{Cap: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got.Rows != d.Rows || !got.Sampled() || got.Features["age"].Nulls != d.Features["age"].Nulls {
		t.Errorf("rows %d/%d, sampled %v, age nulls %d/%d", got.Rows, d.Rows, got.Sampled(), got.Features["age"].Nulls, d.Features["age"].Nulls)
	}
	sameDataset(t, "round trip", got, d)
	r := driftreport.Compare(d, got, driftreport.Options{})
	if r.DatasetDrifted || r.Features["age"].Score != 1 || math.IsNaN(r.DriftShare) {
		t.Errorf("a dataset against its copy: drifted %v, age score %v", r.DatasetDrifted, r.Features["age"].Score)
	}
	if _, err := Decode(bytes.NewReader([]byte("junk")), driftreport.SampleOptions{}); err == nil {
		t.Error("junk decoded")
	}
}

// TestLoadCSVTags: tag.<name> columns are the rows' tags, in the row
// sample that root cause reads, not features; an empty cell is no tag.
func TestLoadCSVTags(t *testing.T) {
	path := writeFile(t, "tags.csv", "age,tag.region,tag.tier,prediction,score.churn\n"+
		"42,eu,gold,1,0.9\n"+
		"30,us,,0,0.2\n"+
		"25,,,1,0.7\n")
	d, _, err := Load(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range d.Features {
		names = append(names, n)
	}
	if !slices.Equal(names, []string{"age"}) {
		t.Errorf("features %v, want [age] (score.<class> is a score, as publish reads it)", names)
	}
	if d.Sample == nil || len(d.Sample.Rows) != 3 {
		t.Fatalf("row sample %+v, want 3 rows", d.Sample)
	}
	want := []map[string]string{{"region": "eu", "tier": "gold"}, {"region": "us"}, nil}
	for i, row := range d.Sample.Rows {
		if !maps.Equal(row.Tags, want[i]) {
			t.Errorf("row %d: tags %v, want %v", i, row.Tags, want[i])
		}
	}
}
