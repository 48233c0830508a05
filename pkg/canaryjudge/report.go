// Package canaryjudge owns the judging of a canary model against production:
// joining the two models' predictions of one input into pairs (Joiner),
// the figures of a window of pairs (Window), the verdict with its checks
// (Judge), and the whole per-model state driven by a logical clock
// (Tracker). It is pure: no NATS, no wall clock; the canary service feeds it.
package canaryjudge

import (
	"time"

	"github.com/lookout-ml/lookout/pkg/stats"
)

// Verdicts of a canary report.
const (
	VerdictPromote  = "promote"
	VerdictHold     = "hold"
	VerdictRollback = "rollback"
)

// Report is the canary-vs-production comparison of one window, the JSON of
// each message on lookout.canary.<model> (CONTRACT.md, "Canary report").
type Report struct {
	Model      string       `json:"model"`
	Window     ReportWindow `json:"window"`
	Production Side         `json:"production"`
	Canary     Side         `json:"canary"`
	// CanaryShare is the canary (and shadow) share of the window's
	// predictions, paired or not.
	CanaryShare float64   `json:"canary_share"`
	Unmatched   Unmatched `json:"unmatched"`
	// Agreement is the share of label pairs whose labels are equal; nil
	// without label pairs.
	Agreement *float64 `json:"agreement,omitempty"`
	// Confusion counts label pairs: production label → canary label → n.
	Confusion map[string]map[string]int `json:"confusion,omitempty"`
	// Quality compares each side with the ground truth on the window's
	// labelled pairs; nil without any.
	Quality *Quality `json:"quality,omitempty"`
	// ScoreDiff compares numeric predictions; nil without numeric pairs.
	ScoreDiff *ScoreDiff `json:"score_diff,omitempty"`
	// ConfidenceDiff is the canary's mean confidence minus production's.
	ConfidenceDiff *float64 `json:"confidence_diff,omitempty"`
	// LatencyRatio is canary latency over production latency, per quantile.
	LatencyRatio *Latency `json:"latency_ratio,omitempty"`
	// Rejected counts rejected input per role (production, canary,
	// unknown when the role could not be read from the rejected bytes).
	Rejected map[string]Rejected `json:"rejected,omitempty"`
	Checks   []Check             `json:"checks"`
	// Score is the weighted share of checks that passed, 0 to 100.
	Score   float64  `json:"score"`
	Verdict string   `json:"verdict"`
	Reasons []string `json:"reasons"`
}

// ReportWindow says which pairs a report covers, on the production
// predictions' ts, so a replay gives the same window. Start and End bound
// the window's aligned event-time span, [Start, End), but for a window
// closed full (window_pairs): it ends at its last pair, and the next part
// of the span starts there, so the parts are distinct and contiguous.
type ReportWindow struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Pairs int       `json:"pairs"`
	// Part is 0 for the first window of the span, n after n of them
	// closed full (window_pairs); not in the JSON, it tells the reports
	// of one span apart (their de-duplication ids).
	Part int `json:"-"`
}

// Side holds one model's figures over the window's pairs.
type Side struct {
	Version string `json:"version"`
	// Run is the training run recorded for Version (lookout version set).
	Run            string   `json:"run,omitempty"`
	LatencyMS      *Latency `json:"latency_ms,omitempty"`
	ConfidenceMean *float64 `json:"confidence_mean,omitempty"`
	// Predictions counts the side's predictions in the window, paired or
	// not.
	Predictions int `json:"predictions"`
}

// Latency holds latency quantiles in milliseconds (or, in
// Report.LatencyRatio, their ratios).
type Latency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Unmatched counts halves that waited out the wait without their pair.
type Unmatched struct {
	Production int `json:"production"`
	Canary     int `json:"canary"`
}

// ScoreDiff compares the numeric predictions of the pairs.
type ScoreDiff struct {
	MeanAbs float64 `json:"mean_abs"`
	P95Abs  float64 `json:"p95_abs"`
	// Correlation is Pearson's r; nil when a side has no variance.
	Correlation *float64 `json:"correlation"`
	// KS compares the two score distributions (scipy's ks_2samp).
	KS *stats.KSResult `json:"ks,omitempty"`
}

// Rejected is the rejected input of one role in a window.
type Rejected struct {
	Count int `json:"count"`
	// Rate is Count over Count plus the role's accepted predictions.
	Rate float64 `json:"rate"`
}

// Check is one figure held against its threshold.
type Check struct {
	Name      string  `json:"name"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	Passed    bool    `json:"passed"`
	// Weight is the check's share in the score.
	Weight float64 `json:"weight"`
	// Guardrail says whether failing the check changes the verdict: a
	// rollback, or for agreement without enough labels a hold (a
	// rollback only with agreement_rollback). A check outranked by
	// another (agreement, once labelled quality decides) is reported and
	// scored but is no guardrail.
	Guardrail bool `json:"guardrail"`
	// Reason says why the check failed, e.g. "agreement 0.9 < 0.95".
	Reason string `json:"reason,omitempty"`
}
