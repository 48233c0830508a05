package drift

import (
	"fmt"
	"time"

	"github.com/lookout-ml/lookout/pkg/driftreport"
)

// Reference modes: where a model's reference comes from when no reference
// is pinned for it.
const (
	// ReferenceFirstWindow learns the reference from the first full window
	// after the service first sees a model (features) or a model version
	// (prediction and confidence).
	ReferenceFirstWindow = "first-window"
	// ReferenceRolling compares each window with the previous N windows.
	ReferenceRolling = "rolling"
	// ReferencePinned only compares with a reference set by `lookout
	// reference set`; windows of a model without one give no report.
	ReferencePinned = "pinned"
)

// DefaultReferenceMinEvents is the default of ReferenceMinEvents.
const DefaultReferenceMinEvents = 100

// DefaultAllowedLateness is the default of AllowedLateness.
const DefaultAllowedLateness = time.Minute

// Config tunes the drift service. YAML section `drift`.
type Config struct {
	// Window is the length of a drift window in event time (the events'
	// ts); windows are aligned to it (pkg/window) ...
	Window time.Duration `yaml:"window"`
	// WindowEvents ... and one closes early once it holds this many
	// events.
	WindowEvents int `yaml:"window_events"`
	// MinWindowEvents: a window closed with fewer events (the tail of an
	// aligned span after full windows, a quiet model's idle close) is not
	// reported: statistics on a handful of events cry wolf. 0 means a tenth
	// of WindowEvents, at most 100.
	MinWindowEvents int `yaml:"min_window_events"`
	// AllowedLateness is how far behind a model's latest event time an
	// event may come and still join its window (default 1m): a window
	// closes when the latest event time passes its end by this much. Later
	// events are dropped and counted (lookout_drift_late_total).
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	// IdleTimeout closes a model's open windows once its event time has
	// not advanced for this long in wall time (default: window), so that
	// a model that fell quiet still gets its last report.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Reference is first-window (default), rolling or pinned. A pinned
	// reference, once set for a model, is used in every mode.
	Reference string `yaml:"reference"`
	// RollingWindows is N for the rolling reference (default 3).
	RollingWindows int `yaml:"rolling_windows"`
	// ReferenceMinEvents is the fewest events a window needs to become a
	// learned reference (default: 100, or window_events when smaller), so
	// that a window closed by time after a handful of events does not.
	ReferenceMinEvents int `yaml:"reference_min_events"`
	// SampleCap is how many values per feature a window or reference keeps
	// before it keeps a uniform random sample instead (default 100,000).
	SampleCap int `yaml:"sample_cap"`
	// Roles are the prediction roles watched (default: production only;
	// canary and shadow traffic is the canary service's business).
	Roles []string `yaml:"roles"`
	// AckWait is how long JetStream waits before it redelivers an
	// unacknowledged prediction; default window + 1m. Predictions are
	// acknowledged in batches as they are read; open windows are rebuilt
	// from the stream after a restart.
	AckWait time.Duration `yaml:"ack_wait"`
	// MaxAckPending bounds the predictions delivered and not yet
	// acknowledged; default -1, no limit. Any value works: acknowledging
	// does not wait for windows to close.
	MaxAckPending int `yaml:"max_ack_pending"`
	// Threshold is how features are judged when no rule names a method or
	// threshold: auto (default) derives each feature's threshold from
	// window-sized chunks of the reference once it holds at least
	// min_reference_windows windows' worth (5), and falls back to
	// evidently (the fixed thresholds of Rules) below that; evidently
	// always uses the fixed thresholds.
	Threshold string `yaml:"threshold"`
	// MinReferenceWindows is how many windows' worth of values a reference
	// needs for auto thresholds (default 5).
	MinReferenceWindows int `yaml:"min_reference_windows"`
	// FamilyAlpha is the chance per report of a false alarm on any
	// feature that auto thresholds allow (default 0.01, Bonferroni across
	// features).
	FamilyAlpha float64 `yaml:"family_alpha"`
	// RootCause bounds the root cause of each report.
	RootCause RootCauseConfig `yaml:"root_cause"`
	// Rules say when a feature drifted.
	Rules Rules `yaml:"rules"`
	// MetricsTopFeatures bounds lookout_drift_score per model (exported by
	// the dashboard from the reports): past this many features, only the
	// ones furthest past their threshold. 0 means 20.
	MetricsTopFeatures int `yaml:"metrics_top_features"`
	// Confidence says when confidence dropped.
	Confidence ConfidenceRules `yaml:"confidence"`
}

// Rules configure how features and the prediction are judged; zero values
// keep pkg/drift's defaults.
type Rules struct {
	// SmallReference: references up to this many rows are judged by the
	// tests (ks, chi2), larger ones by distances (default 1000).
	SmallReference int `yaml:"small_reference"`
	// PValue below which ks and chi2 say drifted (default 0.05).
	PValue float64 `yaml:"p_value"`
	// Wasserstein distance / reference std at or above which a number
	// drifted (default 0.1).
	Wasserstein float64 `yaml:"wasserstein"`
	// JensenShannon distance at or above which a category drifted
	// (default 0.1).
	JensenShannon float64 `yaml:"jensen_shannon"`
	// PSI at or above which a feature drifted when its rule picks psi
	// (default 0.1).
	PSI float64 `yaml:"psi"`
	// DriftShare of drifted features at or above which the dataset drifted
	// (default 0.5).
	DriftShare float64 `yaml:"drift_share"`
	// Features overrides the method or threshold per feature.
	Features map[string]Rule `yaml:"features"`
	// Prediction overrides the rule of the prediction column.
	Prediction *Rule `yaml:"prediction"`
}

// RootCauseConfig bounds the root cause: the tags looked at (those most
// rows carry, default 3) and the values of each (the largest, default 5).
type RootCauseConfig struct {
	MaxTags     int `yaml:"max_tags"`
	MaxSegments int `yaml:"max_segments"`
}

// Rule overrides how one feature is judged.
type Rule struct {
	// Method is ks, chi2, wasserstein, jensen_shannon or psi.
	Method string `yaml:"method"`
	// Threshold is a p-value for ks and chi2, else a score.
	Threshold float64 `yaml:"threshold"`
}

// ConfidenceRules configure the confidence part of a report.
type ConfidenceRules struct {
	// Low is the confidence below which a prediction is low-confidence
	// (default 0.5).
	Low float64 `yaml:"low"`
	// MeanDrop is the fall of the mean beyond which confidence dropped
	// (default 0.05, absolute).
	MeanDrop float64 `yaml:"mean_drop"`
	// MinLowShare is the low-confidence share below which its doubling is
	// ignored (default 0.05).
	MinLowShare float64 `yaml:"min_low_share"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Window:          5 * time.Minute,
		WindowEvents:    10000,
		AllowedLateness: DefaultAllowedLateness,
		Reference:       ReferenceFirstWindow,
		RollingWindows:  3,
		SampleCap:       driftreport.DefaultSampleCap,
		Roles:           []string{"production"},
		MaxAckPending:   -1,
	}
}

// withDefaults fills in zero values and checks the rest.
func (c Config) withDefaults() (Config, error) {
	def := DefaultConfig()
	if c.Window <= 0 {
		c.Window = def.Window
	}
	if c.WindowEvents <= 0 {
		c.WindowEvents = def.WindowEvents
	}
	if c.MinWindowEvents <= 0 {
		c.MinWindowEvents = max(1, min(100, c.WindowEvents/10))
	}
	switch c.Reference {
	case "":
		c.Reference = def.Reference
	case ReferenceFirstWindow, ReferenceRolling, ReferencePinned:
	default:
		return c, fmt.Errorf("drift config: reference %q: want %s, %s or %s", c.Reference, ReferenceFirstWindow, ReferenceRolling, ReferencePinned)
	}
	if c.AllowedLateness <= 0 {
		c.AllowedLateness = def.AllowedLateness
	}
	if c.IdleTimeout <= 0 {
		// A window's length: live traffic (ts close to the wall clock)
		// cannot be idle that long before the window's span is over.
		c.IdleTimeout = c.Window
	}
	if c.RollingWindows <= 0 {
		c.RollingWindows = def.RollingWindows
	}
	if c.ReferenceMinEvents <= 0 {
		c.ReferenceMinEvents = min(c.WindowEvents, DefaultReferenceMinEvents)
	}
	if c.SampleCap <= 0 {
		c.SampleCap = def.SampleCap
	}
	if len(c.Roles) == 0 {
		c.Roles = def.Roles
	}
	if c.AckWait <= 0 {
		c.AckWait = c.Window + time.Minute
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = def.MaxAckPending
	}
	switch c.Threshold {
	case "":
		c.Threshold = driftreport.ThresholdAuto
	case driftreport.ThresholdAuto, driftreport.ThresholdEvidently:
	default:
		return c, fmt.Errorf("drift config: threshold %q: want %s or %s", c.Threshold, driftreport.ThresholdAuto, driftreport.ThresholdEvidently)
	}
	for name, r := range c.Rules.Features {
		if err := r.check(); err != nil {
			return c, fmt.Errorf("drift config: rules.features.%s: %w", name, err)
		}
	}
	if c.Rules.Prediction != nil {
		if err := c.Rules.Prediction.check(); err != nil {
			return c, fmt.Errorf("drift config: rules.prediction: %w", err)
		}
	}
	return c, nil
}

func (r Rule) check() error {
	switch r.Method {
	case "", driftreport.MethodKS, driftreport.MethodChi2, driftreport.MethodWasserstein, driftreport.MethodJensenShannon, driftreport.MethodPSI:
		return nil
	}
	return fmt.Errorf("method %q: want ks, chi2, wasserstein, jensen_shannon or psi", r.Method)
}

// Options returns the driftreport.Options these rules stand for; `lookout drift`
// uses them too.
func (c Config) Options() driftreport.Options {
	o := driftreport.Options{
		SmallReference:         c.Rules.SmallReference,
		PValue:                 c.Rules.PValue,
		WassersteinThreshold:   c.Rules.Wasserstein,
		JensenShannonThreshold: c.Rules.JensenShannon,
		PSIThreshold:           c.Rules.PSI,
		DriftShare:             c.Rules.DriftShare,
		LowConfidence:          c.Confidence.Low,
		ConfidenceMeanDrop:     c.Confidence.MeanDrop,
		MinLowShare:            c.Confidence.MinLowShare,
		Threshold:              c.Threshold,
		MinReferenceWindows:    c.MinReferenceWindows,
		FamilyAlpha:            c.FamilyAlpha,
		RootCauseTags:          c.RootCause.MaxTags,
		RootCauseSegments:      c.RootCause.MaxSegments,
	}
	if len(c.Rules.Features) > 0 {
		o.Features = make(map[string]driftreport.Rule, len(c.Rules.Features))
		for name, r := range c.Rules.Features {
			o.Features[name] = driftreport.Rule{Method: r.Method, Threshold: r.Threshold}
		}
	}
	if p := c.Rules.Prediction; p != nil {
		o.Prediction = &driftreport.Rule{Method: p.Method, Threshold: p.Threshold}
	}
	return o
}
