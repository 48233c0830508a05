package feedback_test

import (
	"bytes"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/services/feedback"
)

// file is the part of Lookout's configuration file this package reads.
type file struct {
	Feedback feedback.Config `yaml:"feedback"`
}

// parse decodes YAML over cfg as lookout's config loader does (unknown
// keys are errors).
func parse(data []byte, cfg *file) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(cfg)
}

// TestFeedbackConfigYAML: every key of the feedback section parses.
func TestFeedbackConfigYAML(t *testing.T) {
	cfg := file{Feedback: feedback.DefaultConfig()}
	if d := cfg.Feedback; d.Horizon != 7*24*time.Hour || d.MaxPredictions != 1_000_000 || d.Wait != time.Minute ||
		d.AllowedLateness != time.Minute || d.IdleTimeout != 0 || d.MaxAckPending != -1 {
		t.Fatalf("defaults %+v", d)
	}
	err := parse([]byte(`
feedback:
  window: 30m
  window_labels: 500
  allowed_lateness: 30s
  idle_timeout: 10m
  max_ack_pending: 200
  horizon: 72h
  max_predictions: 5000
  wait: 2m
  threshold: 0.7
  positive_class: churn
  ack_wait: 1m
  max_deliveries: 3
`), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := feedback.Config{Window: 30 * time.Minute, WindowLabels: 500, AllowedLateness: 30 * time.Second,
		IdleTimeout: 10 * time.Minute, MaxAckPending: 200, Horizon: 72 * time.Hour, MaxPredictions: 5000,
		Wait: 2 * time.Minute, Threshold: 0.7, PositiveClass: "churn", AckWait: time.Minute, MaxDeliveries: 3}
	if cfg.Feedback != want {
		t.Fatalf("parsed %+v, want %+v", cfg.Feedback, want)
	}
}

// TestFeedbackConfigInvalid: settings the service cannot run with are
// errors from New.
func TestFeedbackConfigInvalid(t *testing.T) {
	env := natstest.Env(t, nil, nil)
	for _, cfg := range []feedback.Config{
		{Wait: -time.Second},   // negative wait
		{MaxPredictions: -1},   // negative bound
		{Threshold: 1.5},       // threshold outside [0, 1]
		{Window: -time.Minute}, // negative window
		{MaxDeliveries: -1},    // negative deliveries
		{AllowedLateness: -1},  // negative lateness
		{IdleTimeout: -1},      // negative idle timeout
		{MaxAckPending: -2},    // below -1
	} {
		if _, err := feedback.New(env, cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
