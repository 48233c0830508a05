package feedback

import (
	"strings"
	"testing"
	"time"
)

// TestValidate: the defaults are valid; each case breaks one setting and
// Validate names its key (relative to the `feedback` section).
func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.Window = 0 }, "window: must be positive"},
		{func(c *Config) { c.WindowLabels = -1 }, "window_labels: must be positive"},
		{func(c *Config) { c.AllowedLateness = 0 }, "allowed_lateness: must be positive"},
		{func(c *Config) { c.IdleTimeout = -time.Second }, "idle_timeout: must not be negative"},
		{func(c *Config) { c.MaxAckPending = 0 }, "max_ack_pending: must be positive, or -1"},
		{func(c *Config) { c.Horizon = 0 }, "horizon: must be positive"},
		{func(c *Config) { c.MaxPredictions = 0 }, "max_predictions: must be positive"},
		{func(c *Config) { c.Wait = -time.Second }, "wait: must be positive"},
		{func(c *Config) { c.Threshold = 0 }, "threshold: must be in (0, 1)"},
		{func(c *Config) { c.AckWait = 0 }, "ack_wait: must be positive"},
		{func(c *Config) { c.MaxDeliveries = 0 }, "max_deliveries: must be positive"},
	} {
		cfg := DefaultConfig()
		c.set(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("got %v, want one error starting %q", err, c.want)
		}
	}
}
