package alerting

import (
	"encoding/json"
	"testing"
	"time"
)

// type_mismatch is a default rule: it fires on a feature whose share of
// values of another type is over 5%, one alert per feature, and not at 4%.
func TestTypeMismatchRule(t *testing.T) {
	var rule *Rule
	for _, r := range DefaultRules() {
		if r.Name == RuleTypeMismatch {
			r := r
			rule = &r
		}
	}
	if rule == nil || !rule.On() {
		t.Fatal("type_mismatch is not a default rule that is on")
	}
	report := func(share float64) Report {
		var out Report
		data, _ := json.Marshal(map[string]any{
			"model":  "m",
			"window": map[string]any{"start": "2026-11-24T10:00:00Z", "end": "2026-11-24T10:05:00Z"},
			"data_quality": map[string]any{"features": map[string]any{
				"age":  map[string]any{"type_mismatch_share": share},
				"plan": map[string]any{"type_mismatch_share": 0.0},
			}},
		})
		_ = json.Unmarshal(data, &out)
		return out
	}
	ev, err := NewEvaluator(DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 10, 5, 0, 0, time.UTC)
	if got := ev.Evaluate(SourceDrift, "m", "lookout.drift.m", report(0.04), now).Events; countRule(got, RuleTypeMismatch) != 0 {
		t.Fatalf("fired at 4%%: %v", got)
	}
	got := ev.Evaluate(SourceDrift, "m", "lookout.drift.m", report(0.06), now.Add(5*time.Minute)).Events
	if countRule(got, RuleTypeMismatch) != 1 {
		t.Fatalf("want one type_mismatch alert at 6%%, got %v", got)
	}
	for _, a := range got {
		if a.Rule == RuleTypeMismatch && a.Labels["feature"] != "age" {
			t.Errorf("labels %v, want feature age", a.Labels)
		}
	}
}

func countRule(alerts []Alert, rule string) int {
	n := 0
	for _, a := range alerts {
		if a.Rule == rule && a.Status == StatusFiring {
			n++
		}
	}
	return n
}
