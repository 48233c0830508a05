package canaryjudge

import (
	"math"

	"github.com/lookout-ml/lookout/pkg/stats"
)

// Quality metrics and tests.
const (
	MetricAccuracy = "accuracy"
	MetricMAE      = "mae"
	TestMcNemar    = "mcnemar"
	TestWilcoxon   = "wilcoxon"
)

// Quality compares the two sides on the window's pairs that have a
// ground-truth label: the same requests for both.
type Quality struct {
	LabelledPairs int `json:"labelled_pairs"`
	// Metric is accuracy for class predictions, mae (mean absolute error)
	// for numbers.
	Metric     string  `json:"metric"`
	Production float64 `json:"production"`
	Canary     float64 `json:"canary"`
	// Difference is Canary minus Production.
	Difference float64 `json:"difference"`
	// Test is the paired test of the difference: mcnemar (exact, on the
	// pairs where one side was right), or wilcoxon (signed-rank, normal
	// approximation, on the differences of absolute errors).
	Test   string  `json:"test"`
	PValue float64 `json:"p_value"`
}

// qualityOf returns the quality of the pairs labels has a label for, nil
// when none has. Each label used is taken out of labels. Class pairs and
// numeric pairs are not mixed: the more numerous kind is compared.
func qualityOf(pairs []Pair, labels *labelStore) *Quality {
	if labels == nil || len(labels.byKey) == 0 {
		return nil
	}
	var right [2]int
	var onlyProd, onlyCanary int
	var classes int
	var errs [2][]float64
	var diffs []float64
	for i := range pairs {
		p := &pairs[i]
		l, ok := labels.take(p)
		if !ok {
			continue
		}
		if p.IsLabel {
			truth := l.class()
			pr, cr := p.Labels[0] == truth, p.Labels[1] == truth
			classes++
			switch {
			case pr && cr:
				right[0]++
				right[1]++
			case pr:
				right[0]++
				onlyProd++
			case cr:
				right[1]++
				onlyCanary++
			}
			continue
		}
		truth, ok := l.number()
		if !ok {
			continue
		}
		ep, ec := math.Abs(p.Scores[0]-truth), math.Abs(p.Scores[1]-truth)
		errs[0] = append(errs[0], ep)
		errs[1] = append(errs[1], ec)
		diffs = append(diffs, ec-ep)
	}
	switch {
	case classes == 0 && len(diffs) == 0:
		return nil
	case classes >= len(diffs):
		n := float64(classes)
		q := &Quality{LabelledPairs: classes, Metric: MetricAccuracy, Test: TestMcNemar,
			Production: float64(right[0]) / n, Canary: float64(right[1]) / n,
			PValue: stats.McNemarExact(onlyProd, onlyCanary)}
		q.Difference = q.Canary - q.Production
		return q
	default:
		q := &Quality{LabelledPairs: len(diffs), Metric: MetricMAE, Test: TestWilcoxon,
			Production: mean(errs[0]), Canary: mean(errs[1]), PValue: stats.WilcoxonApprox(diffs).PValue}
		q.Difference = q.Canary - q.Production
		return q
	}
}
