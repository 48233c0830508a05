package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lookout-ml/lookout/services/alert"
	"github.com/lookout-ml/lookout/services/archive"
	"github.com/lookout-ml/lookout/services/canary"
	"github.com/lookout-ml/lookout/services/drift"
	"github.com/lookout-ml/lookout/services/feedback"
	"github.com/lookout-ml/lookout/services/ingest"
)

// Config is the whole configuration file. It lives beside the wiring
// because it names every service. Every key is optional; a key Lookout
// does not know is an error that names it, so a typo never silently falls
// back to a default.
type Config struct {
	NATS     NATSConfig      `yaml:"nats"`
	Ingest   ingest.Config   `yaml:"ingest"`
	Archive  archive.Config  `yaml:"archive"`
	Drift    drift.Config    `yaml:"drift"`
	Canary   canary.Config   `yaml:"canary"`
	Alert    alert.Config    `yaml:"alert"`
	Feedback feedback.Config `yaml:"feedback"`
}

// NATSConfig says how Lookout uses NATS. YAML section `nats`.
type NATSConfig struct {
	// Prefix is the first token of every subject (default "lookout").
	Prefix string `yaml:"prefix"`
	// Retention is how long JetStream keeps predictions and reports.
	Retention time.Duration `yaml:"retention"`
	// Replicas of each stream in a cluster.
	Replicas int `yaml:"replicas"`
}

// defaultConfig returns the configuration used when no file is given.
func defaultConfig() Config {
	return Config{
		NATS:     NATSConfig{Prefix: "lookout", Retention: 7 * 24 * time.Hour, Replicas: 1},
		Ingest:   ingest.DefaultConfig(),
		Archive:  archive.DefaultConfig(),
		Drift:    drift.DefaultConfig(),
		Canary:   canary.DefaultConfig(),
		Alert:    alert.DefaultConfig(),
		Feedback: feedback.DefaultConfig(),
	}
}

// loadConfig reads the file at path over the defaults and validates the
// result; an empty path gives the defaults. It fails on an unreadable
// file, an unknown key (naming it and its line) and on any value Lookout
// cannot run with (naming its key path), before anything connects.
func loadConfig(path string) (Config, error) {
	cfg := defaultConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if err := parseConfig(data, &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// parseConfig decodes YAML into cfg, keeping cfg's values for absent keys.
// An unknown key is an error naming the key and its line.
func parseConfig(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// natsToken is what a subject prefix may be: one NATS token of the same
// safe characters as a model name (no dots, wildcards or spaces, which
// would change which subjects the streams capture).
var natsToken = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate checks every section. Each problem is a line of its own,
// `config: <key path>: <what is wrong>`, e.g.
// `config: drift.window: must be positive, got -5s`; all are reported at
// once.
func (c Config) Validate() error {
	var errs []error
	section := func(name string, err error) {
		for _, e := range flatten(err) {
			// "drift.%w" keeps the service's error (errors.Is, As) and makes
			// its relative key path absolute.
			errs = append(errs, fmt.Errorf("config: %s.%w", name, e))
		}
	}
	section("nats", c.NATS.Validate())
	section("ingest", c.Ingest.Validate())
	section("archive", c.Archive.Validate())
	section("drift", c.Drift.Validate())
	section("canary", c.Canary.Validate())
	section("alert", c.Alert.Validate())
	section("feedback", c.Feedback.Validate())
	return errors.Join(errs...)
}

// Validate checks the nats section: the prefix is one NATS token,
// retention is positive and replicas are what JetStream allows (1 to 5).
func (n NATSConfig) Validate() error {
	var errs []error
	if !natsToken.MatchString(n.Prefix) {
		errs = append(errs, fmt.Errorf("prefix: %q is not a NATS token (letters, digits, '-' and '_')", n.Prefix))
	}
	if n.Retention <= 0 {
		errs = append(errs, fmt.Errorf("retention: must be positive, got %v", n.Retention))
	}
	if n.Replicas < 1 || n.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas: must be 1 to 5, got %d", n.Replicas))
	}
	return errors.Join(errs...)
}

// flatten returns the errors joined in err (errors.Join), or err alone.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
