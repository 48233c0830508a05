package alert

import (
	"strings"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/alerting"
)

// TestValidate: the defaults are valid; each case breaks one setting and
// Validate names its key (relative to the `alert` section).
func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.GroupWait = -time.Second }, "group_wait: must not be negative"},
		{func(c *Config) { c.GroupInterval = 0 }, "group_interval: must be positive"},
		{func(c *Config) { c.NoData = 0 }, "no_data: must be positive"},
		{func(c *Config) { c.RejectionRate.Threshold = 1 }, "rejection_rate.threshold: must be in (0, 1)"},
		{func(c *Config) { c.RejectionRate.MinCount = 0 }, "rejection_rate.min_count: must be positive"},
		{func(c *Config) { c.Retry.Max = time.Millisecond }, "retry.max: must be at least retry.initial"},
		{func(c *Config) { c.Rules = []alerting.Rule{{Name: "x", Source: "logs"}} }, `rules[0]: invalid rule "x": source "logs"`},
		{func(c *Config) { c.Sinks = []SinkConfig{{Type: "sms"}} }, `sinks[0].type: "sms" is not webhook, slack or email`},
		{func(c *Config) { c.Sinks = []SinkConfig{{Type: "webhook", URL: "localhost:9999/hook"}} }, `sinks[0].url: scheme "localhost": want http or https`},
		{func(c *Config) { c.Sinks = []SinkConfig{{Type: "slack", URL: "https://"}} }, "sinks[0].url: has no host"},
		{func(c *Config) { c.Sinks = []SinkConfig{{Type: "email", SMTP: "m:25", From: "a@x", To: []string{""}}} }, "sinks[0].to[0]: is empty"},
		{func(c *Config) { c.Sinks = []SinkConfig{{Name: "my sink", Type: "webhook", URL: "http://h"}} }, `sinks: sink 1: name "my sink"`},
	} {
		cfg := DefaultConfig()
		c.set(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("got %v, want one error starting %q", err, c.want)
		}
	}
}
