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
		// Flipping 10% of the labels fails the agreement guardrail.
		{"flipped labels", traffic{n: 600, flipEvery: 10}, nil, VerdictRollback, []string{"agreement 0.9 < 0.95"}, 50},
		// A canary 50% slower fails the latency guardrail.
		{"slower", traffic{n: 600, slow: 1.5}, nil, VerdictRollback, []string{"latency_p95_ratio 1.5 > 1.2"}, 50},
		// Too few pairs hold, whatever the checks say.
		{"too few pairs", traffic{n: 100, flipEvery: 10}, nil, VerdictHold, []string{"pairs 100 < min_pairs 500"}, 50},
		// Scores have no default guardrail but latency: they promote.
		{"numeric identical", traffic{n: 600, numeric: true}, nil, VerdictPromote, []string{"the guardrail passed"}, 100},
		// Weights shape the score: agreement (weight 3) fails, latency (1) passes.
		{"weights", traffic{n: 600, flipEvery: 10}, &weighted, VerdictRollback, []string{"agreement 0.9 < 0.95"}, 25},
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

// betterCanary is an AccuracySource in which the canary is always right
// and production right 80% of the time.
type betterCanary struct{ calls int }

func (b *betterCanary) Accuracy(model string, pairs []Pair) (Accuracy, bool) {
	b.calls++
	return Accuracy{Production: 0.8, Canary: 1, Labelled: len(pairs)}, true
}

var _ AccuracySource = (*betterCanary)(nil)

// TestAccuracyOutranksAgreement checks the feedback seam: once accuracy is
// known, a canary that disagrees with production but is more accurate
// promotes, and agreement stays in the report as no guardrail.
func TestAccuracyOutranksAgreement(t *testing.T) {
	opts := defaultOptions(500)
	src := &betterCanary{}
	opts.Judge.Accuracy = src
	reports := run(t, opts, traffic{n: 600, flipEvery: 10}.events())
	if len(reports) != 1 || src.calls != 1 {
		t.Fatalf("%d reports, %d accuracy calls; want 1 and 1", len(reports), src.calls)
	}
	r := reports[0]
	if r.Verdict != VerdictPromote {
		t.Fatalf("verdict %s %q, want promote", r.Verdict, r.Reasons)
	}
	var names []string
	for _, c := range r.Checks {
		names = append(names, fmt.Sprintf("%s:%v:%v", c.Name, c.Passed, c.Guardrail))
	}
	want := "accuracy:true:true agreement:false:false latency_p95_ratio:true:true"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("checks %s, want %s", got, want)
	}
}
