package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// dispatcher is the second stage: alert events in, grouped per model with
// Alertmanager's timing, notifications out on <prefix>.notify.<sink>.
type dispatcher struct {
	s        *Service
	state    jetstream.KeyValue
	silences *Silences
	timing   alerting.Timing
	filters  []alerting.SinkFilter
	groups   map[string]*alerting.Group

	events   chan jetstream.Msg
	consumer *natsbus.Durable

	mu       sync.Mutex
	silenced []alerting.Silence
}

func (s *Service) newDispatcher(ctx context.Context, state jetstream.KeyValue, silences *Silences) (*dispatcher, error) {
	d := &dispatcher{
		s: s, state: state, silences: silences,
		timing: alerting.Timing{GroupWait: s.cfg.GroupWait, GroupInterval: s.cfg.GroupInterval, RepeatInterval: s.cfg.RepeatInterval},
		events: make(chan jetstream.Msg, 256),
	}
	for _, snk := range s.sinks {
		d.filters = append(d.filters, snk.filter)
	}
	var err error
	if d.groups, err = loadGroups(ctx, state); err != nil {
		return nil, err
	}
	stream := s.env.Subjects.StreamName(natsbus.StreamAlerts)
	d.consumer = s.durable(stream, jetstream.ConsumerConfig{
		Durable:     consumerDispatch,
		Description: "alert: grouping alert events into notifications",
		// When first created, from the service's start on (see built);
		// once it exists, Durable resumes it after its floor, so nothing
		// unacknowledged is skipped.
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &s.built,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 256, // the size of events: the handler never waits long
	})
	return d, nil
}

func loadGroups(ctx context.Context, state jetstream.KeyValue) (map[string]*alerting.Group, error) {
	saved, err := loadPrefix[alerting.Group](ctx, state, keyGroup)
	if err != nil {
		return nil, err
	}
	groups := make(map[string]*alerting.Group, len(saved))
	for model, g := range saved {
		if g.Alerts == nil {
			g.Alerts = map[string]alerting.Alert{}
		}
		if g.Sinks == nil {
			g.Sinks = map[string]alerting.SinkLog{}
		}
		if g.Clock.IsZero() && !g.NextFlush.IsZero() {
			// Stored before groups had a clock: its times are wall times.
			g.Clock, g.ClockWall = time.Now().UTC(), time.Now().UTC()
		}
		groups[model] = &g
	}
	return groups, nil
}

// close hands back what run left unhandled; it is called once run
// returned.
func (d *dispatcher) close() {
	for {
		select {
		case m := <-d.events:
			_ = m.Nak()
		default:
			return
		}
	}
}

// run groups alert events and flushes the groups until ctx ends (it
// returns once the consumer drained), or the consumer or the silences
// watch cannot be restarted.
func (d *dispatcher) run(ctx context.Context) error {
	loaded := make(chan struct{})
	var once sync.Once
	watched := make(chan error, 1)
	go func() {
		watched <- d.silences.watch(ctx, func(list []alerting.Silence) {
			d.mu.Lock()
			d.silenced = list
			d.mu.Unlock()
			once.Do(func() { close(loaded) })
		}, d.s.env.Health.Reporter("alert/silences"), d.s.log)
	}()
	// Events are taken only once the silences are known, so that the
	// first flush honours them.
	select {
	case <-ctx.Done():
		return nil
	case err := <-watched:
		return err
	case <-loaded:
	}
	consumed := consume(ctx, d.consumer, d.events)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return <-consumed
		case err := <-consumed:
			return err
		case err := <-watched:
			// nil: ctx ended, and the case above drains the consumer.
			if err != nil {
				return err
			}
		case m := <-d.events:
			d.handleEvent(ctx, m)
		case <-timer.C:
			d.flushDue(ctx)
		}
		timer.Reset(d.nextFlush())
	}
}

// nextFlush returns the wall-time wait until the earliest group is due
// with no further event (its clock then runs on wall time).
func (d *dispatcher) nextFlush() time.Duration {
	next := time.Hour
	now := d.s.now()
	for _, g := range d.groups {
		if due := g.WallDue(d.timing); !due.IsZero() {
			next = min(next, max(due.Sub(now), 0))
		}
	}
	return next
}

func (d *dispatcher) handleEvent(ctx context.Context, m jetstream.Msg) {
	var a alerting.Alert
	if err := json.Unmarshal(m.Data(), &a); err != nil || a.Fingerprint == "" || a.Model == "" {
		d.s.log.Warn("alert event dropped", zap.String("subject", m.Subject()), zap.Error(err))
		_ = m.Term()
		return
	}
	g := d.groups[a.Model]
	if g == nil {
		g = alerting.NewGroup(a.Model)
		d.groups[a.Model] = g
	}
	// The event moves the group's clock to its report's event time: the
	// flushes a live run would have made before it are made first, so a
	// backlog gives the notifications a live run would have sent.
	at := g.Observe(&a, d.s.now(), d.timing)
	if !d.flush(ctx, g, at) {
		_ = m.Nak()
		return
	}
	g.Add(a, at, d.timing)
	if err := d.store(ctx, g); err != nil {
		_ = m.Nak()
		return
	}
	_ = m.Ack()
}

// store persists group g (deletes it once empty). It returns an error only
// when ctx ended first. A group that can never be stored (larger than the
// max payload) is logged and counted, and lives on in memory: the alerts
// keep flowing, only a restart forgets it.
func (d *dispatcher) store(ctx context.Context, g *alerting.Group) error {
	var err error
	if g.Empty() {
		delete(d.groups, g.Model)
		err = d.s.retry(ctx, "delete group", func(ctx context.Context) error {
			return d.state.Delete(ctx, keyGroup+g.Model)
		})
	} else {
		b, _ := json.Marshal(g)
		err = d.s.retry(ctx, "store group", func(ctx context.Context) error {
			_, err := d.state.Put(ctx, keyGroup+g.Model, b)
			return err
		})
	}
	if err != nil && ctx.Err() == nil {
		d.s.metrics.permanent.WithLabelValues("store group").Inc()
		d.s.log.Error("group not stored: it lives in memory only", zap.String("model", g.Model),
			zap.Int("alerts", len(g.Alerts)), zap.Error(err))
		return nil
	}
	return err
}

// flushDue flushes the groups whose clock, run on by wall time, reached
// their next flush.
func (d *dispatcher) flushDue(ctx context.Context) {
	wall := d.s.now()
	models := make([]string, 0, len(d.groups))
	for model, g := range d.groups {
		if g.Due(g.Now(wall, d.timing)) {
			models = append(models, model)
		}
	}
	slices.Sort(models)
	for _, model := range models {
		g := d.groups[model]
		if !d.flush(ctx, g, g.Now(wall, d.timing)) || d.store(ctx, g) != nil {
			return
		}
	}
}

// flush makes the flushes of group g due by its clock reading at and
// queues their notifications, in order. It returns false when ctx ended
// first: the store still holds g as it was, so a restart makes the same
// flushes again, and their notification IDs make JetStream drop the repeats.
func (d *dispatcher) flush(ctx context.Context, g *alerting.Group, at time.Time) bool {
	if !g.Due(at) {
		return true
	}
	d.mu.Lock()
	silenced := d.silenced
	d.mu.Unlock()
	for _, n := range g.Advance(at, d.s.now(), d.timing, d.filters, silenced) {
		err := d.s.retry(ctx, "queue notification", func(ctx context.Context) error { return d.queue(ctx, &n) })
		if err != nil && ctx.Err() != nil {
			return false
		}
		if err != nil {
			// Permanent: never a hot loop; keep it for the operator.
			if d.s.deadLetter(ctx, n.Sink, publishReason(err), n.ID, &n, nil, err, 1) != nil {
				return false
			}
		}
	}
	return true
}

// queue publishes n for its sink, cut to fit in one message (see bound).
func (d *dispatcher) queue(ctx context.Context, n *alerting.Notification) error {
	data, err := bound(n, d.s.budget())
	if err != nil {
		return err
	}
	if n.Omitted > 0 {
		d.s.log.Warn("notification cut to fit", zap.String("sink", n.Sink), zap.String("model", n.Model),
			zap.Int("alerts", len(n.Alerts)), zap.Int("omitted", n.Omitted), zap.Int("budget", d.s.budget()))
	}
	msg := nats.NewMsg(d.s.env.Subjects.Prefix + "." + kindNotify + "." + n.Sink)
	msg.Data = data
	msg.Header.Set("Content-Type", "application/json")
	msg.Header.Set(jetstream.MsgIDHeader, n.ID)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := d.s.env.JS.PublishMsg(pctx, msg); err != nil {
		return fmt.Errorf("queue notification: %w", err)
	}
	d.s.metrics.notifications.WithLabelValues(n.Sink).Inc()
	d.s.log.Debug("notification queued", zap.String("sink", n.Sink), zap.String("model", n.Model),
		zap.String("status", n.Status), zap.Int("alerts", len(n.Alerts)))
	return nil
}
