package natsbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// DefaultPullBytes bounds what a consumer buffers in the client. Pulls are
// bounded by bytes, not by a message count, so a burst of large messages
// costs at most this much memory and never makes the server cut Lookout's
// connection as a slow consumer. It must exceed the largest message a
// stream holds (the server's max payload, 8 MiB on the embedded server).
const DefaultPullBytes = 16 << 20

// Durable is the one way Lookout services read a JetStream stream with
// acknowledgements: a durable consumer that is created or resumed at its
// acknowledgement floor, whose errors are logged and reported to health,
// and that is recreated at its floor within seconds when someone deletes
// it. Its handler acknowledges (or hands back) each message itself.
//
// There are two ways to use it:
//   - Shared (the default): every process of a service reads the same
//     consumer (ingest scales out this way). The consumer is created or
//     updated, never deleted, at start.
//   - Owned (Owned true): one process at a time owns the consumer (a
//     singleton under its lease, or the archive with its journal). At start
//     the consumer is recreated at its acknowledgement floor, so what a
//     crashed owner held is delivered again at once instead of after
//     AckWait.
type Durable struct {
	JS     jetstream.JetStream
	Stream string
	// Config is the consumer's configuration; Config.Durable names it.
	Config jetstream.ConsumerConfig
	// Owned: see the type's comment.
	Owned bool
	// Floor, for an owned consumer, is called before the consumer is
	// recreated with the acknowledgement floor known (the server's, or the
	// last one seen when the consumer was deleted from outside) and the old
	// consumer's info (nil when there is none), and returns the floor to
	// start after. An owner that keeps its own record of what it has
	// durably handled returns the larger of the two (the archive's
	// journal); one that must read open windows again returns a lower one
	// (drift). Nil means the known floor.
	Floor func(ctx context.Context, floor uint64, old *jetstream.ConsumerInfo) (uint64, error)
	// PullBytes bounds the client's buffer; 0 means DefaultPullBytes.
	PullBytes int
	// Log is named for the service.
	Log *zap.Logger
	// Health, if set, is told nil while the consumer works and an error
	// while it is gone or failing.
	Health func(error)
	// CheckEvery is how often the consumer's existence and floor are
	// checked; 0 means 2 s.
	CheckEvery time.Duration

	mu      sync.Mutex
	floor   uint64 // the last acknowledgement floor seen on the server
	restart chan struct{}
}

// Restart makes Consume recreate the consumer at its acknowledgement floor
// (through Floor, for an owned one), as if it had been deleted: for a
// handler that saw a message go missing (a gap in the consumer sequence,
// when a node died with the message in flight) and must read again from
// what it acknowledged. It does not block.
func (d *Durable) Restart() {
	select {
	case d.restartCh() <- struct{}{}:
	default:
	}
}

func (d *Durable) restartCh() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.restart == nil {
		d.restart = make(chan struct{}, 1)
	}
	return d.restart
}

// errConsumerGone marks a consume loop stopped because the consumer went.
var errConsumerGone = errors.New("consumer gone")

// Consume calls handle for each message until ctx ends, then stops
// pulling, lets handle finish what was delivered, and returns nil. handle
// runs on one goroutine, in order. Consume returns an error when the
// consumer cannot be created for a minute (the stream is gone, say), so the
// process fails loudly rather than silently stopping its work.
func (d *Durable) Consume(ctx context.Context, handle func(jetstream.Msg)) error {
	name := d.Config.Durable
	check := d.CheckEvery
	if check <= 0 {
		check = 2 * time.Second
	}
	pullBytes := d.PullBytes
	if pullBytes <= 0 {
		pullBytes = DefaultPullBytes
	}
	first := true
	for {
		cons, err := d.open(ctx, first)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.report(err)
			return fmt.Errorf("consumer %s: %w", name, err)
		}
		first = false
		gone := make(chan error, 1)
		cc, err := cons.Consume(handle,
			jetstream.PullMaxBytes(pullBytes),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				d.consumeError(err, gone)
			}))
		if err != nil {
			return fmt.Errorf("consumer %s: consume: %w", name, err)
		}
		d.report(nil)
		err = d.watch(ctx, cons, check, gone)
		if errors.Is(err, errConsumerGone) {
			cc.Stop()
			<-cc.Closed()
			d.Log.Warn("consumer gone; recreating it at its acknowledgement floor",
				zap.String("stream", d.Stream), zap.String("consumer", name), zap.Uint64("floor", d.lastFloor()))
			continue
		}
		// Drain: no new pulls; what was delivered is still handled, so
		// nothing waits out its AckWait after a clean shutdown.
		cc.Drain()
		<-cc.Closed()
		return nil
	}
}

// AckFloor returns the consumer's acknowledgement floor (stream sequence)
// as last seen on the server.
func (d *Durable) AckFloor() uint64 { return d.lastFloor() }

func (d *Durable) lastFloor() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.floor
}

func (d *Durable) setFloor(f uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.floor = max(d.floor, f)
}

func (d *Durable) report(err error) {
	if d.Health != nil {
		d.Health(err)
	}
}

// consumeError is the consume error handler: every error is logged and
// reported; the ones that mean the consumer is gone end this consume loop.
func (d *Durable) consumeError(err error, gone chan<- error) {
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		select {
		case gone <- err:
		default:
		}
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, jetstream.ErrConnectionClosed):
		// shutting down
	default:
		d.Log.Warn("consumer error", zap.String("consumer", d.Config.Durable), zap.Error(err))
		d.report(fmt.Errorf("consumer %s: %w", d.Config.Durable, err))
	}
}

// watch checks that the consumer still exists every interval, keeping its
// floor; it returns nil when ctx ends and errConsumerGone when the
// consumer was deleted.
func (d *Durable) watch(ctx context.Context, cons jetstream.Consumer, every time.Duration, gone <-chan error) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	restart := d.restartCh()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-restart:
			return errConsumerGone
		case err := <-gone:
			d.report(fmt.Errorf("consumer %s: %w", d.Config.Durable, err))
			return errConsumerGone
		case <-tick.C:
			infoCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			info, err := cons.Info(infoCtx)
			cancel()
			switch {
			case err == nil:
				d.setFloor(info.AckFloor.Stream)
				d.report(nil)
			case errors.Is(err, jetstream.ErrConsumerNotFound):
				d.report(fmt.Errorf("consumer %s: %w", d.Config.Durable, err))
				return errConsumerGone
			case ctx.Err() != nil:
				return nil
			default:
				// The server may be briefly unreachable; the
				// connection reconnects by itself.
				d.report(fmt.Errorf("consumer %s: %w", d.Config.Durable, err))
			}
		}
	}
}

// open creates or resumes the consumer, retrying for up to a minute.
func (d *Durable) open(ctx context.Context, first bool) (jetstream.Consumer, error) {
	deadline := time.Now().Add(time.Minute)
	backoff := 100 * time.Millisecond
	for {
		// Creating is not interrupted half way (between deleting and
		// creating an owned consumer), so it has a context of its own.
		tryCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		cons, err := d.create(tryCtx, first)
		cancel()
		if err == nil {
			return cons, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, err
		}
		d.Log.Warn("consumer: cannot create yet; retrying", zap.String("consumer", d.Config.Durable), zap.Error(err))
		d.report(fmt.Errorf("consumer %s: %w", d.Config.Durable, err))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (d *Durable) create(ctx context.Context, first bool) (jetstream.Consumer, error) {
	stream, err := d.JS.Stream(ctx, d.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", d.Stream, err)
	}
	cfg := d.Config
	if !d.Owned && first {
		cons, err := stream.CreateOrUpdateConsumer(ctx, cfg)
		if err == nil {
			return cons, nil
		}
		// A consumer recreated at its floor by another process has a
		// start sequence that cannot be updated: resume it as it is.
		if existing, getErr := stream.Consumer(ctx, cfg.Durable); getErr == nil {
			d.Log.Info("consumer: resuming the existing one", zap.String("consumer", cfg.Durable), zap.Error(err))
			return existing, nil
		}
		return nil, err
	}
	floor := d.lastFloor()
	old, err := stream.Consumer(ctx, cfg.Durable)
	exists := err == nil
	var oldInfo *jetstream.ConsumerInfo
	switch {
	case exists:
		if !d.Owned {
			// Another process of a shared consumer recreated it already.
			return old, nil
		}
		if oldInfo, err = old.Info(ctx); err != nil {
			return nil, err
		}
		floor = max(floor, oldInfo.AckFloor.Stream)
	case errors.Is(err, jetstream.ErrConsumerNotFound):
	default:
		return nil, err
	}
	if d.Floor != nil {
		if floor, err = d.Floor(ctx, floor, oldInfo); err != nil {
			return nil, err
		}
	}
	if exists {
		if err := stream.DeleteConsumer(ctx, cfg.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("recreate: %w", err)
		}
	}
	// A consumer that existed (or that was deleted from outside) goes on
	// right after its floor, whatever its configured policy: DeliverNew
	// must not skip what was published while it was gone. Only a first
	// creation keeps the configured policy, unless an owner's floor says
	// where to start.
	// A work queue holds only what is not acknowledged, and its consumer
	// must deliver all of it.
	recreated := exists || !first
	workQueue := stream.CachedInfo().Config.Retention == jetstream.WorkQueuePolicy
	if !workQueue && (recreated || floor > 0) && !(cfg.DeliverPolicy == jetstream.DeliverByStartSequencePolicy && cfg.OptStartSeq > floor+1) {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = floor + 1
		cfg.OptStartTime = nil
	}
	cons, err := stream.CreateConsumer(ctx, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		// Another process of a shared consumer was quicker.
		return stream.Consumer(ctx, cfg.Durable)
	}
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.floor = floor // may be lower than before: an owner reading windows again
	d.mu.Unlock()
	return cons, nil
}
