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
	CheckMAE             = "mae"
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

// Defaults of the Judge's quality settings.
const (
	DefaultMinLabelledPairs = 100
	DefaultQualityTolerance = 0.02
	// QualityAlpha is the significance level of the quality test: a
	// canary is worse only when the paired test says so at this level.
	QualityAlpha = 0.05
)

// Judge turns a window's figures into checks, a score and a verdict.
//
// Labels outrank agreement. With at least MinLabelledPairs labelled pairs
// (Report.Quality), the quality check decides instead of agreement: it
// fails only when the canary is significantly worse (p < QualityAlpha)
// by more than QualityTolerance, and agreement is then reported but no
// guardrail, whatever its value. With fewer, agreement is judged against
// MinAgreement, but failing it gives hold, not rollback, unless
// AgreementRollback: two good models of different families disagree on
// some 5% of inputs (each is wrong on different hard cases), so low
// agreement alone does not tell a worse canary from an equally good one.
// Latency and the score guardrails roll back as before.
type Judge struct {
	Guardrails Guardrails
	// MinPairs: a window with fewer pairs gives the verdict hold.
	MinPairs int
	// MinLabelledPairs: the labelled pairs a window needs for its quality
	// to decide the verdict (0: DefaultMinLabelledPairs).
	MinLabelledPairs int
	// QualityTolerance is how much worse the canary may be: absolute
	// accuracy for classes, and for numbers a share of production's MAE
	// (0.02: 2% more error). 0: DefaultQualityTolerance; negative: none.
	QualityTolerance float64
	// AgreementRollback lets failing agreement roll back a window without
	// enough labels; by default it holds.
	AgreementRollback bool
}

// Judge adds checks, score, verdict and reasons to r, whose figures come
// from pairs. streak is the number of consecutive windows before this one
// in which a guardrail failed; Judge returns the new count.
func (j *Judge) Judge(r *Report, pairs []Pair, streak int) int {
	g := j.Guardrails
	minLabelled := j.MinLabelledPairs
	if minLabelled <= 0 {
		minLabelled = DefaultMinLabelledPairs
	}
	q := r.Quality
	byQuality := q != nil && q.LabelledPairs >= minLabelled
	r.Checks = r.Checks[:0]
	add := func(name string, value, threshold float64, atLeast, guardrail bool) *Check {
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
		return &r.Checks[len(r.Checks)-1]
	}
	// holding are the reasons of failed checks that give hold, not
	// rollback.
	var holding []string
	if byQuality {
		r.Checks = append(r.Checks, j.qualityCheck(q))
	}
	if r.Agreement != nil && g.MinAgreement > 0 {
		// Without enough labels agreement still guards the verdict: it
		// holds (or, with AgreementRollback, rolls back).
		c := add(CheckAgreement, *r.Agreement, g.MinAgreement, true, !byQuality)
		if !c.Passed && !byQuality && !j.AgreementRollback {
			labelled := 0
			if q != nil {
				labelled = q.LabelledPairs
			}
			holding = append(holding, fmt.Sprintf("%s; held, not rolled back: %d labelled pairs < min_labelled_pairs %d",
				c.Reason, labelled, minLabelled))
		}
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
		} else if c.Guardrail && !(c.Name == CheckAgreement && !j.AgreementRollback) {
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
	case len(holding) > 0:
		r.Verdict, r.Reasons = VerdictHold, holding
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

// qualityCheck holds the canary's labelled quality against production's:
// it fails when the canary is worse by more than the tolerance and the
// paired test finds the difference significant.
func (j *Judge) qualityCheck(q *Quality) Check {
	tol := j.QualityTolerance
	switch {
	case tol == 0:
		tol = DefaultQualityTolerance
	case tol < 0:
		tol = 0
	}
	c := Check{Name: CheckAccuracy, Value: q.Difference, Threshold: -tol, Guardrail: true}
	worse := q.Difference < -tol
	if q.Metric == MetricMAE {
		// Error: higher is worse, and the tolerance is relative, since an
		// MAE has the unit of the predictions.
		c.Name, c.Threshold = CheckMAE, tol*q.Production
		worse = q.Difference > c.Threshold
	}
	c.Weight = j.weight(c.Name)
	c.Passed = !(worse && q.PValue < QualityAlpha)
	if !c.Passed {
		c.Reason = fmt.Sprintf("canary %s %s vs production %s on %d labelled pairs: difference %s beyond tolerance %s, %s p %s < %s",
			q.Metric, formatNumber(q.Canary), formatNumber(q.Production), q.LabelledPairs,
			formatNumber(q.Difference), formatNumber(tol), q.Test, formatNumber(q.PValue), formatNumber(QualityAlpha))
	}
	return c
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
