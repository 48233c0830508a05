package driftreport

import (
	"math"
	"testing"
)

// TestThresholdSources checks which rule judges a feature and what the
// report says of it: reference chunks for a reference of >= 5 windows,
// the Evidently rule below that or when asked, the config's rule when one
// is set.
func TestThresholdSources(t *testing.T) {
	big := mustDataset(t, map[string]any{"age": normals(5000, 1, 40, 10), "plan": cats(5000, 2, map[string]float64{"free": 0.6, "pro": 0.3, "team": 0.1})})
	small := mustDataset(t, map[string]any{"age": normals(2000, 1, 40, 10), "plan": cats(2000, 2, map[string]float64{"free": 0.6, "pro": 0.3, "team": 0.1})})
	cur := mustDataset(t, map[string]any{"age": normals(500, 3, 40, 10), "plan": cats(500, 4, map[string]float64{"free": 0.6, "pro": 0.3, "team": 0.1})})
	cases := []struct {
		name         string
		ref          *Dataset
		opts         Options
		method       string // of age
		source       string
		catMethod    string
		wantNullRows int
	}{
		// 10 windows' worth: auto derives thresholds from chunks.
		{"auto", big, Options{}, MethodKSStatistic, SourceReferenceChunks, MethodJensenShannon, 500},
		// 4 windows' worth: the Evidently rule (tests at <= 1000 rows
		// would be ks; 2000 rows means distances).
		{"fallback", small, Options{}, MethodWasserstein, SourceDefault, MethodJensenShannon, 0},
		{"evidently", big, Options{Threshold: ThresholdEvidently}, MethodWasserstein, SourceDefault, MethodJensenShannon, 0},
		{"configured", big, Options{Features: map[string]Rule{"age": {Threshold: 0.2}, "plan": {Method: MethodPSI}}}, MethodWasserstein, SourceConfig, MethodPSI, 0},
		{"global", big, Options{Threshold: ThresholdEvidently, WassersteinThreshold: 0.2}, MethodWasserstein, SourceConfig, MethodJensenShannon, 0},
	}
	for _, c := range cases {
		r := Compare(c.ref, cur, c.opts)
		age, plan := r.Features["age"], r.Features["plan"]
		if age.Method != c.method || age.ThresholdSource != c.source || plan.Method != c.catMethod {
			t.Errorf("%s: age %s/%s, plan %s; want %s/%s, %s", c.name, age.Method, age.ThresholdSource, plan.Method, c.method, c.source, c.catMethod)
		}
		if c.wantNullRows == 0 {
			if age.ThresholdNull != nil {
				t.Errorf("%s: threshold_null set", c.name)
			}
			continue
		}
		n := age.ThresholdNull
		if n == nil || n.Rows != c.wantNullRows || n.Chunks < nullSamples || n.Features != 2 || n.Correction != "bonferroni" {
			t.Fatalf("%s: threshold_null %+v", c.name, n)
		}
		if want := math.Max(n.Mean+n.Z*n.Std, n.Max); age.Threshold != want || age.Drifted {
			t.Errorf("%s: threshold %g, want %g; drifted %v (score %g)", c.name, age.Threshold, want, age.Drifted, age.Score)
		}
		// D of chunks of 500 against 4,500: about 0.87·sqrt(1/500+1/4500).
		if exp := kolmogorovMean * math.Sqrt(1.0/500+1.0/4500); math.Abs(n.Mean-exp) > 0.25*exp {
			t.Errorf("%s: null mean %g, want about %g", c.name, n.Mean, exp)
		}
		if plan.ThresholdSource != SourceReferenceChunks || plan.ThresholdNull == nil || plan.Drifted {
			t.Errorf("%s: plan %+v", c.name, plan)
		}
	}
	// The Bonferroni tail: with 20 features at 0.01 the ks z is about 4.5.
	if z := tailZ(MethodKSStatistic, 0.01, 20, 0); math.Abs(z-4.48) > 0.05 {
		t.Errorf("ks z = %g", z)
	}
	// A shifted window is caught against chunk thresholds.
	shifted := mustDataset(t, map[string]any{"age": normals(500, 3, 44, 10), "plan": cats(500, 4, map[string]float64{"free": 0.4, "pro": 0.4, "team": 0.2})})
	r := Compare(big, shifted, Options{})
	if !r.Features["age"].Drifted || !r.Features["plan"].Drifted {
		t.Errorf("shift missed: %+v", r.Features)
	}
}

// TestReferenceNullCached checks the null is computed once per reference
// and window size, and again after the reference changes.
func TestReferenceNullCached(t *testing.T) {
	c := NewColumn(0, nil)
	c.AddNumbers(normals(3000, 1, 0, 1))
	a, ok := c.referenceNull(MethodKSStatistic, 300, 5)
	if !ok {
		t.Fatal("no null")
	}
	if len(c.nullCache) != 1 {
		t.Fatalf("cache %d", len(c.nullCache))
	}
	b, _ := c.referenceNull(MethodKSStatistic, 305, 5) // same bucket (300)
	if a != b || len(c.nullCache) != 1 {
		t.Fatalf("not cached: %+v %+v", a, b)
	}
	c.AddNumber(1)
	c.referenceNull(MethodKSStatistic, 300, 5)
	if len(c.nullCache) != 1 {
		t.Fatalf("stale entries kept: %d", len(c.nullCache))
	}
	if _, ok := c.referenceNull(MethodKSStatistic, 700, 5); ok {
		t.Error("a reference of 4 windows gave a null")
	}
}
