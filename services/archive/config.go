package archive

import (
	"time"

	"github.com/lookout-ml/lookout/pkg/parquetarchive"
)

// Config tunes the archive service. YAML section `archive`.
type Config struct {
	// Window closes a file after this long ...
	Window time.Duration `yaml:"window"`
	// MaxRows ... or after this many rows, whichever comes first.
	MaxRows int `yaml:"max_rows"`
	// MaxPending bounds the rows buffered over all models. When it is
	// reached, the fullest window is written at once.
	MaxPending int `yaml:"max_pending"`
	// S3, when set, writes the archive to S3-compatible object storage
	// (same layout, under its prefix) instead of <data>/archive. The
	// journal stays in <data>/archive-state.
	S3 *parquetarchive.S3Config `yaml:"s3"`
}

// DefaultConfig returns the defaults: a window of five minutes or 100,000
// rows (12 files an hour per model at most a few MB each, ready for hourly
// jobs, without piling up tiny files).
func DefaultConfig() Config {
	return Config{Window: 5 * time.Minute, MaxRows: 100000, MaxPending: 1000000}
}

// withDefaults fills in zero values.
func (c Config) withDefaults() Config {
	def := DefaultConfig()
	if c.Window <= 0 {
		c.Window = def.Window
	}
	if c.MaxRows <= 0 {
		c.MaxRows = def.MaxRows
	}
	if c.MaxPending <= 0 {
		c.MaxPending = def.MaxPending
	}
	return c
}
