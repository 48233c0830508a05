package ingest

import (
	"strings"
	"testing"
)

// TestValidate: the defaults are valid; each case breaks one setting and
// Validate names its key (relative to the `ingest` section).
func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.MaxMessageBytes = 0 }, "max_message_bytes: must be positive"},
		{func(c *Config) { c.MaxInFlight = -1 }, "max_in_flight: must be positive"},
		{func(c *Config) { c.AckWait = 0 }, "ack_wait: must be positive"},
	} {
		cfg := DefaultConfig()
		c.set(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("got %v, want one error starting %q", err, c.want)
		}
	}
}
