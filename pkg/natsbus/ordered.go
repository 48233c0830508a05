package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"
)

// ErrStreamGone is returned by Ordered.Consume when the stream it reads
// was deleted, or deleted and created again, while it read: its sequences
// no longer mean what the reader's checkpoint says.
var ErrStreamGone = errors.New("stream gone")

// Ordered is the core's second checkpoint pattern, beside Durable: ordered
// replay from a checkpoint. The reader, not the server, remembers how far
// it has read: it keeps the stream sequence of the last message it handled
// in its own checkpoint, together with the state it built from the messages
// before it (the canary's waiting halves and open windows), and after a
// restart reads again from the next sequence. Nothing is acknowledged and
// nothing durable is left on the server; a message handled twice (after a
// crash between two checkpoints) must give the same result, which the
// reader ensures by keying what it publishes with a Nats-Msg-Id.
//
// Use Durable when each message is work to be done once; use Ordered when
// a reader folds a stream into state it saves as a whole.
//
// Under it is a JetStream ordered consumer: messages arrive in stream
// order, without gaps, and the client recreates the consumer by itself
// (after a missed heartbeat, a reconnect, or a delete from outside) from
// the message after the last one delivered. Pulls are bounded by bytes,
// consume errors are logged and reported to Health, and the stream's
// existence is checked every CheckEvery: a deleted or recreated stream
// ends Consume with an error wrapping ErrStreamGone, so the process fails
// loudly instead of silently reading nothing.
type Ordered struct {
	JS     jetstream.JetStream
	Stream string
	// Filter restricts the subjects read (wildcards allowed); empty reads
	// the whole stream.
	Filter []string
	// StartSeq, when not zero, is the first stream sequence delivered: the
	// one after the checkpoint's.
	StartSeq uint64
	// StartTime, when StartSeq is zero, delivers from the first message
	// stored at or after it. Both zero deliver the whole stream.
	StartTime time.Time
	// PullBytes bounds the client's buffer; 0 means DefaultPullBytes.
	PullBytes int
	// Name names the reader in logs, health errors and the server's
	// consumer names; empty means the stream's name.
	Name string
	// Log is named for the service; nil logs nothing.
	Log *zap.Logger
	// Health, if set, is told nil while the reader works and an error
	// while its consumer or stream is gone or failing.
	Health func(error)
	// CheckEvery is how often the stream and the consumer are checked; 0
	// means 2 s.
	CheckEvery time.Duration
}

// Consume calls handle for each message, in stream order, on one
// goroutine, until ctx ends; then it stops pulling, waits for handle to
// return and returns nil. It returns an error when the stream or the
// consumer cannot be read at start, and one wrapping ErrStreamGone when the
// stream is deleted or recreated while it reads.
func (o *Ordered) Consume(ctx context.Context, handle func(jetstream.Msg)) error {
	log := o.Log
	if log == nil {
		log = zap.NewNop()
	}
	name := o.Name
	if name == "" {
		name = o.Stream
	}
	check := o.CheckEvery
	if check <= 0 {
		check = 2 * time.Second
	}
	pullBytes := o.PullBytes
	if pullBytes <= 0 {
		pullBytes = DefaultPullBytes
	}
	fail := func(err error) error {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		err = fmt.Errorf("reader %s: %w", name, err)
		o.report(err)
		return err
	}
	stream, err := o.JS.Stream(ctx, o.Stream)
	if err != nil {
		return fail(fmt.Errorf("stream %s: %w", o.Stream, err))
	}
	created := stream.CachedInfo().Created
	// The consumers' names start with the reader's, so that the watch can
	// tell whether one exists and an operator can tell whose they are.
	prefix := consumerNameToken(name) + "_" + nuid.Next()
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: o.Filter, NamePrefix: prefix}
	switch {
	case o.StartSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, o.StartSeq
	case !o.StartTime.IsZero():
		start := o.StartTime
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fail(fmt.Errorf("consumer on %s: %w", o.Stream, err))
	}
	cc, err := cons.Consume(handle,
		jetstream.PullMaxBytes(pullBytes),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed) {
				return // shutting down
			}
			// The client recreates the consumer after these by itself;
			// the watch reports health again once it exists.
			log.Warn("reader: consume error", zap.String("reader", name), zap.String("stream", o.Stream), zap.Error(err))
			o.report(fmt.Errorf("reader %s: %w", name, err))
		}))
	if err != nil {
		return fail(fmt.Errorf("consume %s: %w", o.Stream, err))
	}
	o.report(nil)
	err = o.watch(ctx, stream, created, prefix, check)
	cc.Stop()
	<-cc.Closed()
	if err != nil {
		log.Error("reader: stopped", zap.String("reader", name), zap.String("stream", o.Stream), zap.Error(err))
		err = fmt.Errorf("reader %s: %w", name, err)
		o.report(err)
		return err
	}
	// The server would drop the consumer after five idle minutes anyway;
	// a reader that stops cleanly leaves nothing behind.
	if info := cons.CachedInfo(); info != nil {
		delCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = o.JS.DeleteConsumer(delCtx, o.Stream, info.Name)
		cancel()
	}
	return nil
}

// watch checks every interval that the stream is the one the reader
// started on and that a consumer of the reader's exists; it returns nil
// when ctx ends and an ErrStreamGone error when the stream went.
func (o *Ordered) watch(ctx context.Context, stream jetstream.Stream, created time.Time, prefix string, every time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		checkCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := o.check(checkCtx, stream, created, prefix)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrStreamGone):
			return err
		case err != nil:
			// The server may be briefly unreachable, or the client busy
			// recreating its consumer: report it and look again.
			o.report(fmt.Errorf("reader %s: %w", o.nameOr(), err))
		default:
			o.report(nil)
		}
	}
}

func (o *Ordered) check(ctx context.Context, stream jetstream.Stream, created time.Time, prefix string) error {
	info, err := stream.Info(ctx)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("%w: stream %s was deleted", ErrStreamGone, o.Stream)
	case err != nil:
		return fmt.Errorf("stream %s: %w", o.Stream, err)
	case !info.Created.Equal(created):
		return fmt.Errorf("%w: stream %s was deleted and created again", ErrStreamGone, o.Stream)
	}
	names := stream.ConsumerNames(ctx)
	found := false
	for n := range names.Name() {
		if strings.HasPrefix(n, prefix+"_") {
			found = true
		}
	}
	if err := names.Err(); err != nil {
		return fmt.Errorf("stream %s: list consumers: %w", o.Stream, err)
	}
	if !found {
		return fmt.Errorf("stream %s: consumer %s_* is gone and not recreated yet", o.Stream, prefix)
	}
	return nil
}

func (o *Ordered) nameOr() string {
	if o.Name != "" {
		return o.Name
	}
	return o.Stream
}

func (o *Ordered) report(err error) {
	if o.Health != nil {
		o.Health(err)
	}
}

// consumerNameToken turns a reader's name into something a consumer name
// may hold (no '.', '*', '>', spaces or path separators).
func consumerNameToken(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
}
