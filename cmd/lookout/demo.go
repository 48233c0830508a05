package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/service"
	"github.com/lookout-ml/lookout/services/alert"
)

// demoModel is the model the demo publishes.
const demoModel = "demo-churn"

// The demo's rates are chosen against the default windows, so that each
// kind of report comes about once a minute or faster: 200 production
// predictions a second close a drift window (window_events 10,000) every
// 50 s; a canary on every tenth request closes a canary window
// (window_pairs 1,000) every 50 s; labels for a fifth of the predictions
// close a performance window (window_labels 1,000) every 25 s.
const (
	demoInterval    = 5 * time.Millisecond // event time between production predictions
	demoCanaryEvery = 10
	demoLabelDelay  = 20 * time.Second // how late, in event time, a label comes
	// demoPhase is long enough for the reference window (the first 50 s)
	// before the shift, and for a window wholly inside each later phase,
	// so that every phase is reported, alerted and notified within five
	// minutes.
	demoPhase = 75 * time.Second
)

// demoPhaseKind is what the demo's world is doing.
type demoPhaseKind int

const (
	phaseNormal      demoPhaseKind = iota // reference traffic, a good canary
	phaseShift                            // inputs shift, confidence and accuracy fall, for both models
	phaseCanaryWorse                      // inputs normal again, canary v2 answers trial customers wrongly
)

func (k demoPhaseKind) String() string {
	return [...]string{"normal", "input shift", "canary regression"}[k]
}

// demoOptions tune the demo for tests; `lookout run --demo` uses the zero
// value. They are not flags: the README's tour is told in these timings.
type demoOptions struct {
	// Phase is the length of each phase in event time (default demoPhase).
	Phase time.Duration
	// Speed is event time per wall time (default 1): a test runs the same
	// story, event for event, faster.
	Speed float64
	// Seed fixes the random numbers (default: from the clock).
	Seed uint64
}

func (o demoOptions) withDefaults() demoOptions {
	if o.Phase <= 0 {
		o.Phase = demoPhase
	}
	if o.Speed <= 0 {
		o.Speed = 1
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	return o
}

// demoCycle is the demo's story, one phase after another, and again: two
// normal phases after the canary's, so that the resolutions are notified
// (a resolution followed within group_interval by the same alert firing
// again would be coalesced away) before the inputs shift again.
var demoCycle = [...]demoPhaseKind{phaseNormal, phaseShift, phaseCanaryWorse, phaseNormal, phaseNormal}

// phaseAt returns the phase at elapsed event time.
func (o demoOptions) phaseAt(elapsed time.Duration) demoPhaseKind {
	return demoCycle[elapsed/o.Phase%time.Duration(len(demoCycle))]
}

// runDemo publishes predictions of a churn model, 200 a second of event
// time, with a canary beside production on every tenth request and labels
// for a fifth of the predictions 20 s later. Its world goes through three
// phases (75 s each, from its start, whatever the wall-clock minute):
// normal; an input shift (customers older, plan mix changed) in which the
// model and the canary grow less sure and less right together; then
// normal inputs with a canary v2 that answers every trial customer the
// wrong way round; then normal for two phases, and the story repeats.
// Event times are the demo's own clock (start + n
// predictions × 5 ms), so the windows are cut the same on every run.
func runDemo(ctx context.Context, js jetstream.JetStream, subjects natsbus.Subjects, log *zap.Logger, opts demoOptions) {
	opts = opts.withDefaults()
	rng := rand.New(rand.NewPCG(1, opts.Seed))
	start := time.Now()
	run := strconv.FormatInt(start.Unix(), 36)
	log.Info("demo publishing", zap.String("subject", subjects.For(natsbus.KindIngest, demoModel)),
		zap.Duration("phase", opts.Phase), zap.Float64("speed", opts.Speed))
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	plans := []string{"free", "pro", "team"}
	type label struct {
		due time.Time
		fb  *event.Feedback
	}
	var pending []label
	// publish sends one message, waiting for acknowledgements when too
	// many are in flight rather than dropping it.
	publish := func(msg *nats.Msg) {
		for ctx.Err() == nil {
			_, err := js.PublishMsgAsync(msg)
			if err == nil {
				return
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				log.Warn("demo publish failed", zap.String("subject", msg.Subject), zap.Error(err))
				return
			}
			select {
			case <-ctx.Done():
			case <-js.PublishAsyncComplete():
			}
		}
	}
	last := phaseNormal
	for n := 0; ; n++ {
		elapsed := time.Duration(n) * demoInterval
		// Pace event time to the wall clock (times Speed); a tick that
		// finds the demo behind publishes the backlog at once.
		for time.Duration(float64(time.Since(start))*opts.Speed) < elapsed {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		ts := start.Add(elapsed)
		phase := opts.phaseAt(elapsed)
		if phase != last || n == 0 {
			log.Info("demo phase", zap.Stringer("phase", phase), zap.Time("event_time", ts.UTC()))
			last = phase
		}
		age := 40 + 10*rng.NormFloat64()
		plan := plans[rng.IntN(2)]
		if phase == phaseShift {
			age += 12
			plan = plans[1+rng.IntN(2)]
		}
		income := 50000 + 15000*rng.NormFloat64()
		trial := rng.IntN(4) == 0
		// p is the true churn probability, and the model knows it: the
		// model is calibrated, so its confidence is what its accuracy is.
		p := 1 / (1 + math.Exp(-(age-45)/8))
		if phase == phaseShift {
			// In the shifted world age tells less about churn: both
			// models grow less sure, and less right, together.
			p = 0.5 + 0.4*(p-0.5)
		}
		churned := rng.Float64() < p
		withCanary := n%demoCanaryEvery == 0
		requestID := ""
		if withCanary {
			// Only requests the canary also scores carry a request id: a
			// production half with one would wait for a pair in vain.
			requestID = fmt.Sprintf("req-%s-%d", run, n)
		}
		features := map[string]*event.Value{
			"age": event.Number(math.Round(age*10) / 10), "plan": event.Text(plan),
			"income": event.Number(math.Round(income)), "trial": event.Flag(trial),
		}
		predict := func(role, version string, score, latency float64) string {
			class, conf := "stay", 1-score
			if score >= 0.5 {
				class, conf = "churn", score
			}
			conf = math.Round(conf*1000) / 1000
			id := fmt.Sprintf("demo-%s-%d-%s", run, n, role)
			msg := nats.NewMsg(subjects.For(natsbus.KindIngest, demoModel))
			msg.Data = event.AppendJSON(nil, &event.Prediction{
				Id: id, RequestId: requestID, Model: demoModel, Version: version, Role: role,
				TsUnixNano: proto.Int64(ts.UnixNano()), Features: features,
				Prediction: event.Text(class), Confidence: &conf, LatencyMs: &latency,
			})
			publish(msg)
			return id
		}
		id := predict(event.RoleProduction, "v1", p, 4+rng.ExpFloat64())
		if withCanary {
			score := math.Min(1, math.Max(0, p+0.02*rng.NormFloat64()))
			if phase == phaseCanaryWorse && trial {
				score = 1 - score // v2's bug: trial customers the wrong way round
			}
			// A little slower than production, well within the guardrail.
			predict(event.RoleCanary, "v2", score, 4.2+rng.ExpFloat64())
		}
		// The truth comes later, for a fifth of the predictions: by
		// request for the canary's requests (the label applies to both
		// models' predictions), by prediction id for others.
		if withCanary || n%demoCanaryEvery == demoCanaryEvery/2 {
			truth := "stay"
			if churned {
				truth = "churn"
			}
			fb := &event.Feedback{Model: demoModel, Label: event.Text(truth),
				Helpful: proto.Bool(rng.IntN(4) != 0), TsUnixNano: proto.Int64(ts.Add(demoLabelDelay).UnixNano())}
			if withCanary {
				fb.RequestId = requestID
			} else {
				fb.Id = id
			}
			pending = append(pending, label{due: ts.Add(demoLabelDelay), fb: fb})
		}
		for len(pending) > 0 && !pending[0].due.After(ts) {
			msg := nats.NewMsg(subjects.For(natsbus.KindFeedback, demoModel))
			msg.Data = event.AppendFeedbackJSON(nil, pending[0].fb)
			publish(msg)
			pending = pending[1:]
		}
	}
}

// demoGroupInterval is the alert group_interval of a demo run without a
// configuration file: the default 5 m would hold the canary's rollback,
// which fires a couple of minutes after the shift was notified, past the
// five minutes the tour promises.
const demoGroupInterval = time.Minute

// demoConfig returns cfg with the demo's log sink added to the alert
// section; without a configuration file (tune) it also shortens
// group_interval to demoGroupInterval.
func demoConfig(cfg Config, sinkURL string, tune bool) Config {
	ac, _ := cfg.section(alert.Component).(alert.Config)
	ac.Sinks = append(append([]alert.SinkConfig(nil), ac.Sinks...), alert.SinkConfig{Name: "demo-log", Type: "webhook", URL: sinkURL})
	if tune && ac.GroupInterval > demoGroupInterval {
		ac.GroupInterval = demoGroupInterval
	}
	sections := maps.Clone(cfg.sections)
	if sections == nil {
		sections = make(map[string]service.Config)
	}
	sections[alert.Component.Name()] = ac
	cfg.sections = sections
	return cfg
}

// demoSink is the demo's local log sink: a webhook on a loopback port that
// logs every notification it receives, so that a demo shows what a team
// would be sent without configuring anything.
type demoSink struct {
	srv *http.Server
	url string
}

// startDemoSink starts the sink on a free loopback port.
func startDemoSink(log *zap.Logger) (*demoSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo sink: %w", err)
	}
	s := &demoSink{url: "http://" + ln.Addr().String() + "/notify"}
	s.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		var n alerting.Notification
		if err == nil {
			err = json.Unmarshal(body, &n)
		}
		if err != nil {
			log.Warn("demo notification unreadable", zap.Error(err))
			http.Error(w, "bad notification", http.StatusBadRequest)
			return
		}
		for _, a := range n.Alerts {
			log.Info("notification", zap.String("model", n.Model), zap.String("notification", n.Status),
				zap.String("rule", a.Rule), zap.String("status", a.Status), zap.String("summary", a.Summary),
				zap.Any("labels", a.Labels), zap.Time("starts_at", a.StartsAt))
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("demo sink failed", zap.Error(err))
		}
	}()
	log.Info("demo notifications are logged here", zap.String("webhook", s.url))
	return s, nil
}

// Close stops the sink.
func (s *demoSink) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}
