package drift

import (
	"github.com/lookout-ml/lookout/pkg/service/configtest"

	"testing"
	"time"
)

// TestValidate: the defaults are valid; each case breaks one setting and
// Validate names its key (relative to the `drift` section).
func TestValidate(t *testing.T) {
	configtest.Check(t, DefaultConfig, []configtest.Case[Config]{
		{Set: func(c *Config) { c.Window = -5 * time.Second }, Want: "window: must be positive, got -5s"},
		{Set: func(c *Config) { c.WindowEvents = 0 }, Want: "window_events: must be positive"},
		{Set: func(c *Config) { c.Reference = "" }, Want: `reference: "" is not`},
		{Set: func(c *Config) { c.RollingWindows = 0 }, Want: "rolling_windows: must be positive"},
		{Set: func(c *Config) { c.ReferenceMinEvents = -1 }, Want: "reference_min_events: must not be negative"},
		{Set: func(c *Config) { c.SampleCap = 0 }, Want: "sample_cap: must be positive"},
		{Set: func(c *Config) { c.Roles = nil }, Want: "roles: must name at least one role"},
		{Set: func(c *Config) { c.Roles = []string{"prod"} }, Want: `roles[0]: "prod" is not`},
		{Set: func(c *Config) { c.AllowedLateness = -time.Minute }, Want: "allowed_lateness: must not be negative"},
		{Set: func(c *Config) { c.MaxAckPending = 0 }, Want: "max_ack_pending: must be positive, or -1"},
		{Set: func(c *Config) { c.Rules.SmallReference = -1 }, Want: "rules.small_reference: must not be negative"},
		{Set: func(c *Config) { c.Rules.PValue = 1 }, Want: "rules.p_value: must be in (0, 1)"},
		{Set: func(c *Config) { c.Rules.JensenShannon = 1.5 }, Want: "rules.jensen_shannon: must be in (0, 1]"},
		{Set: func(c *Config) { c.Rules.PSI = -0.1 }, Want: "rules.psi: must be a positive number"},
		{Set: func(c *Config) { c.Rules.Features = map[string]Rule{"age": {Method: "chi2", Threshold: 2}} }, Want: "rules.features.age.threshold: must be in (0, 1)"},
		{Set: func(c *Config) { c.Rules.Prediction = &Rule{Method: "anova"} }, Want: `rules.prediction.method: "anova" is not`},
		{Set: func(c *Config) { c.Confidence.MinLowShare = 1.1 }, Want: "confidence.min_low_share: must be in (0, 1]"},
		{Set: func(c *Config) { c.Threshold = "nannyml" }, Want: `threshold: "nannyml" is not auto or evidently`},
		{Set: func(c *Config) { c.FamilyAlpha = 1 }, Want: "family_alpha: must be in (0, 1)"},
		{Set: func(c *Config) { c.RootCause.MaxTags = -1 }, Want: "root_cause.max_tags: must not be negative"},
	})
}
