package feedback

import (
	"github.com/lookout-ml/lookout/pkg/service/configtest"

	"testing"
	"time"
)

// TestValidate: the defaults are valid; each case breaks one setting and
// Validate names its key (relative to the `feedback` section).
func TestValidate(t *testing.T) {
	configtest.Check(t, DefaultConfig, []configtest.Case[Config]{
		{Set: func(c *Config) { c.Window = 0 }, Want: "window: must be positive"},
		{Set: func(c *Config) { c.WindowLabels = -1 }, Want: "window_labels: must be positive"},
		{Set: func(c *Config) { c.AllowedLateness = 0 }, Want: "allowed_lateness: must be positive"},
		{Set: func(c *Config) { c.IdleTimeout = -time.Second }, Want: "idle_timeout: must not be negative"},
		{Set: func(c *Config) { c.MaxAckPending = 0 }, Want: "max_ack_pending: must be positive, or -1"},
		{Set: func(c *Config) { c.Horizon = 0 }, Want: "horizon: must be positive"},
		{Set: func(c *Config) { c.MaxPredictions = 0 }, Want: "max_predictions: must be positive"},
		{Set: func(c *Config) { c.Wait = -time.Second }, Want: "wait: must be positive"},
		{Set: func(c *Config) { c.Threshold = 0 }, Want: "threshold: must be in (0, 1)"},
		{Set: func(c *Config) { c.AckWait = 0 }, Want: "ack_wait: must be positive"},
		{Set: func(c *Config) { c.MaxDeliveries = 0 }, Want: "max_deliveries: must be positive"},
	})
}
