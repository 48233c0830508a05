package driftreport

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/lookout-ml/lookout/pkg/stats"
)

// TestSortFiniteMatchesStats checks the radix sort against
// stats.SortFinite on samples that stress it.
func TestSortFiniteMatchesStats(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cases := []struct {
		name string
		gen  func(i int) float64
	}{
		// normal values of both signs
		{"normal", func(int) float64 { return rng.NormFloat64() }},
		// many ties, zeros of both signs
		{"ties and signed zeros", func(i int) float64 {
			switch i % 4 {
			case 0:
				return math.Copysign(0, -1)
			case 1:
				return 0
			}
			return float64(rng.IntN(5) - 2)
		}},
		// non-finite values are dropped
		{"non-finite", func(i int) float64 {
			switch i % 7 {
			case 0:
				return math.NaN()
			case 1:
				return math.Inf(1)
			case 2:
				return math.Inf(-1)
			}
			return rng.ExpFloat64() * 1e300
		}},
		// one value only: every pass skipped
		{"constant", func(int) float64 { return 42.5 }},
		// tiny and huge magnitudes
		{"magnitudes", func(int) float64 { return math.Ldexp(rng.NormFloat64(), rng.IntN(2000)-1000) }},
	}
	for _, c := range cases {
		x := make([]float64, 3*radixMin+17)
		for i := range x {
			x[i] = c.gen(i)
		}
		got, want := sortFinite(x), stats.SortFinite(x)
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", c.name, len(got), len(want))
		}
		if !slices.IsSorted(got) {
			t.Errorf("%s: not sorted", c.name)
		}
		for i := range got {
			if got[i] != want[i] { // -0 == +0
				t.Fatalf("%s: [%d] = %v, want %v", c.name, i, got[i], want[i])
			}
		}
	}
	if got := sortFinite(make([]float64, radixMin)); len(got) != radixMin {
		t.Errorf("zeros: %d values", len(got))
	}
	nan := make([]float64, radixMin)
	for i := range nan {
		nan[i] = math.NaN()
	}
	if got := sortFinite(nan); len(got) != 0 {
		t.Errorf("all NaN: %d values, want 0", len(got))
	}
}
