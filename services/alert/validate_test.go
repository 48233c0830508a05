package alert

import (
	"github.com/lookout-ml/lookout/pkg/service/configtest"

	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/alerting"
)

// TestValidate: the defaults are valid; each case breaks one setting and
// Validate names its key (relative to the `alert` section).
func TestValidate(t *testing.T) {
	configtest.Check(t, DefaultConfig, []configtest.Case[Config]{
		{Set: func(c *Config) { c.GroupWait = -time.Second }, Want: "group_wait: must not be negative"},
		{Set: func(c *Config) { c.GroupInterval = 0 }, Want: "group_interval: must be positive"},
		{Set: func(c *Config) { c.NoData = 0 }, Want: "no_data: must be positive"},
		{Set: func(c *Config) { c.RejectionRate.Threshold = 1 }, Want: "rejection_rate.threshold: must be in (0, 1)"},
		{Set: func(c *Config) { c.RejectionRate.MinCount = 0 }, Want: "rejection_rate.min_count: must be positive"},
		{Set: func(c *Config) { c.Retry.Max = time.Millisecond }, Want: "retry.max: must be at least retry.initial"},
		{Set: func(c *Config) { c.Rules = []alerting.Rule{{Name: "x", Source: "logs"}} }, Want: `rules[0]: invalid rule "x": source "logs"`},
		{Set: func(c *Config) { c.Sinks = []SinkConfig{{Type: "sms"}} }, Want: `sinks[0].type: "sms" is not webhook, slack or email`},
		{Set: func(c *Config) { c.Sinks = []SinkConfig{{Type: "webhook", URL: "localhost:9999/hook"}} }, Want: `sinks[0].url: scheme "localhost": want http or https`},
		{Set: func(c *Config) { c.Sinks = []SinkConfig{{Type: "slack", URL: "https://"}} }, Want: "sinks[0].url: has no host"},
		// Signing with the old secret alone would undo a rotation.
		{Set: func(c *Config) { c.Sinks = []SinkConfig{{Type: "webhook", URL: "http://h/x", PreviousSecret: "old"}} }, Want: "sinks[0].previous_secret: needs secret (the new one) too"},
		{Set: func(c *Config) { c.Sinks = []SinkConfig{{Type: "slack", URL: "https://h/x", PreviousSecret: "old"}} }, Want: "sinks[0].previous_secret: only a webhook sink is signed"},
		{Set: func(c *Config) { c.Sinks = []SinkConfig{{Type: "email", SMTP: "m:25", From: "a@x", To: []string{""}}} }, Want: "sinks[0].to[0]: is empty"},
		{Set: func(c *Config) { c.Sinks = []SinkConfig{{Name: "my sink", Type: "webhook", URL: "http://h"}} }, Want: `sinks: sink 1: name "my sink"`},
	})
}
