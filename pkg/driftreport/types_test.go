package driftreport

import (
	"math"
	"slices"
	"testing"
)

// withStrays returns a dataset of feature x: the values of clean, then
// the stray values.
func withStrays(tb testing.TB, clean any, strays []any) *Dataset {
	tb.Helper()
	d := mustDataset(tb, map[string]any{"x": clean})
	for _, v := range strays {
		if err := d.Add(Row{Features: map[string]any{"x": v}}); err != nil {
			tb.Fatal(err)
		}
	}
	return d
}

func repeat(v any, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func sameFloat(a, b float64) bool { return a == b || math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(a)) }

// TestStrayStringsStayNumerical proves that a few strings among a numerical
// feature's values keep it numerical: the strays are counted as type
// mismatches on both sides, and every drift figure is the one of the same
// data without them (figures the oracle tests check against scipy).
func TestStrayStringsStayNumerical(t *testing.T) {
	refX, curX := normals(5000, 1, 0, 1), normals(5000, 2, 0, 1)
	ref := withStrays(t, refX, repeat("n/a", 3))
	cur := withStrays(t, curX, append(repeat("n/a", 8), "oops", true))
	r := Compare(ref, cur, Options{})
	fd, ok := r.Features["x"]
	if !ok {
		t.Fatalf("not compared: %+v", r.DataQuality.Features["x"])
	}
	if fd.Kind != KindNumerical || fd.Method != MethodWasserstein || fd.Drifted || fd.Note != "" {
		t.Fatalf("got %+v, want a numerical feature that did not drift", fd)
	}
	q := r.DataQuality.Features["x"]
	if q.TypeMismatches != 10 || !sameFloat(q.TypeMismatchShare, 10.0/5010) ||
		!sameFloat(q.ReferenceTypeMismatchShare, 3.0/5003) || !q.MixedTypes {
		t.Errorf("quality %+v, want 10 mismatches, share %g, reference share %g", q, 10.0/5010, 3.0/5003)
	}
	if q.NullShare != 0 {
		t.Errorf("strays counted as nulls: %g", q.NullShare)
	}

	clean := Compare(mustDataset(t, map[string]any{"x": refX}), mustDataset(t, map[string]any{"x": curX}), Options{}).Features["x"]
	if fd.KS.Statistic != clean.KS.Statistic || fd.KS.PValue != clean.KS.PValue || *fd.Wasserstein != *clean.Wasserstein ||
		fd.PSI != clean.PSI || fd.JensenShannon != clean.JensenShannon || fd.Score != clean.Score {
		t.Errorf("strays moved the figures: %+v, without them %+v", fd, clean)
	}
	if cq := Compare(mustDataset(t, map[string]any{"x": refX}), mustDataset(t, map[string]any{"x": curX}), Options{}).DataQuality.Features["x"]; cq.TypeMismatchShare != 0 || cq.TypeMismatches != 0 {
		t.Errorf("clean data has mismatches: %+v", cq)
	}
	mustCleanJSON(t, r)
}

// TestStrayNumbersStayCategorical proves the same for numbers among a
// categorical feature's values.
func TestStrayNumbersStayCategorical(t *testing.T) {
	shares := map[string]float64{"a": 0.5, "b": 0.3, "c": 0.2}
	refX, curX := cats(5000, 1, shares), cats(5000, 2, shares)
	ref := withStrays(t, refX, nil)
	cur := withStrays(t, curX, repeat(0.0, 25))
	r := Compare(ref, cur, Options{})
	fd := r.Features["x"]
	clean := Compare(mustDataset(t, map[string]any{"x": refX}), mustDataset(t, map[string]any{"x": curX}), Options{}).Features["x"]
	if fd.Kind != KindCategorical || fd.Drifted || fd.JensenShannon != clean.JensenShannon || fd.PSI != clean.PSI {
		t.Errorf("got %+v, want %+v", fd, clean)
	}
	q := r.DataQuality.Features["x"]
	if q.TypeMismatches != 25 || !sameFloat(q.TypeMismatchShare, 25.0/5025) || q.ReferenceTypeMismatchShare != 0 || q.UnseenCategories != 0 {
		t.Errorf("quality %+v", q)
	}
}

// TestTypeChange proves that a feature whose current values are mostly of
// another type than the reference's is compared as categories, noted, and
// its mismatch share is that of the current values of the other type.
func TestTypeChange(t *testing.T) {
	ref := mustDataset(t, map[string]any{"x": normals(500, 1, 0, 1)})
	cur := withStrays(t, []string{"a", "b", "c"}, []any{1.5})
	r := Compare(ref, cur, Options{})
	fd := r.Features["x"]
	if fd.Kind != KindCategorical || fd.Note == "" {
		t.Errorf("got %+v", fd)
	}
	if q := r.DataQuality.Features["x"]; q.TypeMismatches != 3 || q.TypeMismatchShare != 0.75 || !q.MixedTypes {
		t.Errorf("quality %+v", q)
	}
}

// TestStraysSampledApart proves that strays have their own reservoir: a
// sampled numerical column keeps its numbers' sample as if the strays were
// not there, and counts every stray.
func TestStraysSampledApart(t *testing.T) {
	x := normals(3000, 7, 0, 1)
	a, b := NewColumn(1000, nil), NewColumn(1000, nil)
	for i, v := range x {
		a.AddNumber(v)
		b.AddNumber(v)
		if i%100 == 0 {
			b.AddString("bad")
		}
	}
	if !slices.Equal(a.Numbers, b.Numbers) || b.StringsSeen != 30 || b.NumbersSeen() != 3000 || b.Seen != 3030 || !b.Sampled() {
		t.Fatalf("a %d values, b %d values, %d strings seen", len(a.Numbers), len(b.Numbers), b.StringsSeen)
	}
}
