package driftreport

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Embedding drift settings.
const (
	// DefaultEmbeddingCap is how many vectors of each embedding a dataset
	// keeps for the MMD test (a uniform sample past it).
	DefaultEmbeddingCap = 1000
	// EmbeddingPermutations is the number of permutations of the MMD test.
	EmbeddingPermutations = 100
	// DefaultEmbeddingPValue is the p-value below which an embedding
	// drifted: 0.01, not Alibi Detect's 0.05, which would alarm one
	// stable window in twenty.
	DefaultEmbeddingPValue = 0.01
	// minEmbeddingRows: fewer sampled vectors on either side give no
	// figure.
	minEmbeddingRows = 10
)

// EmbeddingDrift is the drift of one embedding.
type EmbeddingDrift struct {
	// CentroidDistance is the Euclidean distance between the mean vectors
	// of the window and of the reference (over every vector seen).
	CentroidDistance float64 `json:"centroid_distance"`
	// MMD2 is the unbiased squared maximum mean discrepancy of the
	// sampled vectors with an RBF kernel exp(−‖x−y‖² / (2σ²)), σ² half the
	// median squared distance between distinct vectors of both sides
	// (Alibi Detect's MMDDrift); PValue is its permutation test's, with
	// Permutations permutations ((count ≥ + 1) / (permutations + 1)).
	MMD2         float64 `json:"mmd2"`
	PValue       float64 `json:"p_value"`
	Threshold    float64 `json:"threshold"`
	Drifted      bool    `json:"drifted"`
	Sigma        float64 `json:"sigma"`
	Permutations int     `json:"permutations"`
	// Dim is the vectors' length; Rows and ReferenceRows the vectors
	// sampled; Mismatched the window's vectors of another length, left out.
	Dim           int `json:"dim"`
	Rows          int `json:"rows"`
	ReferenceRows int `json:"reference_rows"`
	Mismatched    int `json:"mismatched,omitempty"`
}

// EmbeddingSample holds one embedding of a dataset: a bounded uniform
// sample of its vectors and the running sum of all of them.
type EmbeddingSample struct {
	// Dim is the length of the first vector; others are Mismatched.
	Dim     int
	Vectors [][]float64
	// Sum and Seen give the centroid of every vector of length Dim.
	Sum        []float64
	Seen       int
	Mismatched int

	cap int
	rng *rand.Rand
}

// NewEmbeddingSample returns an empty sample of at most cap vectors (cap
// <= 0 means DefaultEmbeddingCap).
func NewEmbeddingSample(cap int, seed uint64) *EmbeddingSample {
	if cap <= 0 {
		cap = DefaultEmbeddingCap
	}
	if seed == 0 {
		seed = DefaultSeed
	}
	return &EmbeddingSample{cap: cap, rng: rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))}
}

// Add adds a vector; the sample keeps it as given (not copied: it must not
// change afterwards). A vector with a non-finite value counts as mismatched.
func (e *EmbeddingSample) Add(v []float64) {
	if e.cap <= 0 {
		e.cap = DefaultEmbeddingCap
	}
	if e.rng == nil {
		e.rng = rand.New(rand.NewPCG(DefaultSeed, DefaultSeed))
	}
	if e.Seen == 0 && e.Dim == 0 {
		e.Dim = len(v)
		e.Sum = make([]float64, e.Dim)
	}
	if len(v) != e.Dim || len(v) == 0 || slices.ContainsFunc(v, func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }) {
		e.Mismatched++
		return
	}
	for i, x := range v {
		e.Sum[i] += x
	}
	t := e.Seen
	e.Seen++
	if t < e.cap {
		e.Vectors = append(e.Vectors, v)
		return
	}
	if j := e.rng.IntN(t + 1); j < e.cap {
		e.Vectors[j] = v
	}
}

// Merge adds other's vectors (its sample) and its sums.
func (e *EmbeddingSample) Merge(other *EmbeddingSample) {
	if other == nil || other.Seen == 0 {
		return
	}
	if e.Seen == 0 && e.Dim == 0 {
		e.Dim = other.Dim
		e.Sum = make([]float64, e.Dim)
	}
	if other.Dim != e.Dim {
		e.Mismatched += other.Seen
		return
	}
	seen := e.Seen
	for _, v := range other.Vectors {
		e.Add(v)
	}
	// Every vector other saw counts in the centroid, sampled or not.
	copy(e.Sum, addVectors(e.Sum, other.Sum, other.Vectors))
	e.Seen = seen + other.Seen
	e.Mismatched += other.Mismatched
}

// addVectors returns sum − Σ vectors + total: the sum after Add counted the
// sampled vectors of a dataset whose total sum is total.
func addVectors(sum, total []float64, vectors [][]float64) []float64 {
	out := slices.Clone(sum)
	for _, v := range vectors {
		for i, x := range v {
			out[i] -= x
		}
	}
	for i, x := range total {
		out[i] += x
	}
	return out
}

func (e *EmbeddingSample) centroid() []float64 {
	c := make([]float64, e.Dim)
	for i, s := range e.Sum {
		c[i] = s / float64(e.Seen)
	}
	return c
}

// compareEmbedding measures how far cur's vectors moved from ref's. It
// returns false when either side has too few vectors or their lengths
// differ.
func compareEmbedding(ref, cur *EmbeddingSample, pValue float64, seed uint64) (EmbeddingDrift, bool) {
	if ref == nil || cur == nil || ref.Dim != cur.Dim || len(ref.Vectors) < minEmbeddingRows || len(cur.Vectors) < minEmbeddingRows {
		return EmbeddingDrift{}, false
	}
	ed := EmbeddingDrift{
		Dim: ref.Dim, Rows: len(cur.Vectors), ReferenceRows: len(ref.Vectors),
		Mismatched: cur.Mismatched, Threshold: pValue, Permutations: EmbeddingPermutations,
	}
	ed.CentroidDistance = math.Sqrt(squaredDistance(ref.centroid(), cur.centroid()))
	ed.MMD2, ed.PValue, ed.Sigma = MMDPermutation(ref.Vectors, cur.Vectors, EmbeddingPermutations, seed)
	ed.Drifted = ed.PValue < pValue
	ed.CentroidDistance, ed.MMD2, ed.Sigma = finite(ed.CentroidDistance), finite(ed.MMD2), finite(ed.Sigma)
	return ed, true
}

func squaredDistance(a, b []float64) float64 {
	var s float64
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return s
}

// MMD2 returns the unbiased squared MMD of x and y with the RBF kernel of
// bandwidth sigma: the mean of k(x, x') over distinct pairs of x, plus the
// same for y, less twice the mean of k(x, y).
func MMD2(x, y [][]float64, sigma float64) float64 {
	k := func(a, b []float64) float64 { return math.Exp(-squaredDistance(a, b) / (2 * sigma * sigma)) }
	var xx, yy, xy float64
	for i := range x {
		for j := i + 1; j < len(x); j++ {
			xx += k(x[i], x[j])
		}
	}
	for i := range y {
		for j := i + 1; j < len(y); j++ {
			yy += k(y[i], y[j])
		}
	}
	for i := range x {
		for j := range y {
			xy += k(x[i], y[j])
		}
	}
	n, m := float64(len(x)), float64(len(y))
	return 2*xx/(n*(n-1)) + 2*yy/(m*(m-1)) - 2*xy/(n*m)
}

// MedianSigma returns Alibi Detect's median heuristic: σ = sqrt(d/2), d
// the median squared distance between distinct vectors of x and y pooled
// (the upper median of the off-diagonal pairs, as sigma_median picks it).
func MedianSigma(x, y [][]float64) float64 {
	all := append(slices.Clip(x), y...)
	n := len(all)
	d := make([]float64, 0, n*(n-1)/2)
	for i := range all {
		for j := i + 1; j < n; j++ {
			d = append(d, squaredDistance(all[i], all[j]))
		}
	}
	if len(d) == 0 {
		return 1
	}
	slices.Sort(d)
	// sigma_median sorts the n² entries of the full matrix (n zeros on the
	// diagonal, then each distinct pair's distance twice) and takes index
	// n + P − 1, P = (n² − n)/2 pairs: the pair (P − 1)/2 of d.
	idx := (len(d) - 1) / 2
	s := math.Sqrt(d[idx] / 2)
	if !(s > 0) {
		return 1
	}
	return s
}

// MMDPermutation returns the MMD² of x and y with the median-heuristic
// bandwidth, the p-value of a permutation test with perms permutations
// of the pooled vectors (seeded), and the bandwidth.
func MMDPermutation(x, y [][]float64, perms int, seed uint64) (mmd2, pValue, sigma float64) {
	sigma = MedianSigma(x, y)
	mmd2 = MMD2(x, y, sigma)
	all := append(slices.Clip(x), y...)
	n := len(all)
	// The kernel matrix in float32: enough for ranking permutations, half
	// the memory of float64 (16 MB at 1,000 a side).
	kern := make([]float32, n*n)
	for i := range all {
		for j := i; j < n; j++ {
			v := float32(math.Exp(-squaredDistance(all[i], all[j]) / (2 * sigma * sigma)))
			kern[i*n+j], kern[j*n+i] = v, v
		}
	}
	stat := func(inX []bool) float64 {
		var xx, yy, xy float64
		for i := range n {
			row := kern[i*n : (i+1)*n]
			var sx, sy float64
			for j, v := range row {
				if j == i {
					continue
				}
				if inX[j] {
					sx += float64(v)
				} else {
					sy += float64(v)
				}
			}
			if inX[i] {
				xx += sx
				xy += sy
			} else {
				yy += sy
			}
		}
		nx, ny := float64(len(x)), float64(len(y))
		return xx/(nx*(nx-1)) + yy/(ny*(ny-1)) - 2*xy/(nx*ny)
	}
	labels := make([]bool, n)
	for i := range x {
		labels[i] = true
	}
	observed := stat(labels)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	count := 0
	for range perms {
		rng.Shuffle(n, func(i, j int) { labels[i], labels[j] = labels[j], labels[i] })
		if stat(labels) >= observed {
			count++
		}
	}
	return mmd2, float64(count+1) / float64(perms+1), sigma
}
