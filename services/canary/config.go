package canary

import (
	"time"

	judge "github.com/lookout-ml/lookout/pkg/canaryjudge"
)

// Config tunes the canary service. YAML section `canary`.
type Config struct {
	// Wait is how long a half waits for its pair.
	Wait time.Duration `yaml:"wait"`
	// WindowPairs closes a window after this many joined pairs ...
	WindowPairs int `yaml:"window_pairs"`
	// Window ... or after this long.
	Window time.Duration `yaml:"window"`
	// MinPairs: a window with fewer pairs gives the verdict `hold`.
	MinPairs int `yaml:"min_pairs"`
	// MaxHalves caps the halves waiting for their pair, per model; past
	// it the oldest expire early and are counted unmatched.
	MaxHalves int `yaml:"max_halves"`
	// Checkpoint is how often the join state is saved to JetStream; after
	// a crash the service replays the predictions stored since.
	Checkpoint time.Duration `yaml:"checkpoint"`
	// Guardrails decide the verdict.
	Guardrails judge.Guardrails `yaml:"guardrails"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Wait: 30 * time.Second, WindowPairs: 1000, Window: 5 * time.Minute, MinPairs: 500,
		MaxHalves: 100000, Checkpoint: 5 * time.Second, Guardrails: judge.DefaultGuardrails(),
	}
}
