// Package feedback is the service that tracks how good predictions really
// were: it joins the feedback clients publish on lookout.feedback.<model>
// (ground-truth labels, "was this helpful?" answers; CONTRACT.md "Feedback
// event") with the predictions they are about, and publishes windowed
// quality metrics (pkg/quality) on lookout.performance.<model>, overall,
// per version and per role.
//
// Feedback names a prediction by id or a request by request_id; either way
// it applies to every prediction of the request, whatever its role, so a
// canary's prediction of a request gets the label given for production's
// (CONTRACT.md "Feedback event"). Feedback by id thus joins the named
// prediction and the others of its request: a client labels the request
// it answered, which it knows by the production prediction's id, and the
// canary's quality on the same inputs is what a verdict needs. With both
// id and request_id, id names the prediction and the request is the one
// stored with it. A prediction of the request that arrives after its
// feedback was joined still joins it while the feedback's window is not
// reported (production and canary predictions of one request are
// published moments apart, and feedback may come first). The alert service watches those reports
// with user rules (source `performance`).
//
// Predictions: at start the service reads lookout.predictions.* from now
// minus Config.Horizon with an ordered consumer, building an in-memory
// index of (model, id) → version, role and prediction, and of (model,
// request_id) → the ids of the request's predictions, bounded by Config.MaxPredictions,
// and keeps reading new ones. It consumes feedback only once the index has
// caught up, so a restart loses no join.
//
// Feedback: an owned natsbus.Durable (ConsumerName) with explicit acks;
// the service is a singleton under its lease (two processes would split
// the windows). With nats.partitions above 1 it is one singleton per
// partition of the models (service.Partitioned): it indexes its
// partition's predictions from the partitions stream, and its durable
// (ConsumerName-p<i>) reads the whole feedback stream and acknowledges the
// other partitions' models' feedback at once (natsbus.PartitionOf):
// feedback is far less than predictions, and keeping its stream's
// sequences keeps the reports' progress records and ids as they are. Feedback whose prediction is not known yet waits up to
// Config.Wait for it, then counts as unmatched.
//
// Windows (pkg/window, one series per model) are cut on the feedback
// events' ts: when the label was given, not when its prediction was made.
// Labels arrive in label order, days after predictions and in no
// prediction order, so windows on the predictions' ts would need an
// allowed lateness of days (and hold every label that long) or drop most
// labels as late; a window of feedback time is "what we learned about the
// model in this span", and its figures are about the predictions joined
// (delay_seconds says how old they were). A window closes when the
// model's watermark passes its end, when it holds Config.WindowLabels
// feedback events, or when the model's feedback time stood still for
// Config.IdleTimeout; never on "nothing pending", which a stalled
// consumer never reaches. A closed window is reported once its feedback
// still waiting for a prediction is joined or counted unmatched (at most
// Config.Wait later). Feedback later than the allowed lateness is not
// dropped: it is reported in a window of its own span at the next tick.
//
// A feedback message is acknowledged only once its window's report is
// stored, and held messages are kept alive with InProgress. With
// Config.MaxAckPending set, the server stops delivering once that many
// are held; no newer feedback could then move a watermark, so the service
// reports its open windows as they are ("pressure") and the span's later
// feedback goes to a fresh window of the same span. At every start (and
// whenever the consumer is deleted from outside) the consumer is
// recreated at its acknowledgement floor, so what the last process held
// is delivered again at once and the open windows are rebuilt.
//
// Messages above the floor that were already reported are delivered again
// too (windows of different models close out of stream order). Each
// report therefore carries its model's progress (HeaderDone, HeaderOpen):
// every feedback message of the model up to a stream sequence is done,
// except those listed. The service reads the last report of each model at
// start and keeps the same record in memory; a message it names as done is
// acknowledged and skipped, never counted twice. Each report's Nats-Msg-Id
// also names the model and its window's first message.
//
// Invalid feedback is published on lookout.rejected.<model>, in ingest's
// format, and acknowledged; so is feedback delivered more than
// Config.MaxDeliveries times (reason `undeliverable`). A report that no
// retry can store (natsbus.IsPermanent: too large, say) is counted and its
// window's feedback is rejected as `undeliverable`, then acknowledged: it
// ends on lookout.rejected.<model> instead of blocking the model for ever.
package feedback

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/quality"
	"github.com/lookout-ml/lookout/pkg/service"
	ew "github.com/lookout-ml/lookout/pkg/window"
	lookoutv1 "github.com/lookout-ml/lookout/proto/lookout/v1"
)

// ConsumerName is the feedback service's durable consumer on the feedback
// stream; partitioned, partition i's is ConsumerName-p<i>.
const ConsumerName = "feedback"

// HeaderProcess is set on each report: the process that made it (host and
// data folder, service.LeaseHolder), as on drift reports.
const HeaderProcess = "Lookout-Process"

// HeaderWindowSeq is set on each report: the feedback stream sequences of
// the window's first and last messages, "first-last".
const HeaderWindowSeq = "Lookout-Window-Seq"

// HeaderDone is set on each report: the feedback stream sequence up to
// which every feedback message of the model is done (reported or rejected)
// once the report is stored, except those in HeaderOpen.
const HeaderDone = "Lookout-Feedback-Done"

// HeaderOpen is set on each report: the model's feedback messages at or
// below HeaderDone that are not done yet (waiting for their prediction, or
// handed back), as comma-separated sequences and "first-last" ranges.
const HeaderOpen = "Lookout-Feedback-Open"

// maxOpenRanges bounds HeaderOpen. Past it the recorded HeaderDone is
// lowered to fit; what lies between is then not known as done after a
// restart, and could be counted again.
const maxOpenRanges = 4096

// Service is the feedback service.
type Service struct {
	env     service.Env
	cfg     Config
	opts    quality.Options
	metrics *metrics
	now     func() time.Time

	mu      sync.Mutex
	ctx     context.Context
	idx     *index
	waiting map[key][]*item // feedback waiting for its prediction, by model and prediction id or request id
	// joinedReq is feedback joined with the predictions of a request
	// (key.req), whose window is not reported yet: a later prediction of
	// the request joins it too.
	joinedReq map[key][]*item
	queue     []*item // the same, in arrival order (done ones skipped)
	win       *ew.Assigner[*window]
	models    map[string]struct{} // every model given to win
	late      map[lateKey]*window // late feedback, reported at the next tick
	closing   []*window           // closed, to be reported once nothing in them waits
	held      map[uint64]jetstream.Msg
	progress  map[string]*progress // by subject model
	ready     chan struct{}
	isReady   bool
	readyAt   uint64 // the predictions stream's last sequence at start
	lastKeep  time.Time
	// ackFloor returns the feedback consumer's acknowledgement floor.
	ackFloor func() uint64

	// partFrom is, by span, where the next window of a span whose window
	// closed early (full or under pressure) starts: that window's end.
	partFrom map[lateKey]time.Time

	// predsFailing is set while the predictions consumer reports errors.
	predsFailing atomic.Bool
	predsHealth  func(error)
}

// progress is what the service has done with one model's feedback: every
// message of the model up to upTo (feedback stream sequence) is done
// (reported or rejected, and acknowledged) except those in open. Feedback
// is delivered in stream order, so every message up to upTo has been
// handled once, and those not done are the ones held or handed back.
type progress struct {
	upTo uint64
	open map[uint64]struct{}
}

// item is one decoded feedback message.
type item struct {
	fb     *event.Feedback
	msg    jetstream.Msg
	seq    uint64
	stored time.Time
	ts     time.Time // its event time
	win    *window   // the window it was assigned to
	done   bool
	req    string   // the request it joined, empty when none
	joined []string // the ids of the predictions it joined
}

// window is what a performance window holds: the Value of a pkg/window
// window, or a window of late feedback.
type window struct {
	model      string
	q          *quality.Window
	start, end time.Time // the event time its report names (see closed)
	span       time.Time // the aligned span's start
	last       time.Time // the latest feedback ts in it
	why        string    // what closed it; empty while open
	waiting    int       // its feedback still waiting for a prediction
	firstSeq   uint64
	lastSeq    uint64
	msgs       []jetstream.Msg
	seqs       []uint64 // the stream sequences of msgs
	reqItems   []*item  // its feedback in joinedReq
}

// lateKey names the window of one model's late feedback of one span.
type lateKey struct {
	model string
	start int64
}

var _ service.Service = (*Service)(nil)

// New returns the feedback service. It returns an error for a
// configuration it cannot run with.
func New(env service.Env, cfg Config) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	win, err := ew.New[*window](ew.Config{
		Size: cfg.Window, MaxEvents: cfg.WindowLabels,
		AllowedLateness: cfg.AllowedLateness, IdleTimeout: cfg.IdleTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("feedback config: %w", err)
	}
	return &Service{
		env:       env,
		cfg:       cfg,
		opts:      cfg.Options(),
		metrics:   newMetrics(env.Metrics),
		now:       time.Now,
		idx:       newIndex(cfg.MaxPredictions),
		waiting:   map[key][]*item{},
		joinedReq: map[key][]*item{},
		win:       win,
		models:    map[string]struct{}{},
		late:      map[lateKey]*window{},
		partFrom:  map[lateKey]time.Time{},
		held:      map[uint64]jetstream.Msg{},
		progress:  map[string]*progress{},
		ready:     make(chan struct{}),
		ackFloor:  func() uint64 { return 0 },
	}, nil
}

// Run joins feedback with predictions until ctx is cancelled. Feedback in
// open windows, or still waiting, is delivered again to the next process.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	name, health := ConsumerName, "feedback"
	if s.env.Partitioned() {
		name, health = fmt.Sprintf("%s-p%d", ConsumerName, s.env.Partition), fmt.Sprintf("feedback.p%d", s.env.Partition)
	}
	s.predsHealth = s.env.Health.Reporter(health + "-predictions")
	preds, predsCons, err := s.readPredictions(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("feedback: predictions: %w", err)
	}
	defer func() {
		preds.Stop()
		<-preds.Closed()
	}()
	started := time.Now()
	select {
	case <-ctx.Done():
		return nil
	case <-s.ready:
	}
	s.mu.Lock()
	indexed := s.idx.len()
	s.mu.Unlock()
	s.env.Log.Info("feedback: predictions indexed", zap.Int("predictions", indexed),
		zap.Duration("horizon", s.cfg.Horizon), zap.Duration("took", time.Since(started)))
	if err := s.loadProgress(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("feedback: progress: %w", err)
	}

	consumer := &natsbus.Durable{
		JS:     s.env.JS,
		Stream: s.env.Subjects.StreamName(natsbus.StreamFeedback),
		Config: jetstream.ConsumerConfig{
			Durable:     name,
			Description: "lookout feedback: joins feedback with predictions",
			AckPolicy:   jetstream.AckExplicitPolicy,
			AckWait:     s.cfg.AckWait,
			// A window holds its feedback unacknowledged until its report
			// is stored; under a bound, tick reports open windows early
			// once it is reached (see relieve).
			MaxAckPending: s.cfg.MaxAckPending,
			MaxDeliver:    -1,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			FilterSubject: s.env.Subjects.All(natsbus.KindFeedback),
		},
		Owned:  true,
		Log:    s.env.Log,
		Health: s.env.Health.Reporter(health),
	}
	s.mu.Lock()
	s.ackFloor = consumer.AckFloor
	s.mu.Unlock()
	consumed := make(chan error, 1)
	go func() { consumed <- consumer.Consume(ctx, s.handleFeedback) }()
	s.env.Log.Info("feedback started", zap.String("consumer", name),
		zap.Duration("window", s.cfg.Window), zap.Int("window_labels", s.cfg.WindowLabels),
		zap.Duration("allowed_lateness", s.cfg.AllowedLateness), zap.Duration("idle_timeout", s.cfg.IdleTimeout),
		zap.Int("max_ack_pending", s.cfg.MaxAckPending),
		zap.Duration("wait", s.cfg.Wait), zap.Int("max_predictions", s.cfg.MaxPredictions))

	tick := time.NewTicker(min(max(min(s.cfg.Wait, s.cfg.Window, s.cfg.IdleTimeout)/4, 10*time.Millisecond), time.Second))
	defer tick.Stop()
	check := time.NewTicker(2 * time.Second)
	defer check.Stop()
	for {
		select {
		case err := <-consumed:
			// Consume returns once ctx ended and what it delivered was
			// handled, or with an error when the consumer cannot be made.
			s.stopped()
			if err != nil {
				return fmt.Errorf("feedback: %w", err)
			}
			return nil
		case <-tick.C:
			s.tick()
		case <-check.C:
			s.checkPredictions(ctx, predsCons)
		}
	}
}

// readPredictions starts the ordered consumer that fills the index, and
// closes s.ready once it has caught up with the stream. Its pulls are
// bounded by bytes, and its errors are logged and reported to health
// (part feedback-predictions) until it delivers again.
func (s *Service) readPredictions(ctx context.Context) (jetstream.ConsumeContext, jetstream.Consumer, error) {
	name, filter := s.env.Subjects.StreamName(natsbus.StreamPredictions), s.env.Subjects.All(natsbus.KindPredictions)
	if s.env.Partitioned() {
		name, filter = s.env.Subjects.StreamName(natsbus.StreamPartitions), s.env.Subjects.Partitioned(s.env.Partition)
	}
	stream, err := s.env.JS.Stream(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	start := s.now().Add(-s.cfg.Horizon)
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, nil, err
	}
	lastSeq, lastTime := info.State.LastSeq, info.State.LastTime
	if s.env.Partitioned() {
		// The partition's own last prediction: the stream's last may be
		// another partition's, which this reader never gets to.
		m, err := stream.GetLastMsgForSubject(ctx, filter)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			lastSeq, lastTime = 0, time.Time{}
		case err != nil:
			return nil, nil, err
		default:
			lastSeq, lastTime = m.Sequence, m.Time
		}
	}
	if lastSeq == 0 || lastTime.Before(start) {
		s.markReady()
	}
	s.mu.Lock()
	s.readyAt = lastSeq
	s.mu.Unlock()
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return nil, nil, err
	}
	cc, err := cons.Consume(s.handlePrediction,
		jetstream.PullMaxBytes(natsbus.DefaultPullBytes),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed) {
				return // shutting down
			}
			s.env.Log.Warn("feedback: predictions consumer error", zap.Error(err))
			s.predsFailing.Store(true)
			s.predsHealth(fmt.Errorf("predictions consumer: %w", err))
		}))
	if err != nil {
		return nil, nil, err
	}
	s.predsHealth(nil)
	return cc, cons, nil
}

// checkPredictions reports the predictions consumer healthy again once
// the server knows it, for a stream so quiet that no delivery does.
func (s *Service) checkPredictions(ctx context.Context, cons jetstream.Consumer) {
	if !s.predsFailing.Load() {
		return
	}
	infoCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cons.Info(infoCtx); err == nil && s.predsFailing.CompareAndSwap(true, false) {
		s.predsHealth(nil)
	}
}

// mine says whether the service works on model: every model, or, when
// partitioned, those of its partition.
func (s *Service) mine(model string) bool {
	return !s.env.Partitioned() || natsbus.PartitionOf(model, s.env.Partitions) == s.env.Partition
}

func (s *Service) markReady() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.markReadyLocked()
}

func (s *Service) markReadyLocked() {
	if !s.isReady {
		s.isReady = true
		close(s.ready)
	}
}

// handlePrediction remembers one prediction and joins the feedback that
// waited for it.
func (s *Service) handlePrediction(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		return
	}
	if s.predsFailing.Load() && s.predsFailing.CompareAndSwap(true, false) {
		s.predsHealth(nil) // delivering again
	}
	stored, model := s.env.Stored, s.env.Subjects.Model(msg.Subject())
	if s.env.Partitioned() {
		// Sequences of the partitions stream: not the predictions
		// stream's that the process's shared decodes are keyed by.
		stored, model = nil, s.env.Subjects.PartitionedModel(msg.Subject())
	}
	p, reasons := stored.Decode(meta.Sequence.Stream, msg.Data(), model,
		msg.Headers().Get("Content-Type"), meta.Timestamp)
	s.mu.Lock()
	defer s.mu.Unlock()
	if meta.NumPending == 0 || meta.Sequence.Stream >= s.readyAt {
		// Caught up with the stream as it was at start (under a steady
		// flow NumPending may never reach 0).
		s.markReadyLocked()
	}
	if len(reasons) > 0 || p.GetId() == "" {
		s.metrics.predictionsSkipped.Inc()
		return
	}
	pred := quality.Prediction{Version: p.GetVersion(), Role: p.GetRole(), Time: event.Time(p)}
	pred.Value, _ = toValue(p.GetPrediction())
	// Kept for the report's estimated_accuracy (CBPE) beside the realised
	// one.
	if p.Confidence != nil {
		pred.Confidence, pred.HasConfidence = p.GetConfidence(), true
	}
	model, id, req := p.GetModel(), p.GetId(), p.GetRequestId()
	if n := s.idx.put(model, id, req, pred, meta.Sequence.Stream, meta.Timestamp); n > 0 {
		s.metrics.evicted.WithLabelValues("max_predictions").Add(float64(n))
	}
	s.metrics.indexed.Set(float64(s.idx.len()))
	e, _ := s.idx.get(model, id)
	keys := []key{{model: model, id: id}}
	if req != "" {
		keys = append(keys, key{model: model, id: req, req: true})
	}
	joined := false
	for _, k := range keys {
		waiting := s.waiting[k]
		if len(waiting) == 0 {
			continue
		}
		preds := s.predictionsOf(model, e)
		for _, it := range waiting {
			it.done = true
			s.join(it, preds)
		}
		s.setWaiting(k, nil)
		joined = true
	}
	if req != "" {
		// Feedback joined with the request's other predictions before
		// this one arrived.
		for _, it := range s.joinedReq[keys[1]] {
			if !slices.Contains(it.joined, id) {
				s.joinRelated(it, e)
			}
		}
	}
	if joined {
		s.reportClosed()
	}
}

// predictionsOf returns the predictions feedback about e applies to: e and
// the other predictions of its request, e first.
func (s *Service) predictionsOf(model string, e entry) []entry {
	if e.req == "" {
		return []entry{e}
	}
	out := []entry{e}
	for _, o := range s.idx.request(model, e.req) {
		if o.id != e.id {
			out = append(out, o)
		}
	}
	return out
}

// toValue converts a number or a string; ok is false for anything else.
func toValue(v *event.Value) (quality.Value, bool) {
	switch k := v.GetKind().(type) {
	case *lookoutv1.Value_Number:
		return quality.Number(k.Number), true
	case *lookoutv1.Value_Text:
		return quality.Text(k.Text), true
	}
	return quality.Value{}, false
}

func (s *Service) setWaiting(k key, items []*item) {
	if len(items) == 0 {
		delete(s.waiting, k)
	} else {
		s.waiting[k] = items
	}
	n := 0
	for _, its := range s.waiting {
		n += len(its)
	}
	s.metrics.waiting.Set(float64(n))
}

// handleFeedback decodes one feedback message and joins it, or lets it
// wait for its prediction, or rejects it.
func (s *Service) handleFeedback(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		// Only a message that did not come from JetStream lacks it.
		s.env.Log.Warn("feedback: message without metadata", zap.Error(err))
		_ = msg.Term()
		return
	}
	model := s.env.Subjects.Model(msg.Subject())
	if !s.mine(model) {
		// Another partition's: its own service reads it from its own
		// durable.
		if err := msg.Ack(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.env.Log.Warn("feedback: ack of another partition's feedback failed; it comes again", zap.Error(err))
		}
		return
	}
	fb, reasons := event.DecodeFeedback(msg.Data(), event.DecodeOptions{
		SubjectModel: model,
		ContentType:  msg.Headers().Get("Content-Type"),
		Received:     meta.Timestamp,
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := meta.Sequence.Stream
	if _, ok := s.held[seq]; ok {
		// Delivered again while held (AckWait passed, or the consumer
		// was recreated): it is here already; later acks go to this
		// delivery.
		s.held[seq] = msg
		s.metrics.redelivered.Inc()
		return
	}
	if s.isDone(model, seq) {
		// Reported or rejected already, and delivered again because the
		// consumer was recreated at its floor.
		s.metrics.redelivered.Inc()
		s.ack(msg)
		return
	}
	if int(meta.NumDelivered) > s.cfg.MaxDeliveries {
		s.reject(msg, meta, model, []*event.Reason{{Code: event.CodeUndeliverable,
			Message: fmt.Sprintf("not handled after %d deliveries", meta.NumDelivered-1)}})
		return
	}
	if len(reasons) > 0 {
		s.reject(msg, meta, model, reasons)
		return
	}
	s.held[seq] = msg
	s.seen(model, seq, true)
	s.verdict(msg, event.Verdict{Accepted: true})
	it := &item{fb: fb, msg: msg, seq: seq, stored: meta.Timestamp, ts: event.FeedbackTime(fb)}
	closed := s.assign(it)
	if preds := s.lookup(fb); len(preds) > 0 {
		s.join(it, preds)
	} else {
		k := waitKey(fb)
		s.queue = append(s.queue, it)
		s.setWaiting(k, append(s.waiting[k], it))
	}
	// Closed windows are handed over after the item is in its own: a
	// window closed full holds it.
	for _, c := range closed {
		s.closed(c)
	}
	// At once, not on the next tick: the server delivers nothing more
	// until some of what is held is acknowledged.
	s.relieve()
	s.reportClosed()
}

// lookup returns the indexed predictions feedback applies to: by id, that
// prediction and the others of its request; by request_id, every
// prediction of the request. None when they are not known (yet).
func (s *Service) lookup(fb *event.Feedback) []entry {
	if fb.GetId() != "" {
		e, ok := s.idx.get(fb.GetModel(), fb.GetId())
		if !ok {
			return nil
		}
		return s.predictionsOf(fb.GetModel(), e)
	}
	return s.idx.request(fb.GetModel(), fb.GetRequestId())
}

// waitKey is what feedback waits for: the prediction it names by id, or
// else its request.
func waitKey(fb *event.Feedback) key {
	if fb.GetId() != "" {
		return key{model: fb.GetModel(), id: fb.GetId()}
	}
	return key{model: fb.GetModel(), id: fb.GetRequestId(), req: true}
}

// assign puts a feedback item in its model's event-time window (or, when
// it is late, in the window of late feedback of its span) and returns the
// windows its event time closed.
func (s *Service) assign(it *item) []*ew.Window[*window] {
	model := it.fb.GetModel()
	s.models[model] = struct{}{}
	c, closed := s.win.Add(model, it.ts, s.now())
	var w *window
	if c != nil {
		if c.Value == nil {
			c.Value = s.newWindow(model, c.Start, c.End)
			if from, ok := s.partFrom[lateKey{model: model, start: c.Start.UnixNano()}]; ok {
				c.Value.start = from // the span's window before it closed early
			}
		}
		w = c.Value
	} else {
		// Its window was reported already. Dropping it would lose a
		// label; adding it to an open window would misname its span.
		start := s.win.Start(it.ts)
		lk := lateKey{model: model, start: start.UnixNano()}
		if w = s.late[lk]; w == nil {
			w = s.newWindow(model, start, start.Add(s.cfg.Window))
			s.late[lk] = w
		}
		s.metrics.late.Inc()
		s.env.Log.Debug("feedback later than the allowed lateness; reported in a window of its own",
			zap.String("model", model), zap.Uint64("seq", it.seq), zap.Time("ts", it.ts))
	}
	if len(w.seqs) == 0 || it.ts.After(w.last) {
		w.last = it.ts.UTC()
	}
	if len(w.seqs) == 0 {
		w.firstSeq = it.seq
	}
	w.msgs = append(w.msgs, it.msg)
	w.seqs = append(w.seqs, it.seq)
	w.lastSeq = max(w.lastSeq, it.seq)
	w.waiting++
	it.win = w
	return closed
}

func (s *Service) newWindow(model string, start, end time.Time) *window {
	return &window{model: model, q: quality.NewWindow(s.opts), start: start.UTC(), end: end.UTC(), span: start.UTC()}
}

// closed takes a window the assigner closed; it is reported once nothing
// in it waits for a prediction. A window closed full names the event time
// it covers, to its latest feedback, and the span's next window starts
// there: the parts of one span are distinct and contiguous, and an alert
// on one starts no later than its feedback. Closed by the watermark or
// idle, it ends with its span.
func (s *Service) closed(c *ew.Window[*window]) {
	lk := lateKey{model: c.Key, start: c.Start.UnixNano()}
	if c.Reason != ew.Full {
		delete(s.partFrom, lk)
	}
	if c.Value == nil {
		return // emptied by relieve, nothing came after
	}
	if c.Reason == ew.Full {
		s.endEarly(c.Value)
	}
	s.closeWindow(c.Value, string(c.Reason))
}

// endEarly ends w, closed before its span's end, at its latest feedback
// and starts the span's next window there.
func (s *Service) endEarly(w *window) {
	if w.last.After(w.start) {
		w.end = w.last
	} else {
		w.end = w.start
	}
	s.partFrom[lateKey{model: w.model, start: w.span.UnixNano()}] = w.end
}

// forgetParts drops the part starts of spans the watermark passed: no
// window of them opens again.
func (s *Service) forgetParts() {
	for lk := range s.partFrom {
		if wm, ok := s.win.Watermark(lk.model); ok && !time.Unix(0, lk.start).Add(s.cfg.Window).After(wm) {
			delete(s.partFrom, lk)
		}
	}
}

func (s *Service) closeWindow(w *window, why string) {
	w.why = why
	s.closing = append(s.closing, w)
}

// reportClosed reports the closed windows whose feedback is all joined or
// unmatched, in the order they closed. It stops at a report not stored
// before shutdown: that window and those after it are rebuilt at the next
// start.
func (s *Service) reportClosed() {
	kept := s.closing[:0]
	for i, w := range s.closing {
		if w.waiting > 0 {
			kept = append(kept, w)
			continue
		}
		if !s.close(w) {
			kept = append(kept, s.closing[i:]...)
			break
		}
	}
	clear(s.closing[len(kept):])
	s.closing = kept
}

// isDone reports whether the model's feedback message seq was reported or
// rejected already.
func (s *Service) isDone(model string, seq uint64) bool {
	p := s.progress[model]
	if p == nil || seq > p.upTo {
		return false
	}
	_, open := p.open[seq]
	return !open
}

// seen records that the model's message seq was handled: open when it is
// not done yet (held or handed back), done otherwise.
func (s *Service) seen(model string, seq uint64, open bool) {
	p := s.progress[model]
	if p == nil && !open {
		// A model with nothing held needs no record yet; rejections on
		// made-up subjects must not grow the map.
		return
	}
	if p == nil {
		p = &progress{open: map[uint64]struct{}{}}
		s.progress[model] = p
	}
	p.upTo = max(p.upTo, seq)
	if open {
		p.open[seq] = struct{}{}
	} else {
		delete(p.open, seq)
	}
}

// reject publishes feedback that cannot be joined on
// lookout.rejected.<model> and acknowledges it. It is handed back when the
// rejection is not stored, and acknowledged without it when no retry can
// store it (counted and logged).
func (s *Service) reject(msg jetstream.Msg, meta *jetstream.MsgMetadata, model string, reasons []*event.Reason) {
	err := s.publishRejection(msg, meta, model, reasons, func(ctx context.Context, out *nats.Msg) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := s.env.JS.PublishMsg(ctx, out)
		return err
	})
	seq := meta.Sequence.Stream
	if err != nil && !natsbus.IsPermanent(err) {
		if s.ctx.Err() == nil {
			s.env.Log.Warn("feedback: rejection not stored, handing the message back", zap.Error(err))
		}
		s.seen(model, seq, true)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	s.seen(model, seq, false)
	s.ack(msg)
	s.verdict(msg, event.Verdict{Reasons: reasons})
}

// verdict tells a client that asked (event.HeaderVerdictTo) whether its
// feedback was accepted (held to be joined) or rejected (the rejection
// stored). Core NATS, at most once; a redelivery is answered again.
func (s *Service) verdict(msg jetstream.Msg, v event.Verdict) {
	to := event.VerdictSubject(msg.Headers().Get(event.HeaderVerdictTo))
	if to == "" {
		return
	}
	if err := s.env.NC.Publish(to, event.MarshalVerdict(v)); err != nil {
		s.env.Log.Debug("feedback: verdict not sent", zap.Error(err))
	}
}

// publishRejection builds the rejection of msg and publishes it with
// publish; it counts and logs the outcome. A rejection that no retry can
// store is counted as unstorable and returned as a permanent error.
func (s *Service) publishRejection(msg jetstream.Msg, meta *jetstream.MsgMetadata, model string, reasons []*event.Reason,
	publish func(context.Context, *nats.Msg) error) error {
	if model == "" || !event.IsValidModel(model) {
		model = "_unknown"
	}
	out := nats.NewMsg(s.env.Subjects.For(natsbus.KindRejected, model))
	out.Data = event.MarshalRejection(&event.Rejection{
		Model:            model,
		Subject:          msg.Subject(),
		Reasons:          reasons,
		Original:         msg.Data(),
		ReceivedUnixNano: meta.Timestamp.UnixNano(),
	})
	out.Header.Set("Content-Type", event.ContentTypeJSON)
	out.Header.Set(event.HeaderInput, event.InputFeedback)
	out.Header.Set(jetstream.MsgIDHeader, "rejected-"+event.DeriveID(meta.Stream, meta.Sequence.Stream, meta.Timestamp))
	err := natsbus.CheckPayload(s.env.NC, out)
	if err == nil {
		err = publish(s.ctx, out)
	}
	if natsbus.IsPermanent(err) {
		s.metrics.unstorable.WithLabelValues("rejection").Inc()
		s.env.Log.Error("feedback: rejection cannot be stored; acknowledging the feedback without it",
			zap.String("subject", msg.Subject()), zap.Uint64("seq", meta.Sequence.Stream), zap.Error(err))
		return err
	}
	if err != nil {
		return err
	}
	for _, r := range reasons {
		s.metrics.rejected.WithLabelValues(r.GetCode()).Inc()
	}
	s.metrics.feedback.WithLabelValues("rejected").Inc()
	s.env.Log.Info("feedback rejected", zap.String("subject", msg.Subject()), zap.Uint64("seq", meta.Sequence.Stream),
		zap.String("code", reasons[0].GetCode()), zap.String("reason", reasons[0].GetMessage()))
	return nil
}

// join adds feedback with the predictions it applies to (at least one) to
// its window, and remembers it for the request's later predictions until
// the window is reported.
func (s *Service) join(it *item, preds []entry) {
	for i, e := range preds {
		if i == 0 {
			it.win.q.Add(s.pair(it, e), it.ts)
		} else {
			it.win.q.AddRelated(s.pair(it, e), it.ts)
		}
		it.joined = append(it.joined, e.id)
	}
	it.win.waiting--
	s.metrics.feedback.WithLabelValues("joined").Inc()
	if req := preds[0].req; req != "" {
		it.req = req
		k := key{model: it.fb.GetModel(), id: req, req: true}
		s.joinedReq[k] = append(s.joinedReq[k], it)
		it.win.reqItems = append(it.win.reqItems, it)
	}
}

// joinRelated adds a prediction of the request of feedback already joined.
func (s *Service) joinRelated(it *item, e entry) {
	it.win.q.AddRelated(s.pair(it, e), it.ts)
	it.joined = append(it.joined, e.id)
}

func (s *Service) pair(it *item, e entry) quality.Pair {
	pair := quality.Pair{Prediction: e.pred, Helpful: it.fb.Helpful, Time: it.ts}
	if v, ok := toValue(it.fb.GetLabel()); ok {
		pair.Label = &v
	}
	return pair
}

// reported forgets a reported window's feedback for later predictions of
// its requests: its figures are published.
func (s *Service) reported(w *window) {
	for _, it := range w.reqItems {
		k := key{model: it.fb.GetModel(), id: it.req, req: true}
		if its := slices.DeleteFunc(s.joinedReq[k], func(x *item) bool { return x == it }); len(its) > 0 {
			s.joinedReq[k] = its
		} else {
			delete(s.joinedReq, k)
		}
	}
	w.reqItems = nil
}

// unmatched counts feedback whose prediction did not come in time.
func (s *Service) unmatched(it *item) {
	it.win.q.AddUnmatched(it.ts)
	it.win.waiting--
	s.metrics.feedback.WithLabelValues("unmatched").Inc()
	s.env.Log.Debug("feedback unmatched", zap.String("model", it.fb.GetModel()), zap.String("id", it.fb.GetId()),
		zap.String("request_id", it.fb.GetRequestId()))
}

// relieve reports every open window as it is once the consumer holds as
// many messages as MaxAckPending lets it: the server delivers nothing more
// until some are acknowledged, so no newer feedback would move a
// watermark and the windows would wait for their idle timeout. A window's
// later feedback of the same span goes to a fresh window of that span.
func (s *Service) relieve() {
	if s.cfg.MaxAckPending <= 0 || len(s.held) < s.cfg.MaxAckPending {
		return
	}
	models := make([]string, 0, len(s.models))
	for m := range s.models {
		models = append(models, m)
	}
	slices.Sort(models)
	for _, m := range models {
		for _, c := range s.win.Open(m) {
			if c.Value != nil && len(c.Value.seqs) > 0 {
				s.endEarly(c.Value)
				s.closeWindow(c.Value, "pressure")
				c.Value = nil
			}
		}
	}
}

// tick expires waiting feedback, closes windows whose time is up,
// forgets predictions past the horizon and keeps held messages alive.
func (s *Service) tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if n := s.idx.expire(now.Add(-s.cfg.Horizon)); n > 0 {
		s.metrics.evicted.WithLabelValues("horizon").Add(float64(n))
		s.metrics.indexed.Set(float64(s.idx.len()))
	}
	for len(s.queue) > 0 {
		it := s.queue[0]
		if !it.done && now.Sub(it.stored) < s.cfg.Wait {
			break
		}
		s.queue[0] = nil
		s.queue = s.queue[1:]
		if it.done {
			continue
		}
		it.done = true
		k := waitKey(it.fb)
		s.setWaiting(k, slices.DeleteFunc(s.waiting[k], func(x *item) bool { return x == it }))
		s.unmatched(it)
	}
	for _, c := range s.win.CloseIdle(now) {
		s.closed(c)
	}
	s.forgetParts()
	if len(s.late) > 0 {
		late := make([]*window, 0, len(s.late))
		for _, w := range s.late {
			late = append(late, w)
		}
		slices.SortFunc(late, func(a, b *window) int { return cmp.Compare(a.firstSeq, b.firstSeq) })
		for _, w := range late {
			s.closeWindow(w, "late")
		}
		clear(s.late)
	}
	s.relieve()
	s.reportClosed()
	if now.Sub(s.lastKeep) >= s.cfg.AckWait/3 {
		s.lastKeep = now
		for _, m := range s.held {
			_ = m.InProgress()
		}
	}
}

// close publishes a closed window's report and acknowledges its
// feedback. It returns false when the report could not be stored before
// shutdown; the window is then rebuilt at the next start. A report that no
// retry can store is counted and its feedback rejected as undeliverable
// instead.
func (s *Service) close(w *window) bool {
	model, why := w.model, w.why
	r := w.q.Report(model)
	// The report names the aligned event-time span (or the part of it a
	// window closed early covers, see closed), not the first and last
	// feedback times it saw.
	r.Window.Start, r.Window.End = w.start, w.end
	if err := s.publish(model, w, r); err != nil {
		if natsbus.IsPermanent(err) {
			return s.deadLetter(model, w, err)
		}
		s.env.Log.Info("feedback: report not stored before shutdown; the window is rebuilt at the next start",
			zap.String("model", model), zap.Error(err))
		return false
	}
	s.done(model, w)
	s.reported(w)
	s.metrics.windows.WithLabelValues(why).Inc()
	fields := []zap.Field{zap.String("model", model), zap.String("closed_by", why),
		zap.Time("window_start", w.start), zap.Time("window_end", w.end),
		zap.Int("feedback", r.Feedback), zap.Int("labelled", r.Labelled), zap.Int("unmatched", r.Unmatched)}
	if r.Accuracy != nil {
		fields = append(fields, zap.Float64("accuracy", *r.Accuracy))
	}
	if r.HelpfulRate != nil {
		fields = append(fields, zap.Float64("helpful_rate", *r.HelpfulRate))
	}
	s.env.Log.Info("performance window reported", fields...)
	return true
}

// done acknowledges a window's feedback, its report stored, and records
// its messages as done.
func (s *Service) done(model string, w *window) {
	for _, m := range w.msgs {
		s.ack(m)
	}
	if p := s.progress[model]; p != nil {
		for _, seq := range w.seqs {
			delete(p.open, seq)
		}
	}
}

// deadLetter handles a window whose report no retry can store: rather than
// hold its feedback for ever (and fail again with the same window at every
// start), each message is rejected as undeliverable, so that it ends on
// lookout.rejected.<model>, and then acknowledged. Acknowledging without
// a stored report or rejection would lose the feedback, so a message whose
// rejection is not stored before shutdown stays unacknowledged and is
// delivered again. It returns false when the service stopped first.
func (s *Service) deadLetter(model string, w *window, cause error) bool {
	s.metrics.unstorable.WithLabelValues("report").Inc()
	s.env.Log.Error("feedback: performance report cannot be stored; rejecting its window's feedback as undeliverable",
		zap.String("model", model), zap.Int("feedback", len(w.msgs)), zap.Error(cause))
	reason := []*event.Reason{{Code: event.CodeUndeliverable, Message: "its performance window's report cannot be stored: " + cause.Error()}}
	p := s.progress[model]
	for i, m := range w.msgs {
		seq := w.seqs[i]
		if cur, ok := s.held[seq]; ok {
			m = cur
		}
		meta, err := m.Metadata()
		if err != nil {
			continue
		}
		err = s.publishRejection(m, meta, model, reason, func(ctx context.Context, out *nats.Msg) error {
			return natsbus.PublishUntilStored(ctx, s.env.JS, out, func(err error) {
				s.env.Log.Warn("feedback: rejection not stored, retrying", zap.String("model", model), zap.Error(err))
			})
		})
		if err != nil && !natsbus.IsPermanent(err) {
			// Shutting down: the rest is delivered again and
			// rejected by the next process.
			w.msgs, w.seqs = w.msgs[i:], w.seqs[i:]
			return false
		}
		s.ack(m)
		if p != nil {
			delete(p.open, seq)
		}
	}
	s.reported(w)
	return true
}

// ack acknowledges a message and forgets it.
func (s *Service) ack(m jetstream.Msg) {
	if meta, err := m.Metadata(); err == nil {
		if cur, ok := s.held[meta.Sequence.Stream]; ok {
			m = cur // the latest delivery, whose ack the server expects
			delete(s.held, meta.Sequence.Stream)
		}
	}
	if err := m.Ack(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.env.Log.Warn("feedback: ack failed; the feedback is delivered again and its report de-duplicated", zap.Error(err))
	}
}

// publish stores a report on lookout.performance.<model>, retrying until
// it is stored or the service stops.
func (s *Service) publish(model string, w *window, r quality.Report) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("performance report: %w", err)
	}
	out := nats.NewMsg(s.env.Subjects.For(natsbus.KindPerformance, model))
	out.Data = data
	out.Header.Set("Content-Type", event.ContentTypeJSON)
	out.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("performance-%s-%d-%d", model, w.firstSeq, w.start.UnixNano()))
	out.Header.Set(HeaderWindowSeq, fmt.Sprintf("%d-%d", w.firstSeq, w.lastSeq))
	out.Header.Set(HeaderProcess, service.LeaseHolder(s.env.DataDir))
	upTo, open := s.record(model, w)
	out.Header.Set(HeaderDone, strconv.FormatUint(upTo, 10))
	if open != "" {
		out.Header.Set(HeaderOpen, open)
	}
	err = natsbus.PublishUntilStored(s.ctx, s.env.JS, out, func(err error) {
		s.env.Log.Warn("feedback: report not stored, retrying", zap.String("model", model), zap.Error(err))
	})
	if err == nil {
		s.metrics.reports.Inc()
	}
	return err
}

// stopped logs what the next process rebuilds. Held messages are not
// handed back: the next process recreates the consumer at its floor, which
// delivers them again at once.
func (s *Service) stopped() {
	s.mu.Lock()
	defer s.mu.Unlock()
	waiting, open := 0, len(s.closing)+len(s.late)
	for _, its := range s.waiting {
		waiting += len(its)
	}
	for m := range s.models {
		open += len(s.win.Open(m))
	}
	s.env.Log.Info("feedback stopped; open windows are rebuilt at the next start",
		zap.Int("open_windows", open), zap.Int("waiting", waiting))
}

type metrics struct {
	feedback           *prometheus.CounterVec
	rejected           *prometheus.CounterVec
	redelivered        prometheus.Counter
	waiting            prometheus.Gauge
	indexed            prometheus.Gauge
	evicted            *prometheus.CounterVec
	predictionsSkipped prometheus.Counter
	windows            *prometheus.CounterVec
	late               prometheus.Counter
	reports            prometheus.Counter
	unstorable         *prometheus.CounterVec
}

// newMetrics returns the service's metrics, registered once per registry
// (the service is built anew for each lease it takes).
func newMetrics(reg prometheus.Registerer) *metrics { return service.SharedMetrics(reg, makeMetrics) }

func makeMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		feedback: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_feedback_events_total", Help: "Feedback events handled, by result: joined, unmatched or rejected.",
		}, []string{"result"}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_feedback_rejected_total", Help: "Reasons for rejecting feedback, by reason code (a message can have several).",
		}, []string{"code"}),
		redelivered: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_feedback_redelivered_total", Help: "Feedback delivered again while held, or already reported or rejected (ignored).",
		}),
		waiting: f.NewGauge(prometheus.GaugeOpts{
			Name: "lookout_feedback_waiting", Help: "Feedback waiting for its prediction.",
		}),
		indexed: f.NewGauge(prometheus.GaugeOpts{
			Name: "lookout_feedback_predictions_indexed", Help: "Predictions remembered for the join.",
		}),
		evicted: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_feedback_predictions_evicted_total", Help: "Predictions forgotten, by reason: horizon or max_predictions.",
		}, []string{"reason"}),
		predictionsSkipped: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_feedback_predictions_skipped_total", Help: "Predictions not indexed (invalid or without id).",
		}),
		windows: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_feedback_windows_total", Help: "Performance windows reported, by what closed them: watermark, full, idle, late or pressure.",
		}, []string{"closed_by"}),
		late: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_feedback_late_total", Help: "Feedback later than the allowed lateness, reported in a window of its own span.",
		}),
		reports: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_feedback_reports_total", Help: "Performance reports published.",
		}),
		unstorable: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_feedback_unstorable_total",
			Help: "Reports and rejections that no retry can store (too large, say), by kind: report or rejection. A report's feedback is rejected instead; a rejection's feedback is acknowledged without it.",
		}, []string{"kind"}),
	}
}
