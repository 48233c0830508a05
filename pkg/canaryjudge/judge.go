package canaryjudge

import (
	"fmt"
	"math"
	"strconv"
)

// Check names, also the keys of Guardrails.Weights.
const (
	CheckAgreement       = "agreement"
	CheckAccuracy        = "accuracy"
	CheckLatencyP95Ratio = "latency_p95_ratio"
	CheckScoreMeanAbs    = "score_mean_abs_diff"
	CheckScoreCorr       = "score_correlation"
	CheckScoreKSPValue   = "score_ks_p_value"
	CheckConfidenceDrop  = "confidence_drop"
)

// Guardrails are the thresholds a canary must hold. A zero threshold turns
// its check off, except where DefaultGuardrails says otherwise.
type Guardrails struct {
	// MinAgreement: label agreement below it fails (default 0.95).
	MinAgreement float64 `yaml:"min_agreement"`
	// MaxLatencyP95Ratio: canary p95 latency over production's above it
	// fails (default 1.2, 20% slower).
	MaxLatencyP95Ratio float64 `yaml:"max_latency_p95_ratio"`
	// MaxScoreMeanAbsDiff: mean absolute score difference above it fails
	// (off by default).
	MaxScoreMeanAbsDiff float64 `yaml:"max_score_mean_abs_diff"`
	// MinScoreCorrelation: score correlation below it fails (off by
	// default).
	MinScoreCorrelation float64 `yaml:"min_score_correlation"`
	// MinScoreKSPValue: a KS p-value between the score distributions
	// below it fails (off by default).
	MinScoreKSPValue float64 `yaml:"min_score_ks_p_value"`
	// MaxConfidenceDrop: production's mean confidence minus the canary's
	// above it fails. Off by default: models of different families
	// calibrate differently.
	MaxConfidenceDrop float64 `yaml:"max_confidence_drop"`
	// MaxAccuracyDrop: production accuracy minus canary accuracy above it
	// fails, once feedback gives accuracy (default 0).
	MaxAccuracyDrop float64 `yaml:"max_accuracy_drop"`
	// ConsecutiveWindows: a rollback needs a guardrail to fail in this
	// many consecutive windows (default 1); before that the verdict is
	// hold.
	ConsecutiveWindows int `yaml:"consecutive_windows"`
	// Weights weigh checks, by name, in the score (default 1 each).
	Weights map[string]float64 `yaml:"weights"`
}

// DefaultGuardrails returns the defaults.
func DefaultGuardrails() Guardrails {
	return Guardrails{MinAgreement: 0.95, MaxLatencyP95Ratio: 1.2, ConsecutiveWindows: 1}
}

// Accuracy is how often each side's predictions matched the ground truth
// over the labelled pairs of a window.
type Accuracy struct {
	Production float64
	Canary     float64
	// Labelled is the number of pairs with a ground-truth label.
	Labelled int
}

// AccuracySource gives the accuracy of a window's pairs once feedback
// labels exist for them. When it reports ok, the accuracy check is a
// guardrail and outranks agreement, which stays in the report as an
// informative check.
type AccuracySource interface {
	Accuracy(model string, pairs []Pair) (acc Accuracy, ok bool)
}

// Judge turns a window's figures into checks, a score and a verdict.
type Judge struct {
	Guardrails Guardrails
	// MinPairs: a window with fewer pairs gives the verdict hold.
	MinPairs int
	// Accuracy is optional; nil means no feedback is known.
	Accuracy AccuracySource
}

// Judge adds checks, score, verdict and reasons to r, whose figures come
// from pairs. streak is the number of consecutive windows before this one
// in which a guardrail failed; Judge returns the new count.
func (j *Judge) Judge(r *Report, pairs []Pair, streak int) int {
	g := j.Guardrails
	var acc *Accuracy
	if j.Accuracy != nil {
		if a, ok := j.Accuracy.Accuracy(r.Model, pairs); ok && a.Labelled > 0 {
			acc = &a
		}
	}
	r.Checks = r.Checks[:0]
	add := func(name string, value, threshold float64, atLeast, guardrail bool) {
		passed := value <= threshold
		op := ">"
		if atLeast {
			passed, op = value >= threshold, "<"
		}
		c := Check{Name: name, Value: value, Threshold: threshold, Passed: passed, Weight: j.weight(name), Guardrail: guardrail}
		if !passed {
			c.Reason = fmt.Sprintf("%s %s %s %s", name, formatNumber(value), op, formatNumber(threshold))
		}
		r.Checks = append(r.Checks, c)
	}
	if acc != nil {
		add(CheckAccuracy, acc.Canary-acc.Production, -g.MaxAccuracyDrop, true, true)
	}
	if r.Agreement != nil && g.MinAgreement > 0 {
		add(CheckAgreement, *r.Agreement, g.MinAgreement, true, acc == nil)
	}
	if r.LatencyRatio != nil && g.MaxLatencyP95Ratio > 0 {
		add(CheckLatencyP95Ratio, r.LatencyRatio.P95, g.MaxLatencyP95Ratio, false, true)
	}
	if d := r.ScoreDiff; d != nil {
		if g.MaxScoreMeanAbsDiff > 0 {
			add(CheckScoreMeanAbs, d.MeanAbs, g.MaxScoreMeanAbsDiff, false, true)
		}
		if g.MinScoreCorrelation > 0 && d.Correlation != nil {
			add(CheckScoreCorr, *d.Correlation, g.MinScoreCorrelation, true, true)
		}
		if g.MinScoreKSPValue > 0 && d.KS != nil {
			add(CheckScoreKSPValue, d.KS.PValue, g.MinScoreKSPValue, true, true)
		}
	}
	if r.ConfidenceDiff != nil && g.MaxConfidenceDrop > 0 {
		add(CheckConfidenceDrop, -*r.ConfidenceDiff, g.MaxConfidenceDrop, false, true)
	}

	var total, passed float64
	var failing []string
	for _, c := range r.Checks {
		total += c.Weight
		if c.Passed {
			passed += c.Weight
		} else if c.Guardrail {
			failing = append(failing, c.Reason)
		}
	}
	r.Score = 0
	if total > 0 {
		r.Score = math.Round(1000*passed/total) / 10
	}

	need := max(g.ConsecutiveWindows, 1)
	switch {
	case r.Window.Pairs < j.MinPairs:
		r.Verdict = VerdictHold
		r.Reasons = []string{fmt.Sprintf("pairs %d < min_pairs %d", r.Window.Pairs, j.MinPairs)}
		return streak
	case len(failing) > 0:
		streak++
		if streak >= need {
			r.Verdict, r.Reasons = VerdictRollback, failing
			return streak
		}
		r.Verdict = VerdictHold
		r.Reasons = make([]string, len(failing))
		for i, f := range failing {
			r.Reasons[i] = fmt.Sprintf("%s (failing window %d of %d before rollback)", f, streak, need)
		}
		return streak
	case len(r.Checks) == 0:
		r.Verdict = VerdictHold
		r.Reasons = []string{"no check applies to this window"}
		return streak
	default:
		r.Verdict = VerdictPromote
		if n := countGuardrails(r.Checks); n == 1 {
			r.Reasons = []string{"the guardrail passed"}
		} else {
			r.Reasons = []string{fmt.Sprintf("all %d guardrails passed", n)}
		}
		return 0
	}
}

func countGuardrails(checks []Check) int {
	n := 0
	for _, c := range checks {
		if c.Guardrail {
			n++
		}
	}
	return n
}

func (j *Judge) weight(name string) float64 {
	if w, ok := j.Guardrails.Weights[name]; ok && w >= 0 {
		return w
	}
	return 1
}

// formatNumber prints a figure short: up to four significant digits.
func formatNumber(f float64) string {
	return strconv.FormatFloat(f, 'g', 4, 64)
}
