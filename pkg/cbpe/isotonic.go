// Package cbpe estimates a classifier's accuracy before its labels arrive,
// by confidence-based performance estimation as NannyML's CBPE does: the
// expected accuracy of a set of predictions is the mean probability that
// each is right, read from its confidence after calibrating confidence on
// labelled reference predictions (isotonic regression), when that
// calibration lowers the expected calibration error. It is pure: numbers
// in, numbers out, and matches scikit-learn and NannyML to 1e-9
// (testdata/gen.py).
package cbpe

import (
	"errors"
	"math"
	"sort"
)

// ErrEmpty is returned when a fit is given no points.
var ErrEmpty = errors.New("cbpe: no points")

// ErrLength is returned when paired slices differ in length.
var ErrLength = errors.New("cbpe: slices differ in length")

// Isotonic is a fitted non-decreasing step-and-line function, as
// scikit-learn's IsotonicRegression(increasing=True, out_of_bounds="clip")
// leaves it: X and Y are its thresholds (X_thresholds_, y_thresholds_),
// and Predict interpolates linearly between them and clips outside.
type Isotonic struct {
	X, Y []float64
}

// uniqueResolution is numpy's finfo(float64).resolution: scikit-learn's
// _make_unique merges X values closer than this into one point.
const uniqueResolution = 1e-15

// FitIsotonic fits y on x with unit weights, as scikit-learn's
// IsotonicRegression(increasing=True).fit(x, y).
func FitIsotonic(x, y []float64) (*Isotonic, error) {
	if len(x) != len(y) {
		return nil, ErrLength
	}
	if len(x) == 0 {
		return nil, ErrEmpty
	}
	// numpy.lexsort((y, x)): by x, then by y; stable.
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ia, ib := idx[a], idx[b]
		if x[ia] != x[ib] {
			return x[ia] < x[ib]
		}
		return y[ia] < y[ib]
	})
	// _make_unique: one point per distinct x, its y the weighted mean.
	ux := make([]float64, 0, len(x))
	uy := make([]float64, 0, len(x))
	uw := make([]float64, 0, len(x))
	curX, curY, curW := x[idx[0]], 0.0, 0.0
	for _, i := range idx {
		if x[i]-curX >= uniqueResolution {
			ux, uy, uw = append(ux, curX), append(uy, curY/curW), append(uw, curW)
			curX, curY, curW = x[i], y[i], 1
			continue
		}
		curY += y[i]
		curW++
	}
	ux, uy, uw = append(ux, curX), append(uy, curY/curW), append(uw, curW)
	pava(uy, uw)
	// Keep the first and last points and any point whose y differs from a
	// neighbour's: the others lie on a flat run and add nothing.
	f := &Isotonic{}
	for i := range uy {
		if i == 0 || i == len(uy)-1 || uy[i] != uy[i-1] || uy[i] != uy[i+1] {
			f.X = append(f.X, ux[i])
			f.Y = append(f.Y, uy[i])
		}
	}
	return f, nil
}

// pava is scikit-learn's _inplace_contiguous_isotonic_regression: pool
// adjacent violators in one pass with backtracking, in place. Equal
// neighbours are pooled too (the test is y[i] < y[k]), which changes no
// value but keeps the arithmetic, and so the last bits, the same.
func pava(y, w []float64) {
	n := len(y)
	target := make([]int, n)
	for i := range target {
		target[i] = i
	}
	i := 0
	for i < n {
		k := target[i] + 1
		if k == n {
			break
		}
		if y[i] < y[k] {
			i = k
			continue
		}
		sumWY := w[i] * y[i]
		sumW := w[i]
		for {
			prevY := y[k]
			sumWY += w[k] * y[k]
			sumW += w[k]
			k = target[k] + 1
			if k == n || prevY < y[k] {
				y[i] = sumWY / sumW
				w[i] = sumW
				target[i] = k - 1
				target[k-1] = i
				if i > 0 {
					i = target[i-1]
				}
				break
			}
		}
	}
	for i := 0; i < n; {
		k := target[i] + 1
		for j := i + 1; j < k; j++ {
			y[j] = y[i]
		}
		i = k
	}
}

// Predict evaluates the fit at v, clipped to the fitted range, with
// scipy's interp1d(kind="linear") arithmetic.
func (f *Isotonic) Predict(v float64) float64 {
	n := len(f.X)
	if n == 1 {
		return f.Y[0]
	}
	v = math.Min(math.Max(v, f.X[0]), f.X[n-1])
	// searchsorted(side="left"), clipped to [1, n-1].
	hi := sort.SearchFloat64s(f.X, v)
	if hi < 1 {
		hi = 1
	}
	if hi > n-1 {
		hi = n - 1
	}
	lo := hi - 1
	slope := (f.Y[hi] - f.Y[lo]) / (f.X[hi] - f.X[lo])
	return slope*(v-f.X[lo]) + f.Y[lo]
}
