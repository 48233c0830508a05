package dataset

import (
	"bytes"
	"context"
	"encoding/gob"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
)

// TestLoadJSONL checks JSON lines of prediction events: detected by name or
// by content, decoded as ingest does (embeddings and tags accepted, model
// and role defaulted), filtered by model and role, and a bad line named.
func TestLoadJSONL(t *testing.T) {
	text := `{"model":"churn","version":"v1","ts":"2026-11-24T10:00:00Z","features":{"age":42,"plan":"pro"},"prediction":"stay","confidence":0.9,"tags":{"region":"eu"},"embeddings":{"text":[0.1,0.2]}}
{"model":"churn","version":"v1","role":"canary","ts":"2026-11-24T10:00:01Z","features":{"age":1000,"plan":"x"},"prediction":"leave"}

{"model":"other","version":"v1","features":{"age":7},"prediction":"stay"}
{"version":"v1","ts":"2026-11-24T10:00:02Z","features":{"age":30,"plan":"basic"},"prediction":"leave","confidence":0.4}
`
	for _, name := range []string{"events.jsonl", "events.txt"} {
		path := writeFile(t, name, text)
		d, info, err := Load(context.Background(), path, Options{Model: "churn", Role: event.RoleProduction})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if info.Format != FormatJSONL || d.Rows != 2 {
			t.Fatalf("%s: format %s, rows %d, want jsonl and 2 (canary and other model left out)", name, info.Format, d.Rows)
		}
		if !slices.Equal(d.Features["age"].Numbers, []float64{42, 30}) || !slices.Equal(d.Features["plan"].Strings, []string{"pro", "basic"}) {
			t.Errorf("%s: age %v, plan %v", name, d.Features["age"].Numbers, d.Features["plan"].Strings)
		}
		if d.Prediction.Kind() != driftreport.KindCategorical || !slices.Equal(d.Prediction.Strings, []string{"stay", "leave"}) ||
			!slices.Equal(d.Confidence.Numbers, []float64{0.9, 0.4}) {
			t.Errorf("%s: prediction %v, confidence %v", name, d.Prediction.Strings, d.Confidence.Numbers)
		}
		if want := time.Date(2026, 11, 24, 10, 0, 2, 0, time.UTC); !info.Last.Equal(want) {
			t.Errorf("%s: last %v, want %v", name, info.Last, want)
		}
	}
	// Without filters every row counts.
	d, _, err := Load(context.Background(), writeFile(t, "all.ndjson", text), Options{})
	if err != nil || d.Rows != 4 {
		t.Fatalf("all rows: %v, %v", d, err)
	}
	_, _, err = Load(context.Background(), writeFile(t, "bad.jsonl", text+`{"model":"churn","features":{"age":1}}`+"\n"), Options{})
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl: line 6") || !strings.Contains(err.Error(), "version") {
		t.Errorf("bad line: %v", err)
	}
}

// TestLoadRole checks the role filter on CSV and on archive Parquet (the
// column reader and the row reader), a row without a role being
// production.
func TestLoadRole(t *testing.T) {
	csvPath := writeFile(t, "roles.csv", "role,age,prediction\nproduction,1,0.5\ncanary,1000,0.9\n,2,0.4\n")
	d, _, err := Load(context.Background(), csvPath, Options{Role: event.RoleProduction})
	if err != nil {
		t.Fatal(err)
	}
	if d.Rows != 2 || !slices.Equal(d.Features["age"].Numbers, []float64{1, 2}) {
		t.Errorf("csv production: rows %d, age %v", d.Rows, d.Features["age"].Numbers)
	}
	d, _, err = Load(context.Background(), csvPath, Options{Role: event.RoleCanary})
	if err != nil || d.Rows != 1 || !slices.Equal(d.Features["age"].Numbers, []float64{1000}) {
		t.Errorf("csv canary: %v %v", d, err)
	}

	root := t.TempDir()
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	rows := archiveRows()
	for i, p := range rows {
		if i%2 == 1 {
			p.Role = event.RoleCanary
			p.Features["age"] = event.Number(1000)
		}
	}
	if _, err := parquetarchive.WriteFile(filepath.Join(parquetarchive.Dir(root, "churn", day), "w1.parquet"), rows, parquetarchive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Label predictions send the file to the row reader.
	labelled := archiveRows()
	for i, p := range labelled {
		p.Prediction = event.Text("stay")
		if i%2 == 1 {
			p.Role = event.RoleCanary
			p.Features["age"] = event.Number(1000)
		}
	}
	if _, err := parquetarchive.WriteFile(filepath.Join(parquetarchive.Dir(root, "churn", day), "w2.parquet"), labelled, parquetarchive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	d, _, err = Load(context.Background(), root, Options{Role: event.RoleProduction})
	if err != nil {
		t.Fatal(err)
	}
	if d.Rows != 50 || slices.Contains(d.Features["age"].Numbers, 1000) {
		t.Errorf("archive production: rows %d, ages %v", d.Rows, d.Features["age"].Numbers)
	}
	d, _, err = Load(context.Background(), root, Options{})
	if err != nil || d.Rows != 100 {
		t.Errorf("archive, every role: %v %v", d.Rows, err)
	}
}

// TestCSVPrediction checks that a prediction column with any text is class
// labels (numbers like "1" included), as a label prediction is in the
// archive, that prediction_label is labels whatever its cells, and that a
// numeric prediction stays numerical.
func TestCSVPrediction(t *testing.T) {
	tests := []struct {
		name, text string
		kind       string
		strs       []string
		nums       []float64
	}{
		{"labels", "age,prediction\n1,1\n2,0\n3,maybe\n", driftreport.KindCategorical, []string{"1", "0", "maybe"}, nil},
		{"numbers", "age,prediction\n1,0.5\n2,1\n", driftreport.KindNumerical, nil, []float64{0.5, 1}},
		{"archive names", "age,prediction_value,prediction_label\n1,,1\n2,,0\n3,,1\n", driftreport.KindCategorical, []string{"1", "0", "1"}, nil},
		{"archive value", "age,prediction_value,prediction_label\n1,0.25,\n2,,\n", driftreport.KindNumerical, nil, []float64{0.25}},
	}
	for _, tt := range tests {
		d, _, err := Load(context.Background(), writeFile(t, "p.csv", tt.text), Options{})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		p := d.Prediction
		if p.Kind() != tt.kind || !slices.Equal(p.Strings, tt.strs) || !slices.Equal(p.Numbers, tt.nums) {
			t.Errorf("%s: kind %s, strings %v, numbers %v", tt.name, p.Kind(), p.Strings, p.Numbers)
		}
		if _, ok := d.Features["prediction_label"]; ok {
			t.Errorf("%s: prediction_label read as a feature", tt.name)
		}
	}
	// The last case: one row without a prediction is a null, not two.
	d, _, _ := Load(context.Background(), writeFile(t, "p.csv", tests[3].text), Options{})
	if d.Prediction.Nulls != 1 {
		t.Errorf("prediction nulls %d, want 1", d.Prediction.Nulls)
	}
}

// TestEncodeStrays checks that a column's numbers and strays survive a
// round trip, and that a reference stored by the version 1 encoding (a
// categorical column's numbers already strings) reads back categorical.
func TestEncodeStrays(t *testing.T) {
	d := driftreport.NewDataset(driftreport.SampleOptions{})
	for _, v := range []any{1.0, 2.0, "n/a", 3.0} {
		if err := d.Add(driftreport.Row{Features: map[string]any{"x": v}}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := Encode(&buf, d); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&buf, driftreport.SampleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x := got.Features["x"]
	if x.Kind() != driftreport.KindNumerical || !slices.Equal(x.Numbers, []float64{1, 2, 3}) || !slices.Equal(x.Strings, []string{"n/a"}) ||
		x.Seen != 4 || x.StringsSeen != 1 || !x.Mixed {
		t.Errorf("round trip: %+v", x)
	}

	var old bytes.Buffer
	v1 := encodedDataset{Version: 1, Rows: 3, Features: map[string]encodedColumn{
		"x": {Categorical: true, Strings: []string{"1", "2", "a"}, Seen: 3, Mixed: true},
		"y": {Numbers: []float64{1, 2, 3}, Seen: 3},
	}}
	if err := gob.NewEncoder(&old).Encode(&v1); err != nil {
		t.Fatal(err)
	}
	got, err = Decode(&old, driftreport.SampleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if x, y := got.Features["x"], got.Features["y"]; x.Kind() != driftreport.KindCategorical || x.StringsSeen != 3 ||
		y.Kind() != driftreport.KindNumerical || y.StringsSeen != 0 || y.Seen != 3 {
		t.Errorf("version 1: x %+v, y %+v", x, y)
	}
}
