package stats

import (
	"fmt"
	"math"
)

// KSResult is the outcome of a two-sample Kolmogorov-Smirnov test.
type KSResult struct {
	// Statistic is D, the largest distance between the two empirical
	// distribution functions.
	Statistic float64 `json:"statistic"`
	// PValue is the two-sided p-value.
	PValue float64 `json:"p_value"`
}

// ksMaxExactN is scipy's MAX_AUTO_N: method "auto" computes the exact
// p-value while both samples are at most this long.
const ksMaxExactN = 10000

// KS2Samp runs the two-sided two-sample Kolmogorov-Smirnov test as
// scipy.stats.ks_2samp(ref, cur) does with method="auto" (scipy 1.10.1):
// the exact p-value while both samples hold at most 10,000 values, the
// asymptotic one (the kstwo distribution) beyond, or when the exact
// computation fails. In exact mode the statistic is scipy's, rounded to a
// multiple of 1/lcm(n1, n2).
//
// KS2Samp sorts copies of its inputs and leaves out non-finite values. It
// returns an error wrapping ErrEmpty when either sample has no finite value.
func KS2Samp(ref, cur []float64) (KSResult, error) {
	return KS2SampSorted(SortFinite(ref), SortFinite(cur))
}

// KS2SampSorted is KS2Samp for samples already sorted ascending and finite,
// as SortFinite returns them. It returns an error wrapping ErrEmpty when a
// sample is empty and one wrapping ErrUnsorted when a sample is not sorted
// or holds a non-finite value.
func KS2SampSorted(ref, cur []float64) (KSResult, error) {
	n1, n2 := len(ref), len(cur)
	if n1 == 0 || n2 == 0 {
		return KSResult{}, fmt.Errorf("ks: %w", ErrEmpty)
	}
	if !isSortedFinite(ref) || !isSortedFinite(cur) {
		return KSResult{}, fmt.Errorf("ks: %w", ErrUnsorted)
	}
	d := ksStatisticSorted(ref, cur)

	g := gcd(n1, n2)
	exact := max(n1, n2) <= ksMaxExactN
	prob := math.NaN()
	if exact {
		var ok bool
		var dx float64
		ok, dx, prob = attemptExact2KS(n1, n2, g, d)
		// scipy keeps the rounded statistic even when it falls back.
		d = dx
		if !ok {
			exact = false
		}
	}
	if !exact {
		m, n := float64(max(n1, n2)), float64(min(n1, n2))
		en := m * n / (m + n)
		prob = kstwoSF(d, math.RoundToEven(en))
	}
	return KSResult{Statistic: d, PValue: clip01(prob)}, nil
}

// ksStatisticSorted returns D for two sorted, non-empty samples, with the
// same floating-point steps as scipy: searchsorted(side="right") counts
// divided by the sample sizes, max(cdf1-cdf2) against -min(cdf1-cdf2).
func ksStatisticSorted(a, b []float64) float64 {
	n1, n2 := len(a), len(b)
	f1, f2 := float64(n1), float64(n2)
	i, j := 0, 0
	maxS, minS := math.Inf(-1), math.Inf(1)
	for i < n1 || j < n2 {
		var v float64
		if j >= n2 || (i < n1 && a[i] <= b[j]) {
			v = a[i]
		} else {
			v = b[j]
		}
		for i < n1 && a[i] <= v {
			i++
		}
		for j < n2 && b[j] <= v {
			j++
		}
		diff := float64(i)/f1 - float64(j)/f2
		if diff > maxS {
			maxS = diff
		}
		if diff < minS {
			minS = diff
		}
	}
	negMin := min(max(-minS, 0), 1)
	if negMin > maxS {
		return negMin
	}
	return maxS
}

// attemptExact2KS is scipy's _attempt_exact_2kssamp for the two-sided
// alternative. It returns whether it succeeded, the statistic rounded to a
// multiple of 1/lcm(n1, n2), and the p-value.
func attemptExact2KS(n1, n2, g int, d float64) (bool, float64, float64) {
	lcm := (n1 / g) * n2
	h := int(math.RoundToEven(d * float64(lcm)))
	d = float64(h) / float64(lcm)
	if h == 0 {
		return true, d, 1.0
	}
	var prob float64
	if n1 == n2 {
		prob = probOutsideSquare(n1, h)
	} else {
		prob = outerProbInside(n1, n2, g, h)
	}
	if math.IsNaN(prob) || math.IsInf(prob, 0) || prob < 0 || prob > 1 {
		return false, d, prob
	}
	return true, d, prob
}

// probOutsideSquare is scipy's _compute_prob_outside_square: the
// proportion of lattice paths that leave the band |x-y| < h for two
// samples of size n, by a Horner-like evaluation of the alternating sum
// 2 * (C(2n, n-h) - C(2n, n-2h) + ...) / C(2n, n).
func probOutsideSquare(n, h int) float64 {
	P := 0.0
	k := int(math.Floor(float64(n) / float64(h)))
	for ; k >= 0; k-- {
		p1 := 1.0
		for j := 0; j < h; j++ {
			p1 = float64(n-k*h-j) * p1 / float64(n+k*h+j+1)
		}
		P = p1 * (1.0 - P)
	}
	return 2 * P
}

// outerProbInside is scipy's _compute_outer_prob_inside_method: the
// proportion of lattice paths from (0, 0) to (m, n) that do not stay
// strictly inside |x/m - y/n| < h/lcm(m, n), computed directly as 1 - p
// (Hodges' inside method with Viehmann's recursion).
func outerProbInside(m, n, g, h int) float64 {
	if m < n {
		m, n = n, m
	}
	mg, ng := m/g, n/g
	fmg := float64(mg)
	minj, maxj := 0, min(int(math.Ceil(float64(h)/fmg)), n+1)
	curlen := maxj - minj
	lenA := min(2*maxj+2, n+1)
	A := make([]float64, lenA)
	for i := range A {
		A[i] = 1
	}
	for i := minj; i < maxj && i < lenA; i++ {
		A[i] = 0
	}
	for i := 1; i <= m; i++ {
		lastminj, lastlen := minj, curlen
		minj = max(int(math.Floor(float64(ng*i-h)/fmg))+1, 0)
		minj = min(minj, n)
		maxj = min(int(math.Ceil(float64(ng*i+h)/fmg)), n+1)
		if maxj <= minj {
			return 1.0
		}
		val := 1.0
		if minj == 0 {
			val = 0.0
		}
		fi := float64(i)
		off := minj - lastminj
		for jj := 0; jj < maxj-minj; jj++ {
			j := jj + minj
			val = (A[jj+off]*fi + val*float64(j)) / float64(i+j)
			A[jj] = val
		}
		curlen = maxj - minj
		if lastlen > curlen {
			for k := curlen; k < curlen+(lastlen-curlen) && k < lenA; k++ {
				A[k] = 1
			}
		}
	}
	return A[maxj-minj-1]
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func clip01(p float64) float64 {
	if math.IsNaN(p) {
		// Not reached by the algorithms above; a p-value of 1 claims no
		// evidence, the safe reading of a failed computation.
		return 1
	}
	return min(max(p, 0), 1)
}

// KSStatisticSorted returns the two-sample Kolmogorov-Smirnov statistic D
// of two sorted, non-empty samples without its p-value: the reference-chunk
// thresholds compute it many times over.
func KSStatisticSorted(a, b []float64) float64 { return ksStatisticSorted(a, b) }
