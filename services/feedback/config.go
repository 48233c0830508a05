package feedback

import (
	"fmt"
	"time"

	"github.com/lookout-ml/lookout/pkg/quality"
)

// Config tunes the feedback service. YAML section `feedback`.
type Config struct {
	// Window closes a performance window after this long ...
	Window time.Duration `yaml:"window"`
	// WindowLabels ... or after this many joined feedback events (labels
	// or helpful answers), whichever comes first.
	WindowLabels int `yaml:"window_labels"`
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

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Window:         time.Hour,
		WindowLabels:   1000,
		Horizon:        7 * 24 * time.Hour,
		MaxPredictions: 1_000_000,
		Wait:           time.Minute,
		Threshold:      quality.DefaultThreshold,
		AckWait:        30 * time.Second,
		MaxDeliveries:  5,
	}
}

// withDefaults fills in zero values and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.Window < 0 || c.WindowLabels < 0 || c.Horizon < 0 || c.MaxPredictions < 0 || c.Wait < 0 || c.AckWait < 0 || c.MaxDeliveries < 0 {
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
