package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/notify"
)

// deliverAckWait is how long JetStream waits for a sink's verdict before
// it redelivers. It is short so that a notification in flight when a
// process died is delivered again within seconds by the next one; while a
// delivery is being tried, deliver keeps telling JetStream it is in
// progress, every deliverKeepAlive.
const (
	deliverAckWait   = 5 * time.Second
	deliverKeepAlive = deliverAckWait / 5
	// sendTimeout bounds one try of a sink.
	sendTimeout = time.Minute
)

// deliverer is the third stage for one sink: it reads the sink's
// notifications with its own durable consumer, one at a time, sends each
// with exponential backoff and acknowledges it once the sink took it or it
// was dead-lettered.
type deliverer struct {
	s    *Service
	sink sink
	cons jetstream.Consumer

	msgs    chan jetstream.Msg
	lost    chan error
	consume jetstream.ConsumeContext
}

func (s *Service) newDeliverer(ctx context.Context, stream jetstream.Stream, snk sink) (*deliverer, error) {
	name := snk.filter.Name
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       consumerSink + name,
		Description:   "alert: deliveries to sink " + name,
		FilterSubject: s.env.Subjects.Prefix + "." + kindNotify + "." + name,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       deliverAckWait,
		MaxAckPending: 1, // in order, one at a time
	})
	if err != nil {
		return nil, fmt.Errorf("sink %s consumer: %w", name, err)
	}
	return &deliverer{s: s, sink: snk, cons: cons, msgs: make(chan jetstream.Msg), lost: make(chan error, 1)}, nil
}

func (d *deliverer) run(ctx context.Context) error {
	name := consumerSink + d.sink.filter.Name
	var err error
	// With MaxAckPending 1 the server hands out the next notification only
	// once this one is settled, so the handler never waits long.
	d.consume, err = d.cons.Consume(func(m jetstream.Msg) {
		select {
		case d.msgs <- m:
		case <-ctx.Done():
			_ = m.Nak()
		}
	}, d.s.consumeErrors(name, d.cons, d.lost))
	if err != nil {
		return fmt.Errorf("sink %s: %w", d.sink.filter.Name, err)
	}
	defer d.consume.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-d.lost:
			return err
		case <-d.consume.Closed():
			if ctx.Err() != nil {
				return nil
			}
			select {
			case err := <-d.lost:
				return err
			default:
				return errors.New("sink " + d.sink.filter.Name + ": consume stopped")
			}
		case m := <-d.msgs:
			d.deliver(ctx, m)
		}
	}
}

// deliver sends one notification until the sink accepts it, fails
// permanently or for longer than GiveUpAfter (then it is dead-lettered),
// or ctx ends (the message goes back to JetStream).
func (d *deliverer) deliver(ctx context.Context, m jetstream.Msg) {
	stop := keepAlive(m)
	defer stop()
	name := d.sink.filter.Name
	attempt := 0
	settle := func(n *alerting.Notification, reason string, cause error) {
		id := ""
		if n != nil {
			id = n.ID
		}
		if d.s.deadLetter(ctx, name, reason, id, n, m.Data(), cause, attempt) != nil {
			_ = m.Nak()
			return
		}
		d.s.metrics.deliveries.WithLabelValues(name, "dead").Inc()
		_ = m.TermWithReason("dead-lettered: " + reason)
	}
	var n alerting.Notification
	if err := json.Unmarshal(m.Data(), &n); err != nil {
		settle(nil, reasonInvalid, fmt.Errorf("not a notification: %w", err))
		return
	}
	queued := time.Now()
	if meta, err := m.Metadata(); err == nil {
		queued = meta.Timestamp
	}
	retry := d.s.cfg.Retry
	wait := retry.Initial
	for attempt = 1; ; attempt++ {
		sendCtx, cancel := context.WithTimeout(ctx, sendTimeout)
		err := d.sink.Send(sendCtx, &n)
		cancel()
		if err == nil {
			ackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := m.DoubleAck(ackCtx); err != nil {
				d.s.log.Warn("notification sent, ack failed", zap.String("sink", name), zap.Error(err))
			}
			cancel()
			d.s.metrics.deliveries.WithLabelValues(name, "ok").Inc()
			d.s.metrics.deliverTime.WithLabelValues(name).Observe(time.Since(queued).Seconds())
			d.s.log.Info("notification sent", zap.String("sink", name), zap.String("type", d.sink.kind),
				zap.String("model", n.Model), zap.String("status", n.Status), zap.Int("alerts", len(n.Alerts)), zap.Int("attempt", attempt))
			return
		}
		if ctx.Err() != nil {
			_ = m.Nak()
			return
		}
		d.s.metrics.deliveries.WithLabelValues(name, "error").Inc()
		if notify.IsPermanent(err) {
			settle(&n, reasonRejected, err)
			return
		}
		if time.Since(queued) > retry.GiveUpAfter {
			settle(&n, reasonExpired, err)
			return
		}
		// A Retry-After is honoured up to the longest backoff.
		wait = max(wait, min(notify.RetryAfter(err), retry.Max))
		d.s.log.Warn("notification failed; will retry", zap.String("sink", name), zap.String("model", n.Model),
			zap.Int("attempt", attempt), zap.Duration("in", wait), zap.Error(err))
		if !sleep(ctx, wait) {
			_ = m.Nak()
			return
		}
		wait = min(wait*2, retry.Max)
	}
}

// keepAlive tells JetStream every deliverKeepAlive that m is in progress,
// until the returned stop is called.
func keepAlive(m jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(deliverKeepAlive)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
