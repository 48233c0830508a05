package ingest

import (
	"errors"
	"fmt"
)

// Validate checks the settings ingest cannot run with. Each error starts
// with the key's path inside the `ingest` section; several are joined.
// Zero is an error too: a key left out keeps its default, so a zero can
// only have been written.
func (c Config) Validate() error {
	var errs []error
	if c.MaxMessageBytes < 1 {
		errs = append(errs, fmt.Errorf("max_message_bytes: must be positive, got %d", c.MaxMessageBytes))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max_in_flight: must be positive, got %d", c.MaxInFlight))
	}
	if c.MaxMessageBytes > 8<<20 {
		errs = append(errs, fmt.Errorf("max_message_bytes: must be at most 8 MiB (the server's max payload), got %d", c.MaxMessageBytes))
	}
	if c.MaxDeliveries < 1 {
		errs = append(errs, fmt.Errorf("max_deliveries: must be positive, got %d", c.MaxDeliveries))
	}
	if c.AckWait <= 0 {
		errs = append(errs, fmt.Errorf("ack_wait: must be positive, got %v", c.AckWait))
	}
	return errors.Join(errs...)
}
