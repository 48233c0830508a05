package canary

import (
	"testing"

	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// TestReportCarriesRuns: a canary report names the training run of each
// side's version, as Env.Runs knows them.
func TestReportCarriesRuns(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	env := natstest.Env(t, nc, js)
	env.Runs = func(model, version string) string {
		if model != "churn" {
			return ""
		}
		return map[string]string{"v3": "mlflow://prod-run", "v4": "wandb://acme/churn/cand"}[version]
	}
	svc, err := New(env, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	natstest.RunService(t, svc)
	prod, can := pairs("churn", 200, 0, 1)
	publish(t, js, shuffled(prod, can))
	r := waitReports(t, js, "churn", 1)[0]
	if r.Production.Version != "v3" || r.Production.Run != "mlflow://prod-run" || r.Canary.Run != "wandb://acme/churn/cand" {
		t.Errorf("production %+v, canary %+v", r.Production, r.Canary)
	}
}
