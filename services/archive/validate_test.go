package archive

import (
	"github.com/lookout-ml/lookout/pkg/service/configtest"

	"testing"
	"time"
)

// TestValidate: the defaults are valid; each case breaks one setting and
// Validate names its key (relative to the `archive` section).
func TestValidate(t *testing.T) {
	configtest.Check(t, DefaultConfig, []configtest.Case[Config]{
		{Set: func(c *Config) { c.Window = -5 * time.Second }, Want: "window: must be positive, got -5s"},
		{Set: func(c *Config) { c.MaxRows = 0 }, Want: "max_rows: must be positive"},
		{Set: func(c *Config) { c.MaxPending = 0 }, Want: "max_pending: must be positive"},
	})
}
