// Package drift is the streaming drift service: it reads
// lookout.predictions.*, cuts each model's predictions into tumbling
// event-time windows (pkg/window: aligned to drift.window on the events'
// ts, closed when the model's watermark passes their end, when they hold
// drift.window_events, or when the model falls idle), and for each closed
// window publishes a drift report (pkg/drift) on lookout.drift.<model>.
//
// Delivery and restarts. Holding a window's events unacknowledged until
// its report is stored (what the service once did) ties the number of
// pending acknowledgements to the window's size: with max_ack_pending
// below it the consumer stalls, the window never fills, no newer event
// moves the watermark, and nothing is reported. So the service does not
// use acknowledgements to keep open windows: the predictions stream
// (limits retention) already keeps every event durably, and what a window
// needs beyond its events is small. The service acknowledges (AckAll) in
// batches as it reads, and before each acknowledgement it stores, per
// model, a checkpoint in a key-value bucket: the first stream sequence of
// the model's oldest open window, the sequences up to which its events are
// all in closed windows, and the window assigner's state (watermark, part
// numbers). A checkpoint is also stored as soon as a window's report is.
// At start the service recreates its consumer at the lowest of its ack
// floor and the checkpoints' first open sequences, so the open windows'
// events are delivered again at once and, replayed through the restored
// assigner, land in the same windows; events of closed windows are
// skipped. Each report carries a Nats-Msg-Id made of the model and the
// window's first stream sequence, so a report published again after a
// crash (before its checkpoint was stored) is dropped as a duplicate.
//
// References live in a JetStream Object Store bucket (References): pinned
// ones set with `lookout reference set`, and those the service learned, so
// that every drift process sees them and a restart does not learn again.
package drift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/service"
	ew "github.com/lookout-ml/lookout/pkg/window"
)

// ConsumerName is the drift service's durable consumer on the predictions
// stream. One drift process reads it at a time: windows live in memory.
const ConsumerName = "drift"

// StateRole names the key-value bucket of each model's checkpoint:
// <PREFIX>_DRIFT_STATE.
const StateRole = "DRIFT_STATE"

// HeaderWindowSeq is set on each report: the stream sequences of the
// window's first and last events, "first-last".
const HeaderWindowSeq = "Lookout-Window-Seq"

// HeaderProcess is set on each report: the process that made it (host and
// data folder, as in its leases), so that who owns a model can be seen.
const HeaderProcess = "Lookout-Process"

// maxAckBatch is the most predictions read before they are acknowledged
// (they are also acknowledged on every tick, at most a second apart).
const maxAckBatch = 256

// Service is the drift service.
type Service struct {
	env     service.Env
	cfg     Config
	opts    driftreport.Options
	sample  driftreport.SampleOptions
	roles   map[string]bool
	metrics *metrics

	refs  *References
	state jetstream.KeyValue

	mu       sync.Mutex
	win      *ew.Assigner[*window]
	models   map[string]*modelState
	ckpts    map[string]checkpoint // read at start, taken up when a model is first seen
	dirty    map[string]*modelState
	lastSeq  uint64        // highest stream sequence handled
	lastMsg  jetstream.Msg // the message of lastSeq
	ackSeq   uint64        // highest sequence acknowledged
	unacked  int           // messages handled since the last acknowledgement
	ackBatch int
	pending  uint64 // NumPending of the last message: 0 when caught up
	replayTo uint64 // the last sequence the previous process was delivered
	stopping bool   // a report could not be stored: acknowledge nothing more
	lastCons uint64 // consumer sequence of the last delivery
	resync   bool   // a delivery went missing: ignore all until the consumer is recreated
	consumer *natsbus.Durable
	ctx      context.Context
	now      func() time.Time
}

// modelState is what the service knows of one model.
type modelState struct {
	name string
	// seq carries the sequential detectors across the model's reported
	// windows; stored with the checkpoint, so a restart resumes them.
	seq     driftreport.SequentialState
	ck      checkpoint // as last stored, plus what closed since
	handled uint64     // the model's last sequence handled

	loaded      bool
	featureRef  *driftreport.Dataset
	featureSrc  string
	versionRefs map[string]*driftreport.Dataset // nil value: known to be absent
	versionSrc  map[string]string

	pinned     *driftreport.Dataset
	pinnedInfo ReferenceInfo

	history []*window // rolling: the last closed windows, oldest first
}

var _ service.Service = (*Service)(nil)

// New returns the drift service. It returns an error for a configuration
// it cannot run with.
func New(env service.Env, cfg Config) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	win, err := ew.New[*window](ew.Config{
		Size: cfg.Window, MaxEvents: cfg.WindowEvents,
		AllowedLateness: cfg.AllowedLateness, IdleTimeout: cfg.IdleTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("drift config: %w", err)
	}
	roles := map[string]bool{}
	for _, r := range cfg.Roles {
		roles[r] = true
	}
	batch := maxAckBatch
	if cfg.MaxAckPending > 0 {
		// Acknowledge well before the server stops delivering.
		batch = max(1, min(batch, cfg.MaxAckPending/2))
	}
	return &Service{
		env:      env,
		cfg:      cfg,
		opts:     cfg.Options(),
		sample:   driftreport.SampleOptions{Cap: cfg.SampleCap},
		roles:    roles,
		metrics:  newMetrics(env.Metrics),
		win:      win,
		models:   map[string]*modelState{},
		ckpts:    map[string]checkpoint{},
		dirty:    map[string]*modelState{},
		ackBatch: batch,
		now:      time.Now,
	}, nil
}

// Run consumes predictions until ctx is cancelled. Open windows are
// rebuilt from the stream at the next start.
func (s *Service) Run(ctx context.Context) error {
	s.ctx = ctx
	var err error
	if s.refs, err = OpenReferences(ctx, s.env.JS, s.env.Subjects); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("drift: %w", err)
	}
	stateName := s.env.Subjects.StreamName(StateRole)
	err = natsbus.Retry(ctx, s.env.Log, "kv "+stateName, func(ctx context.Context) error {
		replicas, err := natsbus.StreamReplicas(ctx, s.env.JS, s.env.Subjects)
		if err != nil {
			return err
		}
		s.state, err = s.env.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: stateName, Description: "lookout drift: each model's window checkpoint",
			History: 1, Storage: jetstream.FileStorage, Replicas: replicas,
		})
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("drift: state bucket %s: %w", stateName, err)
	}
	resume, err := s.loadCheckpoints(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("drift: state bucket %s: %w", stateName, err)
	}
	var startSeq uint64
	// Partitioned, the service reads its partition of the partitions
	// stream (its own sequences: checkpoints and report ids are of it).
	stream, name, filter, health := s.env.Subjects.StreamName(natsbus.StreamPredictions), ConsumerName,
		s.env.Subjects.All(natsbus.KindPredictions), "drift"
	if s.env.Partitioned() {
		stream, filter = s.env.Subjects.StreamName(natsbus.StreamPartitions), s.env.Subjects.Partitioned(s.env.Partition)
		name = fmt.Sprintf("%s-p%d", ConsumerName, s.env.Partition)
		health = fmt.Sprintf("drift.p%d", s.env.Partition)
	}
	consumer := &natsbus.Durable{
		JS:     s.env.JS,
		Stream: stream,
		Config: jetstream.ConsumerConfig{
			Durable:       name,
			Description:   "lookout drift: windows of predictions",
			AckPolicy:     jetstream.AckAllPolicy,
			AckWait:       s.cfg.AckWait,
			MaxAckPending: s.cfg.MaxAckPending,
			MaxDeliver:    -1,
			FilterSubject: filter,
		},
		// A singleton: the consumer starts right after its ack floor, or
		// earlier at resume (the first event of the oldest open window),
		// so the events of windows open when the last process stopped are
		// delivered again at once. Without a consumer it starts from the
		// beginning, and the checkpoints skip what was reported.
		Owned: true,
		Floor: func(_ context.Context, floor uint64, old *jetstream.ConsumerInfo) (uint64, error) {
			s.mu.Lock()
			if old != nil {
				s.replayTo = max(s.replayTo, old.Delivered.Stream)
			}
			// A new consumer numbers its deliveries from 1.
			s.resync, s.lastCons = false, 0
			s.mu.Unlock()
			if floor > 0 && resume > 0 && resume <= floor {
				floor = resume - 1
			}
			// Only at start: when the consumer is recreated after an
			// outside delete, the open windows are in memory, and what is
			// delivered again is skipped by its sequence.
			resume = 0
			startSeq = floor + 1
			return floor, nil
		},
		Log:    s.env.Log,
		Health: s.env.Health.Reporter(health),
	}
	s.consumer = consumer
	consumed := make(chan error, 1)
	go func() { consumed <- consumer.Consume(ctx, s.handle) }()
	s.env.Log.Info("drift started", zap.String("consumer", name),
		zap.Duration("window", s.cfg.Window), zap.Int("window_events", s.cfg.WindowEvents),
		zap.Duration("allowed_lateness", s.cfg.AllowedLateness), zap.Duration("idle_timeout", s.cfg.IdleTimeout),
		zap.String("reference", s.cfg.Reference), zap.Int("sample_cap", s.cfg.SampleCap))

	tick := time.NewTicker(max(time.Millisecond, min(s.cfg.IdleTimeout/4, time.Second)))
	defer tick.Stop()
	for {
		select {
		case err := <-consumed:
			s.mu.Lock()
			s.ack(true) // what was read is checkpointed: no need to read it again
			open := 0
			for name := range s.models {
				open += len(s.win.Open(name))
			}
			s.mu.Unlock()
			if err != nil {
				return fmt.Errorf("drift: %w", err)
			}
			s.env.Log.Info("drift stopped; open windows are rebuilt at the next start", zap.Int("open_windows", open),
				zap.Uint64("started_at_seq", startSeq))
			return nil
		case <-tick.C:
			s.closeDue()
		}
	}
}

// partitionedKey prefixes the checkpoints of partitioned drift (a model
// name has no dot): their sequences are of the partitions stream, not of
// the predictions stream, so the two never read each other's.
const partitionedKey = "p."

// stateKey is the key of a model's checkpoint.
func (s *Service) stateKey(model string) string {
	if s.env.Partitioned() {
		return partitionedKey + model
	}
	return model
}

// loadCheckpoints reads every model's checkpoint and returns the lowest
// first sequence of an open window (0: none open).
func (s *Service) loadCheckpoints(ctx context.Context) (uint64, error) {
	names, err := s.state.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var resume uint64
	for _, key := range names {
		name, partitioned := strings.CutPrefix(key, partitionedKey)
		if partitioned != s.env.Partitioned() ||
			(partitioned && natsbus.PartitionOf(name, s.env.Partitions) != s.env.Partition) {
			continue // of the other stream, or another partition's model
		}
		e, err := s.state.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		ck, err := parseCheckpoint(e.Value())
		if err != nil {
			// Starting over for one model beats not starting: its open
			// window is rebuilt from what is delivered from now on.
			s.env.Log.Warn("drift: unreadable model checkpoint; ignored", zap.String("model", name), zap.Error(err))
			continue
		}
		s.ckpts[name] = ck
		if ck.From > 0 && (resume == 0 || ck.From < resume) {
			resume = ck.From
		}
	}
	return resume, nil
}

// handle adds one prediction to its model's event-time window, closing
// the windows that are due, and acknowledges in batches.
func (s *Service) handle(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		s.env.Log.Warn("drift: message without metadata", zap.Error(err))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := meta.Sequence.Stream
	if s.resync {
		return
	}
	if cons := meta.Sequence.Consumer; s.lastCons > 0 && cons > s.lastCons+1 && seq > s.lastSeq {
		// A delivery went missing (a node died with it in flight; the new
		// leader numbers on). Acknowledging (AckAll) past it would lose it
		// for good: read again from the acknowledgement floor, where the
		// messages already handled are skipped by their sequence.
		s.env.Log.Warn("drift: a delivery went missing; reading again from the acknowledgement floor",
			zap.Uint64("consumer_seq", cons), zap.Uint64("last_consumer_seq", s.lastCons), zap.Uint64("seq", seq))
		s.resync = true
		s.consumer.Restart()
		return
	}
	s.lastCons = meta.Sequence.Consumer
	s.pending = meta.NumPending
	if seq <= s.lastSeq {
		// Delivered again after AckWait: handled already.
		s.metrics.redelivered.Inc()
		return
	}
	s.lastSeq, s.lastMsg = seq, msg
	s.unacked++
	defer s.ack(false)

	stored, model := s.env.Stored, s.env.Subjects.Model(msg.Subject())
	if s.env.Partitioned() {
		// Sequences of the partitions stream: not the predictions
		// stream's that the process's shared decodes are keyed by.
		stored, model = nil, s.env.Subjects.PartitionedModel(msg.Subject())
	}
	p, reasons := stored.Decode(seq, msg.Data(), model, msg.Headers().Get("Content-Type"), meta.Timestamp)
	if len(reasons) > 0 {
		s.metrics.skipped.WithLabelValues("invalid").Inc()
		s.env.Log.Warn("drift: skipping an invalid prediction", zap.String("subject", msg.Subject()),
			zap.Uint64("seq", seq), zap.String("reason", reasons[0].GetMessage()))
		return
	}
	if !s.roles[p.GetRole()] {
		s.metrics.skipped.WithLabelValues("role").Inc()
		return
	}
	m := s.model(p.GetModel())
	m.handled = seq
	ts := time.Unix(0, p.GetTsUnixNano())
	if seq <= m.ck.Done || seq <= m.ck.Through[s.win.Start(ts).UnixNano()] ||
		(seq <= s.replayTo && s.win.IsLate(m.name, ts)) {
		// Read again after a restart, and in a window reported before
		// (or dropped as late before, and counted then).
		s.metrics.skipped.WithLabelValues("reported").Inc()
		return
	}
	w, closed := s.win.Add(m.name, ts, s.now())
	if w == nil {
		s.metrics.late.Inc()
		s.env.Log.Debug("drift: late prediction dropped; its window is closed", zap.String("model", m.name),
			zap.Uint64("seq", seq), zap.Time("ts", ts))
	} else {
		if w.Events == 1 {
			w.Value = newWindow(seq, meta.Timestamp, s.sample)
			if m.ck.From == 0 {
				// The stored checkpoint says no window is open: store one
				// that says where this one starts before acknowledging it.
				s.dirty[m.name] = m
			}
		}
		w.Value.add(seq, p)
		s.metrics.events.Inc()
	}
	for _, c := range closed {
		if !s.close(m, c) {
			return
		}
	}
}

// closeDue closes the windows of models whose event time has not advanced
// for the idle timeout, and acknowledges what was read. While windows are
// rebuilt after a restart (the stream is read again up to where the last
// process was), idle windows are not closed: they are still filling.
func (s *Service) closeDue() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastSeq >= s.replayTo || s.pending == 0 {
		for _, c := range s.win.CloseIdle(s.now()) {
			if !s.close(s.model(c.Key), c) {
				return
			}
		}
	}
	s.ack(true)
}

// model returns the state of a model, taking up its checkpoint the first
// time.
func (s *Service) model(name string) *modelState {
	if m, ok := s.models[name]; ok {
		return m
	}
	m := &modelState{name: name, versionRefs: map[string]*driftreport.Dataset{}, versionSrc: map[string]string{}}
	if ck, ok := s.ckpts[name]; ok {
		m.ck = ck
		m.seq = ck.Sequential
		if ck.Window.Seen {
			s.win.Restore(name, ck.Window, s.now())
		}
		delete(s.ckpts, name)
	}
	if s.cfg.Reference == ReferenceRolling {
		s.loadRolling(m)
	}
	s.models[name] = m
	return m
}

// close reports a closed window, records it and stores the model's
// checkpoint. It returns false when the report could not be stored before
// shutdown; nothing is acknowledged from then on, so the window is rebuilt
// at the next start.
func (s *Service) close(m *modelState, c *ew.Window[*window]) bool {
	w := c.Value
	why := string(c.Reason)
	start := time.Now()
	var (
		report  driftreport.Report
		learned = func() {}
		skipped string
	)
	if w.rows < s.cfg.MinWindowEvents {
		skipped = fmt.Sprintf("%d events, under min_window_events %d: too few to compare", w.rows, s.cfg.MinWindowEvents)
	} else {
		report, learned, skipped = s.build(m, w)
	}
	if skipped == "" {
		report.Model = m.name
		if s.env.Runs != nil {
			report.Run = s.env.Runs(m.name, report.Version)
		}
		report.Window.Start, report.Window.End = w.start(), w.end()
		seq := m.seq
		report.Sequential = seq.Update(&report)
		if err := s.publish(m.name, w, report); err != nil {
			s.env.Log.Info("drift: report not stored before shutdown; the window is rebuilt at the next start",
				zap.String("model", m.name), zap.Error(err))
			s.stopping = true
			return false
		}
		m.seq = seq
		s.metrics.reports.WithLabelValues(strconv.FormatBool(report.DatasetDrifted)).Inc()
		var driftedNames []string
		for name, fd := range report.Features {
			if fd.Drifted {
				driftedNames = append(driftedNames, name)
			}
		}
		slices.Sort(driftedNames)
		s.env.Log.Info("drift window reported", zap.String("model", m.name), zap.String("closed_by", why),
			zap.Time("window_start", c.Start), zap.Time("window_end", c.End), zap.Int("part", c.Part),
			zap.Int("events", w.rows), zap.Int("late_dropped", c.Late), zap.Bool("dataset_drifted", report.DatasetDrifted),
			zap.Strings("drifted", driftedNames), zap.Bool("sampled", report.Sampled),
			zap.String("reference", report.Reference.Source), zap.Duration("took", time.Since(start)))
	} else {
		s.metrics.unreported.Inc()
		s.env.Log.Info("drift window not reported: "+skipped, zap.String("model", m.name),
			zap.String("closed_by", why), zap.Int("events", w.rows), zap.Int("late_dropped", c.Late),
			zap.String("reference_mode", s.cfg.Reference))
	}
	learned()
	if c.Reason == ew.Full {
		if m.ck.Through == nil {
			m.ck.Through = map[int64]uint64{}
		}
		m.ck.Through[c.Start.UnixNano()] = w.lastSeq
	}
	m.ck.ClosedFirst = max(m.ck.ClosedFirst, w.firstSeq)
	if err := s.storeCheckpoint(m); err != nil {
		s.env.Log.Warn("drift: saving the model's checkpoint; retried before the next acknowledgement",
			zap.String("model", m.name), zap.Error(err))
		s.dirty[m.name] = m
	}
	if s.cfg.Reference == ReferenceRolling && w.rows >= s.cfg.MinWindowEvents {
		m.history = append(m.history, w)
		s.storeRolling(m.name, w)
		if len(m.history) > s.cfg.RollingWindows {
			s.dropRolling(m.name, m.history[0].firstSeq)
			m.history[0] = nil
			m.history = m.history[1:]
		}
	}
	s.metrics.windows.WithLabelValues(why).Inc()
	return true
}

// ack acknowledges (AckAll) everything read, once ackBatch messages are
// waiting or when forced, after storing the checkpoints that must cover
// them. A checkpoint that cannot be stored holds the acknowledgement back:
// it is tried again on the next one.
func (s *Service) ack(force bool) {
	if s.stopping || s.unacked == 0 || (!force && s.unacked < s.ackBatch) {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(s.dirty)) {
		if err := s.storeCheckpoint(s.dirty[name]); err != nil {
			s.env.Log.Warn("drift: saving a model's checkpoint; not acknowledging yet", zap.String("model", name), zap.Error(err))
			return
		}
	}
	if err := s.lastMsg.Ack(); err != nil {
		if !errors.Is(err, nats.ErrConnectionClosed) {
			s.env.Log.Warn("drift: ack failed; the events are delivered again and de-duplicated", zap.Error(err))
		}
		return
	}
	s.ackSeq, s.unacked = s.lastSeq, 0
}

// storeCheckpoint stores a model's checkpoint as of now.
func (s *Service) storeCheckpoint(m *modelState) error {
	ck := m.ck
	ck.From, ck.Done = 0, m.handled
	ck.Sequential = m.seq
	for _, w := range s.win.Open(m.name) {
		if ck.From == 0 || w.Value.firstSeq < ck.From {
			ck.From = w.Value.firstSeq
		}
	}
	if ck.From > 0 {
		ck.Done = ck.From - 1
	}
	if st, err := s.win.State(m.name); err == nil {
		ck.Window = st
	}
	if len(ck.Through) > 0 {
		ck.Through = maps.Clone(ck.Through)
		for start := range ck.Through {
			// A span the watermark passed: its events are late anyway.
			if s.win.IsLate(m.name, time.Unix(0, start)) {
				delete(ck.Through, start)
			}
		}
	}
	data, err := json.Marshal(ck)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 10*time.Second)
	defer cancel()
	if _, err := s.state.Put(ctx, s.stateKey(m.name), data); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	m.ck = ck
	delete(s.dirty, m.name)
	return nil
}

// publish stores a report on lookout.drift.<model>, retrying until it is
// stored or the service stops.
func (s *Service) publish(model string, w *window, r driftreport.Report) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("drift report: %w", err)
	}
	out := nats.NewMsg(s.env.Subjects.For(natsbus.KindDrift, model))
	out.Data = data
	out.Header.Set("Content-Type", event.ContentTypeJSON)
	out.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("drift-%s-%d-%d", model, w.firstSeq, w.firstStored.UnixNano()))
	out.Header.Set(HeaderWindowSeq, fmt.Sprintf("%d-%d", w.firstSeq, w.lastSeq))
	out.Header.Set(HeaderProcess, service.LeaseHolder(s.env.DataDir))
	return natsbus.PublishUntilStored(s.ctx, s.env.JS, out, func(err error) {
		s.env.Log.Warn("drift: report not stored, retrying", zap.String("model", model), zap.Error(err))
	})
}

// Why build reports no window.
const (
	skipNoReference = "no reference to compare with"
	// A window compared with itself says "no drift" by construction: a
	// report that measures nothing, which a user (and the alert rules,
	// which would take it as a healthy window) should not see. The window
	// is the reference; the next one is the first measured.
	skipIsReference = "the window is the reference (learned from it), not reported against itself"
)

// build compares a closed window with its model's reference. It returns
// why it did not (skipIsReference, skipNoReference), or "", and a function
// that stores what the window taught (a learned reference), to call once
// the window is recorded.
func (s *Service) build(m *modelState, w *window) (driftreport.Report, func(), string) {
	ref, source, learn, self := s.reference(m, w)
	if learn == nil {
		learn = func() {}
	}
	switch {
	case self:
		return driftreport.Report{}, learn, skipIsReference
	case ref == nil:
		return driftreport.Report{}, learn, skipNoReference
	}
	version := w.dominantVersion()
	cur := &driftreport.Dataset{Features: w.features.Features, Rows: w.rows, Sample: w.features.Sample, Embeddings: w.features.Embeddings}
	if ref.Prediction != nil || ref.Confidence != nil {
		out := w.outputs[version]
		cur.Prediction, cur.Confidence = out.Prediction, out.Confidence
	}
	r := driftreport.Compare(ref, cur, s.opts)
	r.Version = version
	// Drift reads no labels, so the estimate is never calibrated here.
	r.EstimatedPerformance = estimatePerformance(ref, cur, nil)
	r.Reference.Source = source
	return r, learn, ""
}

// reference picks the reference of a closed window: features (and, for a
// pinned reference, everything) plus the prediction and confidence of the
// window's main version. It returns nil when there is none yet, and a
// function that stores what the window taught. self is true when the
// features' reference is this window: the first window learned, or a
// rolling reference with no earlier window. A version's prediction and
// confidence learned from this window are left out of its comparison
// (they would be compared with themselves); its next window compares them.
func (s *Service) reference(m *modelState, w *window) (ref *driftreport.Dataset, source string, learn func(), self bool) {
	ctx := s.ctx
	version := w.dominantVersion()
	if pinned := s.pinned(ctx, m); pinned != nil {
		return pinned, "pinned: " + m.pinnedInfo.Source, nil, false
	}
	switch s.cfg.Reference {
	case ReferencePinned:
		return nil, "", nil, false
	case ReferenceRolling:
		if len(m.history) == 0 {
			// The first window is the reference of the next.
			return nil, "", nil, true
		}
		var feats, outs []*driftreport.Dataset
		for _, h := range m.history {
			feats = append(feats, h.features)
			outs = append(outs, h.outputs[version]) // nil when the version is new
		}
		f := merge(s.sample, feats)
		o := merge(s.sample, outs)
		if o.Prediction.Len() == 0 && o.Confidence.Len() == 0 {
			o = nil
		}
		src := fmt.Sprintf("rolling: previous %d windows (%s to %s)", len(m.history),
			m.history[0].start().Format(time.RFC3339), m.history[len(m.history)-1].end().Format(time.RFC3339))
		return s.view(f, o, f.Rows), src, nil, false
	}

	// First window: learned references, kept in the Object Store.
	s.loadLearned(ctx, m)
	var store []func()
	full := w.rows >= s.cfg.ReferenceMinEvents
	if m.featureRef == nil {
		if !full {
			return nil, "", nil, false
		}
		m.featureRef, m.featureSrc = w.features, "first window "+w.span()
		feats := w.features
		store = append(store, func() { s.storeLearned(m.name, learnedFeaturesName(m.name), m.featureSrc, feats) })
	}
	outRef, known := m.versionRefs[version]
	if !known {
		outRef = s.loadVersion(ctx, m, version)
	}
	outSelf := false
	if outRef == nil && full {
		outRef, outSelf = w.outputs[version], true
		m.versionRefs[version] = outRef
		m.versionSrc[version] = fmt.Sprintf("version %s: first window %s", version, w.span())
		src, learned := m.versionSrc[version], outRef
		store = append(store, func() { s.storeLearned(m.name, learnedVersionName(m.name, version), src, learned) })
	}
	learn = func() {
		for _, f := range store {
			f()
		}
	}
	// Identity, not the span: windows of events without distinct times
	// share one span.
	if m.featureRef == w.features {
		return nil, "", learn, true
	}
	source = m.featureSrc
	switch {
	case outSelf:
		source += "; prediction and confidence: version " + version + " learned from this window, compared from its next window"
		outRef = nil
	case outRef != nil:
		source += "; prediction and confidence: " + m.versionSrc[version]
	}
	return s.view(m.featureRef, outRef, m.featureRef.Rows), source, learn, false
}

// view joins features from one dataset with prediction and confidence from
// another (nil: none).
func (s *Service) view(features, outputs *driftreport.Dataset, rows int) *driftreport.Dataset {
	d := &driftreport.Dataset{Features: features.Features, Rows: rows, Sample: features.Sample, Embeddings: features.Embeddings}
	if outputs != nil {
		d.Prediction, d.Confidence = outputs.Prediction, outputs.Confidence
	}
	return d
}

// pinned returns the model's pinned reference, re-reading it when it was
// replaced, or nil when none is set.
func (s *Service) pinned(ctx context.Context, m *modelState) *driftreport.Dataset {
	info, err := s.refs.PinnedInfo(ctx, m.name)
	if errors.Is(err, ErrNoReference) {
		if m.pinned != nil {
			s.env.Log.Info("drift: pinned reference cleared", zap.String("model", m.name))
		}
		m.pinned, m.pinnedInfo = nil, ReferenceInfo{}
		return nil
	}
	if err != nil {
		s.env.Log.Warn("drift: reading the pinned reference; using the last one read", zap.String("model", m.name), zap.Error(err))
		return m.pinned
	}
	if m.pinned != nil && info.id == m.pinnedInfo.id {
		return m.pinned
	}
	d, info, err := s.refs.Pinned(ctx, m.name, s.sample)
	if err != nil {
		s.env.Log.Warn("drift: reading the pinned reference; using the last one read", zap.String("model", m.name), zap.Error(err))
		return m.pinned
	}
	m.pinned, m.pinnedInfo = d, info
	s.env.Log.Info("drift: pinned reference loaded", zap.String("model", m.name), zap.String("source", info.Source), zap.Int("rows", info.Rows))
	return d
}

// loadLearned reads the model's learned feature reference once.
func (s *Service) loadLearned(ctx context.Context, m *modelState) {
	if m.loaded {
		return
	}
	m.loaded = true
	d, info, err := s.refs.get(ctx, learnedFeaturesName(m.name), s.sample)
	switch {
	case err == nil:
		m.featureRef, m.featureSrc = d, info.Source
		s.env.Log.Info("drift: learned reference loaded", zap.String("model", m.name), zap.String("source", info.Source))
	case !errors.Is(err, ErrNoReference):
		s.env.Log.Warn("drift: reading the learned reference", zap.String("model", m.name), zap.Error(err))
	}
}

// loadVersion reads a version's learned prediction and confidence
// reference, remembering when there is none.
func (s *Service) loadVersion(ctx context.Context, m *modelState, version string) *driftreport.Dataset {
	d, info, err := s.refs.get(ctx, learnedVersionName(m.name, version), s.sample)
	switch {
	case err == nil:
		m.versionRefs[version], m.versionSrc[version] = d, info.Source
		return d
	case errors.Is(err, ErrNoReference):
		m.versionRefs[version] = nil
	default:
		s.env.Log.Warn("drift: reading a version's learned reference", zap.String("model", m.name),
			zap.String("version", version), zap.Error(err))
	}
	return nil
}

// storeLearned keeps a learned reference in the Object Store.
func (s *Service) storeLearned(model, name, source string, d *driftreport.Dataset) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 30*time.Second)
	defer cancel()
	if _, err := s.refs.put(ctx, name, model, source, d); err != nil {
		s.env.Log.Warn("drift: storing a learned reference; it is learned again after a restart",
			zap.String("model", model), zap.Error(err))
		return
	}
	s.env.Log.Info("drift: reference learned", zap.String("model", model), zap.String("name", name), zap.String("source", source))
}

type metrics struct {
	events      prometheus.Counter
	redelivered prometheus.Counter
	skipped     *prometheus.CounterVec
	windows     *prometheus.CounterVec
	reports     *prometheus.CounterVec
	unreported  prometheus.Counter
	late        prometheus.Counter
}

// newMetrics returns the process's drift metrics: the services of its
// partitions, and each one built anew for a lease, count into the same.
func newMetrics(reg prometheus.Registerer) *metrics { return service.SharedMetrics(reg, makeMetrics) }

func makeMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		events: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_drift_events_total", Help: "Predictions added to drift windows.",
		}),
		redelivered: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_drift_redelivered_total", Help: "Predictions delivered again after AckWait (ignored).",
		}),
		skipped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_drift_skipped_total", Help: "Predictions not added to a window, by reason.",
		}, []string{"reason"}),
		windows: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_drift_windows_total", Help: "Drift windows closed, by what closed them (watermark, full or idle).",
		}, []string{"closed_by"}),
		reports: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_drift_reports_total", Help: "Drift reports published, by whether the dataset drifted.",
		}, []string{"dataset_drifted"}),
		unreported: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_drift_windows_unreported_total", Help: "Windows closed with no reference to compare with.",
		}),
		late: f.NewCounter(prometheus.CounterOpts{
			Name: "lookout_drift_late_total", Help: "Predictions dropped because their event-time window had closed.",
		}),
	}
}
