package alert_test

import (
	"bytes"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/services/alert"
)

// file is the part of Lookout's configuration file this package reads.
type file struct {
	Alert alert.Config `yaml:"alert"`
}

// parse decodes YAML over cfg as lookout's config loader does (unknown
// keys are errors).
func parse(data []byte, cfg *file) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(cfg)
}

func TestConfigYAML(t *testing.T) {
	cfg := file{Alert: alert.DefaultConfig()}
	err := parse([]byte(`
alert:
  group_wait: 10s
  no_data: 15m
  rejection_rate: {threshold: 0.1, window: 10m, min_count: 50}
  retry: {initial: 2s, max: 1m, give_up_after: 12h}
  rules:
    - {name: feature_drift, enabled: false}
    - {name: high_psi, source: drift, field: features.*.psi, label: feature, op: ">=", threshold: 0.25, model: churn, severity: critical, for: 2, resolve: 3}
  sinks:
    - {type: webhook, url: "http://127.0.0.1:9999/hook", secret: "", rules: [dataset_drift], severities: [critical]}
    - {type: webhook, url: "http://127.0.0.1:9998/hook", secret: "new", previous_secret: "old"}
    - {type: slack, url: "https://hooks.slack.com/x"}
    - {type: email, smtp: "127.0.0.1:2525", from: "a@x", to: ["b@x"], username: u, password: p, starttls: always}
`), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Alert
	if a.GroupWait != 10*time.Second || a.GroupInterval != 5*time.Minute || a.NoData != 15*time.Minute ||
		a.RejectionRate.MinCount != 50 || a.Retry.GiveUpAfter != 12*time.Hour || len(a.Sinks) != 4 || a.Sinks[3].StartTLS != "always" ||
		a.Sinks[1].Secret != "new" || a.Sinks[1].PreviousSecret != "old" {
		t.Fatalf("parsed %+v", a)
	}
	rules := map[string]alerting.Rule{}
	for _, r := range a.EffectiveRules() {
		rules[r.Name] = r
	}
	if rules[alerting.RuleFeatureDrift].On() || !rules[alerting.RuleDatasetDrift].On() {
		t.Error("feature_drift should be off, dataset_drift on")
	}
	if rules[alerting.RuleNoData].Threshold != 900.0 || rules[alerting.RuleRejectionRate].Threshold != 0.1 {
		t.Errorf("no_data %v, rejection_rate %v", rules[alerting.RuleNoData].Threshold, rules[alerting.RuleRejectionRate].Threshold)
	}
	if _, err := alerting.NewEvaluator(a.EffectiveRules()); err != nil {
		t.Fatal(err)
	}
	// A typo is an error, not a silent default.
	if err := parse([]byte("alert:\n  sinks:\n    - {type: webhook, urll: x}\n"), &cfg); err == nil {
		t.Error("unknown sink key accepted")
	}
}
