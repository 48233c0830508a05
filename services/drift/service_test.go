package drift_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	driftsvc "github.com/lookout-ml/lookout/services/drift"
)

var subjects = natsbus.NewSubjects("")

// startDrift runs a drift service until the returned stop is called (or
// the test ends).
func startDrift(t *testing.T, nc *nats.Conn, js jetstream.JetStream, cfg driftsvc.Config) (stop func()) {
	t.Helper()
	svc, err := driftsvc.New(natstest.Env(t, nc, js), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return natstest.RunService(t, svc)
}

// generator makes predictions of the model "churn" with three features:
// age (normal, mean ageMean, sd 10), income (exponential) and plan (three
// categories).
type generator struct {
	rng     *rand.Rand
	n       int
	base    time.Time
	version string
	ageMean float64
	confLow float64 // lowers every confidence by this much
}

func newGenerator(seed uint64) *generator {
	return &generator{rng: rand.New(rand.NewPCG(seed, 7)), base: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), version: "v1", ageMean: 40}
}

func (g *generator) next() *event.Prediction {
	g.n++
	plans := []string{"basic", "pro", "team"}
	c := 0.6 - g.confLow + 0.4*g.rng.Float64()
	return &event.Prediction{
		Id: fmt.Sprintf("e%d", g.n), Model: "churn", Version: g.version, Role: event.RoleProduction,
		TsUnixNano: proto.Int64(g.base.Add(time.Duration(g.n) * time.Millisecond).UnixNano()),
		Features: map[string]*event.Value{
			"age":    event.Number(g.ageMean + 10*g.rng.NormFloat64()),
			"income": event.Number(1000 * g.rng.ExpFloat64()),
			"plan":   event.Text(plans[g.rng.IntN(len(plans))]),
		},
		Prediction: event.Number(g.rng.Float64()),
		Confidence: &c,
	}
}

// publish stores n predictions on lookout.predictions.churn as ingest
// would: contract JSON, the event id as Nats-Msg-Id.
func (g *generator) publish(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	for range n {
		p := g.next()
		msg := nats.NewMsg(subjects.For(natsbus.KindPredictions, p.Model))
		msg.Data = event.AppendJSON(nil, p)
		msg.Header.Set("Content-Type", event.ContentTypeJSON)
		msg.Header.Set(jetstream.MsgIDHeader, p.Id)
		if _, err := js.PublishMsgAsync(msg); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publish not acknowledged within 30s")
	}
}

// publishAt stores one prediction per event time given, in that order.
func (g *generator) publishAt(t *testing.T, js jetstream.JetStream, ts ...time.Time) {
	t.Helper()
	for _, at := range ts {
		p := g.next()
		p.TsUnixNano = proto.Int64(at.UnixNano())
		msg := nats.NewMsg(subjects.For(natsbus.KindPredictions, p.Model))
		msg.Data = event.AppendJSON(nil, p)
		msg.Header.Set(jetstream.MsgIDHeader, p.Id)
		if _, err := js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
}

// every returns n times from start, step apart.
func every(start time.Time, step time.Duration, n int) []time.Time {
	out := make([]time.Time, n)
	for i := range out {
		out[i] = start.Add(time.Duration(i) * step)
	}
	return out
}

// reports returns the drift reports stored for a model, in order.
func reports(t *testing.T, js jetstream.JetStream, model string) []driftreport.Report {
	t.Helper()
	ctx := context.Background()
	subject := subjects.For(natsbus.KindDrift, model)
	s, err := js.Stream(ctx, subjects.StreamName(natsbus.StreamReports))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	total := info.State.Subjects[subject]
	if total == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	var out []driftreport.Report
	for uint64(len(out)) < total {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read %s after %d of %d: %v", subject, len(out), total, err)
		}
		var r driftreport.Report
		if err := json.Unmarshal(msg.Data(), &r); err != nil {
			t.Fatalf("report %d is not JSON: %v", len(out)+1, err)
		}
		out = append(out, r)
	}
	return out
}

// waitReports waits until a model has n reports and returns them.
func waitReports(t *testing.T, js jetstream.JetStream, model string, n int) []driftreport.Report {
	t.Helper()
	var got []driftreport.Report
	natstest.WaitFor(t, 60*time.Second, func() error {
		got = reports(t, js, model)
		if len(got) < n {
			return fmt.Errorf("%d reports, want %d", len(got), n)
		}
		return nil
	})
	if len(got) != n {
		t.Fatalf("%d reports, want exactly %d", len(got), n)
	}
	return got
}

// pinStable pins a reference of the generator's stable distribution, so
// that every window is reported (with the default first-window reference,
// the first window is the reference and is not reported).
func pinStable(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	refs, err := driftsvc.OpenReferences(ctx, js, subjects)
	if err != nil {
		t.Fatal(err)
	}
	d := driftreport.NewDataset(driftreport.SampleOptions{})
	g := newGenerator(99)
	for range 500 {
		p := g.next()
		if err := d.Add(driftreport.Row{Features: map[string]any{
			"age": p.Features["age"].GetNumber(), "income": p.Features["income"].GetNumber(), "plan": p.Features["plan"].GetText(),
		}, Prediction: p.Prediction.GetNumber(), Confidence: p.Confidence}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := refs.SetPinned(ctx, "churn", "test: stable", d); err != nil {
		t.Fatal(err)
	}
}

// waitLearned waits until the service stored the model's learned feature
// reference: the first window closed.
func waitLearned(t *testing.T, js jetstream.JetStream, model string) {
	t.Helper()
	ctx := context.Background()
	natstest.WaitFor(t, 30*time.Second, func() error {
		obs, err := js.ObjectStore(ctx, subjects.StreamName(driftsvc.ReferencesRole))
		if err != nil {
			return err
		}
		_, err = obs.GetInfo(ctx, "learned."+model+".features")
		return err
	})
}

func drifted(r driftreport.Report) []string {
	var names []string
	for name, fd := range r.Features {
		if fd.Drifted {
			names = append(names, name)
		}
	}
	return names
}

// A stable period gives reports without drift; a shift of age that starts
// halfway through the fourth window is flagged in that window, by name.
func TestStableThenShift(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := driftsvc.DefaultConfig()
	cfg.WindowEvents = 2000
	cfg.Window = time.Hour
	startDrift(t, nc, js, cfg)

	g := newGenerator(1)
	g.publish(t, js, 7000) // three stable windows and half of the fourth
	g.ageMean = 52         // +1.2 standard deviations
	g.publish(t, js, 1000)
	// The first window is the reference: not reported against itself.
	got := waitReports(t, js, "churn", 3)

	for i, r := range got[:2] {
		if r.DatasetDrifted || len(drifted(r)) > 0 {
			t.Errorf("stable window %d: drifted %v (share %v)", i+2, drifted(r), r.DriftShare)
		}
		if r.Window.Count != 2000 {
			t.Errorf("window %d: count %d, want 2000", i+2, r.Window.Count)
		}
	}
	if !strings.HasPrefix(got[0].Reference.Source, "first window") {
		t.Errorf("first report's reference: %q, want the first window", got[0].Reference.Source)
	}
	last := got[2]
	if d := drifted(last); len(d) != 1 || d[0] != "age" {
		t.Fatalf("shifted window: drifted %v, want [age]", d)
	}
	age := last.Features["age"]
	if age.Method != driftreport.MethodWasserstein || age.Score < 0.1 {
		t.Errorf("age: method %s score %v, want wasserstein >= 0.1", age.Method, age.Score)
	}
	if last.Model != "churn" || last.Reference.Count != 2000 || last.Prediction == nil || last.Confidence == nil {
		t.Errorf("report: model %q, reference count %d, prediction %v, confidence %v",
			last.Model, last.Reference.Count, last.Prediction, last.Confidence)
	}
	if last.Window.Start.IsZero() || !last.Window.End.After(last.Window.Start) || !last.Window.Start.After(got[1].Window.End) {
		t.Errorf("window times: %v to %v after %v", last.Window.Start, last.Window.End, got[1].Window.End)
	}
	if last.Sampled {
		t.Error("a 2,000-event window says it sampled")
	}
	// A reference of one window is too small for reference-chunk
	// thresholds: the Evidently rule judges, and says so. Multivariate
	// drift and the sequential detectors are in every report, the
	// detectors counting the model's reported windows.
	if age.ThresholdSource != driftreport.SourceDefault {
		t.Errorf("age threshold_source %q, want default", age.ThresholdSource)
	}
	for i, r := range got {
		if r.Multivariate == nil || r.Multivariate.Rows != 2000 {
			t.Errorf("report %d: multivariate %+v", i, r.Multivariate)
		}
		if r.Sequential == nil || r.Sequential.Windows != i+1 || r.Sequential.ConfidenceMean == nil {
			t.Errorf("report %d: sequential %+v, want windows %d", i, r.Sequential, i+1)
		}
	}
	if last.RootCause == nil || len(last.RootCause.Features) == 0 || last.RootCause.Features[0] != "age" {
		t.Errorf("root cause %+v, want age first", last.RootCause)
	}
}

// A restart in the middle of a window loses nothing: the window is rebuilt
// from the stream, the learned reference is kept, and no report is sent
// twice.
func TestRestartRebuildsOpenWindow(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := driftsvc.DefaultConfig()
	cfg.WindowEvents = 1000
	cfg.Window = time.Hour
	stop := startDrift(t, nc, js, cfg)

	g := newGenerator(2)
	g.publish(t, js, 2600) // the reference window, a reported one, 600 open
	waitReports(t, js, "churn", 1)
	// The service has read the 600 events of the open window once it has
	// acknowledged them: they are checkpointed, and read again from the
	// stream at the next start.
	consumerAcked(t, js, 2600)
	stop()

	startDrift(t, nc, js, cfg)
	g.publish(t, js, 400)
	got := waitReports(t, js, "churn", 2)
	if got[1].Window.Count != 1000 {
		t.Errorf("window after the restart holds %d events, want 1000", got[1].Window.Count)
	}
	if src := got[1].Reference.Source; !strings.HasPrefix(src, "first window") || src != got[0].Reference.Source {
		t.Errorf("reference after the restart: %q, want the one learned before: %q", src, got[0].Reference.Source)
	}
	if got[1].Window.Start.Equal(got[0].Window.Start) {
		t.Error("the first window was reported again")
	}
}

// A window closes by time when traffic is slow, and a pinned reference
// replaces the learned one from the next window.
func TestTimeWindowAndPinnedReference(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := driftsvc.DefaultConfig()
	cfg.WindowEvents = 100000
	cfg.Window = 400 * time.Millisecond
	startDrift(t, nc, js, cfg)

	g := newGenerator(3)
	g.publish(t, js, 300) // the reference window
	waitLearned(t, js, "churn")
	start := g.base
	g.base = start.Add(2*time.Second - 301*time.Millisecond) // events 301-600 in [10:00:02, 10:00:02.4)
	g.publish(t, js, 300)
	got := waitReports(t, js, "churn", 1)
	if got[0].Window.Count != 300 {
		t.Fatalf("time window holds %d events, want 300", got[0].Window.Count)
	}

	// Pin a reference whose plan is always "basic".
	ctx := context.Background()
	refs, err := driftsvc.OpenReferences(ctx, js, subjects)
	if err != nil {
		t.Fatal(err)
	}
	pinned := driftreport.NewDataset(driftreport.SampleOptions{})
	pg := newGenerator(4)
	for range 300 {
		p := pg.next()
		p.Features["plan"] = event.Text("basic")
		if err := pinned.Add(driftreport.Row{Features: map[string]any{
			"age": p.Features["age"].GetNumber(), "income": p.Features["income"].GetNumber(), "plan": "basic",
		}, Prediction: p.Prediction.GetNumber(), Confidence: p.Confidence}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := refs.SetPinned(ctx, "churn", "test: plan always basic", pinned); err != nil {
		t.Fatal(err)
	}
	g.base = start.Add(4*time.Second - 601*time.Millisecond) // events 601-900 in [10:00:04, 10:00:04.4)
	g.publish(t, js, 300)
	got = waitReports(t, js, "churn", 2)
	r := got[1]
	if r.Reference.Source != "pinned: test: plan always basic" || r.Reference.Count != 300 {
		t.Errorf("reference: %q, %d rows", r.Reference.Source, r.Reference.Count)
	}
	if d := drifted(r); len(d) != 1 || d[0] != "plan" {
		t.Errorf("drifted %v, want [plan]", d)
	}
	if r.Features["plan"].Method != driftreport.MethodChi2 {
		t.Errorf("plan judged by %s, want chi2 for a 300-row reference", r.Features["plan"].Method)
	}
}

// The rolling reference compares each window with the previous ones, so
// a lasting shift is flagged once and then becomes the new normal.
func TestRollingReference(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := driftsvc.DefaultConfig()
	cfg.WindowEvents = 1500
	cfg.Window = time.Hour
	cfg.Reference = driftsvc.ReferenceRolling
	cfg.RollingWindows = 1
	startDrift(t, nc, js, cfg)

	g := newGenerator(5)
	g.publish(t, js, 3000)
	g.ageMean = 55
	g.publish(t, js, 3000)
	// The first window has no earlier one: it is only a reference.
	got := waitReports(t, js, "churn", 3)
	want := [][]string{nil, {"age"}, nil}
	for i, r := range got {
		if d := drifted(r); !slices.Equal(d, want[i]) {
			t.Errorf("window %d: drifted %v, want %v", i+2, d, want[i])
		}
	}
	if src := got[1].Reference.Source; !strings.HasPrefix(src, "rolling: previous 1 windows") || got[1].Reference.Count != 1500 {
		t.Errorf("rolling reference: %q, %d rows", src, got[1].Reference.Count)
	}
}

// TestRollingHistorySurvivesRestart: after a restart the rolling reference
// is the window before it, restored from JetStream, so a shift right after
// the restart is still flagged.
func TestRollingHistorySurvivesRestart(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := driftsvc.DefaultConfig()
	cfg.WindowEvents = 1500
	cfg.Window = time.Hour
	cfg.Reference = driftsvc.ReferenceRolling
	cfg.RollingWindows = 1
	stop := startDrift(t, nc, js, cfg)
	g := newGenerator(9)
	g.publish(t, js, 3000)
	waitReports(t, js, "churn", 1) // the first window is only a reference
	stop()

	startDrift(t, nc, js, cfg)
	g.ageMean = 55
	g.publish(t, js, 1500)
	got := waitReports(t, js, "churn", 2)
	if d := drifted(got[1]); !slices.Equal(d, []string{"age"}) {
		t.Errorf("first window after the restart: drifted %v, want [age]", d)
	}
	if src := got[1].Reference.Source; !strings.HasPrefix(src, "rolling: previous 1 windows") || got[1].Reference.Count != 1500 {
		t.Errorf("rolling reference after the restart: %q, %d rows", src, got[1].Reference.Count)
	}
}

// TestSequentialDetectorsSurviveRestart: the Page-Hinkley and CUSUM
// figures after a restart continue from those before it, as if the
// service had never stopped: each report's sequential part is what one
// detector fed every report so far, in order, gives.
func TestSequentialDetectorsSurviveRestart(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	pinStable(t, js)
	cfg := driftsvc.DefaultConfig()
	cfg.WindowEvents = 500
	cfg.Window = time.Hour
	stop := startDrift(t, nc, js, cfg)
	g := newGenerator(5)
	g.publish(t, js, 1000)
	g.ageMean, g.confLow = 55, 0.1
	g.publish(t, js, 1000)
	before := waitReports(t, js, "churn", 4)
	consumerAcked(t, js, 2000)
	stop()

	startDrift(t, nc, js, cfg)
	g.publish(t, js, 1000)
	got := waitReports(t, js, "churn", 6)
	var seq driftreport.SequentialState
	for i, r := range got {
		want := seq.Update(&r)
		s := r.Sequential
		if s == nil || s.ConfidenceMean == nil {
			t.Fatalf("report %d: sequential %+v", i+1, s)
		}
		if s.Windows != want.Windows || math.Abs(s.DriftShare.Statistic-want.DriftShare.Statistic) > 1e-9 ||
			math.Abs(s.ConfidenceMean.Statistic-want.ConfidenceMean.Statistic) > 1e-9 {
			t.Errorf("report %d: windows %d, page_hinkley %v, cusum %v; want %d, %v, %v", i+1,
				s.Windows, s.DriftShare.Statistic, s.ConfidenceMean.Statistic,
				want.Windows, want.DriftShare.Statistic, want.ConfidenceMean.Statistic)
		}
	}
	// The shift and the lower confidence built up evidence before the
	// restart, which the last report still carries.
	if last := got[5].Sequential; last.DriftShare.Statistic <= 0 || last.ConfidenceMean.Statistic <= before[3].Sequential.ConfidenceMean.Statistic {
		t.Errorf("last report: page_hinkley %v, cusum %v (cusum before the restart %v)",
			last.DriftShare.Statistic, last.ConfidenceMean.Statistic, before[3].Sequential.ConfidenceMean.Statistic)
	}
}

// consumerAcked waits until the drift consumer has acknowledged every one
// of n stored predictions.
func consumerAcked(t *testing.T, js jetstream.JetStream, n uint64) {
	t.Helper()
	natstest.WaitFor(t, 30*time.Second, func() error {
		c, err := js.Consumer(context.Background(), subjects.StreamName(natsbus.StreamPredictions), driftsvc.ConsumerName)
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.AckFloor.Stream != n {
			return fmt.Errorf("delivered %d, ack floor %d, want %d", info.Delivered.Stream, info.AckFloor.Stream, n)
		}
		return nil
	})
}

// TestMaxAckPendingSmallerThanWindow: with drift.max_ack_pending (100)
// far below window_events (1000), reports still come (the old service
// held every event of an open window unacknowledged and stalled at 100),
// across a restart in the middle of a window, with every event in exactly
// one report.
func TestMaxAckPendingSmallerThanWindow(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := driftsvc.DefaultConfig()
	cfg.WindowEvents = 1000
	cfg.Window = time.Hour
	cfg.MaxAckPending = 100
	pinStable(t, js) // every window reported, the first too
	stop := startDrift(t, nc, js, cfg)

	g := newGenerator(11)
	g.publish(t, js, 1500)
	waitReports(t, js, "churn", 1)
	// Everything is acknowledged, the 500 events of the open window too:
	// they are rebuilt from the stream after a restart.
	consumerAcked(t, js, 1500)
	stop()

	startDrift(t, nc, js, cfg)
	g.publish(t, js, 1500)
	got := waitReports(t, js, "churn", 3)
	var ends []time.Time
	for i, r := range got {
		if r.Window.Count != 1000 {
			t.Errorf("window %d holds %d events, want 1000", i+1, r.Window.Count)
		}
		if i > 0 && !r.Window.Start.After(ends[i-1]) {
			t.Errorf("window %d starts at %v, not after the previous end %v: events doubled", i+1, r.Window.Start, ends[i-1])
		}
		ends = append(ends, r.Window.End)
	}
	// The first and last events' times bound the reports: none lost.
	if !got[0].Window.Start.Equal(g.base.Add(time.Millisecond)) || !got[2].Window.End.Equal(g.base.Add(3000*time.Millisecond)) {
		t.Errorf("reports span %v to %v", got[0].Window.Start, got[2].Window.End)
	}
}

// TestIdleTimeoutClosesQuietModel: a model that falls quiet, its window
// neither full nor passed by its watermark (no later event), is reported
// once its event time has not advanced for idle_timeout, with every event.
func TestIdleTimeoutClosesQuietModel(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := driftsvc.DefaultConfig()
	cfg.Window = time.Hour
	cfg.WindowEvents = 100000
	cfg.IdleTimeout = 300 * time.Millisecond
	pinStable(t, js) // every window reported, the first too
	startDrift(t, nc, js, cfg)

	g := newGenerator(12)
	g.publish(t, js, 150)
	got := waitReports(t, js, "churn", 1)
	if got[0].Window.Count != 150 {
		t.Errorf("idle window holds %d events, want 150", got[0].Window.Count)
	}
}

// TestOutOfOrderWithinLateness: events that come out of order, but within
// allowed_lateness, land in their own event-time window even after a later
// window opened; an event older than a closed window is dropped, in no
// report.
func TestOutOfOrderWithinLateness(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := driftsvc.DefaultConfig()
	cfg.MinWindowEvents = 1 // windows of a few events, on purpose
	cfg.Window = 10 * time.Second
	cfg.WindowEvents = 100000
	cfg.IdleTimeout = time.Hour // only the watermark closes here
	cfg.ReferenceMinEvents = 1
	pinStable(t, js) // every window reported, the first too
	startDrift(t, nc, js, cfg)

	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	g := newGenerator(13)
	g.publishAt(t, js, every(base, 10*time.Millisecond, 100)...)                     // window A [10:00:00, 10:00:10)
	g.publishAt(t, js, every(base.Add(15*time.Second), 10*time.Millisecond, 100)...) // window B
	g.publishAt(t, js, every(base.Add(5*time.Second), 10*time.Millisecond, 50)...)   // A again, 10s late
	g.publishAt(t, js, base.Add(90*time.Second))                                     // watermark 10:00:30: A and B close
	got := waitReports(t, js, "churn", 2)
	if got[0].Window.Count != 150 || !got[0].Window.Start.Equal(base) || !got[0].Window.End.Equal(base.Add(5*time.Second+490*time.Millisecond)) {
		t.Errorf("window A: %+v, want 150 events from %v", got[0].Window, base)
	}
	if got[1].Window.Count != 100 || !got[1].Window.Start.Equal(base.Add(15*time.Second)) {
		t.Errorf("window B: %+v, want 100 events from 10:00:15", got[1].Window)
	}

	g.publishAt(t, js, base.Add(time.Second)) // A closed: late, dropped
	g.publishAt(t, js, base.Add(90*time.Second+time.Millisecond))
	g.publishAt(t, js, base.Add(160*time.Second)) // watermark 10:01:40 closes [10:01:30, 10:01:40)
	got = waitReports(t, js, "churn", 3)
	if got[2].Window.Count != 2 || !got[2].Window.Start.Equal(base.Add(90*time.Second)) {
		t.Errorf("window after the late event: %+v, want the 2 events from 10:01:30", got[2].Window)
	}
}

// TestRestartWithSeveralOpenWindows: a restart while a model has two
// windows open (the rest of a span whose first part closed full, and a
// later span) rebuilds both from the stream, and an out-of-order event
// after the restart still joins the older one; no event is reported twice.
func TestRestartWithSeveralOpenWindows(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := driftsvc.DefaultConfig()
	cfg.MinWindowEvents = 1 // windows of a few events, on purpose
	cfg.Window = 10 * time.Second
	cfg.WindowEvents = 60
	cfg.IdleTimeout = time.Hour
	cfg.ReferenceMinEvents = 1
	pinStable(t, js) // every window reported, the first too
	stop := startDrift(t, nc, js, cfg)

	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	g := newGenerator(14)
	g.publishAt(t, js, every(base, 10*time.Millisecond, 100)...)                    // A: 60 full, 40 open
	g.publishAt(t, js, every(base.Add(15*time.Second), 10*time.Millisecond, 30)...) // B: 30 open
	waitReports(t, js, "churn", 1)
	consumerAcked(t, js, 130)
	stop()

	startDrift(t, nc, js, cfg)
	g.publishAt(t, js, every(base.Add(5*time.Second), 10*time.Millisecond, 10)...) // A again, out of order
	g.publishAt(t, js, base.Add(90*time.Second))                                   // watermark 10:00:30
	got := waitReports(t, js, "churn", 3)
	var counts []int
	for _, r := range got {
		counts = append(counts, r.Window.Count)
	}
	if !slices.Equal(counts, []int{60, 50, 30}) {
		t.Errorf("window counts %v, want [60 50 30]", counts)
	}
	if !got[2].Window.Start.Equal(base.Add(15 * time.Second)) {
		t.Errorf("third window starts %v, want 10:00:15", got[2].Window.Start)
	}
}

// TestReferenceWindowNotReported: with reference first-window, the window
// the reference is learned from is not reported against itself (a report
// that would say "no drift" by construction); the next window is the first
// report. A new version's first window is reported for its features, its
// prediction and confidence left out (they are that version's reference),
// and compared from its next window.
func TestReferenceWindowNotReported(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := driftsvc.DefaultConfig()
	cfg.WindowEvents = 1000
	cfg.Window = time.Hour
	startDrift(t, nc, js, cfg)

	g := newGenerator(21)
	g.publish(t, js, 2000) // the reference window, then a window of v1
	g.version = "v2"
	g.publish(t, js, 2000) // v2's first window, then its second
	got := waitReports(t, js, "churn", 3)
	waitLearned(t, js, "churn")

	refSpan := g.base.Add(time.Millisecond).Format(time.RFC3339)
	if !got[0].Window.Start.Equal(g.base.Add(1001*time.Millisecond)) || got[0].Window.Count != 1000 {
		t.Fatalf("first report: window %+v, want the second window (from event 1001)", got[0].Window)
	}
	for i, r := range got {
		if r.Window.Start.Equal(g.base.Add(time.Millisecond)) {
			t.Errorf("report %d is the reference window against itself", i+1)
		}
		if !strings.HasPrefix(r.Reference.Source, "first window "+refSpan) || r.Reference.Count != 1000 {
			t.Errorf("report %d: reference %q (%d rows), want the first window", i+1, r.Reference.Source, r.Reference.Count)
		}
	}
	if r := got[0]; r.Version != "v1" || r.Prediction == nil || r.Confidence == nil {
		t.Errorf("v1 window: version %q, prediction %v, confidence %v", r.Version, r.Prediction, r.Confidence)
	}
	if r := got[1]; r.Version != "v2" || r.Prediction != nil || r.Confidence != nil ||
		!strings.Contains(r.Reference.Source, "version v2 learned from this window") || len(r.Features) != 3 {
		t.Errorf("v2's first window: version %q, prediction %v, confidence %v, %d features, source %q; want features only",
			r.Version, r.Prediction, r.Confidence, len(r.Features), r.Reference.Source)
	}
	if r := got[2]; r.Version != "v2" || r.Prediction == nil || r.Confidence == nil ||
		!strings.Contains(r.Reference.Source, "prediction and confidence: version v2: first window") {
		t.Errorf("v2's second window: prediction %v, confidence %v, source %q", r.Prediction, r.Confidence, r.Reference.Source)
	}
}

// TestTinyWindowNotReported: the few events an aligned span keeps after its
// full windows (or a quiet model's idle close) are not a report of their
// own: statistics on a handful of events cry wolf. A demo run showed one
// such window of one second "drifted" with share 1.
func TestTinyWindowNotReported(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := driftsvc.DefaultConfig()
	cfg.Window = 10 * time.Second
	cfg.WindowEvents = 100 // so min_window_events is 10
	cfg.IdleTimeout = time.Hour
	cfg.ReferenceMinEvents = 1
	pinStable(t, js)
	startDrift(t, nc, js, cfg)

	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	g := newGenerator(17)
	g.publishAt(t, js, every(base, 10*time.Millisecond, 105)...)                     // a full window, then 5 more in the span
	g.publishAt(t, js, every(base.Add(20*time.Second), 10*time.Millisecond, 100)...) // a full window in a later span
	g.publishAt(t, js, every(base.Add(2*time.Minute), 10*time.Millisecond, 100)...)  // a third full window, after the tail closed
	g.publishAt(t, js, base.Add(5*time.Minute))                                      // closes what is open
	// Reports come in order, so the tail (closed before the third window)
	// would be among these three if it were reported.
	got := waitReports(t, js, "churn", 3)
	for _, r := range got {
		if r.Window.Count < 10 {
			t.Errorf("a window of %d events was reported", r.Window.Count)
		}
	}
}
