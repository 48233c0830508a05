package driftreport

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func normals(n int, seed uint64, mean, std float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 3))
	x := make([]float64, n)
	for i := range x {
		x[i] = mean + std*r.NormFloat64()
	}
	return x
}

func cats(n int, seed uint64, shares map[string]float64) []string {
	r := rand.New(rand.NewPCG(seed, 5))
	keys := sortedKeys(shares)
	out := make([]string, n)
	for i := range out {
		u := r.Float64()
		out[i] = keys[len(keys)-1]
		for _, k := range keys {
			if u < shares[k] {
				out[i] = k
				break
			}
			u -= shares[k]
		}
	}
	return out
}

// mustDataset builds a dataset of one row per index from columns of
// numbers ([]float64) or categories ([]string).
func mustDataset(tb testing.TB, cols map[string]any) *Dataset {
	tb.Helper()
	d := NewDataset(SampleOptions{})
	n := 0
	for _, c := range cols {
		switch x := c.(type) {
		case []float64:
			n = max(n, len(x))
		case []string:
			n = max(n, len(x))
		}
	}
	for i := 0; i < n; i++ {
		row := Row{Features: map[string]any{}}
		for name, c := range cols {
			switch x := c.(type) {
			case []float64:
				if i < len(x) {
					row.Features[name] = x[i]
				}
			case []string:
				if i < len(x) {
					row.Features[name] = x[i]
				}
			}
		}
		if err := d.Add(row); err != nil {
			tb.Fatal(err)
		}
	}
	return d
}

func TestCompareRules(t *testing.T) {
	tests := []struct {
		name        string
		ref, cur    any
		opts        Options
		wantKind    string
		wantMethod  string
		wantDrifted bool
		wantNote    bool
	}{
		// Small numerical reference: the KS test decides; a same-law sample
		// is not drifted.
		{"ks stable", normals(500, 1, 0, 1), normals(500, 2, 0, 1), Options{}, KindNumerical, MethodKS, false, false},
		// ... and a sample shifted by one standard deviation is.
		{"ks shifted", normals(500, 1, 0, 1), normals(500, 2, 1, 1), Options{}, KindNumerical, MethodKS, true, false},
		// Above 1,000 reference rows Wasserstein/std decides: a shift of
		// 0.02 std is under 0.1 ...
		{"wasserstein stable", normals(5000, 1, 0, 1), normals(5000, 2, 0.02, 1), Options{}, KindNumerical, MethodWasserstein, false, false},
		// ... and a shift of 0.3 std is over, though KS alone would flag
		// both at this size.
		{"wasserstein shifted", normals(5000, 1, 0, 1), normals(5000, 2, 0.3, 1), Options{}, KindNumerical, MethodWasserstein, true, false},
		// Small categorical reference: chi2 decides.
		{"chi2 stable", cats(500, 1, map[string]float64{"a": 0.5, "b": 0.3, "c": 0.2}), cats(500, 2, map[string]float64{"a": 0.5, "b": 0.3, "c": 0.2}), Options{}, KindCategorical, MethodChi2, false, false},
		{"chi2 shifted", cats(500, 1, map[string]float64{"a": 0.5, "b": 0.3, "c": 0.2}), cats(500, 2, map[string]float64{"a": 0.2, "b": 0.3, "c": 0.5}), Options{}, KindCategorical, MethodChi2, true, false},
		// Large categorical reference: Jensen-Shannon decides.
		{"js stable", cats(5000, 1, map[string]float64{"a": 0.5, "b": 0.5}), cats(5000, 2, map[string]float64{"a": 0.5, "b": 0.5}), Options{}, KindCategorical, MethodJensenShannon, false, false},
		{"js shifted", cats(5000, 1, map[string]float64{"a": 0.5, "b": 0.5}), cats(5000, 2, map[string]float64{"a": 0.2, "b": 0.8}), Options{}, KindCategorical, MethodJensenShannon, true, false},
		// SmallReference moves the switch: 5,000 rows judged by KS.
		{"threshold option", normals(5000, 1, 0, 1), normals(5000, 2, 0.1, 1), Options{SmallReference: 10000}, KindNumerical, MethodKS, true, false},
		// A per-feature rule overrides method and threshold.
		{"override psi", normals(500, 1, 0, 1), normals(500, 2, 1, 1), Options{Features: map[string]Rule{"x": {Method: MethodPSI, Threshold: 100}}}, KindNumerical, MethodPSI, false, false},
		// A rule whose method does not fit the kind is ignored.
		{"override misfit", cats(500, 1, map[string]float64{"a": 1}), cats(500, 2, map[string]float64{"a": 1}), Options{Features: map[string]Rule{"x": {Method: MethodKS}}}, KindCategorical, MethodChi2, false, false},
		// Numbers on one side and strings on the other: categories, noted.
		{"mixed types", []float64{1, 2, 2, 3}, []string{"1", "2", "2", "x"}, Options{}, KindCategorical, MethodChi2, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := mustDataset(t, map[string]any{"x": tt.ref})
			cur := mustDataset(t, map[string]any{"x": tt.cur})
			r := Compare(ref, cur, tt.opts)
			fd, ok := r.Features["x"]
			if !ok {
				t.Fatalf("feature not compared: %+v", r.DataQuality)
			}
			if fd.Kind != tt.wantKind || fd.Method != tt.wantMethod || fd.Drifted != tt.wantDrifted {
				t.Errorf("got kind %s method %s drifted %v (score %g), want %s %s %v",
					fd.Kind, fd.Method, fd.Drifted, fd.Score, tt.wantKind, tt.wantMethod, tt.wantDrifted)
			}
			if (fd.Note != "") != tt.wantNote {
				t.Errorf("note = %q", fd.Note)
			}
			if tt.wantNote && !r.DataQuality.Features["x"].MixedTypes {
				t.Errorf("mixed types not in data quality")
			}
			mustCleanJSON(t, r)
		})
	}
}

// TestScoreIsDecidingValue proves score is the p-value for the tests and
// the normalised distance for Wasserstein.
func TestScoreIsDecidingValue(t *testing.T) {
	ref := mustDataset(t, map[string]any{"x": normals(500, 1, 0, 2)})
	cur := mustDataset(t, map[string]any{"x": normals(500, 2, 1, 2)})
	fd := Compare(ref, cur, Options{}).Features["x"]
	if fd.Score != fd.KS.PValue {
		t.Errorf("ks score %v != p-value %v", fd.Score, fd.KS.PValue)
	}
	fd = Compare(ref, cur, Options{SmallReference: 10}).Features["x"]
	std := 0.0
	{
		x := ref.Features["x"].Numbers
		m := 0.0
		for _, v := range x {
			m += v
		}
		m /= float64(len(x))
		for _, v := range x {
			std += (v - m) * (v - m)
		}
		std = math.Sqrt(std / float64(len(x)))
	}
	if math.Abs(fd.Score-*fd.Wasserstein/std) > 1e-9 {
		t.Errorf("wasserstein score %v, want %v", fd.Score, *fd.Wasserstein/std)
	}
}

// TestDatasetDrift proves the dataset verdict follows the share of drifted
// features, and that one-sided features count in data quality only.
func TestDatasetDrift(t *testing.T) {
	ref := mustDataset(t, map[string]any{
		"a": normals(500, 1, 0, 1), "b": normals(500, 2, 0, 1),
		"c": normals(500, 3, 0, 1), "d": normals(500, 4, 0, 1),
		"gone": normals(500, 5, 0, 1),
	})
	curCols := map[string]any{
		// b, c and d are the reference's own values: surely stable.
		"a": normals(500, 11, 2, 1), "b": normals(500, 2, 0, 1),
		"c": normals(500, 3, 0, 1), "d": normals(500, 4, 0, 1),
		"new": []string{"x"},
	}
	r := Compare(ref, mustDataset(t, curCols), Options{})
	if r.DriftShare != 0.25 || r.DatasetDrifted {
		t.Errorf("one of four: share %v drifted %v", r.DriftShare, r.DatasetDrifted)
	}
	if !slices.Equal(r.DataQuality.Appeared, []string{"new"}) || !slices.Equal(r.DataQuality.Vanished, []string{"gone"}) {
		t.Errorf("appeared %v vanished %v", r.DataQuality.Appeared, r.DataQuality.Vanished)
	}
	if _, ok := r.Features["new"]; ok {
		t.Error("one-sided feature compared")
	}
	curCols["b"] = normals(500, 12, 2, 1)
	r = Compare(ref, mustDataset(t, curCols), Options{})
	if r.DriftShare != 0.5 || !r.DatasetDrifted {
		t.Errorf("two of four: share %v drifted %v", r.DriftShare, r.DatasetDrifted)
	}
	if r.Window.Count != 500 || r.Reference.Count != 500 {
		t.Errorf("counts %d %d", r.Window.Count, r.Reference.Count)
	}
}

func TestConfidence(t *testing.T) {
	conf := func(xs []float64) *Dataset {
		d := NewDataset(SampleOptions{})
		for _, x := range xs {
			x := x
			_ = d.Add(Row{Prediction: "a", Confidence: &x})
		}
		return d
	}
	clamp := func(xs []float64) []float64 {
		for i := range xs {
			xs[i] = min(max(xs[i], 0), 1)
		}
		return xs
	}
	tests := []struct {
		name     string
		ref, cur []float64
		opts     Options
		want     bool
	}{
		// Same confidence: not dropped.
		{"stable", clamp(normals(2000, 1, 0.9, 0.05)), clamp(normals(2000, 2, 0.9, 0.05)), Options{}, false},
		// The mean falls by 0.1 > 0.05: dropped.
		{"mean fell", clamp(normals(2000, 1, 0.9, 0.05)), clamp(normals(2000, 2, 0.8, 0.05)), Options{}, true},
		// A looser allowed drop keeps the same fall quiet.
		{"mean fell within option", clamp(normals(2000, 1, 0.9, 0.05)), clamp(normals(2000, 2, 0.8, 0.05)), Options{ConfidenceMeanDrop: 0.2}, false},
		// The low-confidence share doubles from 5% to 12% while the mean
		// barely moves: dropped.
		{"low share doubled", append(slices.Repeat([]float64{0.3}, 50), slices.Repeat([]float64{0.8}, 950)...),
			append(slices.Repeat([]float64{0.3}, 120), slices.Repeat([]float64{0.82}, 880)...), Options{}, true},
		// Doubling from 0.5% to 1% is trivial: not dropped.
		{"trivial doubling", append(slices.Repeat([]float64{0.45}, 5), slices.Repeat([]float64{0.8}, 995)...),
			append(slices.Repeat([]float64{0.45}, 10), slices.Repeat([]float64{0.8}, 990)...), Options{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Compare(conf(tt.ref), conf(tt.cur), tt.opts)
			if r.Confidence == nil {
				t.Fatal("no confidence")
			}
			if r.Confidence.Dropped != tt.want {
				t.Errorf("dropped = %v, want %v: %+v", r.Confidence.Dropped, tt.want, *r.Confidence)
			}
		})
	}
	// No confidence values on a side: no confidence part.
	if r := Compare(NewDataset(SampleOptions{}), conf([]float64{0.5}), Options{}); r.Confidence != nil {
		t.Errorf("confidence from one side: %+v", r.Confidence)
	}
}

// TestPrediction proves the prediction column is judged like a feature and
// kept out of the drift share.
func TestPrediction(t *testing.T) {
	mk := func(labels []string) *Dataset {
		d := NewDataset(SampleOptions{})
		for _, l := range labels {
			_ = d.Add(Row{Features: map[string]any{"x": 1.0}, Prediction: l})
		}
		return d
	}
	r := Compare(mk(cats(800, 1, map[string]float64{"yes": 0.9, "no": 0.1})),
		mk(cats(800, 2, map[string]float64{"yes": 0.5, "no": 0.5})), Options{})
	if r.Prediction == nil || !r.Prediction.Drifted || r.Prediction.Kind != KindCategorical {
		t.Fatalf("prediction = %+v", r.Prediction)
	}
	if r.DatasetDrifted {
		t.Error("prediction counted in dataset drift")
	}
}

// TestDegenerateJSON proves degenerate inputs give a report whose JSON has
// no NaN or infinity, and that they never panic.
func TestDegenerateJSON(t *testing.T) {
	empty := NewDataset(SampleOptions{})
	nulls := NewDataset(SampleOptions{})
	for i := 0; i < 5; i++ {
		_ = nulls.Add(Row{Features: map[string]any{"x": nil, "c": nil}, Prediction: nil})
	}
	single := mustDataset(t, map[string]any{"x": []float64{3}, "c": []string{"a"}})
	same := mustDataset(t, map[string]any{"x": slices.Repeat([]float64{1}, 50), "c": slices.Repeat([]string{"a"}, 50)})
	nan := NewDataset(SampleOptions{})
	_ = nan.Add(Row{Features: map[string]any{"x": math.NaN(), "c": math.Inf(1)}})
	onlyRef := mustDataset(t, map[string]any{"c": []string{"a", "b"}})
	onlyCur := mustDataset(t, map[string]any{"c": []string{"z", "z"}})
	sets := map[string]*Dataset{"nil": nil, "empty": empty, "nulls": nulls, "single": single, "same": same, "nan": nan, "onlyRef": onlyRef, "onlyCur": onlyCur}
	for rn, ref := range sets {
		for cn, cur := range sets {
			r := Compare(ref, cur, Options{})
			mustCleanJSON(t, r)
			if err := WriteTable(&bytes.Buffer{}, r); err != nil {
				t.Errorf("%s vs %s: table: %v", rn, cn, err)
			}
		}
	}
	// A category only in the current sample is an unseen category.
	r := Compare(onlyRef, onlyCur, Options{})
	if q := r.DataQuality.Features["c"]; q.UnseenCategories != 2 || !slices.Equal(q.Unseen, []string{"z"}) {
		t.Errorf("unseen = %+v", q)
	}
	// All nulls on one side: not compared, null share 1.
	r = Compare(single, nulls, Options{})
	if _, ok := r.Features["x"]; ok {
		t.Error("all-null feature compared")
	}
	if q := r.DataQuality.Features["x"]; q.NullShare != 1 || q.Skipped == "" {
		t.Errorf("null quality = %+v", q)
	}
}

// TestOutOfRange proves values outside the reference's range are counted.
func TestOutOfRange(t *testing.T) {
	ref := mustDataset(t, map[string]any{"x": []float64{0, 1, 2, 3}})
	cur := mustDataset(t, map[string]any{"x": []float64{-1, 0, 3, 4, 5}})
	q := Compare(ref, cur, Options{}).DataQuality.Features["x"]
	if q.OutOfRange != 3 || q.OutOfRangeShare != 0.6 {
		t.Errorf("out of range = %d, %v", q.OutOfRange, q.OutOfRangeShare)
	}
}

// contractKeys are the keys the public contract names, by object.
var contractKeys = map[string][]string{
	"report":       {"model", "window", "reference", "features", "prediction", "confidence", "drift_share", "dataset_drifted", "multivariate", "root_cause"},
	"window":       {"start", "end", "count"},
	"reference":    {"count", "source"},
	"numerical":    {"kind", "ks", "wasserstein", "psi", "jensen_shannon", "method", "score", "threshold", "threshold_source", "drifted"},
	"categorical":  {"kind", "chi2", "psi", "jensen_shannon", "method", "score", "threshold", "threshold_source", "drifted"},
	"ks":           {"statistic", "p_value"},
	"chi2":         {"statistic", "p_value", "dof"},
	"confidence":   {"mean", "reference_mean", "p10", "dropped"},
	"multivariate": {"method", "error", "reference_mean", "threshold", "drifted"},
	"root_cause":   {"features", "segments"},
}

// extraKeys are the keys this package adds to the contract's objects.
var extraKeys = map[string][]string{
	"report":       {"data_quality", "sampled", "multivariate"},
	"root_cause":   {"by_feature", "summary"},
	"multivariate": {"reference_std", "components", "columns", "rows", "reference_rows"},
	"numerical":    {"threshold_null", "note", "histogram"},
	"categorical":  {"threshold_null", "note", "histogram"},
	"confidence":   {"mean_z", "reference_p10", "low_share", "reference_low_share", "low_threshold"},
}

// TestJSONKeys marshals a full report and checks every object has the
// contract's keys, spelled exactly, and no keys beyond the known additions.
func TestJSONKeys(t *testing.T) {
	ref := mustDataset(t, map[string]any{"age": normals(300, 1, 40, 10), "plan": cats(300, 2, map[string]float64{"free": 0.6, "pro": 0.4})})
	cur := mustDataset(t, map[string]any{"age": normals(300, 3, 45, 10), "plan": cats(300, 4, map[string]float64{"free": 0.3, "pro": 0.7})})
	for _, d := range []*Dataset{ref, cur} {
		for i := 0; i < 300; i++ {
			c := 0.5 + float64(i%50)/100
			_ = d.Prediction.Add(float64(i%7) / 7)
			d.Confidence.AddNumber(c)
		}
	}
	r := Compare(ref, cur, Options{})
	r.Model = "churn"
	r.Window.Start = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	r.Window.End = r.Window.Start.Add(5 * time.Minute)
	r.Reference.Source = "ref.parquet"
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	check := func(what string, obj any) {
		t.Helper()
		o, ok := obj.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object: %v", what, obj)
		}
		allowed := map[string]bool{}
		for _, k := range contractKeys[what] {
			allowed[k] = true
			if _, ok := o[k]; !ok {
				t.Errorf("%s: contract key %q missing in %s", what, k, b)
			}
		}
		for _, k := range extraKeys[what] {
			allowed[k] = true
		}
		for k := range o {
			if !allowed[k] {
				t.Errorf("%s: unexpected key %q", what, k)
			}
		}
	}
	check("report", m)
	check("window", m["window"])
	check("reference", m["reference"])
	features := m["features"].(map[string]any)
	check("numerical", features["age"])
	check("categorical", features["plan"])
	check("ks", features["age"].(map[string]any)["ks"])
	check("chi2", features["plan"].(map[string]any)["chi2"])
	check("numerical", m["prediction"])
	check("confidence", m["confidence"])
	check("multivariate", m["multivariate"])
	check("root_cause", m["root_cause"])
	if m["window"].(map[string]any)["start"] != "2026-11-24T10:00:00Z" {
		t.Errorf("window start = %v", m["window"].(map[string]any)["start"])
	}
}

func TestReservoir(t *testing.T) {
	d := NewDataset(SampleOptions{Cap: 1000, Seed: 42})
	for i := 0; i < 100000; i++ {
		_ = d.Add(Row{Features: map[string]any{"x": float64(i), "c": []string{"a", "b"}[i%2]}})
	}
	x := d.Features["x"]
	// The cap bounds memory; Seen still counts everything.
	if len(x.Numbers) != 1000 || x.Seen != 100000 || !x.Sampled() || !d.Sampled() {
		t.Fatalf("len %d seen %d sampled %v", len(x.Numbers), x.Seen, x.Sampled())
	}
	// A uniform sample of 0..99999 has a mean near 50,000 (sd ~ 913).
	m := 0.0
	for _, v := range x.Numbers {
		m += v
	}
	m /= 1000
	if math.Abs(m-50000) > 4000 {
		t.Errorf("sample mean %v: not uniform", m)
	}
	// The same seed gives the same sample.
	d2 := NewDataset(SampleOptions{Cap: 1000, Seed: 42})
	for i := 0; i < 100000; i++ {
		_ = d2.Add(Row{Features: map[string]any{"x": float64(i), "c": []string{"a", "b"}[i%2]}})
	}
	if !slices.Equal(x.Numbers, d2.Features["x"].Numbers) {
		t.Error("same seed, different sample")
	}
	// The report says it sampled.
	if r := Compare(d, d2, Options{}); !r.Sampled {
		t.Error("report not marked sampled")
	}
}

// TestColumnAdd proves the accepted value types and the switch from
// numbers to categories.
func TestColumnAdd(t *testing.T) {
	c := NewColumn(0, nil)
	for _, v := range []any{1, int64(2), 2.5, json.Number("4"), nil} {
		if err := c.Add(v); err != nil {
			t.Fatal(err)
		}
	}
	if c.Kind() != KindNumerical || c.Nulls != 1 || len(c.Numbers) != 4 {
		t.Fatalf("numbers: %+v", c)
	}
	if err := c.Add(true); err != nil {
		t.Fatal(err)
	}
	// One string among four numbers is a stray: the column stays
	// numerical and keeps the string apart.
	if c.Kind() != KindNumerical || !c.Mixed || !slices.Equal(c.Strings, []string{"true"}) || len(c.Numbers) != 4 ||
		c.Seen != 5 || c.StringsSeen != 1 {
		t.Errorf("after bool: %+v", c)
	}
	for _, v := range []any{"a", "b", "c"} {
		if err := c.Add(v); err != nil {
			t.Fatal(err)
		}
	}
	// Four strings and four numbers: no majority of numbers.
	if c.Kind() != KindCategorical || c.StringsSeen != 4 {
		t.Errorf("after strings: kind %s %+v", c.Kind(), c)
	}
	if err := c.Add([]int{1}); err == nil {
		t.Error("slice accepted")
	}
}

func TestWriteTable(t *testing.T) {
	ref := mustDataset(t, map[string]any{"age": normals(300, 1, 0, 1), "plan": cats(300, 2, map[string]float64{"a": 0.5, "b": 0.5})})
	cur := mustDataset(t, map[string]any{"age": normals(300, 3, 3, 1), "plan": cats(300, 4, map[string]float64{"a": 0.5, "b": 0.5})})
	r := Compare(ref, cur, Options{})
	var plain, bold bytes.Buffer
	if err := WriteTable(&plain, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteTableWith(&bold, r, TableOptions{Bold: true}); err != nil {
		t.Fatal(err)
	}
	out := plain.String()
	for _, want := range []string{"feature", "kind", "method", "statistic", "score", "drifted", "! age", "  plan", "dataset drifted: yes"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("ANSI codes without Bold")
	}
	if !strings.Contains(bold.String(), "\x1b[1m") {
		t.Error("no ANSI bold with Bold")
	}
}

// mustCleanJSON marshals a report and fails on NaN, infinities or errors.
func mustCleanJSON(tb testing.TB, r Report) {
	tb.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	s := string(b)
	for _, bad := range []string{"NaN", "Inf"} {
		if strings.Contains(s, bad) {
			tb.Fatalf("JSON holds %s: %s", bad, s)
		}
	}
}

// TestConstantReference checks a reference feature with one value: its
// score is the raw Wasserstein distance (not the distance over MinStd,
// which made 0.8 read as 800), and the note says so.
func TestConstantReference(t *testing.T) {
	cur := normals(2000, 2, 7, 1)
	ref := mustDataset(t, map[string]any{"x": slices.Repeat([]float64{7}, 2000)})
	r := Compare(ref, mustDataset(t, map[string]any{"x": cur}), Options{})
	fd := r.Features["x"]
	if fd.Method != MethodWasserstein || fd.Wasserstein == nil {
		t.Fatalf("got %+v", fd)
	}
	// Against a point mass, the distance is the mean absolute deviation.
	var want float64
	for _, v := range cur {
		want += math.Abs(v - 7)
	}
	want /= float64(len(cur))
	if math.Abs(*fd.Wasserstein-want) > 1e-9 || fd.Score != *fd.Wasserstein {
		t.Errorf("wasserstein %g score %g, want both %g", *fd.Wasserstein, fd.Score, want)
	}
	if !fd.Drifted || fd.Note != NoteConstantReference {
		t.Errorf("drifted %v note %q", fd.Drifted, fd.Note)
	}
	// The same constant on both sides is no drift.
	same := Compare(ref, mustDataset(t, map[string]any{"x": slices.Repeat([]float64{7}, 500)}), Options{})
	if fd := same.Features["x"]; fd.Drifted || fd.Score != 0 {
		t.Errorf("constant against itself: %+v", fd)
	}
}
