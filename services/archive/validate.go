package archive

import (
	"errors"
	"fmt"
)

// Validate checks the settings the archive cannot run with. Each error
// starts with the key's path inside the `archive` section; several are
// joined. A zero window or count is an error (a key left out keeps its
// default, so a zero was written).
func (c Config) Validate() error {
	var errs []error
	if c.Window <= 0 {
		errs = append(errs, fmt.Errorf("window: must be positive, got %v", c.Window))
	}
	if c.MaxRows < 1 {
		errs = append(errs, fmt.Errorf("max_rows: must be positive, got %d", c.MaxRows))
	}
	if c.MaxPending < 1 {
		errs = append(errs, fmt.Errorf("max_pending: must be positive, got %d", c.MaxPending))
	}
	if c.S3 != nil {
		if err := c.S3.Validate(); err != nil {
			for _, e := range flatten(err) {
				errs = append(errs, fmt.Errorf("s3.%w", e))
			}
		}
	}
	return errors.Join(errs...)
}

// flatten splits a joined error into its parts.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
