package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/service"
)

// writeConfig writes text to a configuration file in a temp folder.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lookout.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigRejectsBadValues: each case is a file with one bad value;
// loading it fails with one error that names the value's key path.
func TestConfigRejectsBadValues(t *testing.T) {
	for _, c := range []struct {
		yaml string
		want string // the start of the error
	}{
		// nats: the prefix is one token, retention positive, 1 to 5 replicas.
		{"nats: {prefix: a.b}", "config: nats.prefix: "},
		{"nats: {prefix: ''}", "config: nats.prefix: "},
		{"nats: {retention: 0s}", "config: nats.retention: must be positive, got 0s"},
		{"nats: {replicas: 0}", "config: nats.replicas: must be 1 to 5, got 0"},
		{"nats: {replicas: 7}", "config: nats.replicas: must be 1 to 5, got 7"},
		// ingest: an explicit zero is not the default.
		{"ingest: {max_message_bytes: 0}", "config: ingest.max_message_bytes: must be positive, got 0"},
		{"ingest: {max_in_flight: -1}", "config: ingest.max_in_flight: must be positive"},
		{"ingest: {ack_wait: -1s}", "config: ingest.ack_wait: must be positive"},
		// archive
		{"archive: {window: -5s}", "config: archive.window: must be positive, got -5s"},
		{"archive: {max_rows: 0}", "config: archive.max_rows: must be positive, got 0"},
		{"archive: {max_pending: 0}", "config: archive.max_pending: must be positive"},
		// drift
		{"drift: {window: -5s}", "config: drift.window: must be positive, got -5s"},
		{"drift: {window: 0s}", "config: drift.window: must be positive, got 0s"},
		{"drift: {window_events: 0}", "config: drift.window_events: must be positive"},
		{"drift: {reference: latest}", `config: drift.reference: "latest" is not first-window, rolling or pinned`},
		{"drift: {rolling_windows: 0}", "config: drift.rolling_windows: must be positive"},
		{"drift: {reference_min_events: -1}", "config: drift.reference_min_events: must not be negative"},
		{"drift: {sample_cap: 0}", "config: drift.sample_cap: must be positive"},
		{"drift: {roles: []}", "config: drift.roles: must name at least one role"},
		{"drift: {roles: [production, prod]}", `config: drift.roles[1]: "prod" is not`},
		{"drift: {max_ack_pending: 0}", "config: drift.max_ack_pending: must be positive, or -1"},
		{"drift: {idle_timeout: -1s}", "config: drift.idle_timeout: must not be negative"},
		{"drift: {rules: {p_value: 1.5}}", "config: drift.rules.p_value: must be in (0, 1), got 1.5"},
		{"drift: {rules: {p_value: -0.05}}", "config: drift.rules.p_value: must be in (0, 1)"},
		{"drift: {rules: {drift_share: 2}}", "config: drift.rules.drift_share: must be in (0, 1]"},
		{"drift: {rules: {wasserstein: -1}}", "config: drift.rules.wasserstein: must be a positive number"},
		{"drift: {rules: {features: {age: {method: ks, threshold: 5}}}}", "config: drift.rules.features.age.threshold: must be in (0, 1)"},
		{"drift: {rules: {features: {age: {method: t_test}}}}", `config: drift.rules.features.age.method: "t_test" is not`},
		{"drift: {rules: {prediction: {method: psi, threshold: -1}}}", "config: drift.rules.prediction.threshold: must be a positive number"},
		{"drift: {confidence: {low: 1}}", "config: drift.confidence.low: must be in (0, 1)"},
		// canary
		{"canary: {wait: 0s}", "config: canary.wait: must be positive"},
		{"canary: {window_pairs: 0}", "config: canary.window_pairs: must be positive"},
		{"canary: {window: -1m}", "config: canary.window: must be positive"},
		{"canary: {min_pairs: -1}", "config: canary.min_pairs: must not be negative"},
		{"canary: {max_halves: 0}", "config: canary.max_halves: must be positive"},
		{"canary: {checkpoint: 0s}", "config: canary.checkpoint: must be positive"},
		{"canary: {guardrails: {min_agreement: 1.5}}", "config: canary.guardrails.min_agreement: must be in [0, 1]"},
		{"canary: {guardrails: {min_score_ks_p_value: 1}}", "config: canary.guardrails.min_score_ks_p_value: must be in (0, 1)"},
		{"canary: {guardrails: {consecutive_windows: 0}}", "config: canary.guardrails.consecutive_windows: must be positive"},
		{"canary: {guardrails: {weights: {agreemnt: 2}}}", "config: canary.guardrails.weights.agreemnt: no such check"},
		// alert
		{"alert: {group_wait: -1s}", "config: alert.group_wait: must not be negative"},
		{"alert: {group_interval: 0s}", "config: alert.group_interval: must be positive"},
		{"alert: {repeat_interval: -1h}", "config: alert.repeat_interval: must be positive"},
		{"alert: {evaluation_interval: 0s}", "config: alert.evaluation_interval: must be positive"},
		{"alert: {no_data: 0s}", "config: alert.no_data: must be positive"},
		{"alert: {rejection_rate: {threshold: 1.2}}", "config: alert.rejection_rate.threshold: must be in (0, 1), got 1.2"},
		{"alert: {rejection_rate: {window: 0s}}", "config: alert.rejection_rate.window: must be positive"},
		{"alert: {rejection_rate: {min_count: 0}}", "config: alert.rejection_rate.min_count: must be positive"},
		{"alert: {retry: {initial: 0s}}", "config: alert.retry.initial: must be positive"},
		{"alert: {retry: {initial: 1m, max: 1s}}", "config: alert.retry.max: must be at least retry.initial"},
		{"alert: {retry: {give_up_after: -1s}}", "config: alert.retry.give_up_after: must be positive"},
		{"alert: {rules: [{name: x, source: drift, field: a, op: '=~', threshold: 1}]}", `config: alert.rules[0]: invalid rule "x": op "=~"`},
		{"alert: {rules: [{source: drift}]}", "config: alert.rules[0].name: is required"},
		{"alert: {sinks: [{type: pager, url: 'http://x'}]}", `config: alert.sinks[0].type: "pager" is not webhook, slack or email`},
		{"alert: {sinks: [{type: webhook}]}", "config: alert.sinks[0].url: is required"},
		{"alert: {sinks: [{type: webhook, url: 'http://h/a'}, {type: webhook, url: ':/no'}]}", "config: alert.sinks[1].url: does not parse"},
		{"alert: {sinks: [{type: slack, url: 'ftp://hooks.slack.com/x'}]}", `config: alert.sinks[0].url: scheme "ftp": want http or https`},
		{"alert: {sinks: [{type: webhook, url: '/hook'}]}", `config: alert.sinks[0].url: scheme "": want http or https`},
		{"alert: {sinks: [{type: email, from: a@x, to: [b@x]}]}", "config: alert.sinks[0].smtp: is required"},
		{"alert: {sinks: [{type: email, smtp: 'mail', from: a@x, to: [b@x]}]}", `config: alert.sinks[0].smtp: "mail" is not host:port`},
		{"alert: {sinks: [{type: email, smtp: 'mail:25', to: [b@x]}]}", "config: alert.sinks[0].from: is required"},
		{"alert: {sinks: [{type: email, smtp: 'mail:25', from: a@x}]}", "config: alert.sinks[0].to: is required"},
		{"alert: {sinks: [{type: email, smtp: 'mail:25', from: a@x, to: [b@x], starttls: maybe}]}", `config: alert.sinks[0].starttls: "maybe" is not`},
		{"alert: {sinks: [{type: webhook, url: 'http://h', rules: [dataset_drif]}]}", `config: alert.sinks[0].rules[0]: no rule named "dataset_drif"`},
		{"alert: {sinks: [{type: webhook, url: 'http://h', severities: [high]}]}", `config: alert.sinks[0].severities[0]: "high" is not`},
		{"alert: {sinks: [{name: a, type: webhook, url: 'http://h'}, {name: a, type: slack, url: 'http://h'}]}", `config: alert.sinks: sink 2: name "a" used twice`},
		// feedback
		{"feedback: {window: 0s}", "config: feedback.window: must be positive"},
		{"feedback: {window_labels: 0}", "config: feedback.window_labels: must be positive"},
		{"feedback: {horizon: -1h}", "config: feedback.horizon: must be positive"},
		{"feedback: {max_predictions: 0}", "config: feedback.max_predictions: must be positive"},
		{"feedback: {wait: 0s}", "config: feedback.wait: must be positive"},
		{"feedback: {threshold: 1.5}", "config: feedback.threshold: must be in (0, 1), got 1.5"},
		{"feedback: {ack_wait: 0s}", "config: feedback.ack_wait: must be positive"},
	} {
		_, err := loadConfig(writeConfig(t, c.yaml))
		if err == nil {
			t.Errorf("%s: accepted", c.yaml)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("%s:\n got %q\nwant one error starting %q", c.yaml, msg, c.want)
		}
	}
}

// TestConfigReportsEveryProblem: all bad values are reported at once, one
// line each.
func TestConfigReportsEveryProblem(t *testing.T) {
	_, err := loadConfig(writeConfig(t, "drift: {window: -5s}\nnats: {replicas: 0}\nalert: {sinks: [{type: email}]}\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"config: nats.replicas:", "config: drift.window:", "config: alert.sinks[0].smtp:", "config: alert.sinks[0].from:", "config: alert.sinks[0].to:"}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want %q...", i+1, lines[i], w)
		}
	}
}

// TestConfigSinkURLNotInError: a bad sink URL is reported without its
// text, which may hold a token.
func TestConfigSinkURLNotInError(t *testing.T) {
	_, err := loadConfig(writeConfig(t, "alert: {sinks: [{type: slack, url: 'ftp://hooks.slack.com/services/T0/B0/secret-token'}]}"))
	if err == nil || strings.Contains(err.Error(), "secret-token") {
		t.Fatalf("err %v", err)
	}
}

// TestConfigDefaultsAndExampleValidate: no file (the defaults), the
// example deploy/lookout.yaml and a file of good values all load.
func TestConfigDefaultsAndExampleValidate(t *testing.T) {
	if _, err := loadConfig(""); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if _, err := loadConfig("../../deploy/lookout.yaml"); err != nil {
		t.Fatalf("deploy/lookout.yaml: %v", err)
	}
	// Zero where zero means "off" or "derived" stays allowed.
	good := `
nats: {prefix: acme-lookout, retention: 24h, replicas: 3}
archive: {window: 1m}
drift: {window: 1m, ack_wait: 2m, max_ack_pending: -1, reference: rolling, reference_min_events: 0,
        rules: {p_value: 0.01, drift_share: 1, features: {age: {method: ks, threshold: 0.001}, city: {method: psi, threshold: 0.25}}}}
canary: {min_pairs: 0, guardrails: {min_agreement: 0, max_latency_p95_ratio: 0, min_score_correlation: -0.5, weights: {agreement: 2}}}
alert:
  group_wait: 0s
  rules: [{name: feature_drift, enabled: false}, {name: high_psi, source: drift, field: features.*.psi, op: ">=", threshold: 0.25}]
  sinks:
    - {type: webhook, url: "http://127.0.0.1:9999/hook", rules: [high_psi, dataset_drift], severities: [critical]}
    - {type: slack, url: "https://hooks.slack.com/x"}
    - {type: email, smtp: "127.0.0.1:2525", from: "a@x", to: ["b@x"], starttls: never}
feedback: {threshold: 0.7}
`
	cfg, err := loadConfig(writeConfig(t, good))
	if err != nil {
		t.Fatalf("good config: %v", err)
	}
	if cfg.NATS.Replicas != 3 || cfg.Drift().Window != time.Minute || cfg.Drift().WindowEvents != 10000 {
		t.Errorf("parsed %+v", cfg)
	}
}

// TestConfigUnknownKey: a key Lookout does not know is an error naming it
// and its line, so a typo never falls back to a default.
func TestConfigUnknownKey(t *testing.T) {
	_, err := loadConfig(writeConfig(t, "drift:\n  window: 5m\n  windw_events: 10\n"))
	if err == nil || !strings.Contains(err.Error(), "windw_events") || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err %v, want one naming windw_events on line 3", err)
	}
}

// TestConfigErrorBeforeConnecting: `lookout run` with a bad configuration
// and an unreachable server fails at once with the configuration error,
// not a connection error.
func TestConfigErrorBeforeConnecting(t *testing.T) {
	bad := writeConfig(t, "drift:\n  window: -5s\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(ctx, []string{"run", "--config", bad, "--nats", "nats://127.0.0.1:1", "--data", t.TempDir(), "--http", "127.0.0.1:0"}, &stdout, &stderr)
	took := time.Since(start)
	if code == 0 {
		t.Fatalf("exit 0; stderr %s", stderr.String())
	}
	msg := stderr.String()
	if !strings.Contains(msg, "config: drift.window: must be positive, got -5s") || strings.Contains(msg, "connect") {
		t.Errorf("stderr %q, want the config error and no connection error", msg)
	}
	if took > 2*time.Second {
		t.Errorf("took %v", took)
	}
}

// echoConfig is the configuration of a component that exists only in the
// test below.
type echoConfig struct {
	Greeting string        `yaml:"greeting"`
	Every    time.Duration `yaml:"every"`
}

func (c echoConfig) Validate() error {
	if c.Every <= 0 {
		return fmt.Errorf("every: must be positive, got %v", c.Every)
	}
	return nil
}

// registerComponent adds c to the components for the rest of the test.
func registerComponent(t *testing.T, c *service.Component) {
	t.Helper()
	old := components
	components = append(slices.Clip(components), c)
	t.Cleanup(func() { components = old })
}

// TestComponentRegisteredInTest: a component declared in this test, and
// added to the list without touching config.go, gets its own section with
// defaults, validation under its key path and unknown keys named with
// their line, and `lookout run --only` starts it by name, and a singleton
// one under its lease, and nothing else.
func TestComponentRegisteredInTest(t *testing.T) {
	started := make(chan echoConfig, 2)
	echoService := func(_ service.Env, cfg echoConfig) (service.Func, error) {
		return func(ctx context.Context) error {
			started <- cfg
			<-ctx.Done()
			return nil
		}, nil
	}
	defaults := func() echoConfig { return echoConfig{Greeting: "hello", Every: time.Second} }
	echo := service.NewComponent("echo", defaults, echoService)
	lead := service.NewComponent("echo-lead", defaults, echoService, service.AsSingleton(), service.InSection("lead"))
	registerComponent(t, echo)
	registerComponent(t, lead)

	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if got := sectionOf[echoConfig](cfg, echo); got != defaults() {
		t.Errorf("defaults: %+v", got)
	}
	cfg, err = loadConfig(writeConfig(t, "echo: {greeting: hi}\nlead: {every: 2s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := sectionOf[echoConfig](cfg, echo); got != (echoConfig{Greeting: "hi", Every: time.Second}) {
		t.Errorf("echo: %+v", got)
	}
	if got := sectionOf[echoConfig](cfg, lead); got != (echoConfig{Greeting: "hello", Every: 2 * time.Second}) {
		t.Errorf("lead: %+v", got)
	}
	_, err = loadConfig(writeConfig(t, "echo: {every: -1s}\ndrift: {window: -5s}\nlead: {every: 0s}\n"))
	want := "config: drift.window: must be positive, got -5s\nconfig: echo.every: must be positive, got -1s\nconfig: lead.every: must be positive, got 0s"
	if err == nil || err.Error() != want {
		t.Errorf("bad values: %v\nwant %s", err, want)
	}
	_, err = loadConfig(writeConfig(t, "echo:\n  greting: hi\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2: field greting not found in type main.echoConfig") {
		t.Errorf("unknown key: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	path := writeConfig(t, "echo: {greeting: hi}\n")
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"run", "--only", "echo,echo-lead", "--config", path,
			"--listen", "127.0.0.1:-1", "--http", "127.0.0.1:0", "--data", t.TempDir()}, stdout, stderr)
	}()
	for range 2 {
		select {
		case got := <-started:
			if got.Greeting != "hi" && got.Greeting != "hello" {
				t.Errorf("started with %+v", got)
			}
		case code := <-done:
			t.Fatalf("run exited %d: %s", code, stderr)
		case <-time.After(30 * time.Second):
			t.Fatalf("not started after 30s: %s", stderr)
		}
	}
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if m := httpLine.FindStringSubmatch(stdout.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no http address in %q", stdout)
		}
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Status   string          `json:"status"`
		Services map[string]bool `json:"services"`
	}
	err = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if health.Status != "ok" || !maps.Equal(health.Services, map[string]bool{"echo": true, "echo-lead": true}) {
		t.Errorf("healthz %+v, want echo and echo-lead only", health)
	}
	if !strings.Contains(stderr.String(), `"msg":"leading","lease":"echo-lead"`) {
		t.Errorf("echo-lead did not run under its lease:\n%s", stderr)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, stderr)
	}

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"run", "--only", "echo,nope"}, &out, &errOut); code == 0 ||
		!strings.Contains(errOut.String(), `unknown service "nope" in --only (known: ingest, archive, drift, canary, alert, feedback, echo, echo-lead)`) {
		t.Errorf("--only nope: exit %d, %q", code, errOut.String())
	}
}

// TestComponentsDeclared: names and sections are unique and not `nats`,
// and the services that keep per-model state run under a lease.
func TestComponentsDeclared(t *testing.T) {
	seen := map[string]bool{natsSection: true}
	for _, c := range components {
		for _, key := range []string{"name " + c.Name(), "section " + c.Section()} {
			if seen[key] {
				t.Errorf("%s used twice", key)
			}
			seen[key] = true
		}
		if c.Section() == natsSection {
			t.Errorf("%s reads the nats section", c.Name())
		}
		wantSingleton := slices.Contains([]string{"drift", "canary", "alert", "feedback"}, c.Name())
		if c.IsSingleton() != wantSingleton {
			t.Errorf("%s: singleton %v, want %v", c.Name(), c.IsSingleton(), wantSingleton)
		}
	}
}
