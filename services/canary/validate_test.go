package canary

import (
	"strings"
	"testing"
	"time"
)

// TestValidate: the defaults are valid; each case breaks one setting and
// Validate names its key (relative to the `canary` section).
func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.Wait = 0 }, "wait: must be positive"},
		{func(c *Config) { c.WindowPairs = 0 }, "window_pairs: must be positive"},
		{func(c *Config) { c.Window = -time.Minute }, "window: must be positive"},
		{func(c *Config) { c.AllowedLateness = -time.Second }, "allowed_lateness: must not be negative"},
		{func(c *Config) { c.IdleTimeout = -time.Second }, "idle_timeout: must not be negative"},
		{func(c *Config) { c.MinPairs = -1 }, "min_pairs: must not be negative"},
		{func(c *Config) { c.MaxHalves = 0 }, "max_halves: must be positive"},
		{func(c *Config) { c.Checkpoint = 0 }, "checkpoint: must be positive"},
		{func(c *Config) { c.Guardrails.MinAgreement = -0.1 }, "guardrails.min_agreement: must be in [0, 1]"},
		{func(c *Config) { c.Guardrails.MaxLatencyP95Ratio = -1 }, "guardrails.max_latency_p95_ratio: must be in [0, +Inf]"},
		{func(c *Config) { c.Guardrails.MinScoreCorrelation = 2 }, "guardrails.min_score_correlation: must be in [-1, 1]"},
		{func(c *Config) { c.Guardrails.MinScoreKSPValue = 1 }, "guardrails.min_score_ks_p_value: must be in (0, 1)"},
		{func(c *Config) { c.Guardrails.ConsecutiveWindows = 0 }, "guardrails.consecutive_windows: must be positive"},
		{func(c *Config) { c.Guardrails.Weights = map[string]float64{"latency": 1} }, "guardrails.weights.latency: no such check"},
		{func(c *Config) { c.Guardrails.Weights = map[string]float64{"agreement": -1} }, "guardrails.weights.agreement: must not be negative"},
	} {
		cfg := DefaultConfig()
		c.set(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("got %v, want one error starting %q", err, c.want)
		}
	}
}
