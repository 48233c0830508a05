package canary

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	judge "github.com/lookout-ml/lookout/pkg/canaryjudge"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

var subjects = natsbus.NewSubjects("")

// eventBase is the event time (ts) of the test predictions: on an hour,
// so that a test's pairs all fall in one window however short, and in the
// past, so that event time and store time are told apart.
var eventBase = time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)

// running is a canary service started by a test.
type running struct {
	reg  *prometheus.Registry
	stop func()
}

// start runs a canary service until the test ends or stop is called.
func start(t *testing.T, nc *nats.Conn, js jetstream.JetStream, cfg Config) *running {
	t.Helper()
	env := natstest.Env(t, nc, js)
	svc, err := New(env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &running{reg: env.Metrics.(*prometheus.Registry), stop: natstest.RunService(t, svc)}
}

// read returns the number of predictions the service has read.
func (r *running) read(tb testing.TB) float64 {
	tb.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "lookout_canary_predictions_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// reportsPublished returns the number of reports the service published.
func (r *running) reportsPublished(t *testing.T) float64 {
	return r.sum(t, "lookout_canary_reports_total")
}

// sum returns the sum of a counter's series.
func (r *running) sum(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// waitRead waits until the service has read n predictions.
func (r *running) waitRead(t *testing.T, n int) {
	t.Helper()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if got := r.read(t); got < float64(n) {
			return fmt.Errorf("read %v predictions, want %d", got, n)
		}
		return nil
	})
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Wait = 20 * time.Second
	cfg.WindowPairs = 200
	cfg.MinPairs = 100
	cfg.Window = time.Minute
	return cfg
}

// pairs returns n pairs of label predictions of model, pair i at
// eventBase plus i microseconds, in an order where
// the two halves of a request are out of order and interleaved with other
// requests'. flipEvery flips the canary label of every k-th pair; slow
// multiplies the canary's latency.
func pairs(model string, n, flipEvery int, slow float64) (prod, canary []*event.Prediction) {
	for i := range n {
		id := fmt.Sprintf("req-%04d", i)
		label, other := "stay", "churn"
		if i%4 == 0 {
			label, other = other, label
		}
		canLabel := label
		if flipEvery > 0 && i%flipEvery == 0 {
			canLabel = other
		}
		lat := 10 + float64(i%7)
		canLat := lat * slow
		conf := 0.9
		prod = append(prod, &event.Prediction{Id: "p-" + id, RequestId: id, Model: model, Version: "v3", Role: event.RoleProduction,
			TsUnixNano: proto.Int64(eventBase.Add(time.Duration(i) * time.Microsecond).UnixNano()), Prediction: event.Text(label), LatencyMs: &lat, Confidence: &conf})
		canary = append(canary, &event.Prediction{Id: "c-" + id, RequestId: id, Model: model, Version: "v4", Role: event.RoleCanary,
			TsUnixNano: proto.Int64(eventBase.Add(time.Duration(i) * time.Microsecond).UnixNano()), Prediction: event.Text(canLabel), LatencyMs: &canLat, Confidence: &conf})
	}
	return prod, canary
}

// shuffled returns the predictions in a random order (fixed seed).
func shuffled(preds ...[]*event.Prediction) []*event.Prediction {
	all := slices.Concat(preds...)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	return all
}

// publish stores predictions on lookout.predictions.<model> as ingest
// does.
func publish(t *testing.T, js jetstream.JetStream, preds []*event.Prediction) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range preds {
		msg := nats.NewMsg(subjects.For(natsbus.KindPredictions, p.Model))
		msg.Data = event.AppendJSON(nil, p)
		msg.Header.Set("Content-Type", event.ContentTypeJSON)
		msg.Header.Set(jetstream.MsgIDHeader, natsbus.MsgID(p.Model, p.Id))
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
}

// reject stores a rejection of original on lookout.rejected.<model> as
// ingest does.
func reject(t *testing.T, js jetstream.JetStream, model, original string) {
	t.Helper()
	data := event.MarshalRejection(&event.Rejection{Model: model, Subject: subjects.For(natsbus.KindIngest, model),
		Original: []byte(original), Reasons: []*event.Reason{{Code: event.CodeOutOfRange, Message: "confidence: out of range"}},
		ReceivedUnixNano: time.Now().UnixNano()})
	if _, err := js.Publish(context.Background(), subjects.For(natsbus.KindRejected, model), data); err != nil {
		t.Fatal(err)
	}
}

// reports returns every canary report of model stored so far.
func reports(t *testing.T, js jetstream.JetStream, model string) []judge.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, subjects.StreamName(natsbus.StreamReports))
	if err != nil {
		t.Fatal(err)
	}
	var out []judge.Report
	for seq := uint64(1); ; seq++ {
		msg, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if msg.Subject != subjects.For(natsbus.KindCanary, model) {
			continue
		}
		var r judge.Report
		if err := json.Unmarshal(msg.Data, &r); err != nil {
			t.Fatalf("report %s: %v", msg.Data, err)
		}
		out = append(out, r)
	}
}

// waitReports waits until model has n reports and returns them.
func waitReports(t *testing.T, js jetstream.JetStream, model string, n int) []judge.Report {
	t.Helper()
	var got []judge.Report
	natstest.WaitFor(t, 15*time.Second, func() error {
		if got = reports(t, js, model); len(got) < n {
			return fmt.Errorf("%d reports on %s, want %d", len(got), model, n)
		}
		return nil
	})
	return got
}

func TestVerdictsEndToEnd(t *testing.T) {
	cases := []struct {
		name      string
		flipEvery int
		slow      float64
		verdict   string
		reasons   []string
	}{
		// A canary identical to production promotes.
		{"identical", 0, 1, judge.VerdictPromote, []string{"all 2 guardrails passed"}},
		// A canary that flips 10% of the labels, without labels to judge
		// it by, is held on agreement (it rolled back before issue 10).
		{"flips 10% of labels", 10, 1, judge.VerdictHold,
			[]string{"agreement 0.9 < 0.95; held, not rolled back: 0 labelled pairs < min_labelled_pairs 100"}},
		// A canary 50% slower rolls back on latency.
		{"50% slower", 0, 1.5, judge.VerdictRollback, []string{"latency_p95_ratio 1.5 > 1.2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, nc, js := natstest.RunWithStreams(t)
			svc := start(t, nc, js, testConfig())
			prod, can := pairs("churn", 200, c.flipEvery, c.slow)
			reject(t, js, "churn", `{"model":"churn","role":"canary","version":"v4","prediction":"stay","confidence":2,"ts":"`+
				eventBase.Format(time.RFC3339Nano)+`"}`)
			// Rejections and predictions are read from two streams: the
			// rejection must be in before the pairs close the window.
			natstest.WaitFor(t, 10*time.Second, func() error {
				if svc.sum(t, "lookout_canary_rejected_total") < 1 {
					return errors.New("rejection not read yet")
				}
				return nil
			})
			publish(t, js, shuffled(prod, can))
			r := waitReports(t, js, "churn", 1)[0]
			if r.Verdict != c.verdict || !slices.Equal(r.Reasons, c.reasons) {
				t.Errorf("verdict %s %q, want %s %q", r.Verdict, r.Reasons, c.verdict, c.reasons)
			}
			if r.Window.Pairs != 200 || r.Unmatched != (judge.Unmatched{}) || r.CanaryShare != 0.5 {
				t.Errorf("pairs %d unmatched %+v share %v", r.Window.Pairs, r.Unmatched, r.CanaryShare)
			}
			if got := r.Rejected["canary"]; got.Count != 1 || got.Rate != 1.0/201 {
				t.Errorf("rejected %+v", r.Rejected)
			}
			if r.Production.Version != "v3" || r.Canary.Version != "v4" || r.Agreement == nil {
				t.Errorf("report %+v", r)
			}
		})
	}
}

// TestJoinAcrossRestart stops the service mid-stream: halves read by the
// first process pair with halves read by the second.
func TestJoinAcrossRestart(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	first := start(t, nc, js, testConfig())
	prod, can := pairs("churn", 200, 0, 1)
	publish(t, js, shuffled(prod, can[:100]))
	first.waitRead(t, 300)
	first.stop()

	second := start(t, nc, js, testConfig())
	publish(t, js, can[100:])
	second.waitRead(t, 100)
	r := waitReports(t, js, "churn", 1)[0]
	if r.Window.Pairs != 200 || r.Unmatched != (judge.Unmatched{}) || r.Verdict != judge.VerdictPromote {
		t.Errorf("pairs %d unmatched %+v verdict %s %q", r.Window.Pairs, r.Unmatched, r.Verdict, r.Reasons)
	}
}

// TestReplayAfterCrash puts back an older checkpoint, as if the process
// had crashed before saving the newer one: the new process reads the
// predictions since again, closes the same window, and its copy of the
// report is dropped as a duplicate.
func TestReplayAfterCrash(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	ctx := context.Background()
	cfg := testConfig()
	cfg.Checkpoint = 50 * time.Millisecond
	first := start(t, nc, js, cfg)
	prod, can := pairs("churn", 300, 0, 1)
	publish(t, js, shuffled(prod[:150], can[:120]))
	first.waitRead(t, 270)
	obs, err := js.ObjectStore(ctx, StateBucket(subjects))
	if err != nil {
		t.Fatal(err)
	}
	// Wait for a checkpoint that holds the 270 predictions read so far.
	var old []byte
	natstest.WaitFor(t, 10*time.Second, func() error {
		data, err := obs.GetBytes(ctx, StateObject)
		if err != nil {
			return err
		}
		var cp checkpoint
		if err := json.Unmarshal(data, &cp); err != nil {
			return err
		}
		if cp.Predictions.Seq < 270 {
			return fmt.Errorf("checkpoint at seq %d", cp.Predictions.Seq)
		}
		old = data
		return nil
	})
	publish(t, js, shuffled(prod[150:], can[120:]))
	first.waitRead(t, 600)
	before := waitReports(t, js, "churn", 1)
	first.stop()
	if _, err := obs.PutBytes(ctx, StateObject, old); err != nil {
		t.Fatal(err)
	}

	second := start(t, nc, js, cfg)
	second.waitRead(t, 330)
	// The replay closed the first window again (the second process
	// published its report) but JetStream kept one copy.
	natstest.WaitFor(t, 10*time.Second, func() error {
		if n := second.reportsPublished(t); n != 1 {
			return fmt.Errorf("second process published %v reports, want 1", n)
		}
		return nil
	})
	after := reports(t, js, "churn")
	if len(before) != 1 || len(after) != 1 {
		t.Fatalf("reports before the crash %d, after %d; want 1 and 1", len(before), len(after))
	}
	if after[0].Window.Pairs != 200 || after[0].Verdict != judge.VerdictPromote || after[0].Unmatched != (judge.Unmatched{}) {
		t.Errorf("report %+v", after[0])
	}
	// Closed full: from the span's start to its last pair, inside the span.
	if w := after[0].Window; !w.Start.Equal(eventBase) || !w.End.After(w.Start) || !w.End.Before(eventBase.Add(cfg.Window)) {
		t.Errorf("window %v-%v, want the event time of its pairs from %v", w.Start, w.End, eventBase)
	}
	// Stopping the second process saves every pair: 300 joined in all,
	// read to the last of the 600 predictions.
	second.stop()
	data, err := obs.GetBytes(ctx, StateObject)
	if err != nil {
		t.Fatal(err)
	}
	var cp checkpoint
	if err := json.Unmarshal(data, &cp); err != nil {
		t.Fatal(err)
	}
	tr := judge.NewTracker(judge.Options{})
	if err := tr.UnmarshalBinary(cp.Tracker); err != nil {
		t.Fatal(err)
	}
	if c := tr.Counters(); c.Pairs != 300 || cp.Predictions.Seq != 600 {
		t.Errorf("checkpoint: %d pairs joined in all, read to seq %d; want 300 and 600", c.Pairs, cp.Predictions.Seq)
	}
}

func TestRoleOfRejected(t *testing.T) {
	cases := []struct {
		original string
		want     string
	}{
		{`{"role":"canary","prediction":NaN}`, "unknown"},      // not JSON at all: unreadable
		{`{"role":"shadow","prediction":[1]}`, "canary"},       // shadow plays canary
		{`{"model":"churn","prediction":{}}`, "production"},    // no role: the default
		{`{"role":"production","confidence":7}`, "production"}, // a readable role
		{`{"role":42}`, "unknown"},                             // a role of the wrong type
		{`{"role":"staging"}`, "unknown"},                      // an unknown role
		{"\x0a\x03abc", "unknown"},                             // protobuf bytes
	}
	for _, c := range cases {
		if got := RoleOfRejected([]byte(c.original)); got != c.want {
			t.Errorf("RoleOfRejected(%q) = %s, want %s", c.original, got, c.want)
		}
	}
}

// TestIdleTimeoutClosesQuietModel: a model that falls quiet has its
// window closed by the idle timeout (wall time without event-time
// progress), its lone halves expired, and the report names the aligned
// event-time span (an hour here), not when the predictions were stored.
// (Before event-time windows this was TestTimeWindowAndExpiry: a
// store-time window of 1s closed by the wall clock.)
func TestIdleTimeoutClosesQuietModel(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := testConfig()
	cfg.Wait, cfg.Window, cfg.WindowPairs, cfg.IdleTimeout = 300*time.Millisecond, time.Hour, 1000, 300*time.Millisecond
	start(t, nc, js, cfg)
	prod, can := pairs("churn", 60, 0, 1)
	// 50 pairs, 6 production halves and 4 canary halves alone.
	publish(t, js, shuffled(prod[:56], can[:50], can[56:]))
	r := waitReports(t, js, "churn", 1)[0]
	if r.Window.Pairs != 50 || r.Unmatched != (judge.Unmatched{Production: 6, Canary: 4}) {
		t.Errorf("pairs %d unmatched %+v", r.Window.Pairs, r.Unmatched)
	}
	if r.Verdict != judge.VerdictHold || !slices.Equal(r.Reasons, []string{"pairs 50 < min_pairs 100"}) {
		t.Errorf("verdict %s %q", r.Verdict, r.Reasons)
	}
	if !r.Window.Start.Equal(eventBase) || !r.Window.End.Equal(eventBase.Add(time.Hour)) {
		t.Errorf("window %v-%v, want the event-time hour from %v", r.Window.Start, r.Window.End, eventBase)
	}
}

// pairsAt returns n identical pairs of model whose request ids start with
// prefix, pair i at event time ts(i).
func pairsAt(model, prefix string, n int, ts func(i int) time.Time) (prod, can []*event.Prediction) {
	prod, can = pairs(model, n, 0, 1)
	for i := range n {
		for _, p := range []*event.Prediction{prod[i], can[i]} {
			p.RequestId, p.Id = prefix+p.RequestId, prefix+p.Id
			p.TsUnixNano = proto.Int64(ts(i).UnixNano())
		}
	}
	return prod, can
}

// interleaved returns each production prediction followed by its canary.
func interleaved(prod, can []*event.Prediction) []*event.Prediction {
	var out []*event.Prediction
	for i := range prod {
		out = append(out, prod[i], can[i])
	}
	return out
}

// windowsOf describes reports as "start offset from base: pairs".
func windowsOf(t *testing.T, reps []judge.Report, base time.Time, size time.Duration) []string {
	t.Helper()
	var out []string
	for _, r := range reps {
		if d := r.Window.End.Sub(r.Window.Start); d != size {
			t.Errorf("window %v-%v lasts %v, want %v", r.Window.Start, r.Window.End, d, size)
		}
		out = append(out, fmt.Sprintf("%v: %d", r.Window.Start.Sub(base), r.Window.Pairs))
	}
	return out
}

// TestBacklogEventTimeWindows: a backlog of pairs whose ts span three
// minutes, a day ago, published at full speed before the service starts,
// gives three reports, each naming its event-time minute. On store time
// it gave one window of the instant the backlog was stored.
func TestBacklogEventTimeWindows(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	base := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Minute)
	var backlog []*event.Prediction
	for w := range 3 {
		prod, can := pairsAt("churn", fmt.Sprintf("w%d-", w), 30, func(i int) time.Time {
			return base.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Second)
		})
		backlog = append(backlog, interleaved(prod, can)...)
	}
	publish(t, js, backlog)
	cfg := testConfig()
	cfg.Window, cfg.WindowPairs, cfg.MinPairs, cfg.IdleTimeout = time.Minute, 1000, 1, 300*time.Millisecond
	start(t, nc, js, cfg)
	got := windowsOf(t, waitReports(t, js, "churn", 3), base, time.Minute)
	if want := []string{"0s: 30", "1m0s: 30", "2m0s: 30"}; !slices.Equal(got, want) {
		t.Errorf("windows %v, want %v", got, want)
	}
}

// TestOutOfOrderWithinLateness: pairs that come after later ones, within
// allowed_lateness, land in their own event-time window; pairs past it are
// dropped and counted late, not put in a later window.
func TestOutOfOrderWithinLateness(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	base := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Minute)
	batch := func(prefix string, n int, from time.Duration) []*event.Prediction {
		return interleaved(pairsAt("churn", prefix, n, func(i int) time.Time {
			return base.Add(from + time.Duration(i)*time.Second)
		}))
	}
	publish(t, js, slices.Concat(
		batch("a-", 30, 0),              // window 0
		batch("b-", 30, time.Minute),    // window 1: watermark base+29s
		batch("c-", 10, 40*time.Second), // out of order, within lateness: window 0
		batch("d-", 5, 150*time.Second), // window 2: watermark base+94s closes window 0
		batch("e-", 5, 20*time.Second),  // window 0 again, past the lateness: late
	))
	cfg := testConfig()
	cfg.Window, cfg.WindowPairs, cfg.MinPairs, cfg.IdleTimeout = time.Minute, 1000, 1, 300*time.Millisecond
	svc := start(t, nc, js, cfg)
	got := windowsOf(t, waitReports(t, js, "churn", 3), base, time.Minute)
	if want := []string{"0s: 40", "1m0s: 30", "2m0s: 5"}; !slices.Equal(got, want) {
		t.Errorf("windows %v, want %v", got, want)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		if n := svc.sum(t, "lookout_canary_late_total"); n != 10 {
			return fmt.Errorf("%v late predictions, want 10", n)
		}
		return nil
	})
}

// TestFullPartsNameTheirSpan: the windows of one span closed full
// (window_pairs) name the event time each covers, contiguous from the
// span's start: from the part before's end to their last pair. The last
// part, closed idle, ends at the span's end. They once all named the whole
// span, so that an alert on the first part started after all its pairs.
func TestFullPartsNameTheirSpan(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	base := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Minute)
	prod, can := pairsAt("churn", "p-", 50, func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) })
	publish(t, js, interleaved(prod, can))
	cfg := testConfig()
	cfg.Window, cfg.WindowPairs, cfg.MinPairs, cfg.IdleTimeout = time.Minute, 20, 1, 300*time.Millisecond
	start(t, nc, js, cfg)
	var got []string
	for _, r := range waitReports(t, js, "churn", 3) {
		got = append(got, fmt.Sprintf("%v-%v: %d", r.Window.Start.Sub(base), r.Window.End.Sub(base), r.Window.Pairs))
	}
	if want := []string{"0s-19s: 20", "19s-39s: 20", "39s-1m0s: 10"}; !slices.Equal(got, want) {
		t.Errorf("windows %v, want %v", got, want)
	}
}
