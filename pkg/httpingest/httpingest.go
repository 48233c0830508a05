// Package httpingest owns Lookout's HTTP input: plain JSON on
// POST /v1/predictions/{model} and POST /v1/feedback/{model}, and OTLP/HTTP
// logs on POST /v1/logs, the way BentoML's `otlp` monitor sends them.
//
// It is a transport, not a second ingest: every event is checked with the
// very functions the ingest and feedback services use (event.DecodePrediction,
// event.DecodeFeedback), so the answer can name each rejection at once, and
// then published, valid or not, on the same input subjects a NATS client
// uses (lookout.ingest.<model>, lookout.feedback.<model>). The services
// decode it again and reach the same verdict, so an event sent over HTTP
// ends exactly where the same event sent over NATS would: on
// lookout.predictions.<model> or, with the same rejection record, on
// lookout.rejected.<model>. The answer is written only once JetStream
// stored every message of the request.
package httpingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// Bounds of one request.
const (
	// MaxBodyBytes is the largest request body, after gzip is undone;
	// beyond it the answer is 413 and nothing is published.
	MaxBodyBytes = 16 << 20
	// MaxLines is the most JSON lines (or log records) one request may hold.
	MaxLines = 100_000
	// publishChunk bounds the publishes waiting for their acknowledgement,
	// well under the connection's async limit.
	publishChunk = 512
	// maxPending bounds the publishes of all requests awaiting their
	// acknowledgement; a request beyond it waits (up to stallWait) for room.
	maxPending = 4096
	stallWait  = 10 * time.Second
	// storeTimeout bounds the wait for JetStream to store one request.
	storeTimeout = 30 * time.Second
)

// Config tunes the HTTP input. YAML section `otlp` holds the OTLP part.
type Config struct {
	// Models maps a BentoML monitor name to a Lookout model; a monitor not
	// listed is the model of its own name.
	Models map[string]string `yaml:"models"`
}

// DefaultConfig returns the defaults: no mapping.
func DefaultConfig() Config { return Config{} }

// Validate checks that every mapped model is a NATS-safe token. Errors name
// the key path inside the `otlp` section.
func (c Config) Validate() error {
	var errs []error
	for monitor, model := range c.Models {
		if !event.IsValidModel(model) {
			errs = append(errs, fmt.Errorf("models.%s: %q is not a model name (letters, digits, '-' and '_')", monitor, model))
		}
	}
	return errors.Join(errs...)
}

// Options are what a Handler needs.
type Options struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Subjects natsbus.Subjects
	Log      *zap.Logger
	Metrics  prometheus.Registerer
	Config   Config
	// MaxMessageBytes is ingest's size limit of one event (default 1 MiB),
	// so that the answer agrees with ingest's verdict.
	MaxMessageBytes int
}

// Handler serves the HTTP input endpoints.
type Handler struct {
	opts    Options
	metrics *metrics
	schemas *schemaStore
}

// New returns a Handler. It opens (creating it when missing) the key-value
// bucket where the last BentoML schema of each monitor is kept, so that
// records sent without bento_meta are understood after a restart; the
// error says when the bucket cannot be opened.
func New(ctx context.Context, opts Options) (*Handler, error) {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = event.DefaultMaxBytes
	}
	if opts.Metrics == nil {
		opts.Metrics = prometheus.NewRegistry()
	}
	if opts.NC != nil {
		// A JetStream context of its own: its limit of pending publishes
		// is not shared with ingest's republishing on the same connection,
		// so a busy ingest does not stall HTTP answers into errors.
		js, err := jetstream.New(opts.NC, jetstream.WithPublishAsyncMaxPending(maxPending), jetstream.WithPublishAsyncTimeout(storeTimeout))
		if err != nil {
			return nil, fmt.Errorf("httpingest: jetstream: %w", err)
		}
		opts.JS = js
	}
	schemas, err := openSchemaStore(ctx, opts.JS, opts.Subjects)
	if err != nil {
		return nil, fmt.Errorf("httpingest: %w", err)
	}
	return &Handler{opts: opts, metrics: newMetrics(opts.Metrics), schemas: schemas}, nil
}

// Register mounts the endpoints on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/predictions/{model}", h.servePredictions)
	mux.HandleFunc("POST /v1/feedback/{model}", h.serveFeedback)
	mux.HandleFunc("POST /v1/logs", h.serveLogs)
}

// outgoing is one message to store and whether its event was valid.
type outgoing struct {
	msg   *nats.Msg
	valid bool
}

// store publishes every message and waits until JetStream stored each
// one, in chunks so the connection's pending limit is never reached. It
// returns how many valid messages were duplicates, or the first error: the
// caller answers 503 and the client retries (events with ids are then
// de-duplicated).
func (h *Handler) store(ctx context.Context, out []outgoing) (duplicates int, err error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	for start := 0; start < len(out); start += publishChunk {
		chunk := out[start:min(start+publishChunk, len(out))]
		futures := make([]jetstream.PubAckFuture, len(chunk))
		for i, o := range chunk {
			f, err := h.opts.JS.PublishMsgAsync(o.msg, jetstream.WithStallWait(stallWait))
			if err != nil {
				return duplicates, fmt.Errorf("publish on %s: %w", o.msg.Subject, err)
			}
			futures[i] = f
		}
		for i, f := range futures {
			select {
			case ack := <-f.Ok():
				if ack.Duplicate && chunk[i].valid {
					duplicates++
				}
			case err := <-f.Err():
				return duplicates, fmt.Errorf("store on %s: %w", f.Msg().Subject, err)
			case <-ctx.Done():
				return duplicates, fmt.Errorf("store: %w", ctx.Err())
			}
		}
	}
	return duplicates, nil
}

// input names which service's subject an event goes to.
type input int

const (
	inputPrediction input = iota
	inputFeedback
)

// inputKind is the subject kind of an input.
func inputKind(in input) string {
	if in == inputFeedback {
		return natsbus.KindFeedback
	}
	return natsbus.KindIngest
}

// message returns the message carrying data to the input subject of
// model. A valid prediction with an id, or valid feedback, gets a
// de-duplication id, so that a retried request stores it once: the
// prediction's model-scoped id, or for feedback its content (a corrected
// label for the same prediction is different content, and kept). An
// invalid event gets none: its corrected version must not be dropped.
//
// An event too large for the server's max payload cannot travel to the
// service that would reject it; its rejection, built as that service
// builds one, is stored directly on the rejected subject instead.
func (h *Handler) message(in input, model string, data []byte, valid bool, id string, reasons []*event.Reason, received time.Time) *nats.Msg {
	msg := nats.NewMsg(h.opts.Subjects.For(inputKind(in), model))
	msg.Data = data
	msg.Header.Set("Content-Type", event.ContentTypeJSON)
	switch {
	case valid && in == inputPrediction && id != "":
		msg.Header.Set(jetstream.MsgIDHeader, natsbus.MsgID(model, id))
	case valid && in == inputFeedback:
		sum := sha256.Sum256(data)
		msg.Header.Set(jetstream.MsgIDHeader, natsbus.MsgID(model, "feedback-"+hex.EncodeToString(sum[:16])))
	}
	if err := natsbus.CheckPayload(h.opts.NC, msg); err != nil {
		if len(reasons) == 0 {
			reasons = []*event.Reason{{Code: event.CodeTooLarge, Message: err.Error()}}
		}
		return h.rejection(in, model, msg.Subject, data, reasons, received)
	}
	return msg
}

// rejection returns a rejection record for lookout.rejected.<model>, the
// same record ingest and feedback write, for input that cannot be handed
// to them.
func (h *Handler) rejection(in input, model, subject string, original []byte, reasons []*event.Reason, received time.Time) *nats.Msg {
	if !event.IsValidModel(model) {
		model = "_unknown"
	}
	out := nats.NewMsg(h.opts.Subjects.For(natsbus.KindRejected, model))
	out.Data = event.MarshalRejection(&event.Rejection{
		Model: model, Subject: subject, Reasons: reasons, Original: original, ReceivedUnixNano: received.UnixNano(),
	})
	out.Header.Set("Content-Type", event.ContentTypeJSON)
	if in == inputFeedback {
		out.Header.Set(event.HeaderInput, event.InputFeedback)
	}
	return out
}

// reasonJSON is a reason in an answer, as in a rejection record.
type reasonJSON struct {
	Field   string `json:"field,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func reasonsJSON(rs []*event.Reason) []reasonJSON {
	out := make([]reasonJSON, 0, len(rs))
	for _, r := range rs {
		out = append(out, reasonJSON{Field: r.GetField(), Code: r.GetCode(), Message: r.GetMessage()})
	}
	return out
}

type metrics struct {
	events   *prometheus.CounterVec
	requests *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_http_ingest_events_total",
			Help: "Events received over HTTP and stored, by endpoint (predictions, feedback, otlp) and result (accepted, rejected).",
		}, []string{"endpoint", "result"}),
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_http_ingest_requests_total",
			Help: "HTTP ingest requests, by endpoint and status code.",
		}, []string{"endpoint", "code"}),
	}
}

// metricsRegistry returns the registry the handler counts in, for tests.
func (h *Handler) metricsRegistry() *prometheus.Registry {
	reg, _ := h.opts.Metrics.(*prometheus.Registry)
	return reg
}
