package alerting

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// drift returns a drift report (the contract's shape) for window i.
func drift(i int, dataset bool, drifted ...string) Report {
	features := map[string]any{}
	for _, name := range []string{"age", "plan", "income"} {
		d := false
		for _, x := range drifted {
			d = d || x == name
		}
		score := 0.4
		if d {
			score = 1e-9
		}
		features[name] = map[string]any{"kind": "numerical", "method": "ks", "ks": map[string]any{"statistic": 0.21, "p_value": score},
			"score": score, "threshold": 0.05, "drifted": d}
	}
	start := t0.Add(time.Duration(i) * 5 * time.Minute)
	b, _ := json.Marshal(map[string]any{
		"model":           "churn",
		"window":          map[string]any{"start": start, "end": start.Add(5 * time.Minute), "count": 1000},
		"features":        features,
		"prediction":      map[string]any{"method": "ks", "score": 0.3, "drifted": false},
		"confidence":      map[string]any{"mean": 0.71, "reference_mean": 0.88, "dropped": dataset},
		"drift_share":     float64(len(drifted)) / 3,
		"dataset_drifted": dataset,
	})
	r, err := DecodeReport(b)
	if err != nil {
		panic(err)
	}
	return r
}

func statuses(events []Alert) string {
	var parts []string
	for _, e := range events {
		s := e.Rule + ":" + e.Status
		if f := e.Labels["feature"]; f != "" {
			s += "(" + f + ")"
		}
		parts = append(parts, s)
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func TestEvaluatorDefaultRules(t *testing.T) {
	e, err := NewEvaluator(DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		comment string
		report  Report
		want    string
	}{
		{"a calm window fires nothing", drift(0, false), ""},
		{"dataset drift fires dataset_drift, confidence_drop and one feature_drift per drifted feature",
			drift(1, true, "age", "plan"), "confidence_drop:firing dataset_drift:firing feature_drift:firing(age) feature_drift:firing(plan)"},
		{"a window that still drifts sends nothing new", drift(2, true, "age", "plan"), ""},
		{"plan recovers once: not resolved yet (resolve after 2)", drift(3, true, "age"), ""},
		{"plan recovers twice: resolved; age keeps firing", drift(4, true, "age"), "feature_drift:resolved(plan)"},
		{"plan drifts again: fires again", drift(5, true, "age", "plan"), "feature_drift:firing(plan)"},
		{"all calm once: nothing", drift(6, false), ""},
		{"all calm twice: everything resolves", drift(7, false),
			"confidence_drop:resolved dataset_drift:resolved feature_drift:resolved(age) feature_drift:resolved(plan)"},
		{"calm stays calm", drift(8, false), ""},
	}
	for _, st := range steps {
		res := e.Evaluate(SourceDrift, "churn", "lookout.drift.churn", st.report, t0)
		if got := statuses(res.Events); got != st.want {
			t.Fatalf("%s: got %q, want %q", st.comment, got, st.want)
		}
	}
	if n := len(e.states); n != 0 {
		t.Fatalf("%d states left after everything resolved", n)
	}
}

func TestEvaluatorEventFields(t *testing.T) {
	e, _ := NewEvaluator(DefaultRules())
	res := e.Evaluate(SourceDrift, "churn", "lookout.drift.churn", drift(1, true, "age"), t0)
	var fd *Alert
	for i := range res.Events {
		if res.Events[i].Rule == RuleFeatureDrift {
			fd = &res.Events[i]
		}
	}
	if fd == nil {
		t.Fatal("no feature_drift event")
	}
	if fd.Fingerprint != Fingerprint(RuleFeatureDrift, "churn", map[string]string{"feature": "age"}) {
		t.Errorf("fingerprint %s", fd.Fingerprint)
	}
	if fd.Value == nil || *fd.Value != 1e-9 || fd.Severity != SeverityWarning {
		t.Errorf("value/severity: %v %s", fd.Value, fd.Severity)
	}
	wantStart := t0.Add(10 * time.Minute)
	if !fd.StartsAt.Equal(wantStart) || fd.EndsAt != nil || fd.Source.Window == nil || !fd.Source.Window.End.Equal(wantStart) {
		t.Errorf("times: starts %v ends %v window %+v", fd.StartsAt, fd.EndsAt, fd.Source.Window)
	}
	if want := "age drifted: ks statistic 0.21, p-value 1e-09 < 0.05 in window 10:05-10:10"; fd.Summary != want {
		t.Errorf("summary %q, want %q", fd.Summary, want)
	}
	// The JSON carries the contract's field names, ends_at null.
	b, _ := json.Marshal(fd)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for _, k := range []string{"fingerprint", "status", "rule", "model", "severity", "labels", "summary", "value", "threshold", "starts_at", "ends_at", "source"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	if m["ends_at"] != nil {
		t.Errorf("ends_at %v, want null", m["ends_at"])
	}
	// Confidence drop shows the reference mean as its threshold.
	for _, a := range res.Events {
		if a.Rule == RuleConfidenceDrop && (a.Threshold == nil || *a.Threshold != 0.88 || *a.Value != 0.71) {
			t.Errorf("confidence_drop value %v threshold %v", a.Value, a.Threshold)
		}
	}
}

func TestUserRules(t *testing.T) {
	off := false
	for _, tc := range []struct {
		comment string
		rules   []Rule
		reports []Report
		model   string
		want    []string // events after each report
	}{
		{
			comment: "for: 2 fires on the second consecutive window only",
			rules:   []Rule{{Name: "high_psi", Source: SourceDrift, Field: "features.*.score", Op: "<", Threshold: 0.01, Label: "feature", For: 2}},
			reports: []Report{drift(0, false, "age"), drift(1, false), drift(2, false, "age"), drift(3, false, "age")},
			want:    []string{"", "", "", "high_psi:firing(age)"},
		},
		{
			comment: "model limits a rule: another model never fires it",
			rules:   []Rule{{Name: "ds", Source: SourceDrift, Field: "dataset_drifted", Op: "==", Threshold: true, Model: "other"}},
			reports: []Report{drift(0, true, "age")},
			want:    []string{""},
		},
		{
			comment: "a string threshold compares text; resolve: 1 resolves at once",
			rules:   []Rule{{Name: "rb", Source: SourceCanary, Field: "verdict", Op: "==", Threshold: "rollback", Resolve: 1}},
			reports: []Report{{"verdict": "rollback"}, {"verdict": "hold"}},
			want:    []string{"rb:firing", "rb:resolved"},
		},
		{
			comment: "a missing field counts as failing",
			rules:   []Rule{{Name: "share", Source: SourceDrift, Field: "drift_share", Op: ">=", Threshold: 0.3, Resolve: 1}},
			reports: []Report{drift(0, true, "age"), {"other": 1.0}},
			want:    []string{"share:firing", "share:resolved"},
		},
		{
			comment: "a default rule turned off never fires",
			rules:   MergeRules(DefaultRules(), []Rule{{Name: RuleDatasetDrift, Enabled: &off}, {Name: RuleFeatureDrift, Enabled: &off}, {Name: RuleConfidenceDrop, Enabled: &off}}),
			reports: []Report{drift(0, true, "age")},
			want:    []string{""},
		},
		{
			comment: "a user rule named like a default changes only what it sets",
			rules:   MergeRules(DefaultRules(), []Rule{{Name: RuleDatasetDrift, For: 2}, {Name: RuleFeatureDrift, Enabled: &off}, {Name: RuleConfidenceDrop, Enabled: &off}}),
			reports: []Report{drift(0, true, "age"), drift(1, true, "age")},
			want:    []string{"", "dataset_drift:firing"},
		},
	} {
		e, err := NewEvaluator(tc.rules)
		if err != nil {
			t.Fatalf("%s: %v", tc.comment, err)
		}
		for i, r := range tc.reports {
			src := SourceDrift
			if _, ok := r["verdict"]; ok {
				src = SourceCanary
			}
			res := e.Evaluate(src, "churn", "s", r, t0)
			if got := statuses(res.Events); got != tc.want[i] {
				t.Fatalf("%s: report %d: got %q, want %q", tc.comment, i, got, tc.want[i])
			}
		}
	}
}

func TestInvalidRules(t *testing.T) {
	for _, tc := range []struct {
		comment string
		rule    Rule
	}{
		{"unknown source", Rule{Name: "x", Source: "logs", Field: "a", Op: ">", Threshold: 1}},
		{"unknown op", Rule{Name: "x", Source: SourceDrift, Field: "a", Op: "=~", Threshold: 1}},
		{"string threshold with >", Rule{Name: "x", Source: SourceDrift, Field: "a", Op: ">", Threshold: "high"}},
		{"no threshold", Rule{Name: "x", Source: SourceDrift, Field: "a", Op: ">"}},
		{"two wildcards", Rule{Name: "x", Source: SourceDrift, Field: "a.*.*", Op: ">", Threshold: 1}},
		{"bad severity", Rule{Name: "x", Source: SourceDrift, Field: "a", Op: ">", Threshold: 1, Severity: "page"}},
		{"bad summary template", Rule{Name: "x", Source: SourceDrift, Field: "a", Op: ">", Threshold: 1, Summary: "{{"}},
	} {
		if _, err := NewEvaluator([]Rule{tc.rule}); err == nil {
			t.Errorf("%s: no error", tc.comment)
		}
	}
	r := Rule{Name: "x", Source: SourceDrift, Field: "a", Op: ">", Threshold: 1}
	if _, err := NewEvaluator([]Rule{r, r}); err == nil {
		t.Error("two rules with one name: no error")
	}
}

func TestRestoreKeepsFiring(t *testing.T) {
	e1, _ := NewEvaluator(DefaultRules())
	var saved []State
	res := e1.Evaluate(SourceDrift, "churn", "s", drift(0, true, "age"), t0)
	saved = append(saved, res.Changed...)
	// A new evaluator from the saved state neither re-fires nor forgets.
	e2, _ := NewEvaluator(DefaultRules())
	e2.Restore(saved)
	if got := statuses(e2.Evaluate(SourceDrift, "churn", "s", drift(1, true, "age"), t0).Events); got != "" {
		t.Fatalf("restored evaluator re-fired: %s", got)
	}
	e2.Evaluate(SourceDrift, "churn", "s", drift(2, false), t0)
	got := statuses(e2.Evaluate(SourceDrift, "churn", "s", drift(3, false), t0).Events)
	if got != "confidence_drop:resolved dataset_drift:resolved feature_drift:resolved(age)" {
		t.Fatalf("restored evaluator resolved %q", got)
	}
}

func TestActivityReports(t *testing.T) {
	a := NewActivity(time.Minute)
	for i := range 90 {
		a.Add("churn", i%10 == 0, t0.Add(time.Duration(i)*time.Second))
	}
	now := t0.Add(90 * time.Second)
	r := a.RateReports(now, 20)["churn"]
	// The window holds roughly the last 60 of the 90 inputs, 6 rejected.
	total := r["total"].(float64)
	if total < 58 || total > 64 {
		t.Fatalf("total %v", total)
	}
	if rate := r["rejection_rate"].(float64); rate < 0.08 || rate > 0.12 {
		t.Fatalf("rate %v", rate)
	}
	if _, ok := a.RateReports(now, 1000)["churn"]["rejection_rate"]; ok {
		t.Fatal("rate reported below min_count")
	}
	act := a.ActivityReports(now.Add(10 * time.Minute))["churn"]
	if s := act["silent_seconds"].(float64); s != 601 {
		t.Fatalf("silent_seconds %v", s)
	}
	e, _ := NewEvaluator(MergeRules(DefaultRules(), []Rule{{Name: RuleNoData, Threshold: 300}}))
	res := e.Evaluate(SourceActivity, "churn", "lookout.predictions.churn", act, now)
	if got := statuses(res.Events); got != "no_data:firing" {
		t.Fatalf("no_data: %q", got)
	}
	if !strings.Contains(res.Events[0].Summary, "no predictions for 10m1s") {
		t.Fatalf("summary %q", res.Events[0].Summary)
	}
}

func alert(rule, status string, labels map[string]string) Alert {
	return Alert{Fingerprint: Fingerprint(rule, "churn", labels), Status: status, Rule: rule, Model: "churn", Severity: SeverityWarning, Labels: labels}
}

func names(ns []Notification) string {
	var parts []string
	for _, n := range ns {
		var as []string
		for _, a := range n.Alerts {
			s := a.Rule + ":" + a.Status
			if len(a.Inhibited) > 0 {
				s += fmt.Sprintf("[+%d]", len(a.Inhibited))
			}
			as = append(as, s)
		}
		parts = append(parts, n.Sink+"="+strings.Join(as, ","))
	}
	return strings.Join(parts, " ")
}

func TestGroupTiming(t *testing.T) {
	timing := Timing{GroupWait: 30 * time.Second, GroupInterval: 5 * time.Minute, RepeatInterval: 4 * time.Hour}
	sinks := []SinkFilter{{Name: "all"}, {Name: "crit", Severities: []string{SeverityCritical}}}
	g := NewGroup("churn")
	age := map[string]string{"feature": "age"}
	crit := alert(RuleNoData, StatusFiring, nil)
	crit.Severity = SeverityCritical

	g.Add(alert(RuleFeatureDrift, StatusFiring, age), t0, timing)
	if g.Due(t0.Add(29*time.Second)) || !g.Due(t0.Add(30*time.Second)) {
		t.Fatal("group_wait not honoured")
	}
	// Alerts arriving during group_wait join the same notification.
	g.Add(alert(RulePredictionDrift, StatusFiring, nil), t0.Add(10*time.Second), timing)
	got := names(g.Flush(t0.Add(30*time.Second), timing, sinks, nil))
	if got != "all=feature_drift:firing,prediction_drift:firing" {
		t.Fatalf("first flush: %s", got)
	}
	// Nothing changed: the group_interval tick sends nothing.
	if got := names(g.Flush(t0.Add(330*time.Second), timing, sinks, nil)); got != "" {
		t.Fatalf("tick without change sent %s", got)
	}
	// A change waits for the next tick, not group_wait.
	g.Add(crit, t0.Add(400*time.Second), timing)
	if g.Due(t0.Add(431*time.Second)) || !g.Due(t0.Add(630*time.Second)) {
		t.Fatalf("group_interval not honoured: next %v", g.NextFlush)
	}
	got = names(g.Flush(t0.Add(630*time.Second), timing, sinks, nil))
	if got != "all=feature_drift:firing,no_data:firing,prediction_drift:firing crit=no_data:firing" {
		t.Fatalf("change flush: %s", got)
	}
	// A resolved alert goes to the sinks that were told it fired, once.
	g.Add(alert(RulePredictionDrift, StatusResolved, nil), t0.Add(700*time.Second), timing)
	got = names(g.Flush(t0.Add(930*time.Second), timing, sinks, nil))
	if got != "all=feature_drift:firing,no_data:firing,prediction_drift:resolved" {
		t.Fatalf("resolve flush: %s", got)
	}
	if got := names(g.Flush(t0.Add(1230*time.Second), timing, sinks, nil)); got != "" {
		t.Fatalf("resolved sent twice: %s", got)
	}
	// After repeat_interval a still-firing group is sent again.
	got = names(g.Flush(t0.Add(930*time.Second+4*time.Hour), timing, sinks, nil))
	if got != "all=feature_drift:firing,no_data:firing crit=no_data:firing" {
		t.Fatalf("repeat: %s", got)
	}
}

func TestGroupInhibitAndSilence(t *testing.T) {
	timing := Timing{GroupWait: time.Second, GroupInterval: time.Minute, RepeatInterval: time.Hour}
	sinks := []SinkFilter{{Name: "all"}, {Name: "features", Rules: []string{RuleFeatureDrift}}}
	g := NewGroup("churn")
	g.Add(alert(RuleDatasetDrift, StatusFiring, nil), t0, timing)
	g.Add(alert(RuleFeatureDrift, StatusFiring, map[string]string{"feature": "age"}), t0, timing)
	g.Add(alert(RuleFeatureDrift, StatusFiring, map[string]string{"feature": "plan"}), t0, timing)
	silences := []Silence{{ID: "s", Model: "churn", Labels: map[string]string{"feature": "plan"}, StartsAt: t0, EndsAt: t0.Add(time.Hour)}}
	got := names(g.Flush(t0.Add(time.Second), timing, sinks, silences))
	// feature_drift is inside dataset_drift for "all" (plan silenced); the
	// sink that takes only feature_drift has no dataset alert, so it gets
	// age on its own.
	if got != "all=dataset_drift:firing[+1] features=feature_drift:firing" {
		t.Fatalf("flush: %s", got)
	}
	// Once the silence ends, plan shows up at the next tick.
	later := t0.Add(2 * time.Hour)
	got = names(g.Flush(later, timing, sinks, silences))
	if got != "all=dataset_drift:firing[+2] features=feature_drift:firing,feature_drift:firing" {
		t.Fatalf("after silence: %s", got)
	}
}

func TestSilenceMatches(t *testing.T) {
	a := alert(RuleFeatureDrift, StatusFiring, map[string]string{"feature": "age"})
	for _, tc := range []struct {
		comment string
		s       Silence
		want    bool
	}{
		{"model only matches every alert of the model", Silence{Model: "churn"}, true},
		{"another model does not match", Silence{Model: "fraud"}, false},
		{"* matches every model", Silence{Model: "*"}, true},
		{"the rule must match", Silence{Model: "churn", Rule: RuleDatasetDrift}, false},
		{"labels must all match", Silence{Model: "churn", Labels: map[string]string{"feature": "plan"}}, false},
		{"rule and label matching", Silence{Model: "churn", Rule: RuleFeatureDrift, Labels: map[string]string{"feature": "age"}}, true},
	} {
		if got := tc.s.Matches(&a); got != tc.want {
			t.Errorf("%s: got %v", tc.comment, got)
		}
	}
	s := Silence{Model: "churn", StartsAt: t0, EndsAt: t0.Add(time.Hour)}
	if s.Active(t0.Add(-time.Second)) || !s.Active(t0) || s.Active(t0.Add(time.Hour)) {
		t.Error("Active bounds")
	}
	if (&Silence{Model: "churn", StartsAt: t0, EndsAt: t0}).Validate() == nil {
		t.Error("empty silence validated")
	}
}

// TestFeatureDriftSummaryNamesTheThreshold: when the drift report carries
// the feature's threshold, the summary says it, as the contract's example
// does.
func TestFeatureDriftSummaryNamesTheThreshold(t *testing.T) {
	ev, err := NewEvaluator(DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	report := []byte(`{"model":"churn","window":{"start":"2026-11-24T10:00:00Z","end":"2026-11-24T10:05:00Z","count":100},
		"features":{"age":{"kind":"numerical","wasserstein":1.7,"method":"wasserstein","score":0.31,"threshold":0.1,"drifted":true}},
		"drift_share":1,"dataset_drifted":false}`)
	r, err := DecodeReport(report)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	for _, a := range ev.Evaluate(SourceDrift, "churn", "lookout.drift.churn", r, time.Now()).Events {
		if a.Rule == RuleFeatureDrift {
			got = a.Summary
		}
	}
	// The contract's example: the raw distance, then the score in
	// reference standard deviations, then the threshold.
	if want := "age drifted: wasserstein 1.7 (0.31 reference std) >= 0.1 in window 10:00-10:05"; got != want {
		t.Fatalf("summary %q, want %q", got, want)
	}
}

// TestAlertsArePerModelVersion: a drift report that names its model
// version gives alerts labelled with it, and another version's drift is
// another alert (its own fingerprint).
func TestAlertsArePerModelVersion(t *testing.T) {
	ev, err := NewEvaluator(DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	firing := func(version string) Alert {
		t.Helper()
		r, err := DecodeReport([]byte(`{"model":"churn","version":"` + version + `","window":{"start":"2026-11-24T10:00:00Z","end":"2026-11-24T10:05:00Z"},
			"features":{"age":{"method":"ks","score":1e-9,"threshold":0.05,"drifted":true}},"drift_share":1,"dataset_drifted":false}`))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range ev.Evaluate(SourceDrift, "churn", "lookout.drift.churn", r, time.Now()).Events {
			if a.Rule == RuleFeatureDrift && a.Status == StatusFiring {
				return a
			}
		}
		t.Fatalf("no feature_drift firing for version %s", version)
		return Alert{}
	}
	v1, v2 := firing("v1"), firing("v2")
	if v1.Labels["version"] != "v1" || v1.Labels["feature"] != "age" || v2.Labels["version"] != "v2" {
		t.Fatalf("labels %v and %v", v1.Labels, v2.Labels)
	}
	if v1.Fingerprint == v2.Fingerprint || v1.Fingerprint != Fingerprint(RuleFeatureDrift, "churn", map[string]string{"feature": "age", "version": "v1"}) {
		t.Fatalf("fingerprints %s and %s", v1.Fingerprint, v2.Fingerprint)
	}
}
