package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// consumer names of the alert service.
const (
	consumerReports  = "alert-reports"
	consumerDispatch = "alert-dispatch"
	consumerSink     = "alert-sink-" // + sink name
)

// evaluator is the first stage: reports and ingest's output in, alert
// events out on lookout.alerts.<model>, state kept in the KV bucket.
type evaluator struct {
	s     *Service
	state jetstream.KeyValue
	eval  *alerting.Evaluator

	reports  chan jetstream.Msg
	consumer *natsbus.Durable
	subs     []*nats.Subscription

	mu       sync.Mutex // guards activity, fed from NATS callbacks
	activity *alerting.Activity
	firing   int
}

func (s *Service) newEvaluator(ctx context.Context, state jetstream.KeyValue) (*evaluator, error) {
	eval, err := alerting.NewEvaluator(s.rules)
	if err != nil {
		return nil, err
	}
	e := &evaluator{
		s: s, state: state, eval: eval,
		reports:  make(chan jetstream.Msg, 256),
		activity: alerting.NewActivity(s.cfg.RejectionRate.Window),
	}
	saved, err := loadPrefix[alerting.State](ctx, state, keyAlert)
	if err != nil {
		return nil, err
	}
	states := make([]alerting.State, 0, len(saved))
	for _, st := range saved {
		states = append(states, st)
	}
	for _, fp := range eval.Restore(states) {
		_ = state.Delete(ctx, keyAlert+fp)
	}
	e.firing = len(eval.Firing())
	s.metrics.firing.Set(float64(e.firing))
	if len(saved) > 0 {
		s.log.Info("alert state restored", zap.Int("alerts", len(saved)), zap.Int("firing", e.firing))
	}

	subjects := s.env.Subjects
	if len(eval.Rules(alerting.SourceActivity))+len(eval.Rules(alerting.SourceRejections)) > 0 {
		e.seedActivity(ctx)
		for _, kind := range []string{natsbus.KindPredictions, natsbus.KindRejected} {
			rejected := kind == natsbus.KindRejected
			sub, err := s.env.NC.Subscribe(subjects.All(kind), func(m *nats.Msg) {
				if m.Header.Get(event.HeaderReplay) != "" {
					return // archived data played again says nothing about now
				}
				if rejected && m.Header.Get(event.HeaderInput) == event.InputFeedback {
					return // invalid feedback is not rejected prediction input
				}
				model := subjects.Model(m.Subject)
				e.mu.Lock()
				e.activity.Add(model, rejected, s.now())
				e.mu.Unlock()
			})
			if err != nil {
				e.close()
				return nil, fmt.Errorf("subscribe %s: %w", subjects.All(kind), err)
			}
			_ = sub.SetPendingLimits(1<<20, 256<<20)
			e.subs = append(e.subs, sub)
		}
	}

	stream := subjects.StreamName(natsbus.StreamReports)
	e.consumer = s.durable(stream, jetstream.ConsumerConfig{
		Durable:     consumerReports,
		Description: "alert: rule evaluation over reports",
		// When first created, from the service's start on (see built);
		// once it exists, Durable resumes it after its floor, so nothing
		// unacknowledged is skipped.
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &s.built,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       2 * time.Minute,
		MaxAckPending: 256, // the size of reports: the handler never waits long
	})
	return e, nil
}

// seedActivity learns when each model last published from the streams,
// so a model that went silent while the service was down still fires
// no_data.
func (e *evaluator) seedActivity(ctx context.Context) {
	subjects := e.s.env.Subjects
	for _, src := range []struct{ role, kind string }{
		{natsbus.StreamPredictions, natsbus.KindPredictions},
		{natsbus.StreamRejected, natsbus.KindRejected},
	} {
		stream, err := e.s.env.JS.Stream(ctx, subjects.StreamName(src.role))
		if err != nil {
			continue
		}
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subjects.All(src.kind)))
		if err != nil {
			continue
		}
		for subject := range info.State.Subjects {
			m, err := stream.GetLastMsgForSubject(ctx, subject)
			if err != nil {
				continue
			}
			e.activity.Seen(subjects.Model(subject), m.Time)
		}
	}
}

// close ends the subscriptions and hands back what run left unhandled;
// it is called once run returned (or instead of it).
func (e *evaluator) close() {
	for _, sub := range e.subs {
		_ = sub.Unsubscribe()
	}
	for {
		select {
		case m := <-e.reports:
			_ = m.Nak()
		default:
			return
		}
	}
}

// run evaluates reports and the periodic sources until ctx ends (it
// returns once the consumer drained) or the consumer cannot be recreated.
func (e *evaluator) run(ctx context.Context) error {
	consumed := consume(ctx, e.consumer, e.reports)
	ticker := time.NewTicker(e.s.cfg.EvaluationInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return <-consumed
		case err := <-consumed:
			return err
		case m := <-e.reports:
			e.handleReport(ctx, m)
		case <-ticker.C:
			e.tick(ctx)
		}
	}
}

// handleReport evaluates one report message and acknowledges it once its
// events are published and the state stored.
func (e *evaluator) handleReport(ctx context.Context, m jetstream.Msg) {
	subjects := e.s.env.Subjects
	subject := m.Subject()
	model := subjects.Model(subject)
	kind, _, _ := strings.Cut(strings.TrimPrefix(subject, subjects.Prefix+"."), ".")
	report, err := alerting.DecodeReport(m.Data())
	if err != nil || model == "" {
		e.s.log.Warn("report dropped", zap.String("subject", subject), zap.Error(err))
		_ = m.Term()
		return
	}
	e.s.metrics.reports.WithLabelValues(kind).Inc()
	if err := e.evaluate(ctx, kind, model, subject, report); err != nil {
		_ = m.Nak()
		return
	}
	_ = m.Ack()
}

// tick evaluates the rejections and activity sources.
func (e *evaluator) tick(ctx context.Context) {
	subjects := e.s.env.Subjects
	now := e.s.now()
	e.mu.Lock()
	rates := e.activity.RateReports(now, e.s.cfg.RejectionRate.MinCount)
	silent := e.activity.ActivityReports(now)
	e.mu.Unlock()
	for model, r := range rates {
		if e.evaluate(ctx, alerting.SourceRejections, model, subjects.For(natsbus.KindRejected, model), r) != nil {
			return
		}
	}
	for model, r := range silent {
		if e.evaluate(ctx, alerting.SourceActivity, model, subjects.For(natsbus.KindPredictions, model), r) != nil {
			return
		}
	}
}

// evaluate runs the rules of source over one report, publishes the events
// and stores the state, retrying until it succeeds or ctx ends (then it
// returns ctx's error). A write that fails permanently (e.g. an event over
// the max payload) is logged, counted and skipped: retrying it would stop
// every later report.
func (e *evaluator) evaluate(ctx context.Context, source, model, subject string, r alerting.Report) error {
	e.s.metrics.evaluations.Add(float64(e.eval.Count(source)))
	res := e.eval.Evaluate(source, model, subject, r, e.s.now())
	skip := func(op string, err error) error {
		if err == nil || ctx.Err() != nil {
			return err
		}
		e.s.metrics.permanent.WithLabelValues(op).Inc()
		e.s.log.Error(op+" skipped", zap.String("model", model), zap.String("source", source), zap.Error(err))
		return nil
	}
	for _, a := range res.Events {
		if err := skip("publish alert", e.s.retry(ctx, "publish alert", func(ctx context.Context) error { return e.publish(ctx, a) })); err != nil {
			return err
		}
	}
	for _, st := range res.Changed {
		b, _ := json.Marshal(st)
		if err := skip("store alert state", e.s.retry(ctx, "store alert state", func(ctx context.Context) error {
			_, err := e.state.Put(ctx, keyAlert+st.Fingerprint, b)
			return err
		})); err != nil {
			return err
		}
	}
	for _, fp := range res.Deleted {
		if err := skip("delete alert state", e.s.retry(ctx, "delete alert state", func(ctx context.Context) error {
			return e.state.Delete(ctx, keyAlert+fp)
		})); err != nil {
			return err
		}
	}
	return nil
}

// publish sends one alert event. Its message ID makes a repeat after a
// crash a duplicate JetStream drops.
func (e *evaluator) publish(ctx context.Context, a alerting.Alert) error {
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	at := a.StartsAt
	if a.EndsAt != nil {
		at = *a.EndsAt
	}
	msg := nats.NewMsg(e.s.env.Subjects.For(natsbus.KindAlerts, a.Model))
	msg.Data = data
	msg.Header.Set("Content-Type", "application/json")
	msg.Header.Set(jetstream.MsgIDHeader, a.Fingerprint+"-"+a.Status+"-"+strconv.FormatInt(at.UnixNano(), 36))
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := e.s.env.JS.PublishMsg(pctx, msg); err != nil {
		return fmt.Errorf("publish alert: %w", err)
	}
	if a.Firing() {
		e.firing++
	} else {
		e.firing--
	}
	e.s.metrics.firing.Set(float64(e.firing))
	e.s.metrics.events.WithLabelValues(a.Rule, a.Status).Inc()
	e.s.log.Info("alert "+a.Status, zap.String("model", a.Model), zap.String("rule", a.Rule),
		zap.String("labels", alerting.LabelString(a.Labels)), zap.String("fingerprint", a.Fingerprint), zap.String("summary", a.Summary))
	return nil
}
