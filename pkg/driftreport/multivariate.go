package driftreport

import (
	"cmp"
	"math"
	"slices"
	"sort"

	"gonum.org/v1/gonum/mat"

	"github.com/lookout-ml/lookout/pkg/stats"
)

// MethodPCAReconstruction is the multivariate method: NannyML's data
// reconstruction drift.
const MethodPCAReconstruction = "pca_reconstruction"

// Multivariate drift settings.
const (
	// PCAVariance is the share of the reference's variance the kept
	// principal components explain (NannyML's default, 65%).
	PCAVariance = 0.65
	// MaxOneHot bounds the categories of a categorical feature encoded
	// one-hot (the reference's most frequent); the rest encode as all
	// zeros.
	MaxOneHot = 10
	// minMultivariateRows: fewer sampled rows on either side give no
	// multivariate figure.
	minMultivariateRows = 50
	// multivariateBand is how many standard deviations of the reference
	// chunks' mean error the threshold sits above their mean (NannyML).
	multivariateBand = 3.0
)

// Multivariate is the report's multivariate part: how well a PCA of the
// reference reconstructs the window's rows.
type Multivariate struct {
	Method string `json:"method"`
	// Error is the window's mean reconstruction error (the Euclidean
	// distance between a standardised row and its reconstruction).
	Error float64 `json:"error"`
	// ReferenceMean is the mean error of the held-out reference rows;
	// ReferenceStd the spread of that mean over chunks of the window's
	// size. Threshold is ReferenceMean + 3·ReferenceStd.
	ReferenceMean float64 `json:"reference_mean"`
	ReferenceStd  float64 `json:"reference_std"`
	Threshold     float64 `json:"threshold"`
	Drifted       bool    `json:"drifted"`
	// Components is how many principal components were kept; Columns how
	// many encoded columns (numbers, and one per kept category) they were
	// taken from; Rows and ReferenceRows the sampled rows compared.
	Components    int `json:"components"`
	Columns       int `json:"columns"`
	Rows          int `json:"rows"`
	ReferenceRows int `json:"reference_rows"`
}

// encoder turns a sampled row into one standardised column of the PCA's
// input.
type encoder struct {
	refIndex, curIndex int
	category           string // "" for a number
	mean, std          float64
}

func (e encoder) value(r *SampledRow, index int) float64 {
	var v float64
	if e.category == "" {
		v = r.number(index)
		if math.IsNaN(v) {
			return 0 // imputed with the reference's mean
		}
	} else if r.str(index) == e.category {
		v = 1
	}
	return (v - e.mean) / e.std
}

// multivariate computes NannyML's data reconstruction drift over the
// compared features: numbers standardised on the reference, categories
// one-hot (at most MaxOneHot each) then standardised, a PCA fitted on half
// of the reference's sampled rows keeping the components that explain
// PCAVariance of the variance, and the mean reconstruction error of the
// window against the band of the other half (held out, so the band is
// measured on rows the PCA did not see, as the window's are). It returns
// nil when either side has too few sampled rows or nothing to encode.
// multivariateFloor is the least distance, in reference standard
// deviations, between the reference's mean error and the threshold.
const multivariateFloor = 1e-6

func multivariate(ref, cur *RowSample, features map[string]string) *Multivariate {
	if ref == nil || cur == nil || len(ref.Rows) < 2*minMultivariateRows || len(cur.Rows) < minMultivariateRows {
		return nil
	}
	var fit, held []*SampledRow
	for i := range ref.Rows {
		if i%2 == 0 {
			fit = append(fit, &ref.Rows[i])
		} else {
			held = append(held, &ref.Rows[i])
		}
	}
	encs := encoders(ref, cur, features)
	if len(encs) == 0 {
		return nil
	}
	refMatrix := func(rows []*SampledRow) *mat.Dense {
		m := mat.NewDense(len(rows), len(encs), nil)
		for i, r := range rows {
			for j, e := range encs {
				m.Set(i, j, e.value(r, e.refIndex))
			}
		}
		return m
	}
	xf := refMatrix(fit)
	basis, k := pcaBasis(xf)
	if k == 0 || k == len(encs) {
		// Every component kept: the reconstruction is exact whatever
		// the data, and there is nothing to measure.
		return nil
	}
	center := columnMeans(xf)
	heldErr := reconstructionErrors(refMatrix(held), basis, center)
	curRows := make([]*SampledRow, len(cur.Rows))
	for i := range cur.Rows {
		curRows[i] = &cur.Rows[i]
	}
	xc := mat.NewDense(len(curRows), len(encs), nil)
	for i, r := range curRows {
		for j, e := range encs {
			xc.Set(i, j, e.value(r, e.curIndex))
		}
	}
	curErr := reconstructionErrors(xc, basis, center)

	m := &Multivariate{
		Method: MethodPCAReconstruction, Error: stats.Mean(curErr),
		ReferenceMean: stats.Mean(heldErr), Components: k, Columns: len(encs),
		Rows: len(curErr), ReferenceRows: len(ref.Rows),
	}
	m.ReferenceStd = chunkMeanStd(heldErr, len(curErr))
	// The features are standardised on the reference, so errors are in
	// reference standard deviations: below a millionth of one is rounding,
	// not drift. Without the floor a reference whose variance lies wholly
	// in the kept components (one varying feature, say) has a band of
	// 1e-16 that any window's rounding crosses.
	m.Threshold = math.Max(m.ReferenceMean+multivariateBand*m.ReferenceStd, m.ReferenceMean+multivariateFloor)
	m.Drifted = m.Error > m.Threshold
	m.Error, m.ReferenceMean, m.ReferenceStd, m.Threshold = finite(m.Error), finite(m.ReferenceMean), finite(m.ReferenceStd), finite(m.Threshold)
	return m
}

// chunkMeanStd returns the standard deviation of the mean of n errors, as
// measured on chunks of errs: chunks of n when errs holds at least 50 of
// them, else 50 chunks, their spread scaled by sqrt(chunk/n) (the standard
// error of a mean shrinks with the square root of its count). Fifty
// chunks, not NannyML's handful, because a spread estimated from ten is
// off by a quarter often enough to cry wolf at 3σ.
func chunkMeanStd(errs []float64, n int) float64 {
	size := n
	if len(errs) < 50*n {
		size = max(len(errs)/50, 1)
	}
	var means []float64
	for i := 0; i+size <= len(errs); i += size {
		means = append(means, stats.Mean(errs[i:i+size]))
	}
	if len(means) < 2 {
		return 0
	}
	// Sample standard deviation (ddof 1): few chunks.
	m := stats.Mean(means)
	var ss float64
	for _, v := range means {
		ss += (v - m) * (v - m)
	}
	sd := math.Sqrt(ss / float64(len(means)-1))
	return sd * math.Sqrt(float64(size)/float64(n))
}

// encoders returns the PCA's input columns, in feature-name order: a
// number per numerical feature, a 0/1 column per kept category of a
// categorical one, each standardised on the reference's sampled rows
// (population std, as scikit-learn's StandardScaler). Constant columns are
// left out.
func encoders(ref, cur *RowSample, features map[string]string) []encoder {
	var out []encoder
	for _, name := range sortedKeys(features) {
		ri, ok := ref.lookup(name)
		if !ok {
			continue
		}
		ci, ok := cur.lookup(name)
		if !ok {
			ci = -1
		}
		if features[name] == KindNumerical {
			var xs []float64
			for i := range ref.Rows {
				if v := ref.Rows[i].number(ri); !math.IsNaN(v) {
					xs = append(xs, v)
				}
			}
			if mean, std := stats.Mean(xs), stats.Std(xs); std > 0 {
				out = append(out, encoder{refIndex: ri, curIndex: ci, mean: mean, std: std})
			}
			continue
		}
		counts := map[string]int{}
		for i := range ref.Rows {
			if s := ref.Rows[i].str(ri); s != "" {
				counts[s]++
			}
		}
		cats := sortedKeys(counts)
		slices.SortStableFunc(cats, func(a, b string) int { return cmp.Compare(counts[b], counts[a]) })
		if len(cats) > MaxOneHot {
			cats = cats[:MaxOneHot]
		}
		n := float64(len(ref.Rows))
		for _, c := range cats {
			p := float64(counts[c]) / n
			if std := math.Sqrt(p * (1 - p)); std > 0 {
				out = append(out, encoder{refIndex: ri, curIndex: ci, category: c, mean: p, std: std})
			}
		}
	}
	return out
}

// lookup returns a feature's index without adding it.
func (s *RowSample) lookup(name string) (int, bool) {
	for i, n := range s.Names {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

func columnMeans(x *mat.Dense) []float64 {
	r, c := x.Dims()
	out := make([]float64, c)
	for j := range c {
		var s float64
		for i := range r {
			s += x.At(i, j)
		}
		out[j] = s / float64(r)
	}
	return out
}

// pcaBasis returns the principal axes (columns) of x's centred covariance
// that explain more than PCAVariance of its variance, as scikit-learn's
// PCA(n_components=0.65) keeps them, and how many there are.
func pcaBasis(x *mat.Dense) (*mat.Dense, int) {
	r, c := x.Dims()
	if r < 2 || c == 0 {
		return nil, 0
	}
	mean := columnMeans(x)
	xc := mat.NewDense(r, c, nil)
	for i := range r {
		for j := range c {
			xc.Set(i, j, x.At(i, j)-mean[j])
		}
	}
	var cov mat.SymDense
	cov.SymOuterK(1/float64(r-1), xc.T())
	var eig mat.EigenSym
	if !eig.Factorize(&cov, true) {
		return nil, 0
	}
	values := eig.Values(nil)
	var vectors mat.Dense
	eig.VectorsTo(&vectors)
	order := make([]int, len(values))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return values[order[a]] > values[order[b]] })
	var total float64
	for _, v := range values {
		total += math.Max(v, 0)
	}
	if total <= 0 {
		return nil, 0
	}
	// scikit-learn: searchsorted(cumsum(ratio), 0.65, side="right") + 1.
	k, cum := 0, 0.0
	for _, i := range order {
		cum += math.Max(values[i], 0) / total
		k++
		if cum > PCAVariance {
			break
		}
	}
	basis := mat.NewDense(c, k, nil)
	for j := range k {
		for i := range c {
			basis.Set(i, j, vectors.At(i, order[j]))
		}
	}
	return basis, k
}

// reconstructionErrors returns, per row of x, the Euclidean distance
// between the row and its reconstruction from the basis (centred on
// center, as scikit-learn's inverse_transform(transform(x))).
func reconstructionErrors(x, basis *mat.Dense, center []float64) []float64 {
	r, c := x.Dims()
	_, k := basis.Dims()
	// Raw row-major slices: At's bounds checks dominate otherwise.
	xr, br := x.RawMatrix(), basis.RawMatrix()
	out := make([]float64, r)
	row := make([]float64, c)
	proj := make([]float64, k)
	for i := range r {
		xi := xr.Data[i*xr.Stride : i*xr.Stride+c]
		for j := range c {
			row[j] = xi[j] - center[j]
		}
		clear(proj)
		for j := range c {
			bj := br.Data[j*br.Stride : j*br.Stride+k]
			for q, b := range bj {
				proj[q] += row[j] * b
			}
		}
		var ss float64
		for j := range c {
			bj := br.Data[j*br.Stride : j*br.Stride+k]
			var rec float64
			for q, b := range bj {
				rec += proj[q] * b
			}
			d := row[j] - rec
			ss += d * d
		}
		out[i] = math.Sqrt(ss)
	}
	return out
}
