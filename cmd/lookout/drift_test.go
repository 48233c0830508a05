package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
)

// runLookout runs one lookout command in the process and returns its exit
// code, stdout and stderr.
func runLookout(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// driftCSV writes n rows of age (normal, mean ageMean), plan and a score.
func driftCSV(t *testing.T, name string, n int, seed uint64, ageMean float64) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	b.WriteString("id,ts,age,plan,prediction,confidence\n")
	for i := range n {
		fmt.Fprintf(&b, "r%d,2026-11-24T10:%02d:%02dZ,%.3f,%s,%.3f,%.3f\n", i, i/60%60, i%60,
			ageMean+10*rng.NormFloat64(), []string{"basic", "pro", "team"}[rng.IntN(3)], rng.Float64(), 0.5+0.5*rng.Float64())
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// `lookout drift --json` prints exactly the contract's report; drift found
// still exits 0.
func TestDriftCommandJSON(t *testing.T) {
	ref := driftCSV(t, "ref.csv", 500, 1, 40)
	cur := driftCSV(t, "cur.csv", 500, 2, 50)
	code, out, errOut := runLookout(t, "drift", "--reference", ref, "--current", cur, "--json", "--model", "churn")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	for _, key := range []string{"model", "window", "reference", "features", "prediction", "confidence", "drift_share", "dataset_drifted"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("report lacks %q", key)
		}
	}
	var r struct {
		Model  string `json:"model"`
		Window struct {
			Start, End time.Time
			Count      int
		} `json:"window"`
		Reference struct {
			Count  int    `json:"count"`
			Source string `json:"source"`
		} `json:"reference"`
		Features map[string]struct {
			Kind string `json:"kind"`
			KS   *struct {
				Statistic float64 `json:"statistic"`
				PValue    float64 `json:"p_value"`
			} `json:"ks"`
			Chi2 *struct {
				DOF int `json:"dof"`
			} `json:"chi2"`
			Method    string `json:"method"`
			Drifted   bool   `json:"drifted"`
			Histogram *struct {
				Edges      []float64 `json:"edges"`
				Categories []string  `json:"categories"`
				Reference  []float64 `json:"reference"`
				Current    []float64 `json:"current"`
			} `json:"histogram"`
		} `json:"features"`
		Confidence *struct {
			Mean float64 `json:"mean"`
		} `json:"confidence"`
		DriftShare     float64 `json:"drift_share"`
		DatasetDrifted bool    `json:"dataset_drifted"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Model != "churn" || r.Window.Count != 500 || r.Reference.Count != 500 || r.Reference.Source != ref {
		t.Errorf("model %q, window %+v, reference %+v", r.Model, r.Window, r.Reference)
	}
	if r.Window.Start.IsZero() || !r.Window.End.After(r.Window.Start) {
		t.Errorf("window times %v to %v, want the current data's ts range", r.Window.Start, r.Window.End)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range r.Features {
			if !yield(n) {
				return
			}
		}
	})
	if !slices.Equal(names, []string{"age", "plan"}) {
		t.Fatalf("features %v, want [age plan] (id and ts are metadata)", names)
	}
	age, plan := r.Features["age"], r.Features["plan"]
	if age.Kind != "numerical" || age.Method != "ks" || age.KS == nil || !age.Drifted {
		t.Errorf("age: %+v", age)
	}
	if plan.Kind != "categorical" || plan.Method != "chi2" || plan.Chi2 == nil || plan.Chi2.DOF != 2 || plan.Drifted {
		t.Errorf("plan: %+v", plan)
	}
	// Each feature's histogram: ten decile bins of age, the three plans.
	if h := age.Histogram; h == nil || len(h.Edges) != 9 || len(h.Reference) != 10 || len(h.Current) != 10 {
		t.Errorf("age histogram: %+v", h)
	}
	if h := plan.Histogram; h == nil || len(h.Categories) != 3 || len(h.Reference) != 3 || len(h.Current) != 3 {
		t.Errorf("plan histogram: %+v", h)
	}
	if r.DriftShare != 0.5 || !r.DatasetDrifted || r.Confidence == nil {
		t.Errorf("share %v, dataset drifted %v, confidence %v", r.DriftShare, r.DatasetDrifted, r.Confidence)
	}
}

// Without --json the table marks the drifted rows.
func TestDriftCommandTable(t *testing.T) {
	ref := driftCSV(t, "ref.csv", 300, 1, 40)
	cur := driftCSV(t, "cur.csv", 300, 2, 50)
	code, out, errOut := runLookout(t, "drift", "--reference", ref, "--current", cur)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(out, "\n")
	var ageLine, planLine string
	for _, l := range lines {
		f := strings.Fields(strings.TrimPrefix(l, "!"))
		if len(f) > 0 && f[0] == "age" {
			ageLine = l
		}
		if len(f) > 0 && f[0] == "plan" {
			planLine = l
		}
	}
	if !strings.HasPrefix(ageLine, "!") || !strings.Contains(ageLine, "yes") {
		t.Errorf("age row not marked drifted: %q\n%s", ageLine, out)
	}
	if strings.HasPrefix(planLine, "!") || !strings.Contains(planLine, "no") {
		t.Errorf("plan row marked drifted: %q", planLine)
	}
	if !strings.Contains(out, "dataset drifted: yes") {
		t.Errorf("no verdict:\n%s", out)
	}
}

// Archive Parquet files and folders are inputs too, and the same data
// read from CSV and Parquet gives the same figures.
func TestDriftCommandParquet(t *testing.T) {
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 5))
	var b strings.Builder
	b.WriteString("ts,x,prediction\n")
	var rows []*event.Prediction
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for i := range 400 {
		x := float64(rng.IntN(1000)) / 8 // exact in both forms
		ts := start.Add(time.Duration(i) * time.Second)
		rows = append(rows, &event.Prediction{Id: fmt.Sprint(i), Model: "m", Version: "v1", Role: "production",
			TsUnixNano: proto.Int64(ts.UnixNano()), Features: map[string]*event.Value{"x": event.Number(x)}, Prediction: event.Number(x / 1000)})
		fmt.Fprintf(&b, "%s,%v,%v\n", ts.Format(time.RFC3339), x, x/1000)
	}
	file := filepath.Join(parquetarchive.Dir(root, "m", start), "w.parquet")
	if _, err := parquetarchive.WriteFile(file, rows, parquetarchive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	csvPath := filepath.Join(t.TempDir(), "same.csv")
	if err := os.WriteFile(csvPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	reports := map[string]string{}
	for name, path := range map[string]string{"file": file, "folder": root, "csv": csvPath} {
		code, out, errOut := runLookout(t, "drift", "--reference", csvPath, "--current", path, "--json")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, errOut)
		}
		var r map[string]json.RawMessage
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		reports[name] = string(r["features"])
	}
	if reports["file"] != reports["csv"] || reports["folder"] != reports["csv"] {
		t.Errorf("figures differ:\nfile   %s\nfolder %s\ncsv    %s", reports["file"], reports["folder"], reports["csv"])
	}
}

// Bad calls exit 2, unreadable input exits 1 naming the file.
func TestDriftCommandErrors(t *testing.T) {
	ok := driftCSV(t, "ok.csv", 10, 1, 40)
	missing := filepath.Join(t.TempDir(), "missing.parquet")
	cases := []struct {
		args []string
		code int
		want string
	}{
		// --current missing
		{[]string{"drift", "--reference", ok}, 2, "both --reference and --current"},
		// a file that does not exist
		{[]string{"drift", "--reference", ok, "--current", missing}, 1, missing},
		// a reference that is not a data set
		{[]string{"drift", "--reference", filepath.Dir(missing), "--current", ok}, 1, "reference"},
	}
	for _, c := range cases {
		code, _, errOut := runLookout(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
}

// `lookout reference set/show/clear` keep a model's pinned reference in
// JetStream.
func TestReferenceCommand(t *testing.T) {
	ns := natstest.RunServer(t)
	url := ns.ClientURL()
	path := driftCSV(t, "pin.csv", 200, 1, 40)

	code, out, errOut := runLookout(t, "reference", "show", "--model", "churn", "--nats", url)
	if code != 0 || !strings.Contains(out, "no pinned reference") {
		t.Fatalf("show before set: exit %d, %q %q", code, out, errOut)
	}
	code, out, errOut = runLookout(t, "reference", "set", "--model", "churn", "--nats", url, path)
	if code != 0 || !strings.Contains(out, "200 rows, 2 features") {
		t.Fatalf("set: exit %d, %q %q", code, out, errOut)
	}
	code, out, _ = runLookout(t, "reference", "show", "--model", "churn", "--nats", url)
	if code != 0 || !strings.Contains(out, "200 rows") || !strings.Contains(out, path) {
		t.Errorf("show: exit %d, %q", code, out)
	}
	code, out, _ = runLookout(t, "reference", "clear", "--model", "churn", "--nats", url)
	if code != 0 || !strings.Contains(out, "unpinned") {
		t.Errorf("clear: exit %d, %q", code, out)
	}
	code, out, _ = runLookout(t, "reference", "show", "--model", "churn", "--nats", url)
	if code != 0 || !strings.Contains(out, "no pinned reference") {
		t.Errorf("show after clear: exit %d, %q", code, out)
	}
	// A bad file is reported before connecting, naming the file.
	code, _, errOut = runLookout(t, "reference", "set", "--model", "churn", "--nats", url, path+".nope")
	if code != 1 || !strings.Contains(errOut, path+".nope") {
		t.Errorf("set of a missing file: exit %d, %q", code, errOut)
	}
	code, _, _ = runLookout(t, "reference", "set", path)
	if code != 2 {
		t.Errorf("set without --model: exit %d, want 2", code)
	}
}

// `lookout reference set` pins only the production rows of PATH by
// default, as drift compares production traffic; --role picks another
// role, and "all" keeps every row.
func TestReferenceSetRole(t *testing.T) {
	ns := natstest.RunServer(t)
	url := ns.ClientURL()
	var b strings.Builder
	b.WriteString("id,role,age,prediction\n")
	for i := range 200 {
		role := []string{"production", "production", "", "canary"}[i%4] // no role is production
		fmt.Fprintf(&b, "r%d,%s,%d,%.2f\n", i, role, 20+i%50, float64(i%10)/10)
	}
	path := filepath.Join(t.TempDir(), "mixed.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "150 rows"},
		{[]string{"--role", "canary"}, "50 rows"},
		{[]string{"--role", "all"}, "200 rows"},
	} {
		args := append([]string{"reference", "set", "--model", "churn", "--nats", url}, c.args...)
		code, out, errOut := runLookout(t, append(args, path)...)
		if code != 0 || !strings.Contains(out, "pinned the drift reference of churn: "+c.want) {
			t.Errorf("set %v: exit %d, %q %q; want %s", c.args, code, out, errOut, c.want)
		}
	}
	if code, _, _ := runLookout(t, "reference", "set", "--model", "churn", "--nats", url, "--role", "canary", path); code != 0 {
		t.Fatalf("set --role canary: exit %d", code)
	}
	if code, out, _ := runLookout(t, "reference", "show", "--model", "churn", "--nats", url); code != 0 || !strings.Contains(out, "50 rows") || !strings.Contains(out, "role canary") {
		t.Errorf("show: exit %d, %q", code, out)
	}
	if code, _, errOut := runLookout(t, "reference", "set", "--model", "churn", "--nats", url, "--role", "staging", path); code != 2 || !strings.Contains(errOut, "--role") {
		t.Errorf("set --role staging: exit %d, %q", code, errOut)
	}
}

// `lookout drift` reads tag.<name> CSV columns as tags: when only the
// region=eu rows move, the root cause says so.
func TestDriftCommandCSVTags(t *testing.T) {
	write := func(name string, euShift float64) string {
		rng := rand.New(rand.NewPCG(uint64(len(name)), 3))
		var b strings.Builder
		b.WriteString("age,plan,tag.region,prediction\n")
		for i := range 600 {
			region, age := []string{"eu", "us"}[i%2], 40+10*rng.NormFloat64()
			if region == "eu" {
				age += euShift
			}
			fmt.Fprintf(&b, "%.3f,%s,%s,%.3f\n", age, []string{"basic", "pro"}[rng.IntN(2)], region, rng.Float64())
		}
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ref, cur := write("ref.csv", 0), write("current.csv", 25)
	code, out, errOut := runLookout(t, "drift", "--reference", ref, "--current", cur, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var report driftreport.Report
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatal(err)
	}
	if _, ok := report.Features["tag.region"]; ok {
		t.Error("tag.region compared as a feature")
	}
	rc := report.RootCause
	if rc == nil || len(rc.Segments) == 0 || rc.Segments[0].Tag != "region" || rc.Segments[0].Value != "eu" ||
		!strings.Contains(rc.Summary, "mostly in region=eu") {
		t.Errorf("root cause %+v, want region=eu first and in the summary", rc)
	}
}
