package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
)

// driftJSON is the part of a report these tests read.
type driftJSON struct {
	Reference struct {
		Count int `json:"count"`
	} `json:"reference"`
	Window struct {
		Count int `json:"count"`
	} `json:"window"`
	Features map[string]struct {
		Kind    string
		Drifted bool
	} `json:"features"`
	Prediction *struct {
		Kind          string  `json:"kind"`
		JensenShannon float64 `json:"jensen_shannon"`
		PSI           float64 `json:"psi"`
		Note          string  `json:"note"`
	} `json:"prediction"`
	DataQuality struct {
		Features map[string]struct {
			TypeMismatches    int     `json:"type_mismatches"`
			TypeMismatchShare float64 `json:"type_mismatch_share"`
		} `json:"features"`
	} `json:"data_quality"`
}

func driftReport(t *testing.T, args ...string) driftJSON {
	t.Helper()
	code, out, errOut := runLookout(t, append([]string{"drift", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, errOut)
	}
	var r driftJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return r
}

// An archive folder of a canary rollout used as the reference: by default
// only its production rows count, so the canary's shifted inputs do not
// move the reference; JSON lines of prediction events are a current data
// set, their canary lines left out too; --role all mixes every row.
func TestDriftCommandRoleAndJSONL(t *testing.T) {
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(9, 9))
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var rows []*event.Prediction
	production := 0
	for i := range 600 {
		role, x := event.RoleProduction, 10+rng.NormFloat64()
		if i%3 == 0 {
			role, x = event.RoleCanary, 50+rng.NormFloat64()
		} else {
			production++
		}
		rows = append(rows, &event.Prediction{Id: fmt.Sprint(i), Model: "m", Version: "v1", Role: role,
			TsUnixNano: proto.Int64(start.Add(time.Duration(i) * time.Second).UnixNano()),
			Features:   map[string]*event.Value{"x": event.Number(x)}, Prediction: event.Text([]string{"stay", "leave"}[i%2])})
	}
	if _, err := parquetarchive.WriteFile(filepath.Join(parquetarchive.Dir(root, "m", start), "w.parquet"), rows, parquetarchive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range 400 {
		fmt.Fprintf(&b, `{"model":"m","version":"v1","ts":"2026-11-24T11:%02d:%02dZ","features":{"x":%v},"prediction":%q,"tags":{"region":"eu"}}`+"\n",
			i/60, i%60, 10+rng.NormFloat64(), []string{"stay", "leave"}[i%2])
	}
	b.WriteString(`{"model":"m","version":"v2","role":"canary","features":{"x":99},"prediction":"leave"}` + "\n")
	cur := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(cur, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	r := driftReport(t, "--reference", root, "--current", cur)
	if r.Reference.Count != production || r.Window.Count != 400 {
		t.Errorf("counts: reference %d (want %d production rows), window %d (want 400)", r.Reference.Count, production, r.Window.Count)
	}
	if fd := r.Features["x"]; fd.Kind != "numerical" || fd.Drifted {
		t.Errorf("x = %+v, want numerical and not drifted", fd)
	}
	if r.Prediction == nil || r.Prediction.Kind != "categorical" {
		t.Errorf("prediction %+v, want categorical", r.Prediction)
	}

	all := driftReport(t, "--reference", root, "--current", cur, "--role", "all")
	if all.Reference.Count != 600 || all.Window.Count != 401 || !all.Features["x"].Drifted {
		t.Errorf("--role all: reference %d, window %d, x %+v; want 600, 401, drifted", all.Reference.Count, all.Window.Count, all.Features["x"])
	}
	canary := driftReport(t, "--reference", root, "--current", cur, "--role", "canary")
	if canary.Reference.Count != 200 || canary.Window.Count != 1 {
		t.Errorf("--role canary: reference %d, window %d", canary.Reference.Count, canary.Window.Count)
	}
	if code, _, errOut := runLookout(t, "drift", "--reference", root, "--current", cur, "--role", "staging"); code != 2 || !strings.Contains(errOut, "--role") {
		t.Errorf("--role staging: exit %d, %s", code, errOut)
	}
}

// Class labels are categories in CSV as in the archive: a CSV with the
// archive's prediction_label column (as exported from it) gives the same
// prediction figures as the Parquet file, labels that read as numbers
// included; and a bare prediction column with any text is labels, never a
// numerical prediction with stray texts.
func TestDriftCommandCSVLabelsAsParquet(t *testing.T) {
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 3))
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var rows []*event.Prediction
	var exported, bare strings.Builder
	exported.WriteString("ts,x,prediction_value,prediction_label\n")
	bare.WriteString("ts,x,prediction\n")
	for i := range 300 {
		label := []string{"0", "1", "1", "2"}[rng.IntN(4)]
		x := float64(rng.IntN(1000)) / 8
		ts := start.Add(time.Duration(i) * time.Second)
		rows = append(rows, &event.Prediction{Id: fmt.Sprint(i), Model: "m", Version: "v1", Role: event.RoleProduction,
			TsUnixNano: proto.Int64(ts.UnixNano()), Features: map[string]*event.Value{"x": event.Number(x)}, Prediction: event.Text(label)})
		fmt.Fprintf(&exported, "%s,%v,,%s\n", ts.Format(time.RFC3339), x, label)
		if i == 7 {
			label = "unsure"
		}
		fmt.Fprintf(&bare, "%s,%v,%s\n", ts.Format(time.RFC3339), x, label)
	}
	if _, err := parquetarchive.WriteFile(filepath.Join(parquetarchive.Dir(root, "m", start), "w.parquet"), rows, parquetarchive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	exportedPath, barePath := write("exported.csv", exported.String()), write("bare.csv", bare.String())
	if p := driftReport(t, "--reference", exportedPath, "--current", root).Prediction; p == nil || p.Kind != "categorical" || p.Note != "" || p.JensenShannon != 0 || p.PSI != 0 {
		t.Errorf("exported CSV labels against the same Parquet labels: %+v, want categorical, no note, identical", p)
	}
	if p := driftReport(t, "--reference", barePath, "--current", root).Prediction; p == nil || p.Kind != "categorical" || p.Note != "" {
		t.Errorf("bare CSV labels against Parquet labels: %+v, want categorical, no note", p)
	}
}

// One stray text among a CSV feature's numbers: the feature stays
// numerical and does not drift, and the report's data quality carries the
// type-mismatch share for the type_mismatch rule.
func TestDriftCommandStrayText(t *testing.T) {
	write := func(name string, seed uint64, stray bool) string {
		rng := rand.New(rand.NewPCG(seed, 1))
		var b strings.Builder
		b.WriteString("x,prediction\n")
		for i := range 2000 {
			if stray && i == 100 {
				b.WriteString("unknown,0.5\n")
				continue
			}
			fmt.Fprintf(&b, "%.4f,%.3f\n", 5+rng.NormFloat64(), rng.Float64())
		}
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	r := driftReport(t, "--reference", write("ref.csv", 1, false), "--current", write("cur.csv", 2, true))
	if fd := r.Features["x"]; fd.Kind != "numerical" || fd.Drifted {
		t.Errorf("x = %+v, want numerical, not drifted", fd)
	}
	if q := r.DataQuality.Features["x"]; q.TypeMismatches != 1 || q.TypeMismatchShare != 1.0/2000 {
		t.Errorf("quality %+v, want 1 mismatch, share 0.0005", q)
	}
}
