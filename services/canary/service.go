// Package canary is the service that compares a canary model with
// production on the same inputs: it reads lookout.predictions.*, joins the
// production and canary (or shadow) predictions of one request_id, and
// publishes a report with a verdict on lookout.canary.<model> per window.
// It also reads lookout.feedback.*: a label (by request_id, or by the id
// of either half) that arrives before its pair's window closes fills the
// report's quality, which then decides the verdict (pkg/canaryjudge.Judge).
// A window does not wait for labels past its close: labels later than the
// window's close plus allowed lateness are in no report (labels are
// cheap to keep, pairs of closed windows are not).
// It also reads the drift reports, lookout.drift.* on the reports stream:
// a window whose guardrails fail while a drift report that shifted
// (dataset_drifted, or confidence dropped) overlaps its event-time span
// is held, not rolled back: production's own inputs moved, so the failure
// is not attributed to the canary. Only drift reports read before the
// canary window closes count (pkg/canaryjudge.Tracker.Drift): a later one
// does not take back a verdict already published.
// The judging itself is pkg/canary; this package feeds it from JetStream.
//
// No loss on restart: the service reads each stream with a natsbus.Ordered
// reader (the core's ordered replay from a checkpoint) and keeps its whole
// state (the halves waiting for their pair, the open windows with the
// window assigner's state, the reports not yet stored, and the stream
// sequence it has read up to) in a JetStream object store, saved every
// Config.Checkpoint and on shutdown. After a crash it restores the last
// checkpoint and reads the predictions stored since, so an unjoined half
// is never forgotten: it expires only by the wait or the idle timeout.
//
// Windows are cut on event time (the production prediction's ts; see
// pkg/canaryjudge.Tracker), closed by each model's watermark, when full
// (window_pairs) or when idle. The tracker's clock, which only the idle
// timeout reads, is the time JetStream stored each message while a
// backlog is read and the wall clock once caught up, so the replay closes
// the same windows and the reports carry the same Nats-Msg-Id, which
// JetStream de-duplicates.
//
// A stream deleted under the service ends Run with an error (its
// sequences no longer match the checkpoint); a report that can never be
// stored is logged, counted and dropped rather than retried forever.
//
// The service is a singleton: two processes would split the pairs. With
// nats.partitions above 1 it is one singleton per partition of the models
// (service.Partitioned): it reads its partition's predictions from the
// partitions stream (natsbus.PartitionsConfig), reads the rejected,
// feedback and drift streams whole and keeps only its partition's models
// (natsbus.PartitionOf), and keeps its checkpoint in an object of its own
// (StateObject.p<i>), so a partition handed to another process resumes
// from its own state.
package canary

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	judge "github.com/lookout-ml/lookout/pkg/canaryjudge"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/service"
)

// StateObject is the name of the checkpoint in the service's object store
// bucket (StateBucket); partitioned, each partition's is StateObject.p<i>.
const StateObject = "state"

// HeaderProcess is set on each report: the process that made it (host and
// data folder, service.LeaseHolder), as on drift reports.
const HeaderProcess = "Lookout-Process"

// StateBucket returns the object store bucket that holds the checkpoint.
func StateBucket(s natsbus.Subjects) string { return s.StreamName("CANARY_STATE") }

// clockLag is how far behind the wall clock the tracker's clock is moved
// while no message arrives.
const clockLag = 200 * time.Millisecond

// Service is the canary service.
type Service struct {
	env     service.Env
	cfg     Config
	metrics *metrics
}

var _ service.Service = (*Service)(nil)

// New returns the canary service. Zero settings take their defaults; it
// returns an error for a negative one.
func New(env service.Env, cfg Config) (*Service, error) {
	def := DefaultConfig()
	if cfg.Wait < 0 || cfg.Window < 0 || cfg.WindowPairs < 0 || cfg.MinPairs < 0 || cfg.MaxHalves < 0 || cfg.Checkpoint < 0 ||
		cfg.AllowedLateness < 0 || cfg.IdleTimeout < 0 || cfg.MinLabelledPairs < 0 || cfg.QualityTolerance < 0 || cfg.MaxLabels < 0 {
		return nil, fmt.Errorf("canary: negative setting in %+v", cfg)
	}
	if cfg.Wait == 0 {
		cfg.Wait = def.Wait
	}
	if cfg.Window == 0 {
		cfg.Window = def.Window
	}
	if cfg.WindowPairs == 0 {
		cfg.WindowPairs = def.WindowPairs
	}
	if cfg.MaxHalves == 0 {
		cfg.MaxHalves = def.MaxHalves
	}
	if cfg.Checkpoint == 0 {
		cfg.Checkpoint = def.Checkpoint
	}
	if cfg.MinLabelledPairs == 0 {
		cfg.MinLabelledPairs = def.MinLabelledPairs
	}
	if cfg.QualityTolerance == 0 {
		cfg.QualityTolerance = def.QualityTolerance
	}
	if cfg.MaxLabels == 0 {
		cfg.MaxLabels = def.MaxLabels
	}
	if cfg.AllowedLateness == 0 {
		cfg.AllowedLateness = def.AllowedLateness
	}
	if cfg.IdleTimeout == 0 {
		// A window's length: live traffic (ts close to the wall clock)
		// cannot be idle that long before the window's span is over.
		cfg.IdleTimeout = cfg.Window
	}
	return &Service{env: env, cfg: cfg, metrics: newMetrics(env.Metrics)}, nil
}

// stateObject is the name of this service's checkpoint: one per partition
// when partitioned, as its positions and models are the partition's.
func (s *Service) stateObject() string {
	if s.env.Partitioned() {
		return fmt.Sprintf("%s.p%d", StateObject, s.env.Partition)
	}
	return StateObject
}

// mine says whether the service works on model: every model, or, when
// partitioned, those of its partition.
func (s *Service) mine(model string) bool {
	return !s.env.Partitioned() || natsbus.PartitionOf(model, s.env.Partitions) == s.env.Partition
}

// checkpointVersion is the version of the checkpoint's layout. Version 1
// held a tracker that cut windows on store time; its state does not carry
// over (see restore).
const checkpointVersion = 2

// checkpoint is what the service saves: enough to go on after a crash as
// if it had not stopped.
type checkpoint struct {
	Version     int
	Predictions position
	Rejected    position
	// Feedback is absent (zero) in checkpoints from before the canary
	// read feedback.
	Feedback position
	// Drift is absent (zero) in checkpoints from before the canary read
	// drift reports.
	Drift position
	// Partitions is nats.partitions when the checkpoint was saved by a
	// partition's service (absent: 1). A partition's checkpoint of
	// another count holds other models, and is not read.
	Partitions int `json:",omitempty"`
	Tracker    []byte
	Pending    []pendingReport
}

// position is how far a stream has been read: up to Seq, or, before the
// first message, from Start.
type position struct {
	Seq   uint64
	Start time.Time
}

type pendingReport struct {
	Subject string
	MsgID   string
	Data    []byte
	Verdict string
}

// source is one stream the service reads.
type source struct {
	kind     string
	stream   string
	filter   string // the subjects read
	pos      position
	backlog  bool   // messages were stored before Run started
	received bool   // a message has arrived since Run started
	pending  uint64 // NumPending of the last message
}

// run is one Run's state, guarded by mu: the consumers' callbacks, the
// clock tick and the checkpoints take turns.
type run struct {
	*Service
	mu       sync.Mutex
	stopped  bool
	tracker  *judge.Tracker
	obs      jetstream.ObjectStore
	sources  [4]*source
	pending  []pendingReport
	dirty    bool
	counters judge.Counters
}

// Run reads predictions and rejections until ctx is cancelled, then saves
// its state and returns nil.
func (s *Service) Run(ctx context.Context) error {
	r := &run{Service: s, tracker: judge.NewTracker(judge.Options{
		Wait: s.cfg.Wait, WindowPairs: s.cfg.WindowPairs, Window: s.cfg.Window, MaxHalves: s.cfg.MaxHalves,
		AllowedLateness: s.cfg.AllowedLateness, IdleTimeout: s.cfg.IdleTimeout, MaxLabels: s.cfg.MaxLabels,
		Judge: &judge.Judge{Guardrails: s.cfg.Guardrails, MinPairs: s.cfg.MinPairs, MinLabelledPairs: s.cfg.MinLabelledPairs,
			QualityTolerance: s.cfg.QualityTolerance, AgreementRollback: s.cfg.AgreementRollback},
	})}
	var obs jetstream.ObjectStore
	err := natsbus.Retry(ctx, s.env.Log, "object store "+StateBucket(s.env.Subjects), func(ctx context.Context) error {
		replicas, err := natsbus.StreamReplicas(ctx, s.env.JS, s.env.Subjects)
		if err != nil {
			return err
		}
		obs, err = s.env.JS.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      StateBucket(s.env.Subjects),
			Description: "lookout canary: join state checkpoints",
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return fmt.Errorf("canary: state bucket: %w", err)
	}
	r.obs = obs
	if err := r.restore(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.env.Log.Info("canary starting",
		zap.Duration("window", s.cfg.Window), zap.Int("window_pairs", s.cfg.WindowPairs),
		zap.Duration("allowed_lateness", s.cfg.AllowedLateness), zap.Duration("idle_timeout", s.cfg.IdleTimeout),
		zap.Uint64("predictions_seq", r.sources[0].pos.Seq), zap.Uint64("rejected_seq", r.sources[1].pos.Seq), zap.Uint64("feedback_seq", r.sources[2].pos.Seq), zap.Uint64("drift_seq", r.sources[3].pos.Seq),
		zap.Int("halves_waiting", r.tracker.InFlight()), zap.Int("reports_pending", len(r.pending)))
	// Each stream is read by an ordered reader from the checkpoint's
	// position (natsbus.Ordered, the core's checkpoint pattern); a reader
	// that fails (its stream deleted) ends Run with its error.
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	readErrs := make(chan error, len(r.sources))
	var readers sync.WaitGroup
	stopReaders := sync.OnceFunc(func() {
		stopReading()
		readers.Wait()
		r.mu.Lock()
		r.stopped = true // a callback still running finds it and returns
		r.mu.Unlock()
	})
	defer stopReaders()
	for _, src := range r.sources {
		reader, err := r.reader(ctx, src)
		if err != nil {
			if ctx.Err() != nil {
				break // stopped while starting: save what was read below
			}
			return err
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			// Messages are handled in the reader's callback, under r.mu:
			// no hand-over to another goroutine on the hot path.
			readErrs <- reader.Consume(readCtx, func(msg jetstream.Msg) {
				r.mu.Lock()
				defer r.mu.Unlock()
				if r.stopped {
					return
				}
				r.handle(src, msg)
				if len(r.pending) > 0 {
					r.publish(ctx)
				}
			})
		}()
	}
	// finish publishes what is pending and saves the checkpoint, once the
	// readers have stopped.
	finish := func() {
		stopReaders()
		final, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.publish(final)
		if err := r.save(final); err != nil {
			s.env.Log.Warn("canary: final checkpoint failed; the predictions since the last one will be read again", zap.Error(err))
		}
		s.env.Log.Info("canary stopped", zap.Int("halves_waiting", r.tracker.InFlight()))
	}

	tick := time.NewTicker(min(max(min(s.cfg.Wait, s.cfg.IdleTimeout)/10, 20*time.Millisecond), time.Second))
	defer tick.Stop()
	save := time.NewTicker(s.cfg.Checkpoint)
	defer save.Stop()
	for {
		select {
		case <-ctx.Done():
			finish()
			return nil
		case err := <-readErrs:
			if err == nil {
				continue // stopped by ctx, seen above
			}
			// What was read is still good: save it, then fail loudly.
			finish()
			return fmt.Errorf("canary: %w", err)
		case <-tick.C:
			r.mu.Lock()
			if r.caughtUp() {
				// The idle timeout, on the wall clock: a little in the
				// past, so that a message stored just before now and still
				// on its way keeps its place in the clock's order: a
				// replay then closes the same windows.
				r.queue(r.tracker.Advance(time.Now().Add(-clockLag)))
			}
			if len(r.pending) > 0 {
				r.publish(ctx)
			}
			r.updateGauges()
			r.mu.Unlock()
		case <-save.C:
			r.mu.Lock()
			if r.dirty {
				if err := r.save(ctx); err != nil && ctx.Err() == nil {
					s.env.Log.Warn("canary: checkpoint failed", zap.Error(err))
				}
			}
			r.mu.Unlock()
		}
	}
}

// restore loads the last checkpoint, or starts afresh: reading from the
// messages stored one wait before now, so that halves published just
// before the first start can still pair. A fresh start saves at once, so
// that a crash before the first checkpoint replays from the same place.
func (r *run) restore(ctx context.Context) error {
	sub := r.env.Subjects
	r.sources = [4]*source{
		{kind: natsbus.KindPredictions, stream: sub.StreamName(natsbus.StreamPredictions), filter: sub.All(natsbus.KindPredictions)},
		{kind: natsbus.KindRejected, stream: sub.StreamName(natsbus.StreamRejected), filter: sub.All(natsbus.KindRejected)},
		// Feedback labels the pairs (quality); read like the others.
		{kind: natsbus.KindFeedback, stream: sub.StreamName(natsbus.StreamFeedback), filter: sub.All(natsbus.KindFeedback)},
		// Drift reports attribute failures to the inputs; the reports
		// stream holds canary and performance reports too, the reader
		// filters on lookout.drift.*.
		{kind: natsbus.KindDrift, stream: sub.StreamName(natsbus.StreamReports), filter: sub.All(natsbus.KindDrift)},
	}
	if r.env.Partitioned() {
		// The predictions, by far the most messages, come filed by
		// partition; the other three streams are read whole and their
		// other models skipped (see handle): a few messages a window.
		r.sources[0].stream, r.sources[0].filter = sub.StreamName(natsbus.StreamPartitions), sub.Partitioned(r.env.Partition)
	}
	data, err := r.obs.GetBytes(ctx, r.stateObject())
	var cp checkpoint
	if err == nil {
		if err := json.Unmarshal(data, &cp); err != nil {
			return fmt.Errorf("canary: decode checkpoint: %w", err)
		}
		if r.env.Partitioned() && cp.Partitions != r.env.Partitions {
			// Saved when the models were cut otherwise: its halves and
			// windows are of other models, its positions of partitions
			// that are no more.
			r.env.Log.Warn("canary: checkpoint of another nats.partitions; starting afresh",
				zap.Int("checkpoint_partitions", cp.Partitions), zap.Int("partitions", r.env.Partitions))
			err = jetstream.ErrObjectNotFound
		}
	}
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound):
		start := time.Now().Add(-r.cfg.Wait).UTC()
		for _, src := range r.sources {
			src.pos = position{Start: start}
		}
		if err := r.save(ctx); err != nil {
			return fmt.Errorf("canary: first checkpoint: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("canary: load checkpoint: %w", err)
	}
	switch {
	case cp.Version < checkpointVersion:
		// Its halves and window were kept on store time: they cannot be
		// put in event-time windows. At most one window's pairs per
		// model and the halves waiting then are not reported.
		r.env.Log.Warn("canary: checkpoint from before event-time windows; its waiting halves and open windows are dropped",
			zap.Int("version", cp.Version))
	default:
		if err := r.tracker.UnmarshalBinary(cp.Tracker); err != nil {
			return fmt.Errorf("canary: %w", err)
		}
	}
	r.sources[0].pos, r.sources[1].pos, r.sources[2].pos, r.sources[3].pos = cp.Predictions, cp.Rejected, cp.Feedback, cp.Drift
	// A checkpoint from before feedback (or drift reports) was read:
	// labels and drift reports for the open windows may be up to a window
	// and its lateness old.
	for _, src := range r.sources[2:] {
		if src.pos == (position{}) {
			src.pos = position{Start: time.Now().Add(-r.cfg.Window - r.cfg.AllowedLateness).UTC()}
		}
	}
	r.pending = cp.Pending
	r.counters = r.tracker.Counters()
	return nil
}

// save writes the checkpoint.
func (r *run) save(ctx context.Context) error {
	start := time.Now()
	tracker, err := r.tracker.MarshalBinary()
	if err != nil {
		return err
	}
	cp := checkpoint{
		Version: checkpointVersion, Predictions: r.sources[0].pos, Rejected: r.sources[1].pos, Feedback: r.sources[2].pos, Drift: r.sources[3].pos, Tracker: tracker, Pending: r.pending,
	}
	if r.env.Partitioned() {
		cp.Partitions = r.env.Partitions
	}
	data, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	if _, err := r.obs.PutBytes(ctx, r.stateObject(), data); err != nil {
		return fmt.Errorf("put checkpoint: %w", err)
	}
	r.dirty = false
	r.metrics.checkpointSeconds.Observe(time.Since(start).Seconds())
	r.metrics.checkpointBytes.Set(float64(len(data)))
	return nil
}

// reader returns the ordered reader of src, from its position.
func (r *run) reader(ctx context.Context, src *source) (*natsbus.Ordered, error) {
	stream, err := r.env.JS.Stream(ctx, src.stream)
	if err != nil {
		return nil, fmt.Errorf("canary: stream %s: %w", src.stream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("canary: stream %s: %w", src.stream, err)
	}
	last := info.State.LastSeq
	filter := src.filter
	name, health := "canary-"+src.kind, "canary:"+src.kind
	if r.env.Partitioned() {
		name, health = fmt.Sprintf("canary-p%d-%s", r.env.Partition, src.kind), fmt.Sprintf("canary.p%d:%s", r.env.Partition, src.kind)
	}
	reader := &natsbus.Ordered{
		JS: r.env.JS, Stream: src.stream, Filter: []string{filter},
		Name: name, Log: r.env.Log, Health: r.env.Health.Reporter(health),
	}
	// The backlog is what the filter will deliver. The reports stream also
	// holds the canary's own reports: its last message is no backlog of
	// drift reports (waiting for one would stop the idle timeout).
	backlogSeq, backlogTime := last, info.State.LastTime
	if src.kind == natsbus.KindDrift {
		m, err := stream.GetLastMsgForSubject(ctx, filter)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			backlogSeq, backlogTime = 0, time.Time{}
		case err != nil:
			return nil, fmt.Errorf("canary: last drift report in %s: %w", src.stream, err)
		default:
			backlogSeq, backlogTime = m.Sequence, m.Time
		}
	}
	switch {
	case src.pos.Seq > last:
		r.env.Log.Warn("canary: stream is behind the checkpoint (recreated?); reading it from the start",
			zap.String("stream", src.stream), zap.Uint64("checkpoint_seq", src.pos.Seq), zap.Uint64("last_seq", last))
		src.pos = position{}
		src.backlog = backlogSeq > 0
	case src.pos.Seq > 0:
		reader.StartSeq = src.pos.Seq + 1
		src.backlog = backlogSeq > src.pos.Seq
	default:
		reader.StartTime = src.pos.Start
		src.backlog = backlogSeq > 0 && !backlogTime.Before(src.pos.Start)
	}
	return reader, nil
}

// handle feeds one message to the tracker.
func (r *run) handle(src *source, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		return
	}
	if meta.Sequence.Stream <= src.pos.Seq {
		return // read before the checkpoint
	}
	src.pos.Seq, src.pending, src.received = meta.Sequence.Stream, meta.NumPending, true
	r.dirty = true
	model, stored := r.env.Subjects.Model(msg.Subject()), r.env.Stored
	switch {
	case r.env.Partitioned() && src.kind == natsbus.KindPredictions:
		// Sequences of the partitions stream: not the predictions
		// stream's that the process's shared decodes are keyed by.
		model, stored = r.env.Subjects.PartitionedModel(msg.Subject()), nil
	case !r.mine(model):
		return // another partition's model
	}
	var reports []judge.Report
	switch src.kind {
	case natsbus.KindPredictions:
		r.metrics.predictions.Inc()
		p, reasons := stored.Decode(meta.Sequence.Stream, msg.Data(), model, msg.Headers().Get("Content-Type"), meta.Timestamp)
		if len(reasons) > 0 {
			// Ingest stored it after the same validation, so this is a
			// bug or a foreign writer: count it, never drop it silently.
			r.metrics.undecodable.Inc()
			r.env.Log.Warn("canary: stored prediction does not decode; skipped",
				zap.String("subject", msg.Subject()), zap.Uint64("seq", meta.Sequence.Stream),
				zap.String("code", reasons[0].GetCode()), zap.String("reason", reasons[0].GetMessage()))
			reports = r.tracker.Advance(meta.Timestamp)
			break
		}
		reports = r.tracker.Prediction(meta.Timestamp, p)
	case natsbus.KindFeedback:
		fb, reasons := event.DecodeFeedback(msg.Data(), event.DecodeOptions{
			SubjectModel: model, ContentType: msg.Headers().Get("Content-Type"), Received: meta.Timestamp,
		})
		if len(reasons) > 0 {
			// The feedback service rejects it; it labels nothing here.
			reports = r.tracker.Advance(meta.Timestamp)
			break
		}
		r.metrics.feedback.Inc()
		reports = r.tracker.Feedback(meta.Timestamp, fb)
	case natsbus.KindDrift:
		var d driftReport
		if err := json.Unmarshal(msg.Data(), &d); err != nil || d.Window.Start.IsZero() {
			// The drift service wrote it: a bug or a foreign writer.
			r.env.Log.Warn("canary: drift report does not decode; skipped",
				zap.String("subject", msg.Subject()), zap.Uint64("seq", meta.Sequence.Stream), zap.Error(err))
			reports = r.tracker.Advance(meta.Timestamp)
			break
		}
		r.metrics.drift.Inc()
		reports = r.tracker.Drift(meta.Timestamp, model, judge.DriftWindow{
			Start: d.Window.Start, End: d.Window.End, Share: d.DriftShare,
			DatasetDrifted: d.DatasetDrifted, ConfidenceDropped: d.Confidence != nil && d.Confidence.Dropped,
		})
	case natsbus.KindRejected:
		if msg.Headers().Get(event.HeaderInput) == event.InputFeedback {
			break // invalid feedback, not a rejected prediction
		}
		role := "unknown"
		var ts time.Time
		if rej, err := event.UnmarshalRejection(msg.Data()); err == nil {
			role = RoleOfRejected(rej.GetOriginal())
			ts = TimeOfRejected(rej.GetOriginal())
		}
		r.metrics.rejected.WithLabelValues(role).Inc()
		reports = r.tracker.Rejected(meta.Timestamp, ts, model, role)
	}
	r.queue(reports)
}

// driftReport is the part of a drift report (pkg/driftreport.Report) the
// canary reads: decoding only it skips the per-feature figures.
type driftReport struct {
	Window struct {
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
	} `json:"window"`
	DriftShare     float64 `json:"drift_share"`
	DatasetDrifted bool    `json:"dataset_drifted"`
	Confidence     *struct {
		Dropped bool `json:"dropped"`
	} `json:"confidence"`
}

// RoleOfRejected reads the role from the bytes of a rejected input, best
// effort: "production" or "canary" (for canary and shadow) when the bytes
// are a JSON object whose role is readable (no role means production),
// "unknown" otherwise.
func RoleOfRejected(original []byte) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(original, &fields) != nil {
		return "unknown"
	}
	var role string
	if raw, ok := fields["role"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &role) != nil {
			return "unknown"
		}
	}
	side, ok := judge.SideOf(role)
	switch {
	case !ok:
		return "unknown"
	case side == judge.Candidate:
		return "canary"
	}
	return "production"
}

// TimeOfRejected reads the event time from the bytes of a rejected input,
// best effort: its `ts` when the bytes are a JSON object with an RFC 3339
// ts, the zero time otherwise (the tracker then counts the rejection in
// the window being filled).
func TimeOfRejected(original []byte) time.Time {
	var fields struct {
		TS json.RawMessage `json:"ts"`
	}
	var s string
	if json.Unmarshal(original, &fields) != nil || json.Unmarshal(fields.TS, &s) != nil {
		return time.Time{}
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || ts.Year() < 1678 || ts.Year() > 2261 {
		return time.Time{} // out of what Unix nanoseconds hold
	}
	return ts
}

// caughtUp reports whether every stream has been read to their end, so
// that the wall clock may move the tracker's clock (expiring the halves
// and closing the windows of models idle for the idle timeout). While a backlog is read, only
// the stored times move it, so a replay decides as the first run did.
func (r *run) caughtUp() bool {
	for _, src := range r.sources {
		if src.received && src.pending > 0 || !src.received && src.backlog {
			return false
		}
	}
	return true
}

// queue turns closed windows into reports waiting to be published.
func (r *run) queue(reports []judge.Report) {
	for _, rep := range reports {
		if r.env.Runs != nil {
			rep.Production.Run = r.env.Runs(rep.Model, rep.Production.Version)
			rep.Canary.Run = r.env.Runs(rep.Model, rep.Canary.Version)
		}
		data, err := json.Marshal(rep)
		if err != nil {
			r.env.Log.Error("canary: encode report", zap.String("model", rep.Model), zap.Error(err))
			continue
		}
		r.pending = append(r.pending, pendingReport{
			Subject: r.env.Subjects.For(natsbus.KindCanary, rep.Model),
			MsgID:   reportMsgID(rep.Model, rep.Window.Start, rep.Window.Part),
			Data:    data,
			Verdict: rep.Verdict,
		})
		r.env.Log.Info("canary report", zap.String("model", rep.Model), zap.String("verdict", rep.Verdict),
			zap.Time("window_start", rep.Window.Start), zap.Time("window_end", rep.Window.End), zap.Int("part", rep.Window.Part),
			zap.Int("pairs", rep.Window.Pairs), zap.Float64("score", rep.Score), zap.Strings("reasons", rep.Reasons))
		r.dirty = true
	}
}

// reportMsgID is the Nats-Msg-Id of the report of one model's window: the
// window's event-time start, its part (windows of one span closed full)
// and the model name it (natsbus.MsgID scopes it by model), so a replay
// after a crash closes the same window and JetStream drops the copy,
// while two models' windows that start together stay two.
func reportMsgID(model string, start time.Time, part int) string {
	id := strconv.FormatInt(start.UnixNano(), 10)
	if part > 0 {
		id += "." + strconv.Itoa(part)
	}
	return natsbus.KindCanary + ":" + natsbus.MsgID(model, id)
}

// publish stores the pending reports, in order. One that fails for a
// reason a retry can fix stays pending (and in the checkpoint) to be tried
// again; one that can never be stored (natsbus.IsPermanent: over the max
// payload, say) is logged, counted and dropped, so that it does not hold
// back every later report.
func (r *run) publish(ctx context.Context) {
	for len(r.pending) > 0 {
		p := r.pending[0]
		msg := nats.NewMsg(p.Subject)
		msg.Data = p.Data
		msg.Header.Set("Content-Type", event.ContentTypeJSON)
		msg.Header.Set(jetstream.MsgIDHeader, p.MsgID)
		msg.Header.Set(HeaderProcess, service.LeaseHolder(r.env.DataDir))
		err := natsbus.CheckPayload(r.env.NC, msg)
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = r.env.JS.PublishMsg(pctx, msg)
			cancel()
		}
		switch {
		case err == nil:
			r.metrics.reports.WithLabelValues(p.Verdict).Inc()
		case natsbus.IsPermanent(err):
			r.env.Log.Error("canary: report cannot be stored; dropped",
				zap.String("subject", p.Subject), zap.String("msg_id", p.MsgID), zap.Int("bytes", len(p.Data)), zap.Error(err))
			r.metrics.reportsDropped.Inc()
		default:
			if ctx.Err() == nil {
				r.env.Log.Warn("canary: report not stored; will retry", zap.String("subject", p.Subject), zap.Error(err))
			}
			return
		}
		r.pending = r.pending[1:]
		r.dirty = true
	}
}

func (r *run) updateGauges() {
	c := r.tracker.Counters()
	r.metrics.pairs.Add(float64(c.Pairs - r.counters.Pairs))
	r.metrics.unmatched.WithLabelValues("expired").Add(float64(c.Expired - r.counters.Expired))
	r.metrics.unmatched.WithLabelValues("evicted").Add(float64(c.Evicted - r.counters.Evicted))
	r.metrics.duplicates.Add(float64(c.Duplicates - r.counters.Duplicates))
	r.metrics.late.Add(float64(c.Late - r.counters.Late))
	r.counters = c
	r.metrics.waiting.Set(float64(r.tracker.InFlight()))
}

type metrics struct {
	predictions       prometheus.Counter
	rejected          *prometheus.CounterVec
	feedback          prometheus.Counter
	drift             prometheus.Counter
	pairs             prometheus.Counter
	unmatched         *prometheus.CounterVec
	duplicates        prometheus.Counter
	late              prometheus.Counter
	waiting           prometheus.Gauge
	reports           *prometheus.CounterVec
	reportsDropped    prometheus.Counter
	undecodable       prometheus.Counter
	checkpointSeconds prometheus.Histogram
	checkpointBytes   prometheus.Gauge
}

// newMetrics returns the service's metrics, registered once per registry
// (the service is built anew for each lease it takes).
func newMetrics(reg prometheus.Registerer) *metrics { return service.SharedMetrics(reg, makeMetrics) }

func makeMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		predictions: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_canary_predictions_total", Help: "Predictions read by the canary service.",
		}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_canary_rejected_total", Help: "Rejected inputs read, by role (unknown when unreadable).",
		}, []string{"role"}),
		feedback: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_canary_feedback_total", Help: "Valid feedback messages read by the canary service (labels join pairs).",
		}),
		drift: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_canary_drift_reports_total", Help: "Drift reports read by the canary service (a shifted one holds the failing canary windows it overlaps).",
		}),
		pairs: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_canary_pairs_total", Help: "Production and canary predictions joined into pairs.",
		}),
		unmatched: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_canary_unmatched_total", Help: "Halves that found no pair: expired by the wait, or evicted past max_halves.",
		}, []string{"cause"}),
		duplicates: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_canary_duplicates_total", Help: "Halves dropped because the same side of the request was already waiting.",
		}),
		late: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_canary_late_total", Help: "Predictions and rejections that came after their event-time window closed (past allowed_lateness); in no report.",
		}),
		waiting: f.NewGauge(prometheus.GaugeOpts{
			Name: "lookout_canary_halves_waiting", Help: "Halves waiting for their pair.",
		}),
		reports: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_canary_reports_total", Help: "Canary reports published, by verdict.",
		}, []string{"verdict"}),
		reportsDropped: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_canary_reports_dropped_total", Help: "Canary reports that could never be stored (over the max payload, say) and were dropped.",
		}),
		undecodable: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_canary_undecodable_total", Help: "Stored predictions the canary could not decode (none are expected: ingest validated them).",
		}),
		checkpointSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name: "lookout_canary_checkpoint_seconds", Help: "Time to save the join state.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		checkpointBytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "lookout_canary_checkpoint_bytes", Help: "Size of the last saved join state.",
		}),
	}
}
