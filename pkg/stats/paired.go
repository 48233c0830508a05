package stats

import (
	"math"
	"slices"
)

// McNemarExact returns the p-value of McNemar's exact test on the
// discordant pairs of two paired classifiers: b pairs where only the first
// was right, c where only the second was. It is the two-sided binomial
// test of b out of b+c at one half, as statsmodels' mcnemar(table,
// exact=True) and scipy.stats.binomtest(b, b+c, 0.5):
// min(1, 2·P(X ≤ min(b, c))) for X ~ Binomial(b+c, 1/2). Without
// discordant pairs it is 1.
func McNemarExact(b, c int) float64 {
	n := b + c
	if n <= 0 || b < 0 || c < 0 {
		return 1
	}
	k := min(b, c)
	if 2*k >= n {
		return 1 // b == c: the tail holds at least half the mass
	}
	// Sum the tail in log space: C(n, i)/2^n underflows for large n long
	// before the tail's sum does. Terms grow with i up to k < n/2, so
	// adding from the largest keeps the sum exact to rounding.
	lgN, _ := math.Lgamma(float64(n) + 1)
	logTerm := func(i int) float64 {
		a, _ := math.Lgamma(float64(i) + 1)
		b, _ := math.Lgamma(float64(n-i) + 1)
		return lgN - a - b - float64(n)*math.Ln2
	}
	top := logTerm(k)
	sum := 0.0
	for i := k; i >= 0; i-- {
		t := math.Exp(logTerm(i) - top)
		sum += t
		if t < 1e-17*sum {
			break // the rest cannot change the sum
		}
	}
	return min(1, 2*math.Exp(top)*sum)
}

// WilcoxonResult is the outcome of Wilcoxon's signed-rank test.
type WilcoxonResult struct {
	// Statistic is the smaller of the positive and negative rank sums.
	Statistic float64 `json:"statistic"`
	PValue    float64 `json:"p_value"`
	// N is the number of non-zero differences ranked.
	N int `json:"n"`
}

// WilcoxonApprox returns Wilcoxon's two-sided signed-rank test of paired
// differences d by its normal approximation, as scipy.stats.wilcoxon(d,
// zero_method="wilcox", correction=False, method="approx"): zero
// differences are dropped, the absolute differences ranked (ties take
// their mean rank), and the variance corrected for ties. Without a
// non-zero difference the p-value is 1.
func WilcoxonApprox(d []float64) WilcoxonResult {
	nz := make([]float64, 0, len(d))
	for _, x := range d {
		if x != 0 && !math.IsNaN(x) {
			nz = append(nz, x)
		}
	}
	n := len(nz)
	if n == 0 {
		return WilcoxonResult{PValue: 1}
	}
	slices.SortFunc(nz, func(a, b float64) int {
		if math.Abs(a) < math.Abs(b) {
			return -1
		}
		if math.Abs(a) > math.Abs(b) {
			return 1
		}
		return 0
	})
	var rPlus, rMinus, tieSum float64
	for i := 0; i < n; {
		j := i + 1
		for j < n && math.Abs(nz[j]) == math.Abs(nz[i]) {
			j++
		}
		rank := float64(i+j+1) / 2 // mean of ranks i+1 .. j
		for _, x := range nz[i:j] {
			if x > 0 {
				rPlus += rank
			} else {
				rMinus += rank
			}
		}
		if t := float64(j - i); t > 1 {
			tieSum += t * (t*t - 1)
		}
		i = j
	}
	fn := float64(n)
	mean := fn * (fn + 1) / 4
	se := math.Sqrt((fn*(fn+1)*(2*fn+1) - tieSum/2) / 24)
	t := min(rPlus, rMinus)
	p := 1.0
	if se > 0 {
		p = math.Erfc(math.Abs(t-mean) / se / math.Sqrt2)
	}
	return WilcoxonResult{Statistic: t, PValue: min(1, p), N: n}
}
