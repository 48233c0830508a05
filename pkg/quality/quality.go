// Package quality measures how good a model's predictions really were,
// once feedback has arrived for them: accuracy from ground-truth labels,
// MAE and RMSE for numeric predictions, and the share of "was this
// helpful?" answers that said yes, per window, per model version and per
// role (production, canary, shadow).
//
// It is pure: the feedback service joins each feedback event with the
// predictions it applies to (every prediction of its request, whatever
// the role) and hands the pairs to a Window; the Window's Report is the
// JSON published on lookout.performance.<model>.
//
// How a label is compared with a prediction:
//
//   - a class-label prediction and a string label: correct when equal;
//   - a class-label prediction and a numeric label: the number is written as
//     text ("1", "0.5") and compared;
//   - a numeric prediction and a numeric label: the error counts toward MAE
//     and RMSE; when the label is 0 or 1 and the prediction is a score in
//     [0, 1], the pair also counts toward accuracy, the predicted class
//     being 1 when score >= Options.Threshold;
//   - a numeric prediction and a string label: with Options.PositiveClass
//     set, actual = (label == PositiveClass) and predicted = (score >=
//     Threshold) count toward accuracy; without it, a label that parses as
//     a number is taken as that number, and any other is not compared.
//
// Beside the realised accuracy, a report carries the accuracy CBPE
// (pkg/cbpe) would have estimated for the same predictions before their
// labels came: the mean confidence of the labelled class-label predictions
// that sent one, as the drift report's estimated_performance takes it
// (uncalibrated). It is not calibrated on the labels it sits beside: an
// isotonic fit keeps the mean of what it is fitted on, so a calibration on
// these labels would give back the realised accuracy and tell nothing of
// how far to trust the estimate.
package quality

import (
	"math"
	"strconv"
	"time"

	"github.com/lookout-ml/lookout/pkg/cbpe"
)

// DefaultThreshold is the default score at or above which a numeric
// prediction means the positive class.
const DefaultThreshold = 0.5

// Options say how numeric scores are turned into classes.
type Options struct {
	// Threshold: a score at or above it predicts the positive class
	// (0 means DefaultThreshold).
	Threshold float64
	// PositiveClass is the string label a score predicts (e.g. "churn");
	// empty means string labels are compared with scores only when they
	// parse as numbers.
	PositiveClass string
}

// Value is a prediction or a label: a number, or a string when IsText.
type Value struct {
	Number float64
	Text   string
	IsText bool
}

// Number and Text build Values.
func Number(f float64) Value { return Value{Number: f} }
func Text(s string) Value    { return Value{Text: s, IsText: true} }

// Prediction is what the feedback service remembers of a prediction.
type Prediction struct {
	Version string
	// Role is production, canary or shadow; empty means production.
	Role  string
	Value Value
	Time  time.Time
	// Confidence is the prediction's confidence in its predicted class,
	// meaningful only when HasConfidence.
	Confidence    float64
	HasConfidence bool
}

// Pair is one feedback event joined with one of its predictions.
type Pair struct {
	Prediction Prediction
	// Label is the ground truth, nil when the feedback has none.
	Label *Value
	// Helpful is the "was this helpful?" answer, nil when none.
	Helpful *bool
	// Time is the feedback's timestamp.
	Time time.Time
}

// Metrics are the quality figures of a set of pairs. Rates and errors are
// absent (nil) when no pair could give them, so an alert rule on
// `accuracy` never fires on a window without labels.
type Metrics struct {
	// Feedback is the number of predictions joined with feedback: one
	// feedback event counts once per prediction of its request (a label
	// for a request scored by production and canary counts twice at the
	// top, once under each role).
	Feedback int `json:"feedback"`
	// Labelled is how many of those pairs carried a label.
	Labelled int `json:"labelled"`
	// Accuracy is the share of correct predictions among the
	// AccuracyCount labelled pairs that could be compared as classes.
	Accuracy      *float64 `json:"accuracy,omitempty"`
	AccuracyCount int      `json:"accuracy_count"`
	// MAE and RMSE are the mean absolute and root mean squared errors of
	// the RegressionCount pairs with a numeric prediction and label.
	MAE             *float64 `json:"mae,omitempty"`
	RMSE            *float64 `json:"rmse,omitempty"`
	RegressionCount int      `json:"regression_count"`
	// EstimatedAccuracy is CBPE's estimate for the
	// EstimatedAccuracyCount labelled class-label predictions with a
	// confidence that were compared as classes (so counted in
	// AccuracyCount too): the mean confidence, uncalibrated (see the
	// package comment).
	EstimatedAccuracy      *float64 `json:"estimated_accuracy,omitempty"`
	EstimatedAccuracyCount int      `json:"estimated_accuracy_count"`
	// HelpfulRate is the share of the HelpfulCount "was this helpful?"
	// answers that said yes.
	HelpfulRate  *float64 `json:"helpful_rate,omitempty"`
	HelpfulCount int      `json:"helpful_count"`
	// DelaySeconds is the mean time from a prediction to its feedback.
	DelaySeconds *float64 `json:"delay_seconds,omitempty"`
}

// Span is a report's window.
type Span struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Feedback counts every feedback event in the window, joined or not.
	Feedback int `json:"feedback"`
}

// Report is one window's quality report for a model, the JSON on
// lookout.performance.<model>.
type Report struct {
	Model  string `json:"model"`
	Window Span   `json:"window"`
	Metrics
	// Unmatched counts feedback whose prediction was not found in time
	// (too old, evicted, never published, or of another model).
	Unmatched int `json:"unmatched"`
	// Threshold and PositiveClass are the options the accuracy used.
	Threshold     float64 `json:"threshold"`
	PositiveClass string  `json:"positive_class,omitempty"`
	// Versions break the metrics down by model version.
	Versions map[string]Metrics `json:"versions"`
	// Roles break the metrics down by role: production, canary, shadow.
	Roles map[string]Metrics `json:"roles"`
}

// uncalibrated is the estimator of estimated_accuracy: confidence taken
// as the probability of being right (see the package comment).
var uncalibrated = cbpe.Uncalibrated()

// RoleProduction is the role of a prediction that names none.
const RoleProduction = "production"

// sums accumulates the figures behind one Metrics.
type sums struct {
	feedback, labelled, helpfulN   int
	accN, accOK, regN, estN        int
	estSum                         float64
	absErr, sqErr, helpfulYes, dly float64
	dlyN                           int
}

func (s *sums) metrics() Metrics {
	m := Metrics{Feedback: s.feedback, Labelled: s.labelled, AccuracyCount: s.accN, EstimatedAccuracyCount: s.estN, RegressionCount: s.regN, HelpfulCount: s.helpfulN}
	ratio := func(a, b float64) *float64 { r := a / b; return &r }
	if s.accN > 0 {
		m.Accuracy = ratio(float64(s.accOK), float64(s.accN))
	}
	if s.estN > 0 {
		m.EstimatedAccuracy = ratio(s.estSum, float64(s.estN))
	}
	if s.regN > 0 {
		m.MAE = ratio(s.absErr, float64(s.regN))
		rmse := math.Sqrt(s.sqErr / float64(s.regN))
		m.RMSE = &rmse
	}
	if s.helpfulN > 0 {
		m.HelpfulRate = ratio(s.helpfulYes, float64(s.helpfulN))
	}
	if s.dlyN > 0 {
		m.DelaySeconds = ratio(s.dly, float64(s.dlyN))
	}
	return m
}

// Window accumulates a window's pairs; it keeps sums, not pairs, so its
// size does not grow with the window.
type Window struct {
	opts      Options
	start     time.Time
	end       time.Time
	all       sums
	versions  map[string]*sums
	roles     map[string]*sums
	events    int // joined feedback events; all.feedback counts pairs
	unmatched int
}

// NewWindow returns an empty window.
func NewWindow(opts Options) *Window {
	if opts.Threshold == 0 {
		opts.Threshold = DefaultThreshold
	}
	return &Window{opts: opts, versions: map[string]*sums{}, roles: map[string]*sums{}}
}

// Add adds a feedback event joined with one of its predictions, seen at t
// (which widens the window's span).
func (w *Window) Add(p Pair, t time.Time) {
	w.events++
	w.AddRelated(p, t)
}

// AddRelated adds a further prediction of a feedback event already added
// (another prediction of its request): its figures count, the event does
// not count again.
func (w *Window) AddRelated(p Pair, t time.Time) {
	w.see(t)
	role := p.Prediction.Role
	if role == "" {
		role = RoleProduction
	}
	for _, s := range []*sums{&w.all, group(w.versions, p.Prediction.Version), group(w.roles, role)} {
		s.add(p, w.opts)
	}
}

func group(m map[string]*sums, name string) *sums {
	s := m[name]
	if s == nil {
		s = &sums{}
		m[name] = s
	}
	return s
}

// AddUnmatched counts a feedback event whose prediction was not found,
// seen at t.
func (w *Window) AddUnmatched(t time.Time) {
	w.see(t)
	w.unmatched++
}

func (w *Window) see(t time.Time) {
	if w.start.IsZero() || t.Before(w.start) {
		w.start = t
	}
	if t.After(w.end) {
		w.end = t
	}
}

// Joined returns the number of joined feedback events so far.
func (w *Window) Joined() int { return w.events }

// Len returns the number of feedback events so far, joined or not.
func (w *Window) Len() int { return w.events + w.unmatched }

// Report returns the window's report for model.
func (w *Window) Report(model string) Report {
	r := Report{
		Model:         model,
		Window:        Span{Start: w.start.UTC(), End: w.end.UTC(), Feedback: w.Len()},
		Metrics:       w.all.metrics(),
		Unmatched:     w.unmatched,
		Threshold:     w.opts.Threshold,
		PositiveClass: w.opts.PositiveClass,
		Versions:      make(map[string]Metrics, len(w.versions)),
		Roles:         make(map[string]Metrics, len(w.roles)),
	}
	for name, s := range w.versions {
		r.Versions[name] = s.metrics()
	}
	for name, s := range w.roles {
		r.Roles[name] = s.metrics()
	}
	return r
}

func (s *sums) add(p Pair, opts Options) {
	s.feedback++
	if p.Helpful != nil {
		s.helpfulN++
		if *p.Helpful {
			s.helpfulYes++
		}
	}
	if !p.Time.IsZero() && !p.Prediction.Time.IsZero() {
		s.dly += max(p.Time.Sub(p.Prediction.Time).Seconds(), 0)
		s.dlyN++
	}
	if p.Label == nil {
		return
	}
	s.labelled++
	correct, compared, err, regression := Compare(p.Prediction.Value, *p.Label, opts)
	if compared {
		s.accN++
		if correct {
			s.accOK++
		}
		// CBPE estimates classifiers (a class-label prediction), as the
		// drift report does.
		if p.Prediction.Value.IsText && p.Prediction.HasConfidence {
			s.estN++
			s.estSum += uncalibrated.Probability(p.Prediction.Confidence)
		}
	}
	if regression {
		s.regN++
		s.absErr += math.Abs(err)
		s.sqErr += err * err
	}
}

// Compare compares a prediction with its label by the rules in the
// package comment. compared says whether correct means anything;
// regression whether err (prediction - label) does.
func Compare(pred, label Value, opts Options) (correct, compared bool, err float64, regression bool) {
	threshold := opts.Threshold
	if threshold == 0 {
		threshold = DefaultThreshold
	}
	switch {
	case pred.IsText && label.IsText:
		return pred.Text == label.Text, true, 0, false
	case pred.IsText:
		return pred.Text == strconv.FormatFloat(label.Number, 'g', -1, 64), true, 0, false
	case label.IsText && opts.PositiveClass != "":
		return (pred.Number >= threshold) == (label.Text == opts.PositiveClass), true, 0, false
	case label.IsText:
		n, perr := strconv.ParseFloat(label.Text, 64)
		if perr != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			return false, false, 0, false
		}
		label = Number(n)
	}
	err = pred.Number - label.Number
	if (label.Number == 0 || label.Number == 1) && pred.Number >= 0 && pred.Number <= 1 {
		return (pred.Number >= threshold) == (label.Number == 1), true, err, true
	}
	return false, false, err, true
}
