package drift

import (
	"strings"
	"testing"
	"time"
)

// TestValidate: the defaults are valid; each case breaks one setting and
// Validate names its key (relative to the `drift` section).
func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.Window = -5 * time.Second }, "window: must be positive, got -5s"},
		{func(c *Config) { c.WindowEvents = 0 }, "window_events: must be positive"},
		{func(c *Config) { c.Reference = "" }, `reference: "" is not`},
		{func(c *Config) { c.RollingWindows = 0 }, "rolling_windows: must be positive"},
		{func(c *Config) { c.ReferenceMinEvents = -1 }, "reference_min_events: must not be negative"},
		{func(c *Config) { c.SampleCap = 0 }, "sample_cap: must be positive"},
		{func(c *Config) { c.Roles = nil }, "roles: must name at least one role"},
		{func(c *Config) { c.Roles = []string{"prod"} }, `roles[0]: "prod" is not`},
		{func(c *Config) { c.AllowedLateness = -time.Minute }, "allowed_lateness: must not be negative"},
		{func(c *Config) { c.MaxAckPending = 0 }, "max_ack_pending: must be positive, or -1"},
		{func(c *Config) { c.Rules.SmallReference = -1 }, "rules.small_reference: must not be negative"},
		{func(c *Config) { c.Rules.PValue = 1 }, "rules.p_value: must be in (0, 1)"},
		{func(c *Config) { c.Rules.JensenShannon = 1.5 }, "rules.jensen_shannon: must be in (0, 1]"},
		{func(c *Config) { c.Rules.PSI = -0.1 }, "rules.psi: must be a positive number"},
		{func(c *Config) { c.Rules.Features = map[string]Rule{"age": {Method: "chi2", Threshold: 2}} }, "rules.features.age.threshold: must be in (0, 1)"},
		{func(c *Config) { c.Rules.Prediction = &Rule{Method: "anova"} }, `rules.prediction.method: "anova" is not`},
		{func(c *Config) { c.Confidence.MinLowShare = 1.1 }, "confidence.min_low_share: must be in (0, 1]"},
	} {
		cfg := DefaultConfig()
		c.set(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("got %v, want one error starting %q", err, c.want)
		}
	}
}
