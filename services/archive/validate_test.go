package archive

import (
	"strings"
	"testing"
	"time"
)

// TestValidate: the defaults are valid; each case breaks one setting and
// Validate names its key (relative to the `archive` section).
func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.Window = -5 * time.Second }, "window: must be positive, got -5s"},
		{func(c *Config) { c.MaxRows = 0 }, "max_rows: must be positive"},
		{func(c *Config) { c.AckWait = -time.Second }, "ack_wait: must not be negative"},
		{func(c *Config) { c.AckWait = c.Window }, "ack_wait: must be longer than window"},
		{func(c *Config) { c.MaxPending = 0 }, "max_pending: must be positive"},
	} {
		cfg := DefaultConfig()
		c.set(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("got %v, want one error starting %q", err, c.want)
		}
	}
}
