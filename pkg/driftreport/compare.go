package driftreport

import (
	"cmp"
	"errors"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/lookout-ml/lookout/pkg/stats"
)

// Defaults of Options.
const (
	DefaultSmallReference         = 1000
	DefaultPValue                 = 0.05
	DefaultWassersteinThreshold   = 0.1
	DefaultJensenShannonThreshold = 0.1
	DefaultPSIThreshold           = 0.1
	DefaultDriftShare             = 0.5
	DefaultLowConfidence          = 0.5
	DefaultConfidenceMeanDrop     = 0.05
	DefaultMinLowShare            = 0.05
	// MinStd is the smallest reference standard deviation the Wasserstein
	// score divides by, so that a nearly constant reference gives a finite
	// score (an exactly constant one is not divided at all).
	MinStd = 0.001
	// NoteConstantReference is the Note of a feature whose reference holds
	// one value: its wasserstein score is the raw distance, not normalised.
	NoteConstantReference = "constant in the reference (std 0): wasserstein not normalised"
)

// Rule overrides how one feature is judged. Empty fields keep the default.
type Rule struct {
	// Method is "ks", "chi2", "wasserstein", "jensen_shannon" or "psi". A
	// method that does not fit the feature's kind (ks or wasserstein for a
	// categorical feature, chi2 for a numerical one) is ignored.
	Method string
	// Threshold is the p-value below which ks and chi2 say drifted, or the
	// score at or above which the other methods say drifted.
	Threshold float64
}

// Options configure Compare. The zero value means every default.
type Options struct {
	// SmallReference is the largest reference, in rows, judged by the
	// tests (ks, chi2); larger ones are judged by distances (wasserstein,
	// jensen_shannon). Default 1000.
	SmallReference int
	// PValue is the p-value below which ks and chi2 say drifted.
	PValue float64
	// WassersteinThreshold applies to the Wasserstein distance divided by
	// the reference's standard deviation (at least MinStd).
	WassersteinThreshold float64
	// JensenShannonThreshold applies to the Jensen-Shannon distance.
	JensenShannonThreshold float64
	// PSIThreshold applies when a Rule picks the method "psi".
	PSIThreshold float64
	// DriftShare is the share of drifted features at or above which the
	// dataset drifted. Default 0.5.
	DriftShare float64
	// Features overrides the rule per feature name.
	Features map[string]Rule
	// Prediction overrides the rule for the prediction column.
	Prediction *Rule
	// LowConfidence is the confidence below which a prediction counts as
	// low-confidence. Default 0.5.
	LowConfidence float64
	// ConfidenceMeanDrop is the fall of the mean confidence beyond which
	// confidence dropped. Default 0.05.
	ConfidenceMeanDrop float64
	// MinLowShare is the low-confidence share below which a doubling is
	// too small to count. Default 0.05.
	MinLowShare float64
	// Threshold is ThresholdAuto (default) or ThresholdEvidently.
	Threshold string
	// MinReferenceWindows is how many windows' worth of values the
	// reference needs before ThresholdAuto derives thresholds from it.
	// Default 5.
	MinReferenceWindows int
	// FamilyAlpha is the chance per report of a false alarm on any
	// feature that reference-chunk thresholds allow, split across the
	// features by Bonferroni. Default 0.01.
	FamilyAlpha float64
	// EmbeddingPValue is the MMD test's p-value below which an embedding
	// drifted. Default 0.05.
	EmbeddingPValue float64
	// RootCauseTags and RootCauseSegments bound the root cause: at most
	// this many tags (those most rows carry) and values of each (the
	// largest). Defaults 3 and 5.
	RootCauseTags, RootCauseSegments int

	// configured* remember which fixed thresholds the caller set, so a
	// report can say a threshold came from the config.
	configuredP, configuredW, configuredJS, configuredPSI bool
}

func (o Options) withDefaults() Options {
	def := func(v *float64, d float64) {
		if !(*v > 0) || math.IsInf(*v, 0) {
			*v = d
		}
	}
	set := func(v float64) bool { return v > 0 && !math.IsInf(v, 0) }
	o.configuredP = o.configuredP || set(o.PValue)
	o.configuredW = o.configuredW || set(o.WassersteinThreshold)
	o.configuredJS = o.configuredJS || set(o.JensenShannonThreshold)
	o.configuredPSI = o.configuredPSI || set(o.PSIThreshold)
	if o.Threshold == "" {
		o.Threshold = ThresholdAuto
	}
	if o.MinReferenceWindows <= 0 {
		o.MinReferenceWindows = DefaultMinReferenceWindows
	}
	def(&o.FamilyAlpha, DefaultFamilyAlpha)
	def(&o.EmbeddingPValue, DefaultEmbeddingPValue)
	if o.RootCauseTags <= 0 {
		o.RootCauseTags = DefaultRootCauseTags
	}
	if o.RootCauseSegments <= 0 {
		o.RootCauseSegments = DefaultRootCauseSegments
	}
	if o.SmallReference <= 0 {
		o.SmallReference = DefaultSmallReference
	}
	def(&o.PValue, DefaultPValue)
	def(&o.WassersteinThreshold, DefaultWassersteinThreshold)
	def(&o.JensenShannonThreshold, DefaultJensenShannonThreshold)
	def(&o.PSIThreshold, DefaultPSIThreshold)
	def(&o.DriftShare, DefaultDriftShare)
	def(&o.LowConfidence, DefaultLowConfidence)
	def(&o.ConfidenceMeanDrop, DefaultConfidenceMeanDrop)
	def(&o.MinLowShare, DefaultMinLowShare)
	return o
}

// Compare measures how far cur has moved from ref and returns the report,
// with the counts, features, prediction, confidence, drift share, data
// quality and sampling flag filled in; the caller sets Model, the window's
// times and the reference's source.
//
// A feature is compared when both sides hold at least one value of it. Its
// kind is that of most of the reference's values; values of the other kind
// are left out and counted in the data quality's type_mismatch_share. When
// the current window's values are mostly of the other kind, both sides are
// compared as categories (numbers as their decimal strings), with a note. A
// feature on one side only, or with no values on one side, is reported
// in the data-quality part and is not counted in the drift share. Compare
// may run concurrently on datasets that are not being added to.
func Compare(ref, cur *Dataset, opts Options) Report {
	opts = opts.withDefaults()
	if ref == nil {
		ref = &Dataset{}
	}
	if cur == nil {
		cur = &Dataset{}
	}
	refCount := ref.count()
	r := Report{
		Window:    Window{Count: cur.count()},
		Reference: Reference{Count: refCount},
		Features:  make(map[string]FeatureDrift),
		DataQuality: DataQuality{
			Features: make(map[string]FeatureQuality),
			Appeared: []string{},
			Vanished: []string{},
		},
		Sampled: ref.Sampled() || cur.Sampled(),
	}
	small := refCount <= opts.SmallReference

	type job struct {
		name     string
		rc, cc   *Column
		rule     Rule
		quality  FeatureQuality
		drift    FeatureDrift
		compared bool
	}
	var jobs []*job
	names := map[string]bool{}
	for n := range ref.Features {
		names[n] = true
	}
	for n := range cur.Features {
		names[n] = true
	}
	for _, name := range sortedKeys(names) {
		rc, cc := ref.Features[name], cur.Features[name]
		switch {
		case rc == nil:
			r.DataQuality.Appeared = append(r.DataQuality.Appeared, name)
			r.DataQuality.Features[name] = FeatureQuality{
				NullShare: share(cur.nulls(cc), cur.count()), ReferenceNullShare: 1,
				Skipped: "not in the reference",
			}
			continue
		case cc == nil:
			r.DataQuality.Vanished = append(r.DataQuality.Vanished, name)
			r.DataQuality.Features[name] = FeatureQuality{
				NullShare: 1, ReferenceNullShare: share(ref.nulls(rc), refCount),
				Skipped: "not in the current window",
			}
			continue
		}
		jobs = append(jobs, &job{name: name, rc: rc, cc: cc, rule: opts.Features[name]})
	}
	var predJob *job
	if ref.Prediction != nil && cur.Prediction != nil && (ref.Prediction.Len() > 0 || cur.Prediction.Len() > 0) {
		predJob = &job{name: "", rc: ref.Prediction, cc: cur.Prediction}
		if opts.Prediction != nil {
			predJob.rule = *opts.Prediction
		}
		jobs = append(jobs, predJob)
	}

	// Reference-chunk thresholds correct for testing this many columns.
	tested := len(jobs)

	// Features are independent: judge them in parallel, within the
	// machine's cores.
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			j.quality = FeatureQuality{
				NullShare:          share(cur.nulls(j.cc), cur.count()),
				ReferenceNullShare: share(ref.nulls(j.rc), refCount),
			}
			j.drift, j.compared = compareColumn(j.rc, j.cc, j.rule, small, tested, opts, &j.quality)
		}()
	}
	wg.Wait()

	drifted, compared := 0, 0
	for _, j := range jobs {
		if j == predJob {
			q := j.quality
			r.DataQuality.Prediction = &q
			if j.compared {
				d := j.drift
				r.Prediction = &d
			}
			continue
		}
		r.DataQuality.Features[j.name] = j.quality
		if !j.compared {
			continue
		}
		r.Features[j.name] = j.drift
		compared++
		if j.drift.Drifted {
			drifted++
		}
	}
	if compared > 0 {
		r.DriftShare = float64(drifted) / float64(compared)
		r.DatasetDrifted = r.DriftShare >= opts.DriftShare
	}
	r.Confidence = compareConfidence(ref.Confidence, cur.Confidence, opts)
	kinds := make(map[string]string, len(r.Features))
	for name, fd := range r.Features {
		if fd.Note == "" || fd.Note == NoteConstantReference {
			kinds[name] = fd.Kind
		}
	}
	r.Multivariate = multivariate(ref.Sample, cur.Sample, kinds)
	r.Embeddings = compareEmbeddings(ref, cur, opts)
	r.RootCause = rootCause(ref, cur, &r, opts)
	return r
}

// compareColumn judges one feature and fills in its data quality. It
// reports false when the feature cannot be compared.
//
// The feature's kind is the reference's (the kind of most of its values),
// or the current window's when the reference has none. Values of the other
// kind on either side are strays: counted as type mismatches and left out
// of the statistics, so that a few strings among numbers do not turn a
// numerical feature categorical. When most of the current window's values
// are of the other kind (the feature changed type), every value of both
// sides is compared as a category, with a note.
func compareColumn(rc, cc *Column, rule Rule, small bool, tested int, opts Options, q *FeatureQuality) (FeatureDrift, bool) {
	kind := rc.Kind()
	if rc.Seen == 0 {
		kind = cc.Kind()
	}
	q.TypeMismatches = cc.strays(kind)
	q.TypeMismatchShare = share(q.TypeMismatches, cc.Seen)
	q.ReferenceTypeMismatchShare = share(rc.strays(kind), rc.Seen)
	if rc.Len() == 0 || cc.Len() == 0 {
		switch {
		case rc.Len() == 0 && cc.Len() == 0:
			q.Skipped = "no values on either side"
		case rc.Len() == 0:
			q.Skipped = "no values in the reference"
		default:
			q.Skipped = "no values in the current window"
		}
		return FeatureDrift{}, false
	}
	flipped := rc.Kind() != cc.Kind()
	q.MixedTypes = flipped || rc.Mixed || cc.Mixed
	var fd FeatureDrift
	var err error
	switch {
	case flipped:
		fd, err = categorical(nil, rc.allStrings(), cc.allStrings(), rule, small, tested, opts, q)
		fd.Note = "numerical on one side and categorical on the other: compared as categories"
	case kind == KindCategorical:
		fd, err = categorical(rc, rc.Strings, cc.Strings, rule, small, tested, opts, q)
	default:
		fd, err = numerical(rc, cc.sortedNumbers(), rule, small, tested, opts, q)
	}
	if err != nil {
		q.Skipped = err.Error()
		return FeatureDrift{}, false
	}
	return fd, true
}

func numerical(rc *Column, cur []float64, rule Rule, small bool, tested int, opts Options, q *FeatureQuality) (FeatureDrift, error) {
	ref := rc.sortedNumbers()
	fd := FeatureDrift{Kind: KindNumerical}
	ks, err := stats.KS2SampSorted(ref, cur)
	if err != nil {
		return fd, err
	}
	fd.KS = &KS{Statistic: ks.Statistic, PValue: ks.PValue}
	w := stats.WassersteinSorted(ref, cur)
	fd.Wasserstein = &w
	edges := stats.DecileEdgesSorted(ref)
	rs := stats.Shares(stats.BinCountsSorted(ref, edges))
	cs := stats.Shares(stats.BinCountsSorted(cur, edges))
	fd.PSI = stats.PSI(rs, cs)
	fd.JensenShannon = stats.JensenShannon(rs, cs)
	fd.Histogram = numericalHistogram(edges, rs, cs)

	lo, hi := ref[0], ref[len(ref)-1]
	below := lowerBound(cur, lo)
	above := len(cur) - upperBound(cur, hi)
	q.OutOfRange = below + above
	q.OutOfRangeShare = share(q.OutOfRange, len(cur))

	method := rule.Method
	switch method {
	case MethodKS, MethodWasserstein, MethodJensenShannon, MethodPSI:
		fd.ThresholdSource = SourceConfig
	default:
		method = MethodWasserstein
		if small {
			method = MethodKS
		}
	}
	fd.Method = method
	var auto *ThresholdNull
	if fd.ThresholdSource == "" && !(rule.Threshold > 0) && opts.Threshold == ThresholdAuto {
		if null, ok := rc.referenceNull(MethodKSStatistic, len(cur), opts.MinReferenceWindows); ok {
			method, fd.Method = MethodKSStatistic, MethodKSStatistic
			var t float64
			t, auto = null.threshold(MethodKSStatistic, opts.FamilyAlpha, tested, chunkRows(len(cur)))
			rule.Threshold = t
		}
	}
	fd.ThresholdSource = thresholdSource(fd.ThresholdSource, rule, auto, method, opts)
	fd.ThresholdNull = auto
	switch method {
	case MethodKS:
		fd.Score, fd.Threshold = ks.PValue, pick(rule.Threshold, opts.PValue)
		fd.Drifted = fd.Score < fd.Threshold
	case MethodKSStatistic:
		fd.Score, fd.Threshold = ks.Statistic, rule.Threshold
		fd.Drifted = fd.Score >= fd.Threshold
	case MethodWasserstein:
		if ref[0] == ref[len(ref)-1] {
			// A constant reference has no spread to measure the distance
			// in: dividing by MinStd would turn 0.8 into 800. The raw
			// distance is judged instead, and the note says so.
			fd.Score, fd.Note = w, NoteConstantReference
		} else {
			fd.Score = w / math.Max(stats.Std(ref), MinStd)
		}
		fd.Threshold = pick(rule.Threshold, opts.WassersteinThreshold)
		fd.Drifted = fd.Score >= fd.Threshold
	case MethodJensenShannon:
		fd.Score, fd.Threshold = fd.JensenShannon, pick(rule.Threshold, opts.JensenShannonThreshold)
		fd.Drifted = fd.Score >= fd.Threshold
	case MethodPSI:
		fd.Score, fd.Threshold = fd.PSI, pick(rule.Threshold, opts.PSIThreshold)
		fd.Drifted = fd.Score >= fd.Threshold
	}
	fd.Score = finite(fd.Score)
	return fd, nil
}

func categorical(refCol *Column, ref, cur []string, rule Rule, small bool, tested int, opts Options, q *FeatureQuality) (FeatureDrift, error) {
	fd := FeatureDrift{Kind: KindCategorical}
	cats, rc, cc := stats.CategoryCounts(ref, cur)
	rs, cs := stats.Shares(rc), stats.Shares(cc)
	fd.PSI = stats.PSI(rs, cs)
	fd.JensenShannon = stats.JensenShannon(rs, cs)
	fd.Histogram = categoricalHistogram(cats, rs, cs)
	table := [][]float64{toFloats(rc), toFloats(cc)}
	chi, err := stats.Chi2Contingency(table)
	if err != nil && !errors.Is(err, stats.ErrZeroExpected) {
		return fd, err
	}
	if err == nil {
		fd.Chi2 = &Chi2{Statistic: chi.Statistic, PValue: chi.PValue, DOF: chi.DOF}
	}

	type unseen struct {
		cat string
		n   int
	}
	var us []unseen
	for i, c := range cats {
		if rc[i] == 0 && cc[i] > 0 {
			us = append(us, unseen{c, cc[i]})
			q.UnseenCategories += cc[i]
		}
	}
	slices.SortFunc(us, func(a, b unseen) int {
		return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.cat, b.cat))
	})
	for i := 0; i < len(us) && i < MaxUnseenListed; i++ {
		q.Unseen = append(q.Unseen, us[i].cat)
	}

	method := rule.Method
	switch method {
	case MethodChi2, MethodJensenShannon, MethodPSI:
		fd.ThresholdSource = SourceConfig
	default:
		method = MethodJensenShannon
		if small {
			method = MethodChi2
		}
	}
	fd.Method = method
	var auto *ThresholdNull
	if refCol != nil && fd.ThresholdSource == "" && !(rule.Threshold > 0) && opts.Threshold == ThresholdAuto {
		if null, ok := refCol.referenceNull(MethodJensenShannon, len(cur), opts.MinReferenceWindows); ok {
			method, fd.Method = MethodJensenShannon, MethodJensenShannon
			var t float64
			t, auto = null.threshold(MethodJensenShannon, opts.FamilyAlpha, tested, chunkRows(len(cur)))
			rule.Threshold = t
		}
	}
	fd.ThresholdSource = thresholdSource(fd.ThresholdSource, rule, auto, method, opts)
	fd.ThresholdNull = auto
	switch method {
	case MethodChi2:
		fd.Score, fd.Threshold = 1, pick(rule.Threshold, opts.PValue)
		if fd.Chi2 != nil {
			fd.Score = fd.Chi2.PValue
		}
		fd.Drifted = fd.Score < fd.Threshold
	case MethodJensenShannon:
		fd.Score, fd.Threshold = fd.JensenShannon, pick(rule.Threshold, opts.JensenShannonThreshold)
		fd.Drifted = fd.Score >= fd.Threshold
	case MethodPSI:
		fd.Score, fd.Threshold = fd.PSI, pick(rule.Threshold, opts.PSIThreshold)
		fd.Drifted = fd.Score >= fd.Threshold
	}
	fd.Score = finite(fd.Score)
	return fd, nil
}

// compareEmbeddings compares each embedding both sides hold, in parallel.
func compareEmbeddings(ref, cur *Dataset, opts Options) map[string]EmbeddingDrift {
	var names []string
	for name := range cur.Embeddings {
		if ref.Embeddings[name] != nil {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	results := make([]EmbeddingDrift, len(names))
	ok := make([]bool, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The seed depends on the data only, so that the same
			// windows give the same p-value offline and in the service.
			seed := uint64(cur.Embeddings[name].Seen)<<32 ^ uint64(ref.Embeddings[name].Seen) ^ uint64(len(name))
			results[i], ok[i] = compareEmbedding(ref.Embeddings[name], cur.Embeddings[name], opts.EmbeddingPValue, seed)
		}()
	}
	wg.Wait()
	out := make(map[string]EmbeddingDrift, len(names))
	for i, name := range names {
		if ok[i] {
			out[name] = results[i]
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// thresholdSource says where a feature's threshold comes from.
func thresholdSource(source string, rule Rule, auto *ThresholdNull, method string, opts Options) string {
	switch {
	case auto != nil:
		return SourceReferenceChunks
	case source != "" || rule.Threshold > 0:
		return SourceConfig
	}
	configured := map[string]bool{
		MethodKS: opts.configuredP, MethodChi2: opts.configuredP,
		MethodWasserstein: opts.configuredW, MethodJensenShannon: opts.configuredJS, MethodPSI: opts.configuredPSI,
	}[method]
	if configured {
		return SourceConfig
	}
	return SourceDefault
}

func compareConfidence(rc, cc *Column, opts Options) *ConfidenceDrift {
	if rc == nil || cc == nil || len(rc.Numbers) == 0 || len(cc.Numbers) == 0 {
		return nil
	}
	ref, cur := rc.sortedNumbers(), cc.sortedNumbers()
	lowShare := func(x []float64) float64 {
		return share(lowerBound(x, opts.LowConfidence), len(x))
	}
	c := &ConfidenceDrift{
		Mean:              stats.Mean(cur),
		ReferenceMean:     stats.Mean(ref),
		P10:               stats.QuantileSorted(cur, 0.1),
		ReferenceP10:      stats.QuantileSorted(ref, 0.1),
		LowShare:          lowShare(cur),
		ReferenceLowShare: lowShare(ref),
		LowThreshold:      opts.LowConfidence,
	}
	if sd := stats.Std(ref); sd > 0 {
		c.MeanZ = finite((c.Mean - c.ReferenceMean) / (sd / math.Sqrt(float64(len(cur)))))
	}
	meanDropped := c.ReferenceMean-c.Mean > opts.ConfidenceMeanDrop
	lowDoubled := c.LowShare >= 2*c.ReferenceLowShare && c.LowShare >= opts.MinLowShare
	c.Dropped = meanDropped || lowDoubled
	return c
}

// lowerBound returns the number of values of sorted x below v.
func lowerBound(x []float64, v float64) int {
	i, _ := slices.BinarySearch(x, v)
	return i
}

// upperBound returns the number of values of sorted x at or below v.
func upperBound(x []float64, v float64) int {
	return sort.Search(len(x), func(i int) bool { return x[i] > v })
}

func share(n, total int) float64 {
	if total <= 0 {
		return 0
	}
	return min(float64(n)/float64(total), 1)
}

func pick(v, def float64) float64 {
	if v > 0 && !math.IsInf(v, 0) {
		return v
	}
	return def
}

// finite keeps a figure JSON can carry: NaN becomes 0, infinities the
// largest finite numbers.
func finite(v float64) float64 {
	switch {
	case math.IsNaN(v):
		return 0
	case math.IsInf(v, 1):
		return math.MaxFloat64
	case math.IsInf(v, -1):
		return -math.MaxFloat64
	}
	return v
}

func toFloats(x []int) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}
