package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lookout-ml/lookout/pkg/httpingest"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/service"
	"github.com/lookout-ml/lookout/pkg/webauth"
	"github.com/lookout-ml/lookout/services/drift"
	"github.com/lookout-ml/lookout/services/ingest"
)

// Config is the whole configuration file: the `nats` section, which
// `lookout run` owns, and one section for each component, which the
// component declares (its defaults, type and validation). Every key is
// optional; a key Lookout does not know is an error that names it and its
// line, so a typo never silently falls back to a default.
type Config struct {
	NATS NATSConfig
	// HTTP is the `http` section: the token of the HTTP listener.
	HTTP webauth.Config
	// OTLP is the `otlp` section: how BentoML monitors map to models on
	// POST /v1/logs.
	OTLP httpingest.Config
	// Wandb verifies the W&B automation webhook (POST /v1/hooks/wandb).
	Wandb WandbConfig
	// sections holds each component's configuration by component name, of
	// the type its DefaultConfig returns. A component missing here (a
	// Config not made by defaultConfig) gets its defaults.
	sections map[string]service.Config
}

// NATSConfig says how Lookout uses NATS. YAML section `nats`.
type NATSConfig struct {
	// Prefix is the first token of every subject (default "lookout").
	Prefix string `yaml:"prefix"`
	// Retention is how long JetStream keeps predictions and reports.
	Retention time.Duration `yaml:"retention"`
	// Replicas of each stream in a cluster.
	Replicas int `yaml:"replicas"`
	// Users of the embedded server; with any, anonymous clients are
	// refused and each user may do what its role allows.
	Users []natsbus.User `yaml:"users"`
	// TLS of the embedded server's client port.
	TLS natsbus.TLS `yaml:"tls"`
	// Partitions the models are cut into for drift, canary and feedback,
	// so that their processes share them (1: one process does all). Every process of
	// a deployment must use the same number.
	Partitions int `yaml:"partitions"`
}

// WandbConfig is the YAML section `wandb`: the secret of the W&B Registry
// automation that calls POST /v1/hooks/wandb (without one the hook
// answers 503: an unverified hook would let anyone set runs).
type WandbConfig struct {
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// Aliases that register a version when added (default: production).
	Aliases []string `yaml:"aliases"`
}

// Validate checks the wandb section.
func (w WandbConfig) Validate() error {
	if w.Secret != "" && w.SecretFile != "" {
		return errors.New("secret_file: give secret or secret_file, not both")
	}
	return nil
}

// The top-level keys of the sections `lookout run` owns.
const (
	natsSection  = "nats"
	httpSection  = "http"
	otlpSection  = "otlp"
	wandbSection = "wandb"
)

// ownSection is a section of the file that belongs to `lookout run`, not
// to a component: its key and the field of Config it decodes into.
type ownSection struct {
	key   string
	field any // a pointer to a struct with a Validate method
}

// ownSections lists them in one place, for decoding and validation.
func (cfg *Config) ownSections() []ownSection {
	return []ownSection{{natsSection, &cfg.NATS}, {httpSection, &cfg.HTTP}, {otlpSection, &cfg.OTLP}, {wandbSection, &cfg.Wandb}}
}

// defaultConfig returns the configuration used when no file is given.
func defaultConfig() Config {
	cfg := Config{
		NATS:     NATSConfig{Prefix: "lookout", Retention: 7 * 24 * time.Hour, Replicas: 1, Partitions: 1},
		OTLP:     httpingest.DefaultConfig(),
		sections: make(map[string]service.Config, len(components)),
	}
	for _, c := range components {
		cfg.sections[c.Name()] = c.DefaultConfig()
	}
	return cfg
}

// section returns component c's configuration.
func (cfg Config) section(c *service.Component) service.Config {
	if s, ok := cfg.sections[c.Name()]; ok {
		return s
	}
	return c.DefaultConfig()
}

// sectionOf returns component c's configuration as the C it is; for the
// subcommands that read a service's settings.
func sectionOf[C service.Config](cfg Config, c *service.Component) C {
	s, _ := cfg.section(c).(C)
	return s
}

// Ingest returns the ingest section.
func (cfg Config) Ingest() ingest.Config { return sectionOf[ingest.Config](cfg, ingest.Component) }

// Drift returns the drift section.
func (cfg Config) Drift() drift.Config { return sectionOf[drift.Config](cfg, drift.Component) }

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
// An unknown key is an error naming the key and its line: a top-level one
// here, one inside a section by the decoder.
//
// The file is decoded in one pass, with KnownFields, into a struct made at
// run time with one field per section, of the component's own config type:
// yaml.Node.Decode has no KnownFields, so decoding each section's node
// separately would accept typos, and re-encoding a node would lose its
// line numbers.
func parseConfig(data []byte, cfg *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 {
		return nil // empty file: the defaults
	}

	own := cfg.ownSections()
	var (
		known  []string
		fields []reflect.StructField
	)
	for i, o := range own {
		known = append(known, o.key)
		fields = append(fields, reflect.StructField{
			Name: fmt.Sprintf("O%d", i), Type: reflect.TypeOf(o.field).Elem(), Tag: reflect.StructTag(`yaml:"` + o.key + `"`),
		})
	}
	for i, c := range components {
		known = append(known, c.Section())
		fields = append(fields, reflect.StructField{
			Name: fmt.Sprintf("S%d", i),
			Type: reflect.TypeOf(cfg.section(c)),
			Tag:  reflect.StructTag(`yaml:"` + c.Section() + `"`),
		})
	}
	// Unknown sections land here, to be reported with their line below,
	// and not as a field missing from an unnamed struct type.
	fields = append(fields, reflect.StructField{
		Name: "Rest", Type: reflect.TypeOf(map[string]yaml.Node(nil)), Tag: `yaml:",inline"`,
	})
	file := reflect.New(reflect.StructOf(fields)).Elem()
	for i, o := range own {
		file.Field(i).Set(reflect.ValueOf(o.field).Elem())
	}
	for i, c := range components {
		file.Field(len(own) + i).Set(reflect.ValueOf(cfg.section(c)))
	}

	var errs []error
	if top := doc.Content[0]; top.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(top.Content); i += 2 {
			key := top.Content[i]
			if !slices.Contains(known, key.Value) {
				errs = append(errs, fmt.Errorf("line %d: unknown section %q (known: %s)", key.Line, key.Value, strings.Join(known, ", ")))
			}
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(file.Addr().Interface()); err != nil && !errors.Is(err, io.EOF) {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	for i, o := range own {
		reflect.ValueOf(o.field).Elem().Set(file.Field(i))
	}
	for i, c := range components {
		cfg.sections[c.Name()] = file.Field(len(own) + i).Interface().(service.Config)
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
	for _, o := range c.ownSections() {
		section(o.key, o.field.(interface{ Validate() error }).Validate())
	}
	for _, comp := range components {
		section(comp.Section(), c.section(comp).Validate())
	}
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
	if err := natsbus.ValidateUsers(n.Users, "users"); err != nil {
		errs = append(errs, err)
	}
	if err := natsbus.ValidateTLS(n.TLS, "tls"); err != nil {
		errs = append(errs, err)
	}
	if n.Partitions < 1 || n.Partitions > 1024 {
		errs = append(errs, fmt.Errorf("partitions: must be 1 to 1024, got %d", n.Partitions))
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
