package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
)

func init() {
	register(command{
		name:  "replay",
		usage: "[--subject S] [--rate N] [--model M] [--from T --to T] [--archive] PATH...  republish archived Parquet files or folders",
		run:   replayCommand,
	})
}

// modelToken in --subject stands for each event's model.
const modelToken = "{model}"

func replayCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		client    clientFlags
		opts      replayOptions
		from, to  string
		toArchive bool
		noBar     bool
	)
	client.register(fs)
	fs.StringVar(&opts.subject, "subject", "", "subject to publish to; "+modelToken+" is replaced by each event's model (default <prefix>.ingest."+modelToken+")")
	fs.Float64Var(&opts.rate, "rate", 0, "events per second (0: as fast as the server acknowledges)")
	fs.StringVar(&opts.read.Model, "model", "", "replay only this model")
	fs.StringVar(&from, "from", "", "replay events with ts at or after `T` (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&to, "to", "", "replay events with ts before `T` (RFC 3339 or YYYY-MM-DD)")
	fs.BoolVar(&toArchive, "archive", false, "ask the archive to write the events again (moving an archive to a new deployment)")
	fs.BoolVar(&noBar, "no-progress", false, "no progress bar, even on a terminal")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return fmt.Errorf("%w: want at least one Parquet file or archive folder", errUsage)
	}
	if opts.read.From, err = parseTimeFlag("from", from); err != nil {
		return err
	}
	if opts.read.To, err = parseTimeFlag("to", to); err != nil {
		return err
	}
	if !opts.read.From.IsZero() && !opts.read.To.IsZero() && !opts.read.From.Before(opts.read.To) {
		return fmt.Errorf("%w: --from must be before --to", errUsage)
	}
	if opts.rate < 0 {
		return fmt.Errorf("%w: --rate must not be negative", errUsage)
	}
	opts.header = event.ReplayOnly
	if toArchive {
		opts.header = event.ReplayArchive
	}
	cfg, err := client.load()
	if err != nil {
		return err
	}
	configureS3Reads(cfg)
	files, err := parquetarchive.ExpandPathsContext(ctx, rest)
	if err != nil {
		return err
	}
	if opts.subject == "" {
		opts.subject = subjectsFor(cfg).For(natsbus.KindIngest, modelToken)
	}
	nc, err := nats.Connect(client.natsURL, nats.Name("lookout replay"))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", client.natsURL, err)
	}
	defer nc.Close()
	opts.maxPending = 4096
	// The library's own bound is above ours, so a publish never stalls; a
	// publish the server never answers (a connection lost and not back)
	// fails after a while rather than holding the replay forever.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*opts.maxPending),
		jetstream.WithPublishAsyncTimeout(time.Minute))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	opts.errors = stderr
	if !noBar && isTerminal(stderr) {
		opts.progress = stderr
	}
	sum, err := replay(ctx, js, files, opts)
	fmt.Fprintf(stdout, "replay: files %d, bad files %d, rows %d, published %d, acknowledged %d, failed %d, in %.1fs (%.0f rows/s)\n",
		sum.files, sum.badFiles, sum.rows, sum.published, sum.acked, sum.failed, sum.elapsed.Seconds(), sum.rate())
	if err != nil {
		return err
	}
	var problems []string
	if sum.badFiles > 0 {
		problems = append(problems, fmt.Sprintf("%d bad files", sum.badFiles))
	}
	if sum.failed > 0 {
		problems = append(problems, fmt.Sprintf("%d events not acknowledged (first: %s)", sum.failed, sum.firstFailure))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// parseTimeFlag reads an RFC 3339 time or a date (midnight UTC).
func parseTimeFlag(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: --%s %q is neither RFC 3339 nor YYYY-MM-DD", errUsage, name, s)
}

// replayOptions configure replay.
type replayOptions struct {
	subject    string // with modelToken for each event's model
	rate       float64
	read       parquetarchive.ReadOptions
	header     string // value of the Lookout-Replay header
	maxPending int
	progress   io.Writer // progress bar, nil for none
	errors     io.Writer // one line per bad file
}

// replaySummary is what a replay did.
type replaySummary struct {
	files, badFiles                    int
	rows, published, acked, failed     int64
	firstFailure                       string
	elapsed                            time.Duration
	mu                                 sync.Mutex
	readRows, pubCount, ackCount, fail atomic.Int64
}

func (s *replaySummary) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.acked) / s.elapsed.Seconds()
}

// republish tries a message whose asynchronous publish failed again,
// synchronously, three times with a growing pause. A subject that no
// stream captures is not tried again: it never will be stored.
func republish(ctx context.Context, js jetstream.JetStream, msg *nats.Msg) error {
	var err error
	for attempt, pause := 0, time.Second; attempt < 3 && ctx.Err() == nil; attempt, pause = attempt+1, 2*pause {
		if _, err = js.PublishMsg(ctx, msg); err == nil || isNoStream(err) {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// isNoStream reports whether a publish failed because no stream captures
// its subject (the server answered "no responders").
func isNoStream(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}

// noStreamError names a subject that no stream captures.
func noStreamError(subject string) error {
	return fmt.Errorf("no JetStream stream captures subject %q: nothing would store the events (check --subject)", subject)
}

// checkSubject fails when no stream captures subject, before anything is
// published to it. A lookup the server refuses (a user allowed only to
// publish) is not an answer: then the first publish tells, as isNoStream.
func checkSubject(ctx context.Context, js jetstream.JetStream, subject string) error {
	lookup, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := js.StreamNameBySubject(lookup, subject)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return noStreamError(subject)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return nil
}

// replay republishes the rows of files, in order, with JetStream
// acknowledgements and at most opts.maxPending unacknowledged. A bad file
// is reported on opts.errors and counted, and the replay goes on. Each
// subject is checked before its first publish, and a subject no stream
// captures stops the replay. The error is ctx's, that subject's, or a path
// that cannot be read at all. Every wait honours ctx, so an interrupt
// stops the replay at once.
func replay(ctx context.Context, js jetstream.JetStream, files []string, opts replayOptions) (*replaySummary, error) {
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	start := time.Now()
	sum := &replaySummary{}
	if opts.maxPending <= 0 {
		opts.maxPending = 4096
	}
	if opts.errors == nil {
		opts.errors = io.Discard
	}
	// The footers give the total for the progress bar and find files that
	// are not Parquet before anything is published.
	var good []string
	var total int64
	for _, path := range files {
		if opts.read.SkipPath(path) {
			continue
		}
		f, err := parquetarchive.OpenContext(ctx, path)
		if err != nil {
			sum.badFiles++
			fmt.Fprintf(opts.errors, "lookout replay: skipping %v\n", err)
			continue
		}
		total += f.NumRows()
		f.Close()
		good = append(good, path)
	}
	sum.files = len(good) + sum.badFiles

	// reader → msgs → publisher → futures → acknowledger. runCtx ends with
	// ctx or with the first subject no stream captures (its cause).
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	msgs := make(chan *nats.Msg, 1024)
	futures := make(chan jetstream.PubAckFuture, opts.maxPending)
	readCtx, stopReading := context.WithCancel(runCtx)
	defer stopReading()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(msgs)
		for _, path := range good {
			err := parquetarchive.ReadFile(readCtx, path, opts.read, func(p *event.Prediction) error {
				msg := &nats.Msg{
					Subject: strings.ReplaceAll(opts.subject, modelToken, p.GetModel()),
					Header: nats.Header{
						event.HeaderReplay: []string{opts.header}, "Content-Type": []string{event.ContentTypeJSON},
						// Retries within this run are de-duplicated; another run
						// of replay is a new publish.
						jetstream.MsgIDHeader: []string{"replay-" + run + "-" + p.GetId()},
					},
					Data: event.AppendJSON(make([]byte, 0, 512), p),
				}
				sum.readRows.Add(1)
				select {
				case msgs <- msg:
					return nil
				case <-readCtx.Done():
					return readCtx.Err()
				}
			})
			var fe *parquetarchive.FileError
			switch {
			case errors.As(err, &fe):
				sum.mu.Lock()
				sum.badFiles++
				sum.mu.Unlock()
				fmt.Fprintf(opts.errors, "lookout replay: %v (rows before the error were replayed)\n", err)
			case err != nil:
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for f := range futures {
			select {
			case <-f.Ok():
				sum.ackCount.Add(1)
			case <-runCtx.Done():
				// Interrupted: what is still pending is neither acknowledged
				// nor failed, and waiting for it would hold the exit.
			case err := <-f.Err():
				if !isNoStream(err) {
					err = republish(runCtx, js, f.Msg())
				}
				if err == nil {
					sum.ackCount.Add(1)
					continue
				}
				if isNoStream(err) {
					stopRun(noStreamError(f.Msg().Subject))
				}
				sum.fail.Add(1)
				sum.mu.Lock()
				if sum.firstFailure == "" {
					sum.firstFailure = err.Error()
				}
				sum.mu.Unlock()
			}
		}
	}()
	stopBar := startProgress(opts.progress, total, sum, start)

	var pacer pacer
	if opts.rate > 0 {
		pacer = newPacer(opts.rate)
	}
	checked := map[string]bool{}
	for msg := range msgs {
		if err := pacer.wait(runCtx); err != nil {
			break
		}
		if !checked[msg.Subject] {
			if err := checkSubject(runCtx, js, msg.Subject); err != nil {
				stopRun(err)
				break
			}
			checked[msg.Subject] = true
		}
		f, err := js.PublishMsgAsync(msg)
		sum.pubCount.Add(1)
		if err != nil {
			sum.fail.Add(1)
			sum.mu.Lock()
			if sum.firstFailure == "" {
				sum.firstFailure = err.Error()
			}
			sum.mu.Unlock()
			continue
		}
		select {
		case futures <- f:
		case <-runCtx.Done():
		}
	}
	stopReading()
	for range msgs { // let the reader finish
	}
	close(futures)
	wg.Wait()
	stopBar()
	sum.rows = sum.readRows.Load()
	sum.published = sum.pubCount.Load()
	sum.acked = sum.ackCount.Load()
	sum.failed = sum.fail.Load()
	sum.elapsed = time.Since(start)
	if runCtx.Err() != nil {
		return sum, context.Cause(runCtx)
	}
	return sum, nil
}

// pacer spaces publishes to a rate; the zero pacer does not wait.
type pacer struct {
	start time.Time
	every time.Duration
	n     int64
}

func newPacer(rate float64) pacer {
	return pacer{start: time.Now(), every: time.Duration(float64(time.Second) / rate)}
}

// wait blocks until the next event is due.
func (p *pacer) wait(ctx context.Context) error {
	if p.every <= 0 {
		return ctx.Err()
	}
	due := p.start.Add(time.Duration(p.n) * p.every)
	p.n++
	if d := time.Until(due); d > time.Millisecond {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return ctx.Err()
}

// startProgress draws a progress bar on w (a terminal) until the returned
// function is called; a nil w draws nothing.
func startProgress(w io.Writer, total int64, sum *replaySummary, start time.Time) func() {
	if w == nil {
		return func() {}
	}
	draw := func() {
		done := sum.ackCount.Load() + sum.fail.Load()
		frac := 1.0
		if total > 0 {
			frac = min(float64(done)/float64(total), 1)
		}
		const width = 30
		filled := int(frac * width)
		rate := float64(done) / max(time.Since(start).Seconds(), 1e-9)
		fmt.Fprintf(w, "\rreplay [%s%s] %3.0f%% %d/%d rows %.0f/s ", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), frac*100, done, total, rate)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				draw()
			case <-stop:
				draw()
				fmt.Fprintln(w)
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}
