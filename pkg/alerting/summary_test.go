package alerting

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/driftreport"
)

// mustReport decodes a JSON report or fails the test.
func mustReport(t *testing.T, s string) Report {
	t.Helper()
	r, err := DecodeReport([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// firingOf evaluates r with the default rules and returns the first
// firing event of rule, failing when there is none.
func firingOf(t *testing.T, e *Evaluator, source, rule string, r Report) Alert {
	t.Helper()
	for _, a := range e.Evaluate(source, "churn", "lookout."+source+".churn", r, time.Now()).Events {
		if a.Rule == rule && a.Status == StatusFiring {
			return a
		}
	}
	t.Fatalf("no %s firing", rule)
	return Alert{}
}

// TestDriftSummaryNamesStatistic: every method is told as the statistic it
// compared, its raw value, the comparison and the threshold; a note (mixed
// types) is carried; the alert's value is the score the threshold applies
// to.
func TestDriftSummaryNamesStatistic(t *testing.T) {
	window := `"window":{"start":"2026-11-24T10:00:00Z","end":"2026-11-24T10:05:00Z","count":100}`
	tests := []struct {
		name, feature, want string
		value               float64
	}{
		{"wasserstein", `{"kind":"numerical","wasserstein":0.831,"method":"wasserstein","score":0.62,"threshold":0.1,"drifted":true}`,
			"px56 drifted: wasserstein 0.831 (0.62 reference std) >= 0.1 in window 10:00-10:05", 0.62},
		{"ks", `{"kind":"numerical","ks":{"statistic":0.21,"p_value":1e-9},"method":"ks","score":1e-9,"threshold":0.05,"drifted":true}`,
			"px56 drifted: ks statistic 0.21, p-value 1e-09 < 0.05 in window 10:00-10:05", 1e-9},
		{"chi2", `{"kind":"categorical","chi2":{"statistic":88.1,"p_value":1e-12,"dof":2},"method":"chi2","score":1e-12,"threshold":0.05,"drifted":true,
			"note":"numerical on one side and categorical on the other: compared as categories"}`,
			"px56 drifted: chi2 statistic 88.1, p-value 1e-12 < 0.05 (numerical on one side and categorical on the other: compared as categories) in window 10:00-10:05", 1e-12},
		{"psi", `{"kind":"numerical","psi":0.31,"method":"psi","score":0.31,"threshold":0.1,"drifted":true}`,
			"px56 drifted: psi 0.31 >= 0.1 in window 10:00-10:05", 0.31},
		{"jensen_shannon", `{"kind":"categorical","jensen_shannon":0.2,"method":"jensen_shannon","score":0.2,"threshold":0.1,"drifted":true}`,
			"px56 drifted: jensen_shannon 0.2 >= 0.1 in window 10:00-10:05", 0.2},
		// A constant reference is a data-quality case: the raw distance,
		// said not to be normalised, with the share of values off it.
		{"constant reference", `{"kind":"numerical","wasserstein":0.8,"method":"wasserstein","score":0.8,"threshold":0.1,"drifted":true,
			"note":"` + NoteConstantReference + `"}`,
			"px56 drifted: wasserstein 0.8 (reference constant: not normalised, 80% of values off it) >= 0.1 in window 10:00-10:05", 0.8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEvaluator(DefaultRules())
			if err != nil {
				t.Fatal(err)
			}
			r := mustReport(t, `{"model":"churn",`+window+`,"features":{"px56":`+tt.feature+`},
				"data_quality":{"features":{"px56":{"null_share":0,"out_of_range":80,"out_of_range_share":0.8}}},
				"drift_share":1,"dataset_drifted":false}`)
			a := firingOf(t, e, SourceDrift, RuleFeatureDrift, r)
			if a.Summary != tt.want {
				t.Errorf("summary\n %q, want\n %q", a.Summary, tt.want)
			}
			if a.Value == nil || *a.Value != tt.value {
				t.Errorf("value %v, want %g", a.Value, tt.value)
			}
		})
	}
	// The prediction is told the same way.
	e, _ := NewEvaluator(DefaultRules())
	r := mustReport(t, `{"model":"churn",`+window+`,"features":{},"drift_share":0,"dataset_drifted":false,
		"prediction":{"kind":"numerical","wasserstein":2.5,"method":"wasserstein","score":0.5,"threshold":0.1,"drifted":true}}`)
	if a := firingOf(t, e, SourceDrift, RulePredictionDrift, r); a.Summary != "prediction drifted: wasserstein 2.5 (0.5 reference std) >= 0.1 in window 10:00-10:05" {
		t.Errorf("prediction summary %q", a.Summary)
	}
}

// TestConstantReferenceFromDriftReport runs a real drift report with a
// feature constant in the reference through the rules: the summary says
// the reference is constant and shows the raw distance, where the old
// floor of 0.001 made a distance of 0.8 read as 800.
func TestConstantReferenceFromDriftReport(t *testing.T) {
	if NoteConstantReference != driftreport.NoteConstantReference {
		t.Fatalf("alerting reads note %q, driftreport writes %q", NoteConstantReference, driftreport.NoteConstantReference)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ref, cur := driftreport.NewDataset(driftreport.SampleOptions{}), driftreport.NewDataset(driftreport.SampleOptions{})
	for i := 0; i < 2000; i++ {
		if err := ref.Add(driftreport.Row{Features: map[string]any{"px": 7.0}}); err != nil {
			t.Fatal(err)
		}
		// Half the window stays at 7, half moves to 8.
		v := 7.0
		if rng.IntN(2) == 0 {
			v = 8
		}
		if err := cur.Add(driftreport.Row{Features: map[string]any{"px": v}}); err != nil {
			t.Fatal(err)
		}
	}
	rep := driftreport.Compare(ref, cur, driftreport.Options{})
	rep.Model = "churn"
	rep.Window = driftreport.Window{Start: t0, End: t0.Add(5 * time.Minute), Count: 2000}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	fd := rep.Features["px"]
	if fd.Score > 1 || fd.Wasserstein == nil || fd.Score != *fd.Wasserstein {
		t.Fatalf("constant reference scored %g (wasserstein %v)", fd.Score, fd.Wasserstein)
	}
	e, _ := NewEvaluator(DefaultRules())
	a := firingOf(t, e, SourceDrift, RuleFeatureDrift, mustReport(t, string(b)))
	share := rep.DataQuality.Features["px"].OutOfRangeShare
	want := "px drifted: wasserstein " + formatNumber(fd.Wasserstein) + " (reference constant: not normalised, " +
		formatPercent(share) + " of values off it) >= 0.1 in window 10:00-10:05"
	if a.Summary != want {
		t.Errorf("summary\n %q, want\n %q", a.Summary, want)
	}
}

func formatPercent(share float64) string {
	return strconv.FormatFloat(100*share, 'g', 3, 64) + "%"
}

// TestFiringAlertFollowsLatestReport: while an alert fires, its stored
// summary, value and source window are those of the latest report (its
// start stays); an unchanged report stores nothing; the resolved event
// repeats the latest text.
func TestFiringAlertFollowsLatestReport(t *testing.T) {
	e, _ := NewEvaluator(DefaultRules())
	report := func(i int, score float64, drifted bool) Report {
		start := t0.Add(time.Duration(i) * 5 * time.Minute)
		b, _ := json.Marshal(map[string]any{
			"model": "churn", "window": map[string]any{"start": start, "end": start.Add(5 * time.Minute)},
			"features": map[string]any{"px56": map[string]any{"kind": "numerical", "wasserstein": 10 * score,
				"method": "wasserstein", "score": score, "threshold": 0.1, "drifted": drifted}},
			"drift_share": 0, "dataset_drifted": false,
		})
		r, _ := DecodeReport(b)
		return r
	}
	eval := func(r Report) Result { return e.Evaluate(SourceDrift, "churn", "lookout.drift.churn", r, time.Now()) }
	first := eval(report(0, 0.62, true))
	if len(first.Events) != 1 {
		t.Fatalf("events %+v", first.Events)
	}
	second := eval(report(1, 0.9, true))
	if len(second.Events) != 0 {
		t.Fatalf("a firing alert's update is stored, not published: %+v", second.Events)
	}
	if len(second.Changed) != 1 || second.Changed[0].Alert == nil {
		t.Fatalf("changed %+v", second.Changed)
	}
	got := *second.Changed[0].Alert
	if got.Summary != "px56 drifted: wasserstein 9 (0.9 reference std) >= 0.1 in window 10:05-10:10" ||
		got.Value == nil || *got.Value != 0.9 || !got.Source.Window.End.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("stored alert %q value %v window %+v", got.Summary, got.Value, got.Source.Window)
	}
	if !got.StartsAt.Equal(first.Events[0].StartsAt) || got.Fingerprint != first.Events[0].Fingerprint {
		t.Errorf("start %v fingerprint %s moved", got.StartsAt, got.Fingerprint)
	}
	if f := e.Firing(); len(f) != 1 || f[0].Summary != got.Summary {
		t.Errorf("Firing() %+v", f)
	}
	if again := eval(report(1, 0.9, true)); len(again.Changed) != 0 || len(again.Events) != 0 {
		t.Errorf("the same report again changed %+v", again)
	}
	eval(report(2, 0.01, false))
	res := eval(report(3, 0.01, false))
	if len(res.Events) != 1 || res.Events[0].Status != StatusResolved || res.Events[0].Summary != got.Summary {
		t.Fatalf("resolved %+v", res.Events)
	}
}

// TestCanaryRollbackCarriesVersions: a canary_rollback alert is labelled
// with both versions, its summary names them, and a new canary version is
// another alert while the old one resolves.
func TestCanaryRollbackCarriesVersions(t *testing.T) {
	e, _ := NewEvaluator(DefaultRules())
	canary := func(i int, version, verdict string) Report {
		start := t0.Add(time.Duration(i) * 5 * time.Minute)
		b, _ := json.Marshal(map[string]any{
			"model": "churn", "window": map[string]any{"start": start, "end": start.Add(5 * time.Minute), "pairs": 1000},
			"production": map[string]any{"version": "v3"}, "canary": map[string]any{"version": version},
			"score": 50, "verdict": verdict, "reasons": []string{"accuracy 0.91 < 0.96 - 0.02"},
		})
		r, _ := DecodeReport(b)
		return r
	}
	eval := func(r Report) []Alert {
		return e.Evaluate(SourceCanary, "churn", "lookout.canary.churn", r, time.Now()).Events
	}
	ev := eval(canary(0, "v4", "rollback"))
	if len(ev) != 1 {
		t.Fatalf("events %+v", ev)
	}
	a := ev[0]
	wantLabels := map[string]string{LabelProductionVersion: "v3", LabelCanaryVersion: "v4"}
	if LabelString(a.Labels) != LabelString(wantLabels) || a.Fingerprint != Fingerprint(RuleCanaryRollback, "churn", wantLabels) {
		t.Errorf("labels %v fingerprint %s", a.Labels, a.Fingerprint)
	}
	if want := "canary v4 should roll back to production v3 (score 50): accuracy 0.91 < 0.96 - 0.02 in window 10:00-10:05"; a.Summary != want {
		t.Errorf("summary %q, want %q", a.Summary, want)
	}
	eval(canary(1, "v5", "rollback"))
	ev = eval(canary(2, "v5", "rollback"))
	var got []string
	for _, x := range ev {
		got = append(got, x.Status+":"+x.Labels[LabelCanaryVersion])
	}
	if !slices.Equal(got, []string{"resolved:v4"}) {
		t.Errorf("events %v, want v4 resolved (v5 fired a window earlier)", got)
	}
}

// TestFormatSince: one clock, UTC event time with the wall-time age,
// whatever the time zone of the times given.
func TestFormatSince(t *testing.T) {
	at := time.Date(2026, 11, 24, 10, 5, 0, 0, time.UTC)
	est := time.FixedZone("EST", -5*3600)
	tests := []struct {
		now  time.Time
		want string
	}{
		{at.Add(42 * time.Second), "2026-11-24 10:05:00 UTC (42s ago)"},
		{at.Add(17*time.Minute + 30*time.Second), "2026-11-24 10:05:00 UTC (17m ago)"},
		{at.Add(3*time.Hour + 5*time.Minute).In(est), "2026-11-24 10:05:00 UTC (3h05m ago)"},
		{at.Add(8*24*time.Hour + 2*time.Hour), "2026-11-24 10:05:00 UTC (8d2h ago)"},
		{at.Add(-2 * time.Minute), "2026-11-24 10:05:00 UTC (in 2m)"},
	}
	for _, tt := range tests {
		if got := FormatSince(at.In(est), tt.now); got != tt.want {
			t.Errorf("FormatSince(now %v) = %q, want %q", tt.now, got, tt.want)
		}
	}
	if got := FormatSince(time.Time{}, at); got != "n/a" {
		t.Errorf("zero time: %q", got)
	}
}
