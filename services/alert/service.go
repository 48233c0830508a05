// Package alert is Lookout's alert service: it evaluates rules over drift,
// canary and performance reports and over ingest's output (rejection rate,
// silent models), publishes firing and resolved events on
// lookout.alerts.<model>, groups them per model into notifications, and
// delivers those to webhooks, Slack and email with retries.
//
// The pipeline has three stages joined by JetStream, so none loses work
// when the process stops: evaluate (reports → alert events on ALERTS),
// dispatch (alert events → grouped notifications on the NOTIFY stream, one
// subject per sink) and deliver (one durable consumer per sink, acking a
// notification only once the sink accepted it).
package alert

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/notify"
	"github.com/lookout-ml/lookout/pkg/service"
)

// Service is the alert service.
type Service struct {
	env     service.Env
	cfg     Config
	log     *zap.Logger
	rules   []alerting.Rule
	sinks   []sink
	metrics *metrics
	// now is the clock (tests may replace it).
	now func() time.Time
	// built is when the service was made: its consumers, when first
	// created, read every report and alert event stored since, so that
	// nothing published while they were being set up (a slow cluster,
	// drift's first report racing the alert service's start) goes
	// unevaluated or unnotified.
	built time.Time
	// maxPayload, when above zero, replaces the connection's max payload
	// in the notification budget (tests use it to reach the server's own
	// limit).
	maxPayload int64
}

var _ service.Service = (*Service)(nil)

// sink is one configured notification target.
type sink struct {
	filter alerting.SinkFilter
	kind   string
	notify.Sink
}

// New returns the alert service. It fails on an invalid rule or sink.
func New(env service.Env, cfg Config) (*Service, error) {
	def := DefaultConfig()
	if cfg.GroupInterval <= 0 {
		cfg.GroupInterval = def.GroupInterval
	}
	if cfg.RepeatInterval <= 0 {
		cfg.RepeatInterval = def.RepeatInterval
	}
	if cfg.EvaluationInterval <= 0 {
		cfg.EvaluationInterval = def.EvaluationInterval
	}
	if cfg.RejectionRate.Window <= 0 {
		cfg.RejectionRate.Window = def.RejectionRate.Window
	}
	if cfg.Retry.Initial <= 0 {
		cfg.Retry.Initial = def.Retry.Initial
	}
	if cfg.Retry.Max < cfg.Retry.Initial {
		cfg.Retry.Max = max(def.Retry.Max, cfg.Retry.Initial)
	}
	if cfg.Retry.GiveUpAfter <= 0 {
		cfg.Retry.GiveUpAfter = def.Retry.GiveUpAfter
	}
	s := &Service{env: env, cfg: cfg, log: env.Log, rules: cfg.EffectiveRules(), now: time.Now, built: time.Now()}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if _, err := alerting.NewEvaluator(s.rules); err != nil {
		return nil, fmt.Errorf("alert: %w", err)
	}
	names, err := cfg.sinkNames()
	if err != nil {
		return nil, fmt.Errorf("alert: %w", err)
	}
	for i, sc := range cfg.Sinks {
		snk, err := buildSink(sc)
		if err != nil {
			return nil, fmt.Errorf("alert: sink %s: %w", names[i], err)
		}
		s.sinks = append(s.sinks, sink{
			filter: alerting.SinkFilter{Name: names[i], Rules: sc.Rules, Severities: sc.Severities},
			kind:   sc.Type,
			Sink:   snk,
		})
	}
	reg := env.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(reg)
	return s, nil
}

func buildSink(sc SinkConfig) (notify.Sink, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	switch sc.Type {
	case "webhook":
		if sc.URL == "" {
			return nil, errors.New("webhook: no url")
		}
		return &notify.Webhook{URL: sc.URL, Secret: sc.Secret, PreviousSecret: sc.PreviousSecret, Client: client}, nil
	case "slack":
		if sc.URL == "" {
			return nil, errors.New("slack: no url")
		}
		return &notify.Slack{URL: sc.URL, Client: client}, nil
	case "email":
		if sc.SMTP == "" || sc.From == "" || len(sc.To) == 0 {
			return nil, errors.New("email: smtp, from and to are required")
		}
		switch sc.StartTLS {
		case "", notify.StartTLSAuto, notify.StartTLSAlways, notify.StartTLSNever:
		default:
			return nil, fmt.Errorf("email: starttls %q is not auto, always or never", sc.StartTLS)
		}
		return &notify.Email{Addr: sc.SMTP, From: sc.From, To: sc.To, Username: sc.Username, Password: sc.Password, StartTLS: sc.StartTLS}, nil
	}
	return nil, fmt.Errorf("type %q is not webhook, slack or email", sc.Type)
}

// SetSink replaces the sender of the named sink (tests use it to give an
// email sink a TLS configuration). It must be called before Run.
func (s *Service) SetSink(name string, snk notify.Sink) error {
	for i := range s.sinks {
		if s.sinks[i].filter.Name == name {
			s.sinks[i].Sink = snk
			return nil
		}
	}
	return fmt.Errorf("alert: no sink %q", name)
}

// Run sets up the buckets, streams and consumers, then evaluates,
// dispatches and delivers until ctx ends. It returns nil after a clean
// stop, with unfinished notifications handed back to JetStream.
func (s *Service) Run(ctx context.Context) error {
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := s.setup(setup)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("alert: %w", err)
	}
	s.log.Info("alert service running", zap.Int("rules", len(s.rules)), zap.Int("sinks", len(s.sinks)))
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, 2+len(s.sinks))
	start := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(runCtx); err != nil && runCtx.Err() == nil {
				errs <- fmt.Errorf("alert %s: %w", name, err)
				stop()
			}
		}()
	}
	start("evaluate", p.evaluator.run)
	start("dispatch", p.dispatcher.run)
	for _, d := range p.deliverers {
		start("deliver "+d.sink.filter.Name, d.run)
	}
	<-runCtx.Done()
	wg.Wait()
	p.close()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// pipeline is the running stages.
type pipeline struct {
	evaluator  *evaluator
	dispatcher *dispatcher
	deliverers []*deliverer
	closers    []func()
}

func (p *pipeline) close() {
	for _, c := range p.closers {
		c()
	}
}

func (s *Service) setup(ctx context.Context) (*pipeline, error) {
	js, subjects := s.env.JS, s.env.Subjects
	state, err := openState(ctx, js, subjects)
	if err != nil {
		return nil, err
	}
	silences, err := OpenSilences(ctx, js, subjects)
	if err != nil {
		return nil, err
	}
	if _, err := ensureNotifyStream(ctx, js, subjects); err != nil {
		return nil, err
	}
	p := &pipeline{}
	if p.evaluator, err = s.newEvaluator(ctx, state); err != nil {
		p.close()
		return nil, err
	}
	p.closers = append(p.closers, p.evaluator.close)
	if p.dispatcher, err = s.newDispatcher(ctx, state, silences); err != nil {
		p.close()
		return nil, err
	}
	p.closers = append(p.closers, p.dispatcher.close)
	for _, snk := range s.sinks {
		p.deliverers = append(p.deliverers, s.newDeliverer(snk))
	}
	return p, nil
}

// retry calls f until it succeeds, fails permanently (permanentPublish)
// or ctx ends, waiting between attempts with a backoff from 100ms up to
// 5s; it logs each transient failure.
func (s *Service) retry(ctx context.Context, what string, f func(context.Context) error) error {
	wait := 100 * time.Millisecond
	for {
		err := f(ctx)
		if err == nil || ctx.Err() != nil || permanentPublish(err) {
			return err
		}
		s.log.Warn("retrying", zap.String("op", what), zap.Error(err), zap.Duration("in", wait))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// metrics are the service's Prometheus collectors.
type metrics struct {
	reports       *prometheus.CounterVec
	evaluations   prometheus.Counter
	events        *prometheus.CounterVec
	firing        prometheus.Gauge
	notifications *prometheus.CounterVec
	deliveries    *prometheus.CounterVec
	deliverTime   *prometheus.HistogramVec
	deadLetters   *prometheus.CounterVec
	permanent     *prometheus.CounterVec
}

// newMetrics returns the service's metrics, registered once per registry
// (the service is built anew for each lease it takes).
func newMetrics(reg prometheus.Registerer) *metrics { return service.SharedMetrics(reg, makeMetrics) }

func makeMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		reports: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_alert_reports_total", Help: "Reports evaluated, by source.",
		}, []string{"source"}),
		evaluations: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_alert_rule_evaluations_total", Help: "Rule evaluations (one rule over one report).",
		}),
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_alert_events_total", Help: "Alert events published, by rule and status.",
		}, []string{"rule", "status"}),
		firing: f.NewGauge(prometheus.GaugeOpts{
			Name: "lookout_alert_firing", Help: "Alerts firing now.",
		}),
		notifications: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_alert_notifications_queued_total", Help: "Notifications queued for a sink.",
		}, []string{"sink"}),
		deliveries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_alert_deliveries_total", Help: "Delivery attempts, by sink and result (ok, error, dead).",
		}, []string{"sink", "result"}),
		deliverTime: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lookout_alert_delivery_seconds", Help: "Time from a notification's queueing to its delivery.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"sink"}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_notify_dead_letters_total",
			Help: "Notifications that will never be delivered, kept on <prefix>.notify.dead.<sink>, by sink and reason.",
		}, []string{"sink", "reason"}),
		permanent: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_alert_permanent_errors_total",
			Help: "Writes skipped because trying again cannot help (e.g. over the max payload), by operation.",
		}, []string{"op"}),
	}
}

// durable returns the consumer cfg.Durable on stream, owned: alert runs as
// a singleton under its lease, so at start the consumer is recreated at its
// acknowledgement floor and whatever a crashed process held is delivered
// again at once. Its state goes to health as alert/<name>.
func (s *Service) durable(stream string, cfg jetstream.ConsumerConfig) *natsbus.Durable {
	return &natsbus.Durable{
		JS:     s.env.JS,
		Stream: stream,
		Config: cfg,
		Owned:  true,
		Log:    s.log,
		Health: s.env.Health.Reporter("alert/" + cfg.Durable),
	}
}

// consume runs c until ctx ends, handing each message to the stage's loop
// on ch; once ctx ended, what is still delivered is handed back. The
// returned channel gets Consume's result: nil after ctx ended and the
// consumer drained, an error when it could not be recreated.
func consume(ctx context.Context, c *natsbus.Durable, ch chan<- jetstream.Msg) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(ctx, func(m jetstream.Msg) {
			select {
			case ch <- m:
			case <-ctx.Done():
				_ = m.Nak()
			}
		})
	}()
	return done
}
