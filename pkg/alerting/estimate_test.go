package alerting

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// estimated returns a drift report of window i carrying the contract's
// estimated_performance with the reference at 0.95 and the window drop
// below it.
func estimated(t *testing.T, i int, drop float64) Report {
	t.Helper()
	start := t0.Add(time.Duration(i) * 5 * time.Minute)
	return mustReport(t, fmt.Sprintf(`{"model": "churn", "version": "v3",
		"window": {"start": %q, "end": %q, "count": 1000}, "features": {},
		"estimated_performance": {"accuracy": %v, "reference_accuracy": 0.95, "method": "cbpe", "calibrated": false},
		"drift_share": 0, "dataset_drifted": false}`,
		start.Format(time.RFC3339), start.Add(5*time.Minute).Format(time.RFC3339), 0.95-drop))
}

// TestEstimatedAccuracyDrop: the default rule estimated_accuracy_drop is
// on, fires on a drift report whose CBPE estimate is 0.06 below the
// reference's (value 0.06, threshold 0.05, a summary naming both
// accuracies), not on a 0.04 drop, and not on a report without an
// estimate; it resolves after two windows back within 0.05.
func TestEstimatedAccuracyDrop(t *testing.T) {
	rules := DefaultRules()
	var found bool
	for _, r := range rules {
		found = found || (r.Name == RuleEstimatedAccuracyDrop && r.On())
	}
	if !found {
		t.Fatal("estimated_accuracy_drop is not a default rule that is on")
	}
	e, err := NewEvaluator(rules)
	if err != nil {
		t.Fatal(err)
	}
	eval := func(r Report) []Alert {
		var out []Alert
		for _, a := range e.Evaluate(SourceDrift, "churn", "lookout.drift.churn", r, time.Now()).Events {
			if a.Rule == RuleEstimatedAccuracyDrop {
				out = append(out, a)
			}
		}
		return out
	}
	if got := eval(estimated(t, 0, 0.04)); len(got) != 0 {
		t.Fatalf("a 0.04 drop: %v, want nothing", got)
	}
	if got := eval(drift(1, false)); len(got) != 0 {
		t.Fatalf("no estimated_performance: %v, want nothing", got)
	}
	got := eval(estimated(t, 2, 0.06))
	if len(got) != 1 || got[0].Status != StatusFiring {
		t.Fatalf("a 0.06 drop: %v, want one firing alert", got)
	}
	a := got[0]
	if a.Value == nil || math.Abs(*a.Value-0.06) > 1e-9 || a.Threshold == nil || *a.Threshold != 0.05 {
		t.Errorf("value %v, threshold %v; want 0.06, 0.05", a.Value, a.Threshold)
	}
	if a.Labels["version"] != "v3" || a.Severity != SeverityWarning {
		t.Errorf("labels %v, severity %s", a.Labels, a.Severity)
	}
	for _, want := range []string{"estimated accuracy (cbpe) 0.89", "0.06 below", "reference's 0.95", "0.05", "10:10-10:15"} {
		if !strings.Contains(a.Summary, want) {
			t.Errorf("summary %q lacks %q", a.Summary, want)
		}
	}
	if got := eval(estimated(t, 3, 0.04)); len(got) != 0 {
		t.Fatalf("one window back within 0.05: %v, want nothing yet", got)
	}
	if got := eval(estimated(t, 4, 0.04)); len(got) != 1 || got[0].Status != StatusResolved {
		t.Fatalf("two windows back within 0.05: %v, want resolved", got)
	}
}

// TestRuleMinus: a user rule compares a difference per wildcard key; a
// missing or non-numeric subtrahend never holds; minus takes a numeric
// threshold and no "*" unless field has one; a user rule may turn the
// default off.
func TestRuleMinus(t *testing.T) {
	e, err := NewEvaluator([]Rule{{Name: "gap", Source: SourceDrift, Field: "features.*.a", Minus: "features.*.b",
		Op: ">=", Threshold: 1, Label: "feature"}})
	if err != nil {
		t.Fatal(err)
	}
	r := mustReport(t, `{"model": "churn", "window": {"start": "2026-11-24T10:00:00Z", "end": "2026-11-24T10:05:00Z"},
		"features": {"x": {"a": 3, "b": 1}, "y": {"a": 3, "b": 2.5}, "z": {"a": 3}, "w": {"a": 3, "b": "n/a"}}}`)
	res := e.Evaluate(SourceDrift, "churn", "lookout.drift.churn", r, time.Now())
	if len(res.Events) != 1 || res.Events[0].Labels["feature"] != "x" || *res.Events[0].Value != 2 {
		t.Fatalf("events %+v, want one for x with value 2", res.Events)
	}
	for _, bad := range []Rule{
		{Name: "s", Source: SourceDrift, Field: "a", Minus: "b", Op: "==", Threshold: "high"},
		{Name: "w", Source: SourceDrift, Field: "a", Minus: "b.*", Op: ">", Threshold: 1},
	} {
		if _, err := NewEvaluator([]Rule{bad}); err == nil {
			t.Errorf("rule %+v: no error", bad)
		}
	}
	off := false
	merged := MergeRules(DefaultRules(), []Rule{{Name: RuleEstimatedAccuracyDrop, Enabled: &off}})
	e, err = NewEvaluator(merged)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range e.Rules(SourceDrift) {
		if name == RuleEstimatedAccuracyDrop {
			t.Error("estimated_accuracy_drop still on after enabled: false")
		}
	}
}
