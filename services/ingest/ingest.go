// Package ingest is the service that validates what clients publish on
// lookout.ingest.<model> and republishes it, normalised, on
// lookout.predictions.<model>, or with its reasons on
// lookout.rejected.<model>.
//
// Nothing acknowledged by JetStream is lost: an ingest message is
// acknowledged only after its republished copy is stored, and handed back
// (nak) when that fails, so it is delivered again.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/service"
)

// Config tunes the ingest service. YAML section `ingest`.
type Config struct {
	// MaxMessageBytes is the largest message accepted (default 1 MiB).
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxInFlight bounds the messages being republished and not yet
	// acknowledged, per process.
	MaxInFlight int `yaml:"max_in_flight"`
	// AckWait is how long JetStream waits for an acknowledgement before it
	// delivers a message again (to this or another ingest process). Ingest
	// handles a message in milliseconds, so a short wait means what a
	// killed process held is delivered again within seconds.
	AckWait time.Duration `yaml:"ack_wait"`
	// MaxDeliveries is how often a message is tried before it is rejected
	// as `undeliverable`.
	MaxDeliveries int `yaml:"max_deliveries"`
	// UndeliverableAfter is how long a message must have waited in the
	// ingest stream, besides its MaxDeliveries deliveries, before it is
	// rejected as `undeliverable`. In a cluster a node loss and its leader
	// elections make republishes time out for seconds while the message is
	// delivered again every AckWait: a valid prediction must ride that out
	// rather than be rejected.
	UndeliverableAfter time.Duration `yaml:"undeliverable_after"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxMessageBytes: event.DefaultMaxBytes, MaxInFlight: 4096, AckWait: 5 * time.Second, MaxDeliveries: 5,
		UndeliverableAfter: 2 * time.Minute}
}

// ConsumerName is the durable consumer that every ingest process shares.
const ConsumerName = "ingest"

// Service is the ingest service.
type Service struct {
	env     service.Env
	cfg     Config
	metrics *metrics
	// inflight carries republished messages, in order, to the goroutine
	// that waits for their acknowledgement and then acknowledges the input.
	inflight chan inflight
	// finish bounds the synchronous rejections made while draining.
	finish context.Context
}

type inflight struct {
	msg      jetstream.Msg
	future   jetstream.PubAckFuture
	model    string
	accepted bool
	start    time.Time
	// reject, for a message whose republish cannot be stored at all, is
	// the rejection to store instead.
	reject func(reason *event.Reason) *nats.Msg
	// verdictTo, when set, is told the outcome once it is stored
	// (event.HeaderVerdictTo); reasons are the rejection's.
	verdictTo string
	reasons   []*event.Reason
}

var _ service.Service = (*Service)(nil)

// New returns an ingest service.
func New(env service.Env, cfg Config) *Service {
	def := DefaultConfig()
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = def.MaxMessageBytes
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = def.MaxInFlight
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = def.AckWait
	}
	if cfg.MaxDeliveries <= 0 {
		cfg.MaxDeliveries = def.MaxDeliveries
	}
	if cfg.UndeliverableAfter <= 0 {
		cfg.UndeliverableAfter = def.UndeliverableAfter
	}
	return &Service{env: env, cfg: cfg, metrics: newMetrics(env.Metrics)}
}

// Run consumes the ingest stream until ctx is cancelled. On the way out it
// stops fetching, waits for the messages in flight and acknowledges them
// (or hands them back), and returns nil.
func (s *Service) Run(ctx context.Context) error {
	stream := s.env.Subjects.StreamName(natsbus.StreamIngest)
	consumer := &natsbus.Durable{
		JS:     s.env.JS,
		Stream: stream,
		Config: jetstream.ConsumerConfig{
			Durable:       ConsumerName,
			Description:   "lookout ingest: validate and republish",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       s.cfg.AckWait,
			MaxAckPending: 4 * s.cfg.MaxInFlight,
			MaxDeliver:    -1,
			// No filter: the stream is a work queue, and whatever it
			// stored (even a literal "lookout.ingest.>") must be
			// delivered, to be republished or rejected.
		},
		Log:    s.env.Log,
		Health: s.env.Health.Reporter("ingest"),
	}
	finish, cancelFinish := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFinish()
	s.finish = finish
	s.inflight = make(chan inflight, s.cfg.MaxInFlight)
	var acks sync.WaitGroup
	acks.Add(1)
	go func() {
		defer acks.Done()
		s.acknowledge()
	}()
	s.env.Log.Info("ingest started", zap.String("stream", stream), zap.String("consumer", ConsumerName))
	err := consumer.Consume(ctx, s.handle)
	close(s.inflight)
	acks.Wait()
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	s.env.Log.Info("ingest stopped")
	return nil
}

// handle validates one message and starts its republish. It never blocks
// on the acknowledgement: acknowledge does that, in order.
func (s *Service) handle(msg jetstream.Msg) {
	start := time.Now()
	meta, err := msg.Metadata()
	if err != nil {
		s.env.Log.Warn("ingest: message without metadata", zap.Error(err))
		_ = msg.Term()
		return
	}
	model := s.env.Subjects.Model(msg.Subject())
	s.metrics.received.Inc()

	headers := msg.Headers()
	// The derived id (a SHA-256) is needed only for an event without an
	// id, a replay or a rejection: most events carry their own.
	var derived string
	derivedID := func() string {
		if derived == "" {
			derived = event.DeriveID(meta.Stream, meta.Sequence.Stream, meta.Timestamp)
		}
		return derived
	}
	rejection := func(reasons []*event.Reason) *nats.Msg {
		rejModel := model
		if !event.IsValidModel(rejModel) {
			rejModel = "_unknown"
		}
		out := nats.NewMsg(s.env.Subjects.For(natsbus.KindRejected, rejModel))
		out.Data = event.MarshalRejection(&event.Rejection{
			Model:            rejModel,
			Subject:          msg.Subject(),
			Reasons:          reasons,
			Original:         msg.Data(),
			ReceivedUnixNano: meta.Timestamp.UnixNano(),
		})
		out.Header.Set("Content-Type", event.ContentTypeJSON)
		out.Header.Set(jetstream.MsgIDHeader, "rejected:"+derivedID())
		return out
	}
	item := inflight{msg: msg, model: model, start: start, reject: func(r *event.Reason) *nats.Msg {
		return rejection([]*event.Reason{r})
	}, verdictTo: event.VerdictSubject(headers.Get(event.HeaderVerdictTo))}

	var reasons []*event.Reason
	var p *event.Prediction
	switch {
	case !event.IsValidModel(model):
		// Only a client can put a wildcard or an empty token there.
		reasons = []*event.Reason{{Field: "subject", Code: event.CodeInvalid,
			Message: fmt.Sprintf("subject %q does not name a model: the last token must be letters, digits, '-' or '_'", msg.Subject())}}
	case int(meta.NumDelivered) > s.cfg.MaxDeliveries && time.Since(meta.Timestamp) > s.cfg.UndeliverableAfter:
		reasons = []*event.Reason{{Code: event.CodeUndeliverable,
			Message: fmt.Sprintf("not handled after %d deliveries", meta.NumDelivered-1)}}
	default:
		p, reasons = event.DecodePrediction(msg.Data(), event.DecodeOptions{
			SubjectModel: model,
			ContentType:  headers.Get("Content-Type"),
			MaxBytes:     s.cfg.MaxMessageBytes,
			Received:     meta.Timestamp,
		})
	}
	var out *nats.Msg
	if len(reasons) == 0 {
		if p.Id == "" {
			p.Id = derivedID()
		}
		item.accepted = true
		item.model = p.Model
		out = nats.NewMsg(s.env.Subjects.For(natsbus.KindPredictions, p.Model))
		out.Data = event.AppendJSON(make([]byte, 0, len(msg.Data())+128), p)
		out.Header.Set("Content-Type", event.ContentTypeJSON)
		msgID := natsbus.MsgID(p.Model, p.Id)
		if replay := headers.Get(event.HeaderReplay); replay != "" {
			// A replay of an archived event keeps its id but must not be
			// dropped as a duplicate of the original within the window.
			out.Header.Set(event.HeaderReplay, replay)
			msgID = "replay:" + derivedID()
		}
		out.Header.Set(jetstream.MsgIDHeader, msgID)
		if err := natsbus.CheckPayload(s.env.NC, out); err != nil {
			// Normalised, the event grew past what the server takes.
			item.accepted = false
			reasons = []*event.Reason{{Code: event.CodeTooLarge, Message: err.Error()}}
		}
	}
	if len(reasons) > 0 {
		for _, r := range reasons {
			s.metrics.rejected.WithLabelValues(r.GetCode()).Inc()
		}
		out = rejection(reasons)
		item.reasons = reasons
	}
	// At MaxInFlight the publish waits for a slot (backpressure) rather
	// than failing after the client's default 200 ms, which under load
	// handed messages back to be delivered again a second later; beyond
	// AckWait waiting is pointless, the server delivers the message again.
	future, err := s.env.JS.PublishMsgAsync(out, jetstream.WithStallWait(s.cfg.AckWait))
	if err != nil {
		s.env.Log.Warn("ingest: republish failed, handing the message back", zap.String("subject", out.Subject), zap.Error(err))
		_ = msg.NakWithDelay(time.Second)
		return
	}
	item.future = future
	s.inflight <- item
}

// acknowledge waits, in order, for each republish to be stored, then
// acknowledges the input message. A republish that failed for a reason a
// retry cannot fix is replaced by a rejection; any other failure hands the
// message back, to be delivered again.
func (s *Service) acknowledge() {
	for item := range s.inflight {
		select {
		case ack := <-item.future.Ok():
			s.ack(item.msg)
			switch {
			case ack.Duplicate:
				// The same model and id within the duplicate window:
				// stored once, counted here, never as accepted.
				s.metrics.duplicates.Inc()
			case item.accepted:
				s.metrics.accepted.Inc()
			default:
				s.metrics.rejectedMessages.Inc()
			}
			s.metrics.latency.Observe(time.Since(item.start).Seconds())
			s.verdict(item.verdictTo, event.Verdict{Accepted: item.accepted && !ack.Duplicate, Duplicate: ack.Duplicate, Reasons: item.reasons})
		case err := <-item.future.Err():
			if !natsbus.IsPermanent(err) {
				s.env.Log.Warn("ingest: republish not stored, handing the message back",
					zap.String("subject", item.future.Msg().Subject), zap.Error(err))
				_ = item.msg.NakWithDelay(time.Second)
				continue
			}
			s.env.Log.Warn("ingest: republish cannot be stored; rejecting the message",
				zap.String("subject", item.future.Msg().Subject), zap.Error(err))
			s.metrics.rejected.WithLabelValues(event.CodeUndeliverable).Inc()
			rej := item.reject(&event.Reason{Code: event.CodeUndeliverable, Message: "cannot be stored: " + err.Error()})
			ctx, cancel := context.WithTimeout(s.finish, 30*time.Second)
			err = natsbus.PublishUntilStored(ctx, s.env.JS, rej, func(err error) {
				s.env.Log.Warn("ingest: rejection not stored, retrying", zap.Error(err))
			})
			cancel()
			if err != nil {
				_ = item.msg.NakWithDelay(time.Second)
				continue
			}
			s.ack(item.msg)
			s.metrics.rejectedMessages.Inc()
			s.verdict(item.verdictTo, event.Verdict{Reasons: []*event.Reason{{Code: event.CodeUndeliverable, Message: "cannot be stored: " + err.Error()}}})
		}
	}
}

// verdict tells a client that asked (event.HeaderVerdictTo) what became of
// its message, once that is stored. Core NATS, at most once: a client that
// misses it still has the JetStream ack, and a redelivered message is
// answered again, which the client de-duplicates by subject.
func (s *Service) verdict(to string, v event.Verdict) {
	if to == "" {
		return
	}
	if err := s.env.NC.Publish(to, event.MarshalVerdict(v)); err != nil {
		s.env.Log.Debug("ingest: verdict not sent", zap.Error(err))
	}
}

func (s *Service) ack(msg jetstream.Msg) {
	if err := msg.Ack(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.env.Log.Warn("ingest: ack failed; the message will be delivered again and de-duplicated", zap.Error(err))
	}
}

type metrics struct {
	received         prometheus.Counter
	duplicates       prometheus.Counter
	accepted         prometheus.Counter
	rejectedMessages prometheus.Counter
	rejected         *prometheus.CounterVec
	latency          prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		received: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_ingest_received_total", Help: "Messages read from the ingest stream.",
		}),
		duplicates: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_ingest_duplicates_total", Help: "Predictions dropped as duplicates: the same model and id within the duplicate window.",
		}),
		accepted: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_ingest_accepted_total", Help: "Predictions validated and stored on the predictions subject.",
		}),
		rejectedMessages: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_ingest_rejected_messages_total", Help: "Messages rejected and stored on the rejected subject.",
		}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_ingest_rejected_total", Help: "Reasons for rejection, by reason code (a message can have several).",
		}, []string{"reason"}),
		latency: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "lookout_ingest_processing_seconds",
			Help:    "Time from reading a message to acknowledging it, its republish stored.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
}
