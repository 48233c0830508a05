package quality

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

// TestCompare covers each rule of the package comment.
func TestCompare(t *testing.T) {
	cases := []struct {
		name         string
		pred, label  Value
		opts         Options
		correct, cmp bool
		err          float64
		regression   bool
	}{
		// Class label against the same string label: correct.
		{"labels equal", Text("churn"), Text("churn"), Options{}, true, true, 0, false},
		// Class label against another: wrong.
		{"labels differ", Text("churn"), Text("stay"), Options{}, false, true, 0, false},
		// Class label "1" against numeric label 1: compared as text.
		{"label vs number", Text("1"), Number(1), Options{}, true, true, 0, false},
		// Score 0.8 against label 1: correct at the default threshold, error -0.2.
		{"score vs 1", Number(0.8), Number(1), Options{}, true, true, 0.8 - 1, true},
		// Score 0.8 against label 1 with threshold 0.9: wrong.
		{"score vs 1 high threshold", Number(0.8), Number(1), Options{Threshold: 0.9}, false, true, 0.8 - 1, true},
		// Score exactly at the threshold predicts the positive class.
		{"at threshold", Number(0.5), Number(0), Options{}, false, true, 0.5, true},
		// Regression: no accuracy, only the error.
		{"regression", Number(12.5), Number(10), Options{}, false, false, 2.5, true},
		// Score against a string label with a positive class: positive.
		{"positive class", Number(0.7), Text("churn"), Options{PositiveClass: "churn"}, true, true, 0, false},
		// Score against the other class: predicted positive, so wrong.
		{"negative class", Number(0.7), Text("stay"), Options{PositiveClass: "churn"}, false, true, 0, false},
		// Score against a numeric string without a positive class: a number.
		{"numeric string", Number(0.2), Text("0"), Options{}, true, true, 0.2, true},
		// Score against a non-numeric string without a positive class: not compared.
		{"incomparable", Number(0.2), Text("stay"), Options{}, false, false, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			correct, cmp, err, reg := Compare(c.pred, c.label, c.opts)
			if correct != c.correct || cmp != c.cmp || reg != c.regression || math.Abs(err-c.err) > 1e-12 {
				t.Fatalf("got correct=%v compared=%v err=%v regression=%v, want %v %v %v %v",
					correct, cmp, err, reg, c.correct, c.cmp, c.err, c.regression)
			}
		})
	}
}

// TestWindowReport checks every figure of a window with two versions,
// labels, numeric errors, helpful answers and unmatched feedback.
func TestWindowReport(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	w := NewWindow(Options{})
	add := func(version string, pred Value, label *Value, helpful *bool, delay time.Duration, at int) {
		ft := t0.Add(time.Duration(at) * time.Second)
		w.Add(Pair{Prediction: Prediction{Version: version, Value: pred, Time: ft.Add(-delay)}, Label: label, Helpful: helpful, Time: ft}, ft)
	}
	// v1: three class labels, two right.
	add("v1", Text("churn"), ptr(Text("churn")), nil, time.Hour, 1)
	add("v1", Text("stay"), ptr(Text("stay")), ptr(true), time.Hour, 2)
	add("v1", Text("stay"), ptr(Text("churn")), ptr(false), time.Hour, 3)
	// v2: scores with 0/1 labels, errors 0.1 and 0.6; one right.
	add("v2", Number(0.9), ptr(Number(1)), nil, 3*time.Hour, 4)
	add("v2", Number(0.6), ptr(Number(0)), nil, 3*time.Hour, 5)
	// v2: a helpful click without a label.
	add("v2", Number(0.1), nil, ptr(true), 3*time.Hour, 6)
	w.AddUnmatched(t0.Add(7 * time.Second))
	w.AddUnmatched(t0)

	r := w.Report("churn")
	near := func(name string, got *float64, want float64) {
		t.Helper()
		if got == nil || math.Abs(*got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if r.Model != "churn" || r.Feedback != 6 || r.Labelled != 5 || r.Unmatched != 2 || r.Window.Feedback != 8 {
		t.Errorf("counts: %+v", r)
	}
	if !r.Window.Start.Equal(t0) || !r.Window.End.Equal(t0.Add(7*time.Second)) {
		t.Errorf("span %v - %v", r.Window.Start, r.Window.End)
	}
	near("accuracy", r.Accuracy, 3.0/5)
	near("helpful_rate", r.HelpfulRate, 2.0/3)
	near("mae", r.MAE, (0.1+0.6)/2)
	near("rmse", r.RMSE, math.Sqrt((0.01+0.36)/2))
	near("delay_seconds", r.DelaySeconds, (3*3600+3*3*3600)/6.0)
	if r.AccuracyCount != 5 || r.RegressionCount != 2 || r.HelpfulCount != 3 {
		t.Errorf("counts behind rates: %+v", r.Metrics)
	}
	v1, v2 := r.Versions["v1"], r.Versions["v2"]
	near("v1 accuracy", v1.Accuracy, 2.0/3)
	near("v2 accuracy", v2.Accuracy, 1.0/2)
	if v1.MAE != nil || v1.Feedback != 3 || v2.Feedback != 3 || v2.Labelled != 2 {
		t.Errorf("versions: %+v %+v", v1, v2)
	}
	near("v2 helpful_rate", v2.HelpfulRate, 1)

	// The JSON has the top-level fields alert rules watch.
	b, _ := json.Marshal(r)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"accuracy", "helpful_rate", "mae", "rmse", "unmatched", "feedback", "labelled"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, b)
		}
	}
	if win, _ := m["window"].(map[string]any); win["start"] != "2026-11-24T10:00:00Z" {
		t.Errorf("window: %v", m["window"])
	}
}

// TestWindowWithoutLabels: rates without data are left out, not zero.
func TestWindowWithoutLabels(t *testing.T) {
	w := NewWindow(Options{})
	w.Add(Pair{Prediction: Prediction{Version: "v1", Value: Text("a")}, Helpful: ptr(false)}, time.Unix(10, 0))
	r := w.Report("m")
	if r.Accuracy != nil || r.MAE != nil || r.RMSE != nil || r.DelaySeconds != nil {
		t.Fatalf("rates without data: %+v", r.Metrics)
	}
	if r.HelpfulRate == nil || *r.HelpfulRate != 0 || w.Joined() != 1 || w.Len() != 1 {
		t.Fatalf("helpful: %+v", r.Metrics)
	}
	b, _ := json.Marshal(r)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if _, ok := m["accuracy"]; ok {
		t.Fatalf("accuracy in %s", b)
	}
}

// TestWindowRoles: a feedback event for a request scored by production
// and canary counts once as an event and once per prediction, under each
// role and version; a prediction without a role is production's.
func TestWindowRoles(t *testing.T) {
	w := NewWindow(Options{})
	at := time.Unix(100, 0)
	yes := Text("yes")
	// Request 1: production right, canary wrong, one label.
	w.Add(Pair{Prediction: Prediction{Version: "v1", Role: "production", Value: Text("yes")}, Label: &yes, Time: at}, at)
	w.AddRelated(Pair{Prediction: Prediction{Version: "v2", Role: "canary", Value: Text("no")}, Label: &yes, Time: at}, at)
	// Request 2: production (no role given) right, no canary.
	w.Add(Pair{Prediction: Prediction{Version: "v1", Value: Text("yes")}, Label: &yes, Time: at}, at)
	w.AddUnmatched(at)
	r := w.Report("m")
	if w.Joined() != 2 || r.Window.Feedback != 3 || r.Unmatched != 1 || r.Feedback != 3 || r.AccuracyCount != 3 {
		t.Fatalf("joined %d, report %+v", w.Joined(), r)
	}
	prod, canary := r.Roles["production"], r.Roles["canary"]
	if len(r.Roles) != 2 || prod.AccuracyCount != 2 || *prod.Accuracy != 1 || canary.AccuracyCount != 1 || *canary.Accuracy != 0 {
		t.Fatalf("roles %+v", r.Roles)
	}
	if r.Versions["v1"].AccuracyCount != 2 || r.Versions["v2"].AccuracyCount != 1 {
		t.Fatalf("versions %+v", r.Versions)
	}
	if *r.Accuracy != 2.0/3 {
		t.Fatalf("accuracy %v, want 2/3", *r.Accuracy)
	}
}

// TestEstimatedAccuracy: estimated_accuracy is the mean confidence of the
// labelled class-label predictions that have one, per window, version and
// role, with its count; a prediction without confidence, a numeric score,
// feedback without a label and a label that could not be compared are
// left out; a window with none has no estimate (absent from the JSON).
func TestEstimatedAccuracy(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	pred := func(version, role string, v Value, conf float64, has bool) Prediction {
		return Prediction{Version: version, Role: role, Value: v, Confidence: conf, HasConfidence: has, Time: t0}
	}
	stay, churn := Text("stay"), Text("churn")
	w := NewWindow(Options{})
	// Counted: v1 production 0.9 (right) and 0.6 (wrong); v2 canary 0.7 (right).
	w.Add(Pair{Prediction: pred("v1", "", churn, 0.9, true), Label: &churn}, t0)
	w.Add(Pair{Prediction: pred("v1", "production", churn, 0.6, true), Label: &stay}, t0)
	w.AddRelated(Pair{Prediction: pred("v2", "canary", stay, 0.7, true), Label: &stay}, t0)
	// Left out: no confidence; a score; no label; a confidence of 0 without HasConfidence.
	w.Add(Pair{Prediction: pred("v1", "", churn, 0, false), Label: &churn}, t0)
	w.Add(Pair{Prediction: pred("v1", "", Number(0.8), 0.8, true), Label: ptr(Number(1))}, t0)
	w.Add(Pair{Prediction: pred("v1", "", churn, 0.1, true), Helpful: ptr(true)}, t0)
	r := w.Report("churn")

	check := func(name string, m Metrics, want float64, n int) {
		t.Helper()
		if m.EstimatedAccuracyCount != n {
			t.Errorf("%s: estimated_accuracy_count %d, want %d", name, m.EstimatedAccuracyCount, n)
		}
		if m.EstimatedAccuracy == nil || math.Abs(*m.EstimatedAccuracy-want) > 1e-12 {
			t.Errorf("%s: estimated_accuracy %v, want %v", name, m.EstimatedAccuracy, want)
		}
	}
	check("window", r.Metrics, (0.9+0.6+0.7)/3, 3)
	check("v1", r.Versions["v1"], (0.9+0.6)/2, 2)
	check("v2", r.Versions["v2"], 0.7, 1)
	check("production", r.Roles["production"], (0.9+0.6)/2, 2)
	check("canary", r.Roles["canary"], 0.7, 1)
	// Beside it, the realised accuracy of a superset: 5 compared, 4 right.
	if r.AccuracyCount != 5 || r.Accuracy == nil || *r.Accuracy != 4.0/5 {
		t.Errorf("accuracy %v of %d, want 0.8 of 5", fmtPtr(r.Accuracy), r.AccuracyCount)
	}

	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["estimated_accuracy_count"] != 3.0 || math.Abs(got["estimated_accuracy"].(float64)-2.2/3) > 1e-12 {
		t.Errorf("JSON estimated_accuracy %v of %v", got["estimated_accuracy"], got["estimated_accuracy_count"])
	}

	empty := NewWindow(Options{})
	empty.Add(Pair{Prediction: pred("v1", "", Number(0.8), 0.8, true), Label: ptr(Number(1))}, t0)
	er := empty.Report("churn")
	if er.EstimatedAccuracy != nil || er.EstimatedAccuracyCount != 0 {
		t.Errorf("no class predictions: estimated_accuracy %v of %d, want none", er.EstimatedAccuracy, er.EstimatedAccuracyCount)
	}
	if b, _ := json.Marshal(er); strings.Contains(string(b), `"estimated_accuracy"`) {
		t.Errorf("no class predictions: JSON %s has estimated_accuracy", b)
	}
}

// fmtPtr shows a *float64 as its number, or nil.
func fmtPtr(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}
