package drift

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
)

// Validate checks the settings drift cannot run with. Each error starts
// with the key's path inside the `drift` section; several are joined.
// Keys whose default is set in DefaultConfig must not be zero (a key left
// out keeps its default, so a zero was written); keys whose zero means
// "pkg/drift's default" or "derived" (ack_wait, reference_min_events,
// rules.*, confidence.*) may be zero but not negative.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Window <= 0 {
		add("window: must be positive, got %v", c.Window)
	}
	if c.WindowEvents < 1 {
		add("window_events: must be positive, got %d", c.WindowEvents)
	}
	if c.MetricsTopFeatures < 0 {
		add("metrics_top_features: must not be negative, got %d", c.MetricsTopFeatures)
	}
	switch c.Reference {
	case ReferenceFirstWindow, ReferenceRolling, ReferencePinned:
	default:
		add("reference: %q is not %s, %s or %s", c.Reference, ReferenceFirstWindow, ReferenceRolling, ReferencePinned)
	}
	if c.RollingWindows < 1 {
		add("rolling_windows: must be positive, got %d", c.RollingWindows)
	}
	if c.ReferenceMinEvents < 0 {
		add("reference_min_events: must not be negative, got %d", c.ReferenceMinEvents)
	}
	if c.SampleCap < 1 {
		add("sample_cap: must be positive, got %d", c.SampleCap)
	}
	if len(c.Roles) == 0 {
		add("roles: must name at least one role")
	}
	for i, r := range c.Roles {
		if !slices.Contains([]string{event.RoleProduction, event.RoleCanary, event.RoleShadow}, r) {
			add("roles[%d]: %q is not %s, %s or %s", i, r, event.RoleProduction, event.RoleCanary, event.RoleShadow)
		}
	}
	if c.AckWait < 0 {
		// Predictions are acknowledged as they are read (open windows are
		// checkpointed), so any positive wait works.
		add("ack_wait: must not be negative, got %v", c.AckWait)
	}
	if c.MinWindowEvents < 0 {
		add("min_window_events: must not be negative, got %d", c.MinWindowEvents)
	}
	if c.AllowedLateness < 0 {
		add("allowed_lateness: must not be negative, got %v", c.AllowedLateness)
	}
	if c.IdleTimeout < 0 {
		add("idle_timeout: must not be negative, got %v", c.IdleTimeout)
	}
	if c.MaxAckPending != -1 && c.MaxAckPending < 1 {
		add("max_ack_pending: must be positive, or -1 for no limit, got %d", c.MaxAckPending)
	}

	switch c.Threshold {
	case "", driftreport.ThresholdAuto, driftreport.ThresholdEvidently:
	default:
		add("threshold: %q is not %s or %s", c.Threshold, driftreport.ThresholdAuto, driftreport.ThresholdEvidently)
	}
	if c.MinReferenceWindows < 0 {
		add("min_reference_windows: must not be negative, got %d", c.MinReferenceWindows)
	}
	errs = append(errs, probability("family_alpha", c.FamilyAlpha, false)...)
	if c.RootCause.MaxTags < 0 {
		add("root_cause.max_tags: must not be negative, got %d", c.RootCause.MaxTags)
	}
	if c.RootCause.MaxSegments < 0 {
		add("root_cause.max_segments: must not be negative, got %d", c.RootCause.MaxSegments)
	}

	r := c.Rules
	if r.SmallReference < 0 {
		add("rules.small_reference: must not be negative, got %d", r.SmallReference)
	}
	errs = append(errs, probability("rules.p_value", r.PValue, false)...)
	errs = append(errs, score("rules.wasserstein", r.Wasserstein)...)
	errs = append(errs, probability("rules.jensen_shannon", r.JensenShannon, true)...)
	errs = append(errs, score("rules.psi", r.PSI)...)
	errs = append(errs, probability("rules.drift_share", r.DriftShare, true)...)
	names := make([]string, 0, len(r.Features))
	for name := range r.Features {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		errs = append(errs, r.Features[name].validate("rules.features."+name)...)
	}
	if r.Prediction != nil {
		errs = append(errs, r.Prediction.validate("rules.prediction")...)
	}

	errs = append(errs, probability("confidence.low", c.Confidence.Low, false)...)
	errs = append(errs, probability("confidence.mean_drop", c.Confidence.MeanDrop, true)...)
	errs = append(errs, probability("confidence.min_low_share", c.Confidence.MinLowShare, true)...)
	return errors.Join(errs...)
}

// validate checks one rule override at key.
func (r Rule) validate(key string) []error {
	switch r.Method {
	case driftreport.MethodKS, driftreport.MethodChi2:
		// The threshold of a test is a p-value.
		return probability(key+".threshold", r.Threshold, false)
	case "", driftreport.MethodWasserstein, driftreport.MethodPSI:
		return score(key+".threshold", r.Threshold)
	case driftreport.MethodJensenShannon:
		return probability(key+".threshold", r.Threshold, true)
	}
	return []error{fmt.Errorf("%s.method: %q is not ks, chi2, wasserstein, jensen_shannon or psi", key, r.Method)}
}

// probability checks a share or p-value whose zero means "the default":
// otherwise it must lie in (0, 1), or (0, 1] when closed.
func probability(key string, v float64, closed bool) []error {
	if v == 0 {
		return nil
	}
	if math.IsNaN(v) || v < 0 || v > 1 || (v == 1 && !closed) {
		if closed {
			return []error{fmt.Errorf("%s: must be in (0, 1], got %v", key, v)}
		}
		return []error{fmt.Errorf("%s: must be in (0, 1), got %v", key, v)}
	}
	return nil
}

// score checks a distance threshold whose zero means "the default".
func score(key string, v float64) []error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return []error{fmt.Errorf("%s: must be a positive number, got %v", key, v)}
	}
	return nil
}
