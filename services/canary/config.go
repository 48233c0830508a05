package canary

import (
	"time"

	judge "github.com/lookout-ml/lookout/pkg/canaryjudge"
)

// Config tunes the canary service. YAML section `canary`.
type Config struct {
	// Wait is how long, in event time, a half waits for its pair: until
	// its model's watermark passes its ts by this much (or its window
	// closes).
	Wait time.Duration `yaml:"wait"`
	// WindowPairs closes a window early once it holds this many joined
	// pairs ...
	WindowPairs int `yaml:"window_pairs"`
	// Window ... and is the length of a window in event time (the
	// production prediction's ts); windows are aligned to it (pkg/window).
	Window time.Duration `yaml:"window"`
	// AllowedLateness is how far behind a model's latest event time a
	// prediction may come and still count in its window (default 1m): a
	// window closes when the latest ts passes its end by this much. Later
	// predictions are dropped and counted (lookout_canary_late_total).
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	// IdleTimeout closes a model's windows, and expires its waiting
	// halves, once its event time has not advanced for this long in wall
	// time (default: window), so that a model that fell quiet still gets
	// its last report.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MinPairs: a window with fewer pairs gives the verdict `hold`.
	MinPairs int `yaml:"min_pairs"`
	// MaxHalves caps the halves waiting for their pair, per model; past
	// it the oldest expire early and are counted unmatched.
	MaxHalves int `yaml:"max_halves"`
	// Checkpoint is how often the join state is saved to JetStream; after
	// a crash the service replays the predictions stored since.
	Checkpoint time.Duration `yaml:"checkpoint"`
	// MinLabelledPairs: with at least this many pairs labelled by
	// feedback (default 100), the window's labelled quality decides the
	// verdict instead of agreement.
	MinLabelledPairs int `yaml:"min_labelled_pairs"`
	// QualityTolerance is how much less accurate than production the
	// canary may be (default 0.02, absolute accuracy; for numbers, a share
	// of production's MAE) before a significant difference rolls it back.
	QualityTolerance float64 `yaml:"quality_tolerance"`
	// AgreementRollback lets low agreement roll back a window without
	// enough labels; by default it gives hold (pkg/canaryjudge.Judge says
	// why).
	AgreementRollback bool `yaml:"agreement_rollback"`
	// MaxLabels caps the feedback labels kept per model until their
	// pair's window closes (default 100000).
	MaxLabels int `yaml:"max_labels"`
	// Guardrails decide the verdict.
	Guardrails judge.Guardrails `yaml:"guardrails"`
}

// DefaultAllowedLateness is the default of AllowedLateness.
const DefaultAllowedLateness = time.Minute

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Wait: 30 * time.Second, WindowPairs: 1000, Window: 5 * time.Minute, AllowedLateness: DefaultAllowedLateness, MinPairs: 500,
		MaxHalves: 100000, MinLabelledPairs: judge.DefaultMinLabelledPairs, QualityTolerance: judge.DefaultQualityTolerance,
		MaxLabels: 100000, Checkpoint: 5 * time.Second, Guardrails: judge.DefaultGuardrails(),
	}
}
