package canaryjudge

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
)

func TestJoiner(t *testing.T) {
	j := NewJoiner()
	a := Half{RequestID: "r1", Side: Production, At: 1}
	b := Half{RequestID: "r2", Side: Candidate, At: 2}
	// A half with no partner waits.
	if _, res := j.Add(a); res != Waiting {
		t.Fatalf("first half: %v", res)
	}
	j.Add(b)
	// The same side and request again is a duplicate and changes nothing.
	if _, res := j.Add(Half{RequestID: "r1", Side: Production, At: 3}); res != Duplicate || j.Len() != 2 {
		t.Fatalf("duplicate: %v, len %d", res, j.Len())
	}
	// The other side joins, whichever arrived first.
	other, res := j.Add(Half{RequestID: "r1", Side: Candidate, At: 4})
	if res != Joined || other.At != 1 || j.Len() != 1 {
		t.Fatalf("join: %v %+v len %d", res, other, j.Len())
	}
	// The oldest left is r2.
	if h, ok := j.PopOldest(); !ok || h.RequestID != "r2" || j.Len() != 0 {
		t.Fatalf("oldest: %+v %v", h, ok)
	}
	if _, ok := j.Oldest(); ok {
		t.Fatal("empty joiner has an oldest half")
	}
}

// at returns p with event time ts.
func at(p *event.Prediction, ts time.Time) *event.Prediction {
	p.TsUnixNano = proto.Int64(ts.UnixNano())
	return p
}

// TestTrackerExpiryAndCap checks that halves expire by the wait in event
// time (measured by the model's watermark, whatever the clock says),
// counted unmatched per side in the window of their ts, and that past the
// cap the ones due first expire early. (Before windows were cut on event
// time, the clock alone expired halves: Advance(t0+30s) expired a.)
func TestTrackerExpiryAndCap(t *testing.T) {
	opts := defaultOptions(1)
	opts.MaxHalves = 3
	opts.AllowedLateness = 10 * time.Second
	tr := NewTracker(opts)
	tr.Prediction(t0, at(prediction("production", "a", "v3", event.Text("x"), 1, 0), t0.Add(time.Second)))
	tr.Prediction(t0, at(prediction("canary", "b", "v4", event.Text("x"), 1, 0), t0.Add(10*time.Second)))
	// The clock alone expires nothing before the idle timeout.
	tr.Advance(t0.Add(time.Minute))
	if got := tr.InFlight(); got != 2 {
		t.Fatalf("in flight %d, want 2", got)
	}
	// A prediction at t0+41s puts the watermark at t0+31s: a's wait is
	// over, b's is not.
	tr.Prediction(t0.Add(time.Minute), at(prediction("production", "", "v3", event.Text("x"), 1, 0), t0.Add(41*time.Second)))
	if got := tr.InFlight(); got != 1 {
		t.Fatalf("in flight %d, want 1", got)
	}
	// Four more production halves: the cap of 3 pushes out b and c.
	now := t0.Add(time.Minute)
	for _, id := range []string{"c", "d", "e", "f"} {
		tr.Prediction(now, at(prediction("production", id, "v3", event.Text("x"), 1, 0), t0.Add(35*time.Second)))
	}
	if got, ev := tr.InFlight(), tr.Counters().Evicted; got != 3 || ev != 2 {
		t.Fatalf("in flight %d evicted %d, want 3 and 2", got, ev)
	}
	// A late canary for a pushed-out request is no pair; one for d is.
	tr.Prediction(now, at(prediction("canary", "d", "v4", event.Text("x"), 1, 0), t0.Add(36*time.Second)))
	tr.Prediction(now, at(prediction("canary", "c", "v4", event.Text("x"), 1, 0), t0.Add(36*time.Second)))
	// An event ten minutes on closes the window [t0, t0+5m).
	reports := tr.Prediction(now, at(prediction("production", "", "v3", event.Text("x"), 1, 0), t0.Add(10*time.Minute)))
	if len(reports) != 1 {
		t.Fatalf("%d reports, want 1", len(reports))
	}
	r := reports[0]
	// Unmatched: production a, c(evicted), e, f; canary b(evicted), c.
	if r.Window.Pairs != 1 || r.Unmatched != (Unmatched{Production: 4, Canary: 2}) {
		t.Errorf("pairs %d unmatched %+v", r.Window.Pairs, r.Unmatched)
	}
	if !r.Window.Start.Equal(t0) || !r.Window.End.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("window %v-%v, want the event-time span from t0", r.Window.Start, r.Window.End)
	}
	if r.Verdict != VerdictPromote {
		t.Errorf("verdict %s %q", r.Verdict, r.Reasons)
	}
}

// TestTrackerEventTimeWindows: pairs fed in one burst (the clock barely
// moves) are cut by their ts: a pair within the allowed lateness joins its
// earlier window, one past it is dropped and counted late, and the last
// window closes by the idle timeout on the clock.
func TestTrackerEventTimeWindows(t *testing.T) {
	opts := defaultOptions(1)
	opts.Window, opts.AllowedLateness, opts.IdleTimeout = time.Minute, 30*time.Second, 10*time.Second
	tr := NewTracker(opts)
	var out []Report
	n := 0
	add := func(ts time.Duration) {
		id := fmt.Sprintf("r%d", n)
		n++
		out = append(out, tr.Prediction(t0, at(prediction("production", id, "v3", event.Text("x"), 1, 0), t0.Add(ts)))...)
		// The canary scores it 2 s later: the pair keeps production's ts.
		out = append(out, tr.Prediction(t0, at(prediction("canary", id, "v4", event.Text("x"), 1, 0), t0.Add(ts+2*time.Second)))...)
	}
	for _, ts := range []time.Duration{10 * time.Second, 50 * time.Second, 59 * time.Second, 70 * time.Second} {
		add(ts)
	}
	add(40 * time.Second) // out of order, within the lateness: window 0
	add(150 * time.Second)
	add(30 * time.Second) // past the lateness: window 0 is closed
	if late := tr.Counters().Late; late != 2 {
		t.Errorf("late %d, want 2 (both halves of the last pair)", late)
	}
	out = append(out, tr.Advance(t0.Add(10*time.Second))...)
	var got []string
	for _, r := range out {
		got = append(got, fmt.Sprintf("%s+%d", r.Window.Start.Sub(t0), r.Window.Pairs))
		if r.Window.End.Sub(r.Window.Start) != time.Minute {
			t.Errorf("window %v-%v is not one minute", r.Window.Start, r.Window.End)
		}
	}
	if want := []string{"0s+4", "1m0s+1", "2m0s+1"}; !slices.Equal(got, want) {
		t.Errorf("windows %v, want %v", got, want)
	}
}

// TestTrackerSnapshot checks that a tracker restored from a snapshot taken
// mid-stream gives the same reports as one that never stopped.
func TestTrackerSnapshot(t *testing.T) {
	opts := defaultOptions(100)
	opts.WindowPairs = 150
	events := traffic{n: 400, flipEvery: 20}.events()
	want := run(t, opts, events)

	tr := NewTracker(opts)
	var got []Report
	at := t0
	for i, p := range events {
		if i == 333 {
			data, err := tr.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			tr = NewTracker(opts)
			if err := tr.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
		}
		at = at.Add(time.Millisecond)
		got = append(got, tr.Prediction(at, p)...)
	}
	got = append(got, tr.Advance(at.Add(opts.Window+opts.Wait))...)
	if len(want) != 3 {
		t.Fatalf("%d reports, want 3", len(want))
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Fatalf("restored tracker reports\n%s\nwant\n%s", g, w)
	}
}

// TestWindowFigures checks the figures of a window against values worked
// out by hand.
func TestWindowFigures(t *testing.T) {
	var w Window
	w.Open(t0.UnixNano())
	add := func(prod, can float64, latP, latC float64, confP, confC float64) {
		p := Pair{Scores: [2]float64{prod, can}, LatencyMS: [2]float64{latP, latC}, Confidence: [2]float64{confP, confC}}
		w.Pairs = append(w.Pairs, p)
		w.AddPrediction(Production, "v3")
		w.AddPrediction(Candidate, "v4")
	}
	add(0.1, 0.2, 10, 20, 0.9, 0.5)
	add(0.2, 0.2, 20, 40, 0.7, math.NaN())
	add(0.3, 0.5, 30, 60, 0.8, 0.6)
	add(0.4, 0.3, 40, 80, 0.6, 0.7)
	w.AddPrediction(Candidate, "v4") // an unpaired canary prediction
	w.AddRejected("canary")
	w.AddRejected("unknown")
	r := w.Report("churn", w.Start, t0.Add(time.Minute).UnixNano())

	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// |diffs| = 0.1, 0, 0.2, 0.1
	near("mean_abs", r.ScoreDiff.MeanAbs, 0.1)
	// numpy.quantile([0, .1, .1, .2], .95) = 0.1 + 0.85*0.1
	near("p95_abs", r.ScoreDiff.P95Abs, 0.185)
	// numpy.corrcoef([.1,.2,.3,.4], [.2,.2,.5,.3])[0,1]
	near("correlation", *r.ScoreDiff.Correlation, 0.5477225575051662)
	// scipy.stats.ks_2samp([.1,.2,.3,.4], [.2,.2,.5,.3]): D = 0.25
	near("ks", r.ScoreDiff.KS.Statistic, 0.25)
	near("latency p50", r.Production.LatencyMS.P50, 25)
	near("latency p95 ratio", r.LatencyRatio.P95, 2)
	near("confidence mean canary", *r.Canary.ConfidenceMean, 0.6)
	near("confidence diff", *r.ConfidenceDiff, 0.6-0.75)
	near("canary share", r.CanaryShare, 5.0/9)
	near("rejected rate canary", r.Rejected["canary"].Rate, 1.0/6)
	if r.Rejected["unknown"].Count != 1 || r.Agreement != nil || r.Production.Version != "v3" || r.Canary.Version != "v4" {
		t.Errorf("report %+v", r)
	}
}

// TestAgreementConfusion checks the label figures.
func TestAgreementConfusion(t *testing.T) {
	reports := run(t, defaultOptions(1), traffic{n: 30, flipEvery: 5}.events())
	r := reports[0]
	// Pairs 0,5,...,25 flipped (6 of 30); of those i%3==0 (0, 15) were "churn".
	if *r.Agreement != 0.8 {
		t.Errorf("agreement %v, want 0.8", *r.Agreement)
	}
	want := map[string]map[string]int{"churn": {"churn": 8, "stay": 2}, "stay": {"stay": 16, "churn": 4}}
	if !reflect.DeepEqual(r.Confusion, want) {
		t.Errorf("confusion %v, want %v", r.Confusion, want)
	}
}
