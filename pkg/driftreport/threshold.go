package driftreport

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/lookout-ml/lookout/pkg/stats"
)

// Threshold modes (Options.Threshold, drift.threshold in the config).
const (
	// ThresholdAuto derives each feature's threshold from the reference's
	// own variation when the reference holds at least MinReferenceWindows
	// windows' worth of values, and falls back to ThresholdEvidently
	// otherwise. The default.
	ThresholdAuto = "auto"
	// ThresholdEvidently is Evidently's rule: tests (ks, chi2, p < 0.05)
	// up to SmallReference reference rows, distances (wasserstein / std
	// and jensen_shannon >= 0.1) above.
	ThresholdEvidently = "evidently"
)

// Where a feature's threshold came from (FeatureDrift.ThresholdSource).
const (
	// SourceDefault is a built-in fixed threshold (the Evidently rule).
	SourceDefault = "default"
	// SourceConfig is a threshold or method the configuration set.
	SourceConfig = "config"
	// SourceReferenceChunks is a threshold derived from the statistic's
	// spread across window-sized chunks of the reference (see
	// ThresholdNull).
	SourceReferenceChunks = "reference_chunks"
)

// Defaults of the reference-chunk thresholds.
const (
	DefaultMinReferenceWindows = 5
	// DefaultFamilyAlpha is the chance, per report, that any feature of a
	// stable window is called drifted: Bonferroni splits it across the
	// compared features.
	DefaultFamilyAlpha = 0.01
	// nullSamples is the fewest chunks the null distribution is measured
	// on; the reference is chunked again (new random split) until there
	// are this many. maxNullSamples bounds the work on a reference of many
	// windows.
	nullSamples    = 50
	maxNullSamples = 100
	// minZ keeps a threshold at least mean + 3σ (NannyML's band) when few
	// features are compared.
	minZ = 3.0
)

// ThresholdNull says how a reference_chunks threshold was derived: the
// reference was split at random into chunks of the window's size (Rows),
// each chunk's statistic was computed against the rest of the reference,
// and the threshold is max(Mean + Z·Std, Max) over those Chunks values.
// Z puts the threshold where the statistic's own null shape (Kolmogorov's
// distribution for ks_statistic, a chi distribution with categories − 1
// degrees of freedom for jensen_shannon) has a tail of Alpha/Features
// (Bonferroni), after matching its mean and spread to the chunks': the
// chunks give the location and scale (ties, discreteness, the reference's
// own quirks), the shape gives the tail that 50 chunks cannot. Z is at
// least 3.
type ThresholdNull struct {
	Chunks     int     `json:"chunks"`
	Rows       int     `json:"rows"`
	Mean       float64 `json:"mean"`
	Std        float64 `json:"std"`
	Max        float64 `json:"max"`
	Z          float64 `json:"z"`
	Correction string  `json:"correction"`
	Alpha      float64 `json:"alpha"`
	Features   int     `json:"features"`
}

// nullKey names one cached null distribution of a reference column.
type nullKey struct {
	method string
	rows   int
	seen   int // the column's Seen when computed: a later Add makes it stale
}

// nullStats is the part of ThresholdNull that depends on the column only.
type nullStats struct {
	chunks         int
	mean, std, max float64
	dof            int // categories − 1, for jensen_shannon
}

// Moments of the Kolmogorov distribution (the limit of sqrt(nm/(n+m))·D).
var (
	kolmogorovMean = math.Sqrt(math.Pi/2) * math.Ln2
	kolmogorovStd  = math.Sqrt(math.Pi*math.Pi/12 - kolmogorovMean*kolmogorovMean)
)

// tailZ returns how many standard deviations above its mean a method's
// null statistic has a tail of alpha/m (Bonferroni), at least minZ. dof is
// the categories − 1 of a categorical feature.
func tailZ(method string, alpha float64, m, dof int) float64 {
	p := alpha / float64(max(m, 1))
	var z float64
	switch method {
	case MethodKSStatistic:
		// P(K > x) ≈ 2·exp(−2x²), the first term of Kolmogorov's series:
		// exact to many digits this far out.
		x := math.Sqrt(-math.Log(p/2) / 2)
		z = (x - kolmogorovMean) / kolmogorovStd
	case MethodJensenShannon:
		// n·JS² is asymptotically a multiple of a chi-squared with dof
		// degrees of freedom, so JS is a multiple of a chi variable.
		k := float64(max(dof, 1))
		mean := math.Sqrt2 * math.Exp(lgamma((k+1)/2)-lgamma(k/2))
		std := math.Sqrt(math.Max(k-mean*mean, 1e-12))
		x := math.Sqrt(distuv.ChiSquared{K: k}.Quantile(1 - p))
		z = (x - mean) / std
	default:
		z = math.Sqrt2 * math.Erfinv(1-2*p)
	}
	return math.Max(z, minZ)
}

func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}

// chunkRows rounds a window's size down to two significant digits, so that
// windows of slightly different sizes share one cached null (a smaller
// chunk is noisier: the threshold errs on the safe side).
func chunkRows(n int) int {
	p := 1
	for n/p >= 100 {
		p *= 10
	}
	return n / p * p
}

// referenceNull returns the null distribution of a method's score for
// windows of n values against the column's values, computed once per
// (method, n) until the column changes. ok is false when the reference is
// too small or constant.
func (c *Column) referenceNull(method string, n, minWindows int) (nullStats, bool) {
	n = chunkRows(n)
	if n < 1 {
		return nullStats{}, false
	}
	key := nullKey{method: method, rows: n, seen: c.Seen}
	c.mu.Lock()
	if s, ok := c.nullCache[key]; ok {
		c.mu.Unlock()
		return s, s.chunks > 0
	}
	c.mu.Unlock()
	var s nullStats
	switch method {
	case MethodKSStatistic:
		s = numericalNull(c.sortedNumbers(), n, minWindows)
	case MethodJensenShannon:
		s = categoricalNull(c.Strings, n, minWindows)
	}
	c.mu.Lock()
	if c.nullCache == nil {
		c.nullCache = make(map[nullKey]nullStats)
	}
	for k := range c.nullCache {
		if k.seen != c.Seen {
			delete(c.nullCache, k)
		}
	}
	c.nullCache[key] = s
	c.mu.Unlock()
	return s, s.chunks > 0
}

// chunkLabels assigns each of total positions to one of k chunks of n
// positions at random (-1: in no chunk, always part of the rest).
func chunkLabels(rng *rand.Rand, labels []int32, k, n int) {
	for i := range labels {
		labels[i] = -1
	}
	perm := rng.Perm(len(labels))
	for i := 0; i < k*n; i++ {
		labels[perm[i]] = int32(i / n)
	}
}

// numericalNull measures the KS statistic D of random window-sized chunks
// of sorted against the rest of it. D depends on ranks only, so one
// outlier in a heavy-tailed feature moves it by at most 1/n, where it
// could move a Wasserstein distance past any threshold.
func numericalNull(sorted []float64, n, minWindows int) nullStats {
	N := len(sorted)
	k := N / n
	if k < minWindows || N < 2 || sorted[0] == sorted[N-1] {
		return nullStats{}
	}
	rng := rand.New(rand.NewPCG(uint64(N), uint64(n)))
	labels := make([]int32, N)
	chunk := make([]float64, 0, n)
	rest := make([]float64, 0, N)
	var scores []float64
	for len(scores) < nullSamples {
		chunkLabels(rng, labels, k, n)
		for j := 0; j < k && len(scores) < maxNullSamples; j++ {
			chunk, rest = chunk[:0], rest[:0]
			for i, v := range sorted {
				if labels[i] == int32(j) {
					chunk = append(chunk, v)
				} else {
					rest = append(rest, v)
				}
			}
			scores = append(scores, stats.KSStatisticSorted(rest, chunk))
		}
	}
	return summarise(scores)
}

// categoricalNull measures the Jensen-Shannon distance of random
// window-sized chunks of values against the rest of them.
func categoricalNull(values []string, n, minWindows int) nullStats {
	N := len(values)
	k := N / n
	if k < minWindows {
		return nullStats{}
	}
	index := map[string]int{}
	codes := make([]int, N)
	for i, v := range values {
		c, ok := index[v]
		if !ok {
			c = len(index)
			index[v] = c
		}
		codes[i] = c
	}
	if len(index) < 2 {
		return nullStats{}
	}
	total := make([]int, len(index))
	for _, c := range codes {
		total[c]++
	}
	rng := rand.New(rand.NewPCG(uint64(N), uint64(n)))
	labels := make([]int32, N)
	counts := make([][]int, min(k, maxNullSamples))
	for j := range counts {
		counts[j] = make([]int, len(index))
	}
	var scores []float64
	for len(scores) < nullSamples {
		chunkLabels(rng, labels, k, n)
		for j := range counts {
			clear(counts[j])
		}
		for i, l := range labels {
			if l >= 0 && int(l) < len(counts) {
				counts[l][codes[i]]++
			}
		}
		for _, cc := range counts {
			if len(scores) >= maxNullSamples {
				break
			}
			rest := make([]int, len(total))
			for i := range total {
				rest[i] = total[i] - cc[i]
			}
			scores = append(scores, stats.JensenShannon(stats.Shares(rest), stats.Shares(cc)))
		}
	}
	s := summarise(scores)
	s.dof = len(index) - 1
	return s
}

func summarise(scores []float64) nullStats {
	s := nullStats{chunks: len(scores), mean: stats.Mean(scores), std: stats.Std(scores)}
	for _, v := range scores {
		s.max = math.Max(s.max, v)
	}
	return s
}

// threshold returns the threshold a null gives for m compared features.
func (s nullStats) threshold(method string, alpha float64, m, rows int) (float64, *ThresholdNull) {
	z := tailZ(method, alpha, m, s.dof)
	t := math.Max(s.mean+z*s.std, s.max)
	return t, &ThresholdNull{
		Chunks: s.chunks, Rows: rows, Mean: s.mean, Std: s.std, Max: s.max,
		Z: z, Correction: "bonferroni", Alpha: alpha, Features: m,
	}
}
