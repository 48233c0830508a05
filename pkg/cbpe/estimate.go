package cbpe

import (
	"math"
	"sort"
)

// Defaults of the calibration decision.
const (
	// Bins is the number of equal-count bins of the expected calibration
	// error (NannyML's bin_count).
	Bins = 10
	// Folds is the number of cross-validation folds that judge whether
	// calibration helps.
	Folds = 10
	// MinLabelled is the fewest labelled reference predictions that are
	// calibrated on; fewer leave confidence as it is.
	MinLabelled = 20
	// MaxAUC is the ROC AUC above which the reference's confidence already
	// separates right from wrong and is not calibrated (NannyML's 0.999).
	MaxAUC = 0.999
)

// Method is the estimated_performance method name of the contract.
const Method = "cbpe"

// Reasons a calibration was or was not applied (Estimator.Reason).
const (
	ReasonNoLabels  = "no_labels"
	ReasonFew       = "few"
	ReasonOneClass  = "one_class"
	ReasonSeparable = "separable"
	ReasonLowerECE  = "lower_ece"
	ReasonNoGain    = "no_gain"
)

// BinEdges is NannyML's _get_bin_index_edges: [lo, hi) index ranges of
// equal-count bins over n sorted values, the last one taking the
// remainder; fewer bins when n <= 2·bins. It returns nil below 4 values.
func BinEdges(n, bins int) [][2]int {
	if n <= 2*bins {
		bins = n / 2
	}
	if bins < 2 {
		return nil
	}
	width := n / bins
	var edges []int
	for e := 0; e <= n; e += width {
		edges = append(edges, e)
	}
	edges[len(edges)-1] = n
	out := make([][2]int, 0, len(edges)-1)
	for i := 1; i < len(edges); i++ {
		out = append(out, [2]int{edges[i-1], edges[i]})
	}
	return out
}

// ECE is the expected calibration error of NannyML's CBPE: the confidences
// are sorted (stably, so ties keep their order) and cut into the bins of
// edges; each bin adds its share of the rows times |mean confidence − mean
// correct|. correct holds 1 for a right prediction and 0 for a wrong one.
func ECE(conf, correct []float64, edges [][2]int) float64 {
	idx := make([]int, len(conf))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return conf[idx[a]] < conf[idx[b]] })
	total := 0.0
	for _, e := range edges {
		var sc, sk float64
		for _, i := range idx[e[0]:e[1]] {
			sc += conf[i]
			sk += correct[i]
		}
		m := float64(e[1] - e[0])
		total += m / float64(len(conf)) * math.Abs(sc/m-sk/m)
	}
	return total
}

// AUC is the area under the ROC curve of score for the positives of label
// (1) against its negatives (0), as scikit-learn's roc_auc_score: the
// Mann-Whitney statistic with tied scores counted half. It is NaN when one
// class is missing.
func AUC(label, score []float64) float64 {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return score[idx[a]] < score[idx[b]] })
	var pos, neg, sum float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && score[idx[j]] == score[idx[i]] {
			j++
		}
		rank := float64(i+j+1) / 2 // mid-rank, 1-based
		for _, k := range idx[i:j] {
			if label[k] == 1 {
				pos++
				sum += rank
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	return (sum - pos*(pos+1)/2) / (pos * neg)
}

// Estimator turns a window's confidences into an expected accuracy.
type Estimator struct {
	// Calibrated is true when confidence is mapped through Calibration.
	Calibrated  bool
	Calibration *Isotonic
	// Reason says why it is or is not calibrated (the Reason constants).
	Reason string
	// AUC, ECEBefore and ECEAfter are the figures the decision read (NaN
	// when it did not get that far). ECEAfter is out of fold.
	AUC, ECEBefore, ECEAfter float64
}

// Uncalibrated is the estimator without labels: confidence taken as the
// probability that the prediction is right.
func Uncalibrated() *Estimator {
	return &Estimator{Reason: ReasonNoLabels, AUC: math.NaN(), ECEBefore: math.NaN(), ECEAfter: math.NaN()}
}

// Fit builds the estimator from labelled reference predictions: conf is
// each prediction's confidence in its predicted class, correct 1 when the
// label matched it. It calibrates, by isotonic regression of correct on
// conf over all of them, only when that lowers the expected calibration
// error out of fold: each of Folds contiguous folds (scikit-learn's
// KFold, unshuffled, so the decision is deterministic where NannyML draws a
// seeded StratifiedShuffleSplit) is calibrated by a fit on the others.
func Fit(conf, correct []float64) (*Estimator, error) {
	if len(conf) != len(correct) {
		return nil, ErrLength
	}
	e := Uncalibrated()
	if len(conf) == 0 {
		return e, nil
	}
	if len(conf) < MinLabelled {
		e.Reason = ReasonFew
		return e, nil
	}
	e.AUC = AUC(correct, conf)
	switch {
	case math.IsNaN(e.AUC):
		e.Reason = ReasonOneClass
		return e, nil
	case e.AUC > MaxAUC:
		e.Reason = ReasonSeparable
		return e, nil
	}
	oof := make([]float64, len(conf))
	n := len(conf)
	start := 0
	for k := 0; k < Folds; k++ {
		size := n / Folds
		if k < n%Folds {
			size++
		}
		end := start + size
		tx := make([]float64, 0, n-size)
		ty := make([]float64, 0, n-size)
		tx = append(append(tx, conf[:start]...), conf[end:]...)
		ty = append(append(ty, correct[:start]...), correct[end:]...)
		f, err := FitIsotonic(tx, ty)
		if err != nil {
			return nil, err
		}
		for i := start; i < end; i++ {
			oof[i] = f.Predict(conf[i])
		}
		start = end
	}
	edges := BinEdges(n, Bins)
	e.ECEBefore = ECE(conf, correct, edges)
	e.ECEAfter = ECE(oof, correct, edges)
	if !(e.ECEAfter < e.ECEBefore) {
		e.Reason = ReasonNoGain
		return e, nil
	}
	f, err := FitIsotonic(conf, correct)
	if err != nil {
		return nil, err
	}
	e.Calibrated, e.Calibration, e.Reason = true, f, ReasonLowerECE
	return e, nil
}

// Probability is the estimated probability that a prediction of
// confidence c is right.
func (e *Estimator) Probability(c float64) float64 {
	if e.Calibrated {
		return e.Calibration.Predict(c)
	}
	return c
}

// Accuracy is the expected accuracy of predictions with these
// confidences: the mean of their probabilities of being right. It is NaN
// for no predictions.
func (e *Estimator) Accuracy(conf []float64) float64 {
	if len(conf) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, c := range conf {
		s += e.Probability(c)
	}
	return s / float64(len(conf))
}
