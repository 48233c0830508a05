package alert

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/lookout-ml/lookout/pkg/alerting"
)

// Config tunes the alert service. YAML section `alert`.
type Config struct {
	// GroupWait gathers a model's first alerts into one notification.
	GroupWait time.Duration `yaml:"group_wait"`
	// GroupInterval is the wait before notifying changes to a group.
	GroupInterval time.Duration `yaml:"group_interval"`
	// RepeatInterval is the wait before a still-firing alert is sent again.
	RepeatInterval time.Duration `yaml:"repeat_interval"`
	// EvaluationInterval is how often rejection_rate and no_data are
	// evaluated (each evaluation is one window for their for/resolve).
	EvaluationInterval time.Duration `yaml:"evaluation_interval"`
	// NoData is how long a model that published before may stay silent
	// before no_data fires.
	NoData time.Duration `yaml:"no_data"`
	// RejectionRate tunes the rejection_rate rule.
	RejectionRate RejectionRateConfig `yaml:"rejection_rate"`
	// Rules are added to the default rules; one named like a default rule
	// changes it (e.g. {name: feature_drift, enabled: false}).
	Rules []alerting.Rule `yaml:"rules"`
	// Retry is how sinks retry a notification they failed to deliver.
	Retry RetryConfig `yaml:"retry"`
	// Sinks are where notifications go.
	Sinks []SinkConfig `yaml:"sinks"`
}

// RejectionRateConfig tunes the rejection_rate rule.
type RejectionRateConfig struct {
	// Threshold is the share of rejected input above which it fires.
	Threshold float64 `yaml:"threshold"`
	// Window is the sliding window the share is counted over.
	Window time.Duration `yaml:"window"`
	// MinCount is the least input in the window for the share to count.
	MinCount int `yaml:"min_count"`
}

// RetryConfig is the exponential backoff of a failing sink.
type RetryConfig struct {
	// Initial is the first wait; each failure doubles it ...
	Initial time.Duration `yaml:"initial"`
	// ... up to Max.
	Max time.Duration `yaml:"max"`
	// GiveUpAfter drops a notification this long after it was queued.
	GiveUpAfter time.Duration `yaml:"give_up_after"`
}

// SinkConfig is one notification target.
type SinkConfig struct {
	// Name identifies the sink (its durable consumer); default: its type,
	// with "-2", "-3", ... for the second and later of one type.
	Name string `yaml:"name"`
	Type string `yaml:"type"` // webhook, slack or email
	// URL of a webhook or Slack incoming webhook.
	URL string `yaml:"url"`
	// Secret signs webhook bodies (HMAC-SHA256, header X-Lookout-Signature).
	Secret string `yaml:"secret"`
	// PreviousSecret, while the secret is rotated, signs each body a
	// second time (X-Lookout-Signature: "sha256=<new>, sha256=<old>").
	PreviousSecret string `yaml:"previous_secret"`
	// SMTP is the mail server, host:port.
	SMTP     string   `yaml:"smtp"`
	From     string   `yaml:"from"`
	To       []string `yaml:"to"`
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
	// StartTLS is auto (upgrade when offered, the default), always or never.
	StartTLS string `yaml:"starttls"`
	// Rules and Severities, when set, limit what the sink takes.
	Rules      []string `yaml:"rules"`
	Severities []string `yaml:"severities"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		GroupWait:          30 * time.Second,
		GroupInterval:      5 * time.Minute,
		RepeatInterval:     4 * time.Hour,
		EvaluationInterval: 30 * time.Second,
		NoData:             10 * time.Minute,
		RejectionRate:      RejectionRateConfig{Threshold: 0.05, Window: 5 * time.Minute, MinCount: 20},
		Retry:              RetryConfig{Initial: time.Second, Max: 5 * time.Minute, GiveUpAfter: 24 * time.Hour},
	}
}

// EffectiveRules returns the default rules, tuned by NoData and
// RejectionRate, with the configured rules merged over them.
func (c Config) EffectiveRules() []alerting.Rule {
	rules := alerting.DefaultRules()
	for i := range rules {
		switch rules[i].Name {
		case alerting.RuleNoData:
			if c.NoData > 0 {
				rules[i].Threshold = c.NoData.Seconds()
			}
		case alerting.RuleRejectionRate:
			if c.RejectionRate.Threshold > 0 {
				rules[i].Threshold = c.RejectionRate.Threshold
			}
		}
	}
	return alerting.MergeRules(rules, c.Rules)
}

var sinkName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// sinkNames returns each sink's name, checking that they are unique and
// NATS-safe.
func (c Config) sinkNames() ([]string, error) {
	names := make([]string, len(c.Sinks))
	count := map[string]int{}
	for i, s := range c.Sinks {
		name := s.Name
		if name == "" {
			count[s.Type]++
			name = s.Type
			if n := count[s.Type]; n > 1 {
				name = fmt.Sprintf("%s-%d", s.Type, n)
			}
		}
		if !sinkName.MatchString(name) {
			return nil, fmt.Errorf("sink %d: name %q: use letters, digits, - and _", i+1, name)
		}
		if slices.Contains(names[:i], name) {
			return nil, fmt.Errorf("sink %d: name %q used twice", i+1, name)
		}
		names[i] = name
	}
	return names, nil
}
