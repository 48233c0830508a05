package canary

import (
	"bytes"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	judge "github.com/lookout-ml/lookout/pkg/canaryjudge"
)

// parse decodes YAML over the defaults as lookout's config loader does (unknown keys
// are errors).
func parse(t *testing.T, text string) (Config, error) {
	t.Helper()
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(text)))
	dec.KnownFields(true)
	err := dec.Decode(&cfg)
	return cfg, err
}

// TestGuardrailsFromYAML checks that guardrail keys set in YAML keep the
// defaults of the keys left out.
func TestGuardrailsFromYAML(t *testing.T) {
	cfg, err := parse(t, "wait: 10s\nguardrails:\n  min_agreement: 0.9\n  consecutive_windows: 3\n  weights: {agreement: 2}\n")
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Guardrails
	if g.MinAgreement != 0.9 || g.ConsecutiveWindows != 3 || g.Weights[judge.CheckAgreement] != 2 || g.MaxLatencyP95Ratio != 1.2 {
		t.Errorf("guardrails %+v", g)
	}
	if cfg.Wait != 10*time.Second || cfg.MinPairs != 500 || cfg.MaxHalves != 100000 || cfg.AllowedLateness != time.Minute || cfg.IdleTimeout != 0 {
		t.Errorf("config %+v", cfg)
	}
	// A misspelt guardrail is an error.
	if _, err := parse(t, "guardrails:\n  min_agreemnt: 0.9\n"); err == nil {
		t.Error("misspelt key accepted")
	}
}

// TestEventTimeKeysFromYAML: allowed_lateness and idle_timeout are keys of
// the canary section.
func TestEventTimeKeysFromYAML(t *testing.T) {
	cfg, err := parse(t, "allowed_lateness: 10s\nidle_timeout: 2m\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AllowedLateness != 10*time.Second || cfg.IdleTimeout != 2*time.Minute {
		t.Errorf("config %+v", cfg)
	}
}
