// Package archive is the service that writes every accepted prediction to
// Parquet, exactly once, under <data>/archive or, with archive.s3, in an
// S3 bucket (layout in pkg/parquetarchive, the same in both).
//
// It reads lookout.predictions.* in stream order (natsbus.Ordered, the
// core's checkpoint pattern: nothing is acknowledged), buffers rows per
// model and closes a model's window after Config.Window or Config.MaxRows
// rows. A closed window becomes one file per UTC date of its rows, each
// written to a temporary name, synced and renamed.
//
// The checkpoint is a journal (<data>/archive-state/journal.jsonl) of the
// stream sequences in each file, appended and synced before the rename,
// and its floor: every sequence at or below the floor is written or needs
// no writing. The service starts reading at the floor's next sequence, so
// a crash loses nothing (rows that were only buffered are read again) and
// writes nothing twice (a sequence the journal holds is skipped). In S3 the
// PUT of a complete object plays the part of the rename: the journal entry
// is synced before it, and on start an entry whose object is absent is
// dropped. One archive process per data folder and per stream is the
// supported setup.
//
// Reading without acknowledgements is the archive's share of Lookout's
// speed: an explicitly acknowledged consumer holding a window's worth of
// messages made the server track and persist each pending one.
//
// Messages marked as replayed (header Lookout-Replay) are not written,
// unless the header's value is "archive".
package archive

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
	"github.com/lookout-ml/lookout/pkg/service"
)

// ConsumerName is the archive's durable consumer on the predictions stream.
const ConsumerName = "archive"

// Close reasons, the label of lookout_archive_windows_closed_total.
const (
	reasonTime     = "time"
	reasonSize     = "size"
	reasonShutdown = "shutdown"
)

// Service is the archive service.
type Service struct {
	env     service.Env
	cfg     Config
	root    string // <data>/archive, or s3://bucket/prefix
	store   parquetarchive.Store
	state   string // <data>/archive-state
	metrics *metrics

	journal  *journal
	windows  map[string]*window
	buffered int             // rows in all windows, bounded by Config.MaxPending
	highSeq  uint64          // highest sequence taken in order in this run
	poisoned map[string]bool // file names of failed writes, never reused
	in       chan jetstream.Msg
	stopped  chan struct{}
	// fatal is set when a write's outcome cannot be known (the PUT failed
	// and the store cannot say whether the object is there): the service
	// stops, and the journal settles it at the next start.
	fatal error
}

var _ service.Service = (*Service)(nil)

// window is one model's open window: its rows and their stream sequences,
// in increasing sequence order.
type window struct {
	model  string
	opened time.Time
	rows   []*event.Prediction
	seqs   []uint64
}

// New returns the archive service, writing under env.DataDir/archive.
func New(env service.Env, cfg Config) (*Service, error) {
	if env.DataDir == "" {
		return nil, errors.New("archive: no data folder")
	}
	state := filepath.Join(env.DataDir, "archive-state")
	var store parquetarchive.Store = &parquetarchive.Folder{Root: filepath.Join(env.DataDir, "archive")}
	if cfg.S3.Enabled() {
		s3, err := parquetarchive.NewS3(*cfg.S3, filepath.Join(state, "staging"))
		if err != nil {
			return nil, err
		}
		store = s3
	}
	return &Service{
		env:     env,
		cfg:     cfg.withDefaults(),
		root:    store.Location(),
		store:   store,
		state:   state,
		metrics: newMetrics(env.Metrics),
	}, nil
}

// Root returns where the archive is written: a folder or s3://bucket/prefix.
func (s *Service) Root() string { return s.root }

// Run archives predictions until ctx is cancelled, then writes every open
// window, acknowledges it and returns nil. Errors setting up the consumer
// or the journal are returned.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // a fatal error ends the consumer too
	setupCtx, cancelSetup := context.WithTimeout(ctx, 30*time.Second)
	var err error
	if s3, ok := s.store.(*parquetarchive.S3); ok {
		// A wrong endpoint, bucket or credentials stop the service now,
		// not at the first window.
		err = s3.Check(setupCtx) // its errors start with archive.s3
	}
	if err == nil {
		err = s.openJournal(setupCtx)
	}
	cancelSetup()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer s.journal.close()
	s.windows = make(map[string]*window)
	s.poisoned = make(map[string]bool)
	s.highSeq = s.journal.maxSeq()
	s.in = make(chan jetstream.Msg, 4096)
	s.stopped = make(chan struct{})
	defer close(s.stopped)

	stream := s.env.Subjects.StreamName(natsbus.StreamPredictions)
	// The durable consumer of earlier versions: the journal's floor is
	// never above its acknowledgement floor, so reading from the journal's
	// floor loses nothing it held.
	if err := s.env.JS.DeleteConsumer(ctx, stream, ConsumerName); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.env.Log.Warn("archive: the durable consumer of an earlier version could not be removed", zap.Error(err))
	}
	reader := &natsbus.Ordered{
		JS:       s.env.JS,
		Stream:   stream,
		Filter:   []string{s.env.Subjects.All(natsbus.KindPredictions)},
		StartSeq: s.journal.header.Floor + 1,
		Name:     ConsumerName,
		Log:      s.env.Log,
		Health:   s.env.Health.Reporter("archive"),
	}
	consumed := make(chan error, 1)
	go func() {
		consumed <- reader.Consume(ctx, func(msg jetstream.Msg) {
			select {
			case s.in <- msg:
			case <-s.stopped: // above the floor: read again at the next start
			}
		})
	}()
	s.env.Log.Info("archive started", zap.String("root", s.root), zap.Uint64("from_seq", reader.StartSeq), zap.Duration("window", s.cfg.Window), zap.Int("max_rows", s.cfg.MaxRows))

	tick := time.NewTicker(min(max(s.cfg.Window/20, 10*time.Millisecond), time.Second))
	defer tick.Stop()
	lastCompact := time.Now()
	for {
		if s.fatal != nil {
			return fmt.Errorf("archive: %w", s.fatal)
		}
		select {
		case msg := <-s.in:
			s.take(msg)
		case now := <-tick.C:
			for _, w := range s.sortedWindows() {
				if now.Sub(w.opened) >= s.cfg.Window {
					s.flush(w, reasonTime)
				}
			}
			if s.fatal != nil {
				continue
			}
			if now.Sub(lastCompact) >= 30*time.Second {
				lastCompact = now
				s.compact()
			}
		case err := <-consumed:
			// Ended: by ctx (the reader handed over what it had read) or
			// because its stream went.
			for {
				select {
				case msg := <-s.in:
					s.take(msg)
					continue
				default:
				}
				break
			}
			for _, w := range s.sortedWindows() {
				s.flush(w, reasonShutdown)
			}
			if s.fatal != nil {
				return fmt.Errorf("archive: %w", s.fatal)
			}
			// The next start reads from here, not from the last compaction.
			s.compact()
			if err != nil {
				return fmt.Errorf("archive: %w", err)
			}
			s.env.Log.Info("archive stopped")
			return nil
		}
	}
}

// openJournal opens the journal of the files written and removes the
// temporary files a crash left.
func (s *Service) openJournal(ctx context.Context) error {
	streamName := s.env.Subjects.StreamName(natsbus.StreamPredictions)
	stream, err := s.env.JS.Stream(ctx, streamName)
	if err != nil {
		return fmt.Errorf("archive: stream %s: %w", streamName, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("archive: stream %s: %w", streamName, err)
	}
	j, err := openJournal(filepath.Join(s.state, "journal.jsonl"), func(file string) (bool, error) {
		return s.store.Exists(ctx, file)
	}, journalHeader{
		Stream: streamName, Created: info.Created.UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	removed, err := s.store.Clean(ctx)
	if err != nil {
		j.close()
		return fmt.Errorf("archive: %w", err)
	}
	s.journal = j
	s.env.Log.Info("archive journal open", zap.String("stream", streamName), zap.Uint64("floor", j.header.Floor),
		zap.Int("journal_files", len(j.entries)), zap.Int("temp_files_removed", removed))
	return nil
}

// take buffers one message, or skips it when it is not to be written.
func (s *Service) take(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		s.env.Log.Warn("archive: message without metadata", zap.Error(err))
		return
	}
	seq := meta.Sequence.Stream
	model := s.env.Subjects.Model(msg.Subject())
	if seq <= s.highSeq {
		// Read before: written already, or waiting in a window.
		if s.journal.committed(seq) {
			s.metrics.skipped.WithLabelValues("duplicate").Inc()
			return
		}
		if w := s.windows[model]; w != nil {
			if _, found := slices.BinarySearch(w.seqs, seq); found {
				return
			}
		}
	} else {
		s.highSeq = seq
	}
	if replay := msg.Headers().Get(event.HeaderReplay); replay != "" && replay != event.ReplayArchive {
		s.metrics.skipped.WithLabelValues("replay").Inc()
		return
	}
	p, reasons := s.env.Stored.Decode(seq, msg.Data(), model, msg.Headers().Get("Content-Type"), meta.Timestamp)
	if len(reasons) > 0 {
		s.metrics.skipped.WithLabelValues("invalid").Inc()
		s.env.Log.Warn("archive: not a valid prediction, skipped", zap.String("subject", msg.Subject()),
			zap.Uint64("seq", seq), zap.String("reason", reasons[0].GetMessage()))
		return
	}
	w := s.buffer(p.Model, []*event.Prediction{p}, []uint64{seq})
	if len(w.rows) >= s.cfg.MaxRows {
		s.flush(w, reasonSize)
	}
	if s.buffered >= s.cfg.MaxPending {
		// Memory is bounded: the fullest window is written early.
		var fullest *window
		for _, w := range s.sortedWindows() {
			if fullest == nil || len(w.rows) > len(fullest.rows) {
				fullest = w
			}
		}
		s.flush(fullest, reasonSize)
	}
}

// buffer adds rows with their sequences to the model's window, opening it
// if there is none, in sequence order.
func (s *Service) buffer(model string, rows []*event.Prediction, seqs []uint64) *window {
	w := s.windows[model]
	if w == nil {
		w = &window{model: model, opened: time.Now()}
		s.windows[model] = w
	}
	for k, seq := range seqs {
		i := len(w.seqs)
		if i > 0 && seq < w.seqs[i-1] {
			i, _ = slices.BinarySearch(w.seqs, seq)
		}
		w.seqs = slices.Insert(w.seqs, i, seq)
		w.rows = slices.Insert(w.rows, i, rows[k])
	}
	s.buffered += len(rows)
	s.metrics.buffered.Add(float64(len(rows)))
	return w
}

func (s *Service) sortedWindows() []*window {
	out := make([]*window, 0, len(s.windows))
	for _, w := range s.windows {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].model < out[j].model })
	return out
}

// flush closes a window: one file per UTC date of its rows. Rows whose
// file could not be written go back into a window, tried again after
// retryAfter.
func (s *Service) flush(w *window, reason string) {
	delete(s.windows, w.model)
	s.buffered -= len(w.rows)
	s.metrics.buffered.Sub(float64(len(w.rows)))
	s.metrics.windows.WithLabelValues(reason).Inc()
	groups := map[int64][]int{}
	var days []int64
	for i, p := range w.rows {
		d := parquetarchive.Date(p).Unix()
		if _, ok := groups[d]; !ok {
			days = append(days, d)
		}
		groups[d] = append(groups[d], i)
	}
	slices.Sort(days)
	for _, d := range days {
		idx := groups[d]
		rows := make([]*event.Prediction, len(idx))
		var seqs seqSet
		for k, i := range idx {
			rows[k] = w.rows[i]
			seqs.add(w.seqs[i])
		}
		if s.fatal != nil {
			return // above the floor: read again after the restart
		}
		if err := s.writeFile(w.model, time.Unix(d, 0).UTC(), rows, seqs, reason); err != nil {
			s.metrics.writeErrors.Inc()
			if s.fatal != nil {
				s.env.Log.Error("archive: write outcome unknown; stopping so that the journal settles it at the next start",
					zap.String("model", w.model), zap.Error(err))
				return
			}
			s.env.Log.Error("archive: write failed; its rows are kept and tried again", zap.String("model", w.model),
				zap.Duration("retry_after", retryAfter), zap.Error(err))
			retrySeqs := make([]uint64, len(idx))
			for k, i := range idx {
				retrySeqs[k] = w.seqs[i]
			}
			retry := s.buffer(w.model, rows, retrySeqs)
			if at := time.Now().Add(retryAfter - s.cfg.Window); at.Before(retry.opened) {
				retry.opened = at
			}
			continue
		}
	}
}

// retryAfter is how long rows whose file failed wait before the next try.
const retryAfter = 5 * time.Second

// writeFile writes one date's rows, recording them in the journal before
// the rename.
func (s *Service) writeFile(model string, date time.Time, rows []*event.Prediction, seqs seqSet, reason string) error {
	start := time.Now()
	first, last := parquetarchive.TimeRange(rows)
	// Writes are bounded so that a hung object store cannot hold the
	// window (and its unacknowledged messages) forever.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var rel string
	for n := seqs.ranges[0].lo; ; n++ {
		rel = parquetarchive.Key(model, date, parquetarchive.FileName(first, last, n))
		if s.poisoned[rel] {
			continue
		}
		exists, err := s.store.Exists(ctx, rel)
		if err != nil {
			return err
		}
		if !exists {
			break
		}
	}
	var entry *journalEntry
	stats, err := s.store.Write(ctx, rel, rows, parquetarchive.WriteOptions{BeforeRename: func() error {
		var err error
		entry, err = s.journal.append(rel, seqs)
		return err
	}})
	if err != nil {
		// A fresh deadline: the write may have failed by running out of its own.
		checkCtx, cancelCheck := context.WithTimeout(context.Background(), time.Minute)
		exists, statErr := s.store.Exists(checkCtx, rel)
		cancelCheck()
		switch {
		case statErr != nil && entry != nil:
			// Journaled, and nobody can say whether the object is there:
			// writing the rows again elsewhere could duplicate them, and
			// acknowledging them could lose them.
			s.fatal = fmt.Errorf("write %s: %w; and then: %w", rel, err, statErr)
			return s.fatal
		case exists && entry != nil:
			// Visible, but a last step failed (a folder sync, or the
			// answer to a PUT that the store did take): the file is there.
			s.env.Log.Warn("archive: file written but its last step failed", zap.String("file", rel), zap.Error(err))
		default:
			if entry != nil {
				s.journal.forget(entry)
			}
			s.poisoned[rel] = true
			return err
		}
	}
	elapsed := time.Since(start)
	s.metrics.writeSeconds.Observe(elapsed.Seconds())
	s.metrics.rows.WithLabelValues(model).Add(float64(stats.Rows))
	s.metrics.files.WithLabelValues(model).Inc()
	s.metrics.conflicts.WithLabelValues(model).Add(float64(stats.TypeConflicts))
	s.env.Log.Info("archive file written", zap.String("file", rel), zap.Int("rows", stats.Rows),
		zap.Int64("bytes", stats.Bytes), zap.String("closed_by", reason), zap.Duration("took", elapsed))
	return nil
}

// compact records the floor, the sequence below the first row still
// buffered (or the last read when none is), and drops the journal entries
// it has passed.
func (s *Service) compact() {
	floor := s.highSeq
	for _, w := range s.windows {
		if len(w.seqs) > 0 {
			floor = min(floor, w.seqs[0]-1)
		}
	}
	if floor <= s.journal.header.Floor {
		return
	}
	if err := s.journal.compact(floor); err != nil {
		s.env.Log.Warn("archive: journal compaction failed", zap.Error(err))
	}
}
