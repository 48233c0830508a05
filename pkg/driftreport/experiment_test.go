package driftreport

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// The threshold experiment of issue 14: a reference of 100,000 rows and
// windows of 10,000 rows, 20 numerical features of assorted shapes; 20
// stable windows from the reference's distribution, and for each shift
// size 20 windows where one feature (a different one each time) moved its
// mean by shift × its standard deviation. Seeds are fixed.
const (
	expRefRows    = 100000
	expWindowRows = 10000
	expFeatures   = 20
	expWindows    = 20
)

var expShifts = []float64{0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2}

// expDraw returns n values of feature f shifted by shift standard
// deviations. Shapes cycle through normal, log-normal, exponential,
// uniform, Student-t-like and a two-mode mixture, each with its own scale.
func expDraw(rng *rand.Rand, f, n int, shift float64) []float64 {
	x := make([]float64, n)
	scale := 1 + float64(f)
	var std float64
	for i := range x {
		var v float64
		switch f % 6 {
		case 0:
			v, std = rng.NormFloat64(), 1
		case 1:
			v, std = math.Exp(0.5*rng.NormFloat64()), math.Sqrt((math.Exp(0.25)-1)*math.Exp(0.25))
		case 2:
			v, std = rng.ExpFloat64(), 1
		case 3:
			v, std = rng.Float64(), math.Sqrt(1.0/12)
		case 4:
			// t with 5 degrees of freedom: normal over sqrt(chi2_5 / 5).
			var c float64
			for range 5 {
				z := rng.NormFloat64()
				c += z * z
			}
			v, std = rng.NormFloat64()/math.Sqrt(c/5), math.Sqrt(5.0/3)
		case 5:
			m := -1.0
			if rng.Float64() < 0.3 {
				m = 2
			}
			v = m + 0.5*rng.NormFloat64()
			std = math.Sqrt(0.25 + 0.3*0.7*9)
		}
		x[i] = scale * v
	}
	for i := range x {
		x[i] += shift * std * scale
	}
	return x
}

func expDataset(seed uint64, rows, shifted int, shift float64) *Dataset {
	d := NewDataset(SampleOptions{})
	for f := range expFeatures {
		rng := rand.New(rand.NewPCG(seed, uint64(f)))
		s := 0.0
		if f == shifted {
			s = shift
		}
		d.Column(fmt.Sprintf("f%02d", f)).AddNumbers(expDraw(rng, f, rows, s))
	}
	d.Rows = rows
	return d
}

// expResult counts, for one rule, the stable windows with any feature
// drifted and, per shift, the windows whose shifted feature was caught.
type expResult struct {
	falseAlarms int
	caught      []int
}

// smallestAlwaysCaught returns the smallest shift caught in every window
// from which every larger shift was caught too, or 0 when none.
func (r expResult) smallestAlwaysCaught() float64 {
	best := 0.0
	for i := len(expShifts) - 1; i >= 0; i-- {
		if r.caught[i] != expWindows {
			break
		}
		best = expShifts[i]
	}
	return best
}

func runThresholdExperiment() map[string]expResult {
	ref := expDataset(1, expRefRows, -1, 0)
	rules := []string{ThresholdEvidently, ThresholdAuto}
	out := map[string]expResult{}
	for _, rule := range rules {
		out[rule] = expResult{caught: make([]int, len(expShifts))}
	}
	for w := range expWindows {
		cur := expDataset(uint64(1000+w), expWindowRows, -1, 0)
		for _, rule := range rules {
			r := Compare(ref, cur, Options{Threshold: rule})
			for _, fd := range r.Features {
				if fd.Drifted {
					res := out[rule]
					res.falseAlarms++
					out[rule] = res
					break
				}
			}
		}
	}
	for si, shift := range expShifts {
		for w := range expWindows {
			f := w % expFeatures
			cur := expDataset(uint64(2000+100*si+w), expWindowRows, f, shift)
			for _, rule := range rules {
				r := Compare(ref, cur, Options{Threshold: rule})
				if r.Features[fmt.Sprintf("f%02d", f)].Drifted {
					out[rule].caught[si]++
				}
			}
		}
	}
	return out
}

// TestThresholdExperiment checks issue 14's goal for the default rule (no
// false alarm in 20 stable windows, a 0.1σ shift in one feature caught in
// every window) and that the Evidently rule stays what it was (it misses
// some 0.1σ shifts). With LOOKOUT_THRESHOLD_EXPERIMENT=FILE it writes the
// side-by-side table there (make bench puts it in BENCHMARKS.md).
func TestThresholdExperiment(t *testing.T) {
	if testing.Short() {
		t.Skip("about 20 s on 2 cores")
	}
	res := runThresholdExperiment()
	auto, old := res[ThresholdAuto], res[ThresholdEvidently]
	var b strings.Builder
	fmt.Fprintf(&b, "| rule | false alarms in %d stable windows |", expWindows)
	for _, s := range expShifts {
		fmt.Fprintf(&b, " caught at %gσ |", s)
	}
	b.WriteString(" smallest shift always caught |\n|---|---|")
	b.WriteString(strings.Repeat("---|", len(expShifts)+1) + "\n")
	for _, rule := range []string{ThresholdEvidently, ThresholdAuto} {
		r := res[rule]
		name := map[string]string{ThresholdEvidently: "evidently (old default)", ThresholdAuto: "auto (new default: reference chunks, Bonferroni)"}[rule]
		fmt.Fprintf(&b, "| %s | %d |", name, r.falseAlarms)
		for i := range expShifts {
			fmt.Fprintf(&b, " %d/%d |", r.caught[i], expWindows)
		}
		if s := r.smallestAlwaysCaught(); s > 0 {
			fmt.Fprintf(&b, " %gσ |\n", s)
		} else {
			b.WriteString(" none |\n")
		}
	}
	t.Log("\n" + b.String())
	if path := os.Getenv("LOOKOUT_THRESHOLD_EXPERIMENT"); path != "" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if auto.falseAlarms != 0 {
		t.Errorf("auto: %d false alarms in %d stable windows", auto.falseAlarms, expWindows)
	}
	if s := auto.smallestAlwaysCaught(); s == 0 || s > 0.1 {
		t.Errorf("auto: smallest shift always caught %g, want <= 0.1", s)
	}
	if old.falseAlarms != 0 {
		t.Errorf("evidently: %d false alarms", old.falseAlarms)
	}
	if s := old.smallestAlwaysCaught(); s > 0 && s <= 0.05 {
		t.Errorf("evidently catches %gσ always: the comparison would show nothing", s)
	}
}
