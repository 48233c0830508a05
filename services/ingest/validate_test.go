package ingest

import (
	"github.com/lookout-ml/lookout/pkg/service/configtest"

	"testing"
)

// TestValidate: the defaults are valid; each case breaks one setting and
// Validate names its key (relative to the `ingest` section).
func TestValidate(t *testing.T) {
	configtest.Check(t, DefaultConfig, []configtest.Case[Config]{
		{Set: func(c *Config) { c.MaxMessageBytes = 0 }, Want: "max_message_bytes: must be positive"},
		{Set: func(c *Config) { c.MaxInFlight = -1 }, Want: "max_in_flight: must be positive"},
		{Set: func(c *Config) { c.AckWait = 0 }, Want: "ack_wait: must be positive"},
	})
}
