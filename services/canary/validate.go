package canary

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	judge "github.com/lookout-ml/lookout/pkg/canaryjudge"
)

// checkNames are the keys guardrails.weights may use.
var checkNames = []string{
	judge.CheckAgreement, judge.CheckAccuracy, judge.CheckMAE, judge.CheckLatencyP95Ratio, judge.CheckScoreMeanAbs,
	judge.CheckScoreCorr, judge.CheckScoreKSPValue, judge.CheckConfidenceDrop,
}

// Validate checks the settings the canary service cannot run with. Each
// error starts with the key's path inside the `canary` section; several
// are joined. A zero duration or count is an error (a key left out keeps
// its default, so a zero was written), except min_pairs and the
// guardrails, where zero means "no minimum" or "check off", and
// allowed_lateness and idle_timeout, where zero means the default (1m and
// the window).
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Wait <= 0 {
		add("wait: must be positive, got %v", c.Wait)
	}
	if c.WindowPairs < 1 {
		add("window_pairs: must be positive, got %d", c.WindowPairs)
	}
	if c.Window <= 0 {
		add("window: must be positive, got %v", c.Window)
	}
	if c.AllowedLateness < 0 {
		add("allowed_lateness: must not be negative, got %v", c.AllowedLateness)
	}
	if c.IdleTimeout < 0 {
		add("idle_timeout: must not be negative, got %v", c.IdleTimeout)
	}
	if c.MinPairs < 0 {
		add("min_pairs: must not be negative, got %d", c.MinPairs)
	}
	if c.MaxHalves < 1 {
		add("max_halves: must be positive, got %d", c.MaxHalves)
	}
	if c.MinLabelledPairs < 1 {
		add("min_labelled_pairs: must be positive, got %d", c.MinLabelledPairs)
	}
	if v := c.QualityTolerance; math.IsNaN(v) || v < 0 || v > 1 {
		add("quality_tolerance: must be in [0, 1], got %v", v)
	}
	if c.MaxLabels < 1 {
		add("max_labels: must be positive, got %d", c.MaxLabels)
	}
	if c.Checkpoint <= 0 {
		add("checkpoint: must be positive, got %v", c.Checkpoint)
	}

	g := c.Guardrails
	between := func(key string, v, lo, hi float64) {
		if math.IsNaN(v) || v < lo || v > hi {
			add("guardrails.%s: must be in [%v, %v], got %v", key, lo, hi, v)
		}
	}
	between("min_agreement", g.MinAgreement, 0, 1)
	between("max_latency_p95_ratio", g.MaxLatencyP95Ratio, 0, math.Inf(1))
	between("max_score_mean_abs_diff", g.MaxScoreMeanAbsDiff, 0, math.Inf(1))
	between("min_score_correlation", g.MinScoreCorrelation, -1, 1)
	// A p-value of 1 or more would fail every window.
	if v := g.MinScoreKSPValue; math.IsNaN(v) || v < 0 || v >= 1 {
		add("guardrails.min_score_ks_p_value: must be in (0, 1), or 0 for off, got %v", v)
	}
	between("max_confidence_drop", g.MaxConfidenceDrop, 0, 1)
	if g.ConsecutiveWindows < 1 {
		add("guardrails.consecutive_windows: must be positive, got %d", g.ConsecutiveWindows)
	}
	names := make([]string, 0, len(g.Weights))
	for name := range g.Weights {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !slices.Contains(checkNames, name) {
			add("guardrails.weights.%s: no such check (known: %v)", name, checkNames)
		} else if w := g.Weights[name]; math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			add("guardrails.weights.%s: must not be negative, got %v", name, w)
		}
	}
	return errors.Join(errs...)
}
