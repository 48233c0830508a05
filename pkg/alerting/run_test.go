package alerting

import (
	"encoding/json"
	"testing"
	"time"
)

// TestAlertCarriesRun: an alert carries the run its report names for its
// version (a canary alert the canary's and the production's), and the run
// does not change the fingerprint.
func TestAlertCarriesRun(t *testing.T) {
	e, _ := NewEvaluator(DefaultRules())
	r := drift(1, true, "age")
	r["version"], r["run"] = "v7", "wandb://team/proj/churn:v7"
	var plain, withRun *Alert
	for _, a := range e.Evaluate(SourceDrift, "churn", "lookout.drift.churn", r, t0).Events {
		if a.Rule == RuleFeatureDrift {
			withRun = &a
		}
	}
	e2, _ := NewEvaluator(DefaultRules())
	r2 := drift(1, true, "age")
	r2["version"] = "v7"
	for _, a := range e2.Evaluate(SourceDrift, "churn", "lookout.drift.churn", r2, t0).Events {
		if a.Rule == RuleFeatureDrift {
			plain = &a
		}
	}
	if withRun == nil || plain == nil {
		t.Fatal("no feature_drift alert")
	}
	if withRun.Run != "wandb://team/proj/churn:v7" || plain.Run != "" || withRun.Fingerprint != plain.Fingerprint {
		t.Errorf("run %q (without: %q), fingerprints %s %s", withRun.Run, plain.Run, withRun.Fingerprint, plain.Fingerprint)
	}

	start := t0
	b, _ := json.Marshal(map[string]any{
		"model": "churn", "window": map[string]any{"start": start, "end": start.Add(5 * time.Minute), "pairs": 1000},
		"production": map[string]any{"version": "v3", "run": "mlflow://prod"},
		"canary":     map[string]any{"version": "v4", "run": "mlflow://cand"},
		"agreement":  0.5, "verdict": "rollback", "score": 10,
	})
	cr, err := DecodeReport(b)
	if err != nil {
		t.Fatal(err)
	}
	var rb *Alert
	for _, a := range e.Evaluate(SourceCanary, "churn", "lookout.canary.churn", cr, t0).Events {
		if a.Rule == RuleCanaryRollback {
			rb = &a
		}
	}
	if rb == nil || rb.Run != "mlflow://cand" || rb.ProductionRun != "mlflow://prod" {
		t.Errorf("canary_rollback alert %+v", rb)
	}
}
