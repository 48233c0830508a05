package driftreport_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/driftreport"
)

// correlated returns n rows of features x and y, both standard normal,
// with correlation corr, plus an independent z.
func correlated(seed uint64, n int, corr float64) *driftreport.Dataset {
	rng := rand.New(rand.NewPCG(seed, 7))
	d := driftreport.NewDataset(driftreport.SampleOptions{})
	for range n {
		a, b := rng.NormFloat64(), rng.NormFloat64()
		if err := d.Add(driftreport.Row{Features: map[string]any{
			"x": a, "y": corr*a + math.Sqrt(1-corr*corr)*b, "z": rng.NormFloat64(),
		}}); err != nil {
			panic(err)
		}
	}
	return d
}

// fired returns the rules the default rules fire on a report.
func fired(t *testing.T, r driftreport.Report) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, a := range firedAlerts(t, r) {
		out[a.Rule] = true
	}
	return out
}

// firedAlerts returns the alerts the default rules fire on a report.
func firedAlerts(t *testing.T, r driftreport.Report) []alerting.Alert {
	t.Helper()
	r.Model = "churn"
	r.Window.Start = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	r.Window.End = r.Window.Start.Add(5 * time.Minute)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := alerting.DecodeReport(b)
	if err != nil {
		t.Fatal(err)
	}
	e, err := alerting.NewEvaluator(alerting.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	var out []alerting.Alert
	for _, a := range e.Evaluate(alerting.SourceDrift, "churn", "lookout.drift.churn", rep, time.Now()).Events {
		if a.Status == alerting.StatusFiring {
			out = append(out, a)
		}
	}
	return out
}

// TestCorrelationFlip: x and y keep their marginals (standard normal)
// while their correlation flips from +0.8 to -0.8. multivariate_drift
// fires; no univariate rule does, neither with the reference-chunk
// thresholds (reference of 10 windows) nor with the Evidently rule. A
// stable window fires nothing.
func TestCorrelationFlip(t *testing.T) {
	ref := correlated(1, 20000, 0.8)
	for _, rule := range []string{driftreport.ThresholdAuto, driftreport.ThresholdEvidently} {
		flip := driftreport.Compare(ref, correlated(2, 2000, -0.8), driftreport.Options{Threshold: rule})
		stable := driftreport.Compare(ref, correlated(3, 2000, 0.8), driftreport.Options{Threshold: rule})
		for name, fd := range flip.Features {
			if fd.Drifted {
				t.Errorf("%s: %s drifted on a correlation flip (score %g, threshold %g)", rule, name, fd.Score, fd.Threshold)
			}
		}
		m := flip.Multivariate
		if m == nil || !m.Drifted || m.Error <= m.Threshold {
			t.Fatalf("%s: flip multivariate %+v, want drifted", rule, m)
		}
		if s := stable.Multivariate; s == nil || s.Drifted {
			t.Fatalf("%s: stable multivariate %+v, want not drifted", rule, s)
		}
		got := fired(t, flip)
		if !got[alerting.RuleMultivariateDrift] || len(got) != 1 {
			t.Errorf("%s: flip fired %v, want multivariate_drift alone", rule, got)
		}
		if got := fired(t, stable); len(got) != 0 {
			t.Errorf("%s: stable fired %v", rule, got)
		}
	}
}

// TestMultivariateStable: 20 stable windows of 2,000 rows against a
// reference of 20,000 (10 features, some correlated, one categorical): no
// multivariate alarm.
func TestMultivariateStable(t *testing.T) {
	make := func(seed uint64, n int) *driftreport.Dataset {
		rng := rand.New(rand.NewPCG(seed, 9))
		d := driftreport.NewDataset(driftreport.SampleOptions{Seed: seed})
		for range n {
			f := map[string]any{}
			base := rng.NormFloat64()
			for i := range 9 {
				f[string(rune('a'+i))] = 0.6*base + 0.8*rng.NormFloat64() + float64(i%3)*rng.ExpFloat64()
			}
			f["plan"] = []string{"basic", "pro", "team"}[rng.IntN(3)]
			if err := d.Add(driftreport.Row{Features: f}); err != nil {
				panic(err)
			}
		}
		return d
	}
	ref := make(1, 20000)
	alarms := 0
	for w := range 20 {
		r := driftreport.Compare(ref, make(uint64(100+w), 2000), driftreport.Options{})
		if r.Multivariate == nil {
			t.Fatal("no multivariate")
		}
		if r.Multivariate.Drifted {
			alarms++
			t.Logf("window %d: %+v", w, r.Multivariate)
		}
	}
	if alarms > 0 {
		t.Errorf("%d multivariate alarms in 20 stable windows", alarms)
	}
}
