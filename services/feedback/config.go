package feedback

import (
	"fmt"
	"time"

	"github.com/lookout-ml/lookout/pkg/quality"
)

// Config tunes the feedback service. YAML section `feedback`.
type Config struct {
	// Window is the length of a performance window in event time (the
	// feedback events' ts, when the label was given); windows are aligned
	// to it on the Unix epoch (pkg/window) ...
	Window time.Duration `yaml:"window"`
	// WindowLabels ... and one closes early once it holds this many
	// feedback events (joined or not); later feedback of the same span
	// goes to the span's next window.
	WindowLabels int `yaml:"window_labels"`
	// AllowedLateness is how far behind a model's latest feedback time a
	// feedback event may come and still join its window (default 1m): a
	// window closes when the latest feedback time passes its end by this
	// much. Later feedback is not dropped: it is reported on its own, in a
	// window of its span closed at once (lookout_feedback_late_total).
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	// IdleTimeout closes a model's open windows once its feedback time
	// has not advanced for this long in wall time (0 or left out: the
	// window), so that a model that fell quiet still gets its report.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxAckPending bounds the feedback delivered and not yet
	// acknowledged; default -1, no limit. Feedback is acknowledged only
	// once its window's report is stored, so when this many are held the
	// service reports its open windows as they are (closed_by
	// "pressure") rather than wait for feedback the server will not
	// deliver: below window_labels times the models, windows are split.
	MaxAckPending int `yaml:"max_ack_pending"`
	// Horizon is how long predictions are remembered for the join; at
	// start the service reads the predictions stored this long ago and
	// since (default 7 days, the predictions stream's retention).
	Horizon time.Duration `yaml:"horizon"`
	// MaxPredictions bounds the remembered predictions; past it the
	// oldest are forgotten (and counted) first. About 200 bytes each
	// (see BenchmarkIndexPut).
	MaxPredictions int `yaml:"max_predictions"`
	// Wait is how long feedback whose prediction is not known yet waits
	// for it before it is counted unmatched.
	Wait time.Duration `yaml:"wait"`
	// Threshold: a numeric score at or above it predicts the positive
	// class (default 0.5).
	Threshold float64 `yaml:"threshold"`
	// PositiveClass is the string label a numeric score predicts, e.g.
	// "churn"; empty compares scores only with 0/1 (or numeric) labels.
	PositiveClass string `yaml:"positive_class"`
	// AckWait is how long JetStream waits before it delivers feedback
	// again that the service holds without acknowledging it; held feedback
	// is kept alive while the service runs, and the next process recreates
	// the consumer at its floor, which delivers it again at once, so this
	// matters only for a process that stalls (default 30s).
	AckWait time.Duration `yaml:"ack_wait"`
	// MaxDeliveries is how often a feedback message is delivered before
	// it is rejected as `undeliverable` instead of being tried again
	// (default 5).
	MaxDeliveries int `yaml:"max_deliveries"`
}

// DefaultAllowedLateness is the default of AllowedLateness.
const DefaultAllowedLateness = time.Minute

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Window:          time.Hour,
		WindowLabels:    1000,
		AllowedLateness: DefaultAllowedLateness,
		MaxAckPending:   -1,
		Horizon:         7 * 24 * time.Hour,
		MaxPredictions:  1_000_000,
		Wait:            time.Minute,
		Threshold:       quality.DefaultThreshold,
		AckWait:         30 * time.Second,
		MaxDeliveries:   5,
	}
}

// withDefaults fills in zero values and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.Window < 0 || c.WindowLabels < 0 || c.Horizon < 0 || c.MaxPredictions < 0 || c.Wait < 0 || c.AckWait < 0 || c.MaxDeliveries < 0 ||
		c.AllowedLateness < 0 || c.IdleTimeout < 0 || c.MaxAckPending < -1 {
		return c, fmt.Errorf("feedback config: negative setting in %+v", c)
	}
	if c.Threshold < 0 || c.Threshold > 1 {
		return c, fmt.Errorf("feedback config: threshold %v is outside [0, 1]", c.Threshold)
	}
	def := DefaultConfig()
	if c.Window == 0 {
		c.Window = def.Window
	}
	if c.WindowLabels == 0 {
		c.WindowLabels = def.WindowLabels
	}
	if c.AllowedLateness == 0 {
		c.AllowedLateness = def.AllowedLateness
	}
	if c.IdleTimeout == 0 {
		// A window's length: live feedback (ts close to the wall clock)
		// cannot be idle that long before the window's span is over.
		c.IdleTimeout = c.Window
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = def.MaxAckPending
	}
	if c.Horizon == 0 {
		c.Horizon = def.Horizon
	}
	if c.MaxPredictions == 0 {
		c.MaxPredictions = def.MaxPredictions
	}
	if c.Wait == 0 {
		c.Wait = def.Wait
	}
	if c.Threshold == 0 {
		c.Threshold = def.Threshold
	}
	if c.AckWait == 0 {
		c.AckWait = def.AckWait
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = def.MaxDeliveries
	}
	return c, nil
}

// Options returns the quality options of this configuration.
func (c Config) Options() quality.Options {
	return quality.Options{Threshold: c.Threshold, PositiveClass: c.PositiveClass}
}
