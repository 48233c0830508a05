package canary

import (
	"github.com/lookout-ml/lookout/pkg/service/configtest"

	"testing"
	"time"
)

// TestValidate: the defaults are valid; each case breaks one setting and
// Validate names its key (relative to the `canary` section).
func TestValidate(t *testing.T) {
	configtest.Check(t, DefaultConfig, []configtest.Case[Config]{
		{Set: func(c *Config) { c.Wait = 0 }, Want: "wait: must be positive"},
		{Set: func(c *Config) { c.WindowPairs = 0 }, Want: "window_pairs: must be positive"},
		{Set: func(c *Config) { c.Window = -time.Minute }, Want: "window: must be positive"},
		{Set: func(c *Config) { c.AllowedLateness = -time.Second }, Want: "allowed_lateness: must not be negative"},
		{Set: func(c *Config) { c.IdleTimeout = -time.Second }, Want: "idle_timeout: must not be negative"},
		{Set: func(c *Config) { c.MinPairs = -1 }, Want: "min_pairs: must not be negative"},
		{Set: func(c *Config) { c.MaxHalves = 0 }, Want: "max_halves: must be positive"},
		{Set: func(c *Config) { c.Checkpoint = 0 }, Want: "checkpoint: must be positive"},
		{Set: func(c *Config) { c.Guardrails.MinAgreement = -0.1 }, Want: "guardrails.min_agreement: must be in [0, 1]"},
		{Set: func(c *Config) { c.Guardrails.MaxLatencyP95Ratio = -1 }, Want: "guardrails.max_latency_p95_ratio: must be in [0, +Inf]"},
		{Set: func(c *Config) { c.Guardrails.MinScoreCorrelation = 2 }, Want: "guardrails.min_score_correlation: must be in [-1, 1]"},
		{Set: func(c *Config) { c.Guardrails.MinScoreKSPValue = 1 }, Want: "guardrails.min_score_ks_p_value: must be in (0, 1)"},
		{Set: func(c *Config) { c.Guardrails.ConsecutiveWindows = 0 }, Want: "guardrails.consecutive_windows: must be positive"},
		{Set: func(c *Config) { c.Guardrails.Weights = map[string]float64{"latency": 1} }, Want: "guardrails.weights.latency: no such check"},
		{Set: func(c *Config) { c.Guardrails.Weights = map[string]float64{"agreement": -1} }, Want: "guardrails.weights.agreement: must not be negative"},
	})
}
