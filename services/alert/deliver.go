package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/notify"
)

// deliverAckWait is how long JetStream waits for a sink's verdict before
// it redelivers. A process that starts recreates the sink's consumer at
// its acknowledgement floor (it is owned), so a notification in flight when
// the last one died comes again at once; the short wait covers a process
// that hangs without dying. While a delivery is being tried, deliver keeps
// telling JetStream it is in progress, every deliverKeepAlive.
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
	s        *Service
	sink     sink
	consumer *natsbus.Durable
	msgs     chan jetstream.Msg
}

func (s *Service) newDeliverer(snk sink) *deliverer {
	name := snk.filter.Name
	consumer := s.durable(s.env.Subjects.StreamName(roleNotify), jetstream.ConsumerConfig{
		Durable:       consumerSink + name,
		Description:   "alert: deliveries to sink " + name,
		FilterSubject: s.env.Subjects.Prefix + "." + kindNotify + "." + name,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       deliverAckWait,
		MaxAckPending: 1, // in order, one at a time
	})
	return &deliverer{s: s, sink: snk, consumer: consumer, msgs: make(chan jetstream.Msg)}
}

// run delivers the sink's notifications until ctx ends (it returns once
// the consumer drained) or the consumer cannot be recreated.
func (d *deliverer) run(ctx context.Context) error {
	// With MaxAckPending 1 the server hands out the next notification only
	// once this one is settled, so the handler never waits long.
	consumed := consume(ctx, d.consumer, d.msgs)
	for {
		select {
		case <-ctx.Done():
			return <-consumed
		case err := <-consumed:
			return err
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
