package feedback

import (
	"errors"
	"fmt"
	"math"
)

// Validate checks the settings the feedback service cannot run with. Each
// error starts with the key's path inside the `feedback` section; several
// are joined. Zero is an error too: a key left out keeps its default, so
// a zero can only have been written.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Window <= 0 {
		add("window: must be positive, got %v", c.Window)
	}
	if c.WindowLabels < 1 {
		add("window_labels: must be positive, got %d", c.WindowLabels)
	}
	if c.AllowedLateness <= 0 {
		add("allowed_lateness: must be positive, got %v", c.AllowedLateness)
	}
	if c.IdleTimeout < 0 {
		add("idle_timeout: must not be negative (0: the window), got %v", c.IdleTimeout)
	}
	if c.MaxAckPending != -1 && c.MaxAckPending < 1 {
		add("max_ack_pending: must be positive, or -1 for no limit, got %d", c.MaxAckPending)
	}
	if c.Horizon <= 0 {
		add("horizon: must be positive, got %v", c.Horizon)
	}
	if c.MaxPredictions < 1 {
		add("max_predictions: must be positive, got %d", c.MaxPredictions)
	}
	if c.Wait <= 0 {
		add("wait: must be positive, got %v", c.Wait)
	}
	// A score is a probability; at 0 or 1 every (or no) score is positive.
	if t := c.Threshold; math.IsNaN(t) || t <= 0 || t >= 1 {
		add("threshold: must be in (0, 1), got %v", t)
	}
	if c.AckWait <= 0 {
		add("ack_wait: must be positive, got %v", c.AckWait)
	}
	if c.MaxDeliveries < 1 {
		add("max_deliveries: must be positive, got %d", c.MaxDeliveries)
	}
	return errors.Join(errs...)
}
