// Package configtest checks a service's Config.Validate the same way for
// every service: the defaults pass, and each broken setting is reported as
// exactly one error that names its key.
package configtest

import (
	"strings"
	"testing"
)

// Case breaks one setting (Set) and says how Validate's error must start
// (Want: the key, relative to the service's section, and the problem).
type Case[C any] struct {
	Set  func(*C)
	Want string
}

// Check fails t unless def() validates and every case gives one error
// that starts with its Want.
func Check[C interface{ Validate() error }](t *testing.T, def func() C, cases []Case[C]) {
	t.Helper()
	if err := def().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range cases {
		cfg := def()
		c.Set(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.Want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("got %v, want one error starting %q", err, c.Want)
		}
	}
}
