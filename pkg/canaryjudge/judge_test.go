package canaryjudge

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/event"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// prediction builds a join candidate of model "churn".
func prediction(role, requestID, version string, value *event.Value, latencyMS, confidence float64) *event.Prediction {
	p := &event.Prediction{Id: role + "-" + requestID, RequestId: requestID, Model: "churn", Version: version, Role: role, Prediction: value}
	if latencyMS > 0 {
		p.LatencyMs = &latencyMS
	}
	if confidence > 0 {
		p.Confidence = &confidence
	}
	return p
}

// traffic describes n pairs of label predictions.
type traffic struct {
	n int
	// flipEvery flips the canary's label of every k-th pair (0: none).
	flipEvery int
	// slow multiplies the canary's latency.
	slow float64
	// numeric makes predictions scores instead of labels.
	numeric bool
}

// events returns the predictions of tr, production first within a pair,
// except that every third pair arrives canary first.
func (tr traffic) events() []*event.Prediction {
	var out []*event.Prediction
	for i := range tr.n {
		id := fmt.Sprintf("req-%d", i)
		label, other := "stay", "churn"
		if i%3 == 0 {
			label, other = other, label
		}
		prodValue, canValue := event.Text(label), event.Text(label)
		if tr.flipEvery > 0 && i%tr.flipEvery == 0 {
			canValue = event.Text(other)
		}
		if tr.numeric {
			prodValue, canValue = event.Number(float64(i%100)/100), event.Number(float64(i%100)/100)
		}
		lat := 10 + float64(i%10)
		slow := tr.slow
		if slow == 0 {
			slow = 1
		}
		prod := prediction(event.RoleProduction, id, "v3", prodValue, lat, 0.9)
		can := prediction(event.RoleCanary, id, "v4", canValue, lat*slow, 0.8)
		if i%3 == 0 {
			out = append(out, can, prod)
		} else {
			out = append(out, prod, can)
		}
	}
	return out
}

// run feeds events one millisecond apart into a tracker and returns the
// reports of the windows that closed, flushing the last one.
func run(t *testing.T, opts Options, events []*event.Prediction) []Report {
	t.Helper()
	tr := NewTracker(opts)
	var out []Report
	at := t0
	for _, p := range events {
		at = at.Add(time.Millisecond)
		out = append(out, tr.Prediction(at, p)...)
	}
	out = append(out, tr.Advance(at.Add(opts.Window+opts.Wait))...)
	return out
}

func defaultOptions(minPairs int) Options {
	return Options{Wait: 30 * time.Second, WindowPairs: 1000, Window: 5 * time.Minute, MaxHalves: 100000,
		Judge: &Judge{Guardrails: DefaultGuardrails(), MinPairs: minPairs}}
}

func TestJudgeVerdicts(t *testing.T) {
	weighted := DefaultGuardrails()
	weighted.Weights = map[string]float64{CheckAgreement: 3}
	cases := []struct {
		name       string
		traffic    traffic
		guardrails *Guardrails
		verdict    string
		reasons    []string
		score      float64
	}{
		// A canary identical to production promotes with a full score.
		{"identical", traffic{n: 600}, nil, VerdictPromote, []string{"all 2 guardrails passed"}, 100},
		// Flipping 10% of the labels fails agreement; without labels that
		// holds (it rolled back before issue 10: see TestAgreementRollback).
		{"flipped labels", traffic{n: 600, flipEvery: 10}, nil, VerdictHold, []string{"agreement 0.9 < 0.95; held, not rolled back: 0 labelled pairs < min_labelled_pairs 100"}, 50},
		// A canary 50% slower fails the latency guardrail.
		{"slower", traffic{n: 600, slow: 1.5}, nil, VerdictRollback, []string{"latency_p95_ratio 1.5 > 1.2"}, 50},
		// Too few pairs hold, whatever the checks say.
		{"too few pairs", traffic{n: 100, flipEvery: 10}, nil, VerdictHold, []string{"pairs 100 < min_pairs 500"}, 50},
		// Scores have no default guardrail but latency: they promote.
		{"numeric identical", traffic{n: 600, numeric: true}, nil, VerdictPromote, []string{"the guardrail passed"}, 100},
		// Weights shape the score: agreement (weight 3) fails, latency (1) passes.
		{"weights", traffic{n: 600, flipEvery: 10}, &weighted, VerdictHold, []string{"agreement 0.9 < 0.95; held, not rolled back: 0 labelled pairs < min_labelled_pairs 100"}, 25},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := defaultOptions(500)
			if c.guardrails != nil {
				opts.Judge.Guardrails = *c.guardrails
			}
			reports := run(t, opts, c.traffic.events())
			if len(reports) != 1 {
				t.Fatalf("got %d reports, want 1", len(reports))
			}
			r := reports[0]
			if r.Window.Pairs != c.traffic.n {
				t.Errorf("pairs = %d, want %d", r.Window.Pairs, c.traffic.n)
			}
			if r.Verdict != c.verdict || !slices.Equal(r.Reasons, c.reasons) {
				t.Errorf("verdict %s %q, want %s %q", r.Verdict, r.Reasons, c.verdict, c.reasons)
			}
			if r.Score != c.score {
				t.Errorf("score = %v, want %v", r.Score, c.score)
			}
		})
	}
}

// TestConsecutiveWindows checks that a rollback needs the configured
// number of failing windows in a row, and that a passing window resets it.
func TestConsecutiveWindows(t *testing.T) {
	cases := []struct {
		name     string
		windows  []traffic
		verdicts []string
	}{
		// Two failing windows in a row roll back on the second.
		{"two failing", []traffic{{n: 500, flipEvery: 10}, {n: 500, flipEvery: 10}}, []string{VerdictHold, VerdictRollback}},
		// A passing window between two failing ones resets the count.
		{"reset", []traffic{{n: 500, flipEvery: 10}, {n: 500}, {n: 500, flipEvery: 10}}, []string{VerdictHold, VerdictPromote, VerdictHold}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := defaultOptions(500)
			opts.WindowPairs = 500
			opts.Judge.Guardrails.ConsecutiveWindows = 2
			// Agreement is the failing guardrail here: it rolls back only
			// when asked to.
			opts.Judge.AgreementRollback = true
			var events []*event.Prediction
			for w, tr := range c.windows {
				for _, p := range tr.events() {
					p.RequestId = fmt.Sprintf("w%d-%s", w, p.RequestId)
					events = append(events, p)
				}
			}
			reports := run(t, opts, events)
			var got []string
			for _, r := range reports {
				got = append(got, r.Verdict)
			}
			if !slices.Equal(got, c.verdicts) {
				t.Fatalf("verdicts %v, want %v", got, c.verdicts)
			}
			if want := "agreement 0.9 < 0.95 (failing window 1 of 2 before rollback)"; reports[0].Reasons[0] != want {
				t.Errorf("first reason %q, want %q", reports[0].Reasons[0], want)
			}
		})
	}
}

// TestAgreementRollback checks the opt-in of the old rule: with
// AgreementRollback, failing agreement without labels rolls back.
func TestAgreementRollback(t *testing.T) {
	opts := defaultOptions(500)
	opts.Judge.AgreementRollback = true
	reports := run(t, opts, traffic{n: 600, flipEvery: 10}.events())
	if len(reports) != 1 || reports[0].Verdict != VerdictRollback || !slices.Equal(reports[0].Reasons, []string{"agreement 0.9 < 0.95"}) {
		t.Fatalf("reports %+v, want one rollback on agreement", reports)
	}
}

// labelled feeds events and then feedback for them into a tracker: truth
// gives request i's label ("" for none); byID names the production
// prediction's id instead of the request for every other label.
func labelled(t *testing.T, opts Options, events []*event.Prediction, n int, truth func(i int) string, byID bool) []Report {
	t.Helper()
	tr := NewTracker(opts)
	var out []Report
	at := t0
	for _, p := range events {
		at = at.Add(time.Millisecond)
		out = append(out, tr.Prediction(at, p)...)
	}
	for i := range n {
		l := truth(i)
		if l == "" {
			continue
		}
		f := &event.Feedback{Model: "churn", Label: event.Text(l), RequestId: fmt.Sprintf("req-%d", i)}
		if byID && i%2 == 0 {
			f.RequestId, f.Id = "", event.RoleProduction+"-"+f.RequestId
		}
		at = at.Add(time.Millisecond)
		out = append(out, tr.Feedback(at, f)...)
	}
	out = append(out, tr.Advance(at.Add(opts.Window+opts.Wait))...)
	return out
}

// TestQualityOutranksAgreement checks the verdict from labels: labels
// before the window closes count (by request or by either id), quality
// decides once there are min_labelled_pairs of them, whatever the
// agreement, and a significantly worse canary rolls back.
func TestQualityOutranksAgreement(t *testing.T) {
	// traffic's production label of request i; the canary flips every
	// 10th.
	prodLabel := func(i int) string {
		if i%3 == 0 {
			return "churn"
		}
		return "stay"
	}
	other := func(l string) string {
		if l == "stay" {
			return "churn"
		}
		return "stay"
	}
	t.Run("equal accuracy, low agreement: promote", func(t *testing.T) {
		// Truth: production right except on every 20th request, where the
		// canary (flipped on every 10th) is right; on the other flipped
		// ones production is right. Both 95% right, agreement 90%.
		truth := func(i int) string {
			if i%20 == 0 {
				return other(prodLabel(i))
			}
			return prodLabel(i)
		}
		reports := labelled(t, defaultOptions(500), traffic{n: 600, flipEvery: 10}.events(), 600, truth, true)
		if len(reports) != 1 {
			t.Fatalf("%d reports", len(reports))
		}
		r := reports[0]
		q := r.Quality
		if q == nil || q.LabelledPairs != 600 || q.Metric != MetricAccuracy || q.Test != TestMcNemar ||
			q.Production != 0.95 || q.Canary != 0.95 || q.PValue != 1 {
			t.Fatalf("quality %+v", q)
		}
		if r.Verdict != VerdictPromote {
			t.Fatalf("verdict %s %q, want promote", r.Verdict, r.Reasons)
		}
		var names []string
		for _, c := range r.Checks {
			names = append(names, fmt.Sprintf("%s:%v:%v", c.Name, c.Passed, c.Guardrail))
		}
		if got, want := strings.Join(names, " "), "accuracy:true:true agreement:false:false latency_p95_ratio:true:true"; got != want {
			t.Errorf("checks %s, want %s", got, want)
		}
	})
	t.Run("worse canary: rollback", func(t *testing.T) {
		// Production always right; the canary wrong on every 10th.
		reports := labelled(t, defaultOptions(500), traffic{n: 600, flipEvery: 10}.events(), 600, prodLabel, false)
		r := reports[0]
		if r.Quality == nil || r.Quality.Difference > -0.09 || r.Quality.PValue >= 0.05 || r.Verdict != VerdictRollback {
			t.Fatalf("quality %+v, verdict %s %q; want rollback", r.Quality, r.Verdict, r.Reasons)
		}
	})
	t.Run("too few labels: agreement holds", func(t *testing.T) {
		few := func(i int) string {
			if i < 99 {
				return prodLabel(i)
			}
			return ""
		}
		reports := labelled(t, defaultOptions(500), traffic{n: 600, flipEvery: 10}.events(), 600, few, false)
		r := reports[0]
		want := []string{"agreement 0.9 < 0.95; held, not rolled back: 99 labelled pairs < min_labelled_pairs 100"}
		if r.Quality == nil || r.Quality.LabelledPairs != 99 || r.Verdict != VerdictHold || !slices.Equal(r.Reasons, want) {
			t.Fatalf("quality %+v, verdict %s %q; want hold %q", r.Quality, r.Verdict, r.Reasons, want)
		}
	})
	t.Run("labels after the window closed do not count", func(t *testing.T) {
		tr := NewTracker(defaultOptions(500))
		at := t0
		var out []Report
		for _, p := range (traffic{n: 600}).events() {
			at = at.Add(time.Millisecond)
			out = append(out, tr.Prediction(at, p)...)
		}
		opts := defaultOptions(500)
		out = append(out, tr.Advance(at.Add(opts.Window+opts.Wait))...)
		out = append(out, tr.Feedback(at.Add(opts.Window+opts.Wait+time.Second), &event.Feedback{Model: "churn", RequestId: "req-1", Label: event.Text("stay")})...)
		if len(out) != 1 || out[0].Quality != nil {
			t.Fatalf("%d reports, quality %+v", len(out), out)
		}
	})
}

// TestLabelsSurviveSnapshotAndBound checks that labels kept for open
// windows are in the tracker's snapshot, and that max_labels drops the
// oldest.
func TestLabelsSurviveSnapshotAndBound(t *testing.T) {
	opts := defaultOptions(500)
	opts.MaxLabels = 10
	tr := NewTracker(opts)
	at := t0
	for _, p := range (traffic{n: 600}).events() {
		at = at.Add(time.Millisecond)
		tr.Prediction(at, p)
	}
	for i := range 20 {
		tr.Feedback(at, &event.Feedback{Model: "churn", RequestId: fmt.Sprintf("req-%d", i), Label: event.Text("stay")})
	}
	if c := tr.Counters(); c.Labels != 20 || c.LabelsDropped != 10 {
		t.Fatalf("counters %+v, want 20 labels, 10 dropped", c)
	}
	data, err := tr.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	restored := NewTracker(opts)
	if err := restored.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	reports := restored.Advance(at.Add(opts.Window + opts.Wait))
	if len(reports) != 1 || reports[0].Quality == nil || reports[0].Quality.LabelledPairs != 10 {
		t.Fatalf("reports %+v, want one with 10 labelled pairs (the newest 10)", reports)
	}
}
