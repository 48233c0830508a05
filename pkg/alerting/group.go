package alerting

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"time"
)

// Timing is Alertmanager's grouping timing.
type Timing struct {
	// GroupWait gathers a new group's first alerts into one notification.
	GroupWait time.Duration
	// GroupInterval is the wait before notifying changes to a group that
	// was already notified.
	GroupInterval time.Duration
	// RepeatInterval is the wait before a still-firing notification is
	// sent again.
	RepeatInterval time.Duration
}

// SinkFilter says which alerts one sink takes.
type SinkFilter struct {
	Name string
	// Rules and Severities, when not empty, limit the alerts the sink
	// takes to these.
	Rules      []string
	Severities []string
}

// Accepts reports whether the sink takes alert a.
func (f *SinkFilter) Accepts(a *Alert) bool {
	return (len(f.Rules) == 0 || slices.Contains(f.Rules, a.Rule)) &&
		(len(f.Severities) == 0 || slices.Contains(f.Severities, a.Severity))
}

// MaxCatchUpRepeats bounds the repeats one jump of a group's clock sends
// (see Group.Advance): two days of backlog at the default 4h
// repeat_interval are notified as paced.
const MaxCatchUpRepeats = 12

// Notification is what a sink is sent: the alerts of one model's group as
// that sink sees them (filtered, silenced and inhibited).
type Notification struct {
	// ID is unique per notification; receivers can use it to drop a
	// repeat delivery.
	ID    string `json:"id"`
	Sink  string `json:"sink"`
	Model string `json:"model"`
	// Status is firing while any of Alerts fires, resolved otherwise.
	Status string  `json:"status"`
	Alerts []Alert `json:"alerts"`
	// Omitted counts the group's alerts left out of Alerts so that the
	// notification fits in one message ("and N more").
	Omitted int       `json:"omitted,omitempty"`
	SentAt  time.Time `json:"sent_at"`
}

// Firing returns the notification's firing alerts.
func (n *Notification) Firing() []Alert { return n.filter(true) }

// Resolved returns the notification's resolved alerts.
func (n *Notification) Resolved() []Alert { return n.filter(false) }

func (n *Notification) filter(firing bool) []Alert {
	var out []Alert
	for _, a := range n.Alerts {
		if a.Firing() == firing {
			out = append(out, a)
		}
	}
	return out
}

// SinkLog is what a group last told one sink.
type SinkLog struct {
	// Firing are the fingerprints sent as firing, sorted.
	Firing []string `json:"firing"`
	// Shown are the fingerprints sent as firing inside another alert (the
	// inhibited feature_drift alerts of a dataset_drift), sorted: their
	// resolution is not news of its own.
	Shown []string `json:"shown,omitempty"`
	// SentAt is the group's clock (event time) when the sink was told.
	SentAt time.Time `json:"sent_at"`
}

// Group is the alerts of one model on their way to notifications. It is
// plain data, so the service can persist it as JSON.
//
// Its timing runs on the group's own clock, the reports' event time: a
// backlog processed in a second is then notified as a live run would have
// been, instead of fitting whole inside one group_wait. NextFlush,
// LastFlush and the sinks' SentAt are on that clock.
type Group struct {
	Model string `json:"model"`
	// Alerts holds the latest event of each alert, by fingerprint.
	Alerts map[string]Alert `json:"alerts"`
	// NextFlush is when the group is next looked at (zero: idle).
	NextFlush time.Time `json:"next_flush"`
	LastFlush time.Time `json:"last_flush"`
	// Sinks is what each sink was last sent.
	Sinks map[string]SinkLog `json:"sinks"`
	// Clock is the group's event time: the latest report window end of its
	// alert events, moved on by wall time once no event came for
	// GroupWait, so that a live group is flushed when its reports stop.
	// Zero until the first event.
	Clock time.Time `json:"clock"`
	// ClockWall is the wall time at which Clock was last set.
	ClockWall time.Time `json:"clock_wall"`
	// Dirty is set when an event arrived since the last flush.
	Dirty bool `json:"dirty,omitempty"`
}

// EventTime returns the event time alert a speaks for: the end of the
// report window it came from. ok is false for alerts of no window (no_data
// and the rejection rate run on wall time).
func EventTime(a *Alert) (at time.Time, ok bool) {
	if a.Source.Window == nil || a.Source.Window.End.IsZero() {
		return time.Time{}, false
	}
	return a.Source.Window.End, true
}

// Now returns the group's clock at wall time wall: Clock while events keep
// coming, Clock plus the wall time since the last one once that exceeds
// GroupWait (a live group whose reports stopped), wall for a group that
// never saw an event.
func (g *Group) Now(wall time.Time, t Timing) time.Time {
	if g.Clock.IsZero() {
		return wall
	}
	if idle := wall.Sub(g.ClockWall); idle >= t.GroupWait && idle > 0 {
		return g.Clock.Add(idle)
	}
	return g.Clock
}

// Observe moves the group's clock, at wall time wall, to alert a's event
// time and returns the clock. The clock never goes back: an event older
// than the clock (another report kind lagging behind) counts at the clock.
func (g *Group) Observe(a *Alert, wall time.Time, t Timing) time.Time {
	now := g.Now(wall, t)
	if at, ok := EventTime(a); ok && (g.Clock.IsZero() || at.After(now)) {
		now = at
	}
	g.Clock, g.ClockWall = now, wall
	return now
}

// WallDue returns the wall time at which the group's clock reaches
// NextFlush when no event comes (zero when the group is idle).
func (g *Group) WallDue(t Timing) time.Time {
	switch {
	case g.NextFlush.IsZero():
		return time.Time{}
	case g.Clock.IsZero():
		return g.NextFlush
	}
	return g.ClockWall.Add(max(t.GroupWait, g.NextFlush.Sub(g.Clock)))
}

// NewGroup returns an empty group for model.
func NewGroup(model string) *Group {
	return &Group{Model: model, Alerts: map[string]Alert{}, Sinks: map[string]SinkLog{}}
}

// Add takes one alert event at now and schedules the flush that will
// carry it: after GroupWait for a group never flushed, at the next
// GroupInterval tick otherwise. A change to a group that has been quiet
// longer than GroupInterval still waits GroupWait, so that the alerts one
// report changes (a dataset alert and its features) go out together.
func (g *Group) Add(a Alert, now time.Time, t Timing) {
	if old, ok := g.Alerts[a.Fingerprint]; ok && old.Status == a.Status && old.StartsAt.After(a.StartsAt) {
		return // an older event delivered late
	}
	g.Alerts[a.Fingerprint] = a
	g.Dirty = true
	switch {
	case !g.NextFlush.IsZero():
	case g.LastFlush.IsZero():
		g.NextFlush = now.Add(t.GroupWait)
	default:
		g.NextFlush = maxTime(now.Add(t.GroupWait), g.LastFlush.Add(t.GroupInterval))
	}
}

// Empty reports whether the group holds nothing worth keeping.
func (g *Group) Empty() bool { return len(g.Alerts) == 0 && len(g.Sinks) == 0 && g.NextFlush.IsZero() }

// Due reports whether the group should be flushed at now.
func (g *Group) Due(now time.Time) bool { return !g.NextFlush.IsZero() && !now.Before(g.NextFlush) }

// Advance flushes the group at each flush time due by its clock reading
// now, in order, as a live run would have at those times, and returns the
// notifications. wall is the wall time, for silences and SentAt. Flushes
// that could only repeat are skipped to the next repeat, so that a gap in
// event time costs no more than the notifications it holds. A gap longer
// than MaxCatchUpRepeats repeat intervals is a jump of the clock, not a
// backlog (reports of 1970, or of a model back after months, then live
// ones): its repeats collapse into one, at the last group_interval tick
// due, instead of flooding the sinks with one per repeat_interval of it.
func (g *Group) Advance(now, wall time.Time, t Timing, sinks []SinkFilter, silences []Silence) []Notification {
	var out []Notification
	for g.Due(now) {
		if !g.Dirty && t.GroupInterval > 0 && !g.silenced(silences, wall) {
			// Nothing new and no silence in play: only a repeat can go
			// out; move to the first group_interval tick at or after it.
			next := g.nextRepeat(t)
			if next.IsZero() || next.After(now) {
				next = now.Add(time.Nanosecond)
			} else if now.Sub(next) > MaxCatchUpRepeats*t.RepeatInterval {
				next = g.NextFlush.Add(now.Sub(g.NextFlush) / t.GroupInterval * t.GroupInterval)
			}
			if gap := next.Sub(g.NextFlush); gap > 0 {
				steps := (gap + t.GroupInterval - 1) / t.GroupInterval
				g.NextFlush = g.NextFlush.Add(steps * t.GroupInterval)
			}
			if !g.Due(now) {
				break
			}
		}
		out = append(out, g.flush(g.NextFlush, wall, t, sinks, silences)...)
		if t.GroupInterval <= 0 {
			break // the next flush would be now again
		}
	}
	return out
}

// nextRepeat returns the earliest time a sink is due a repeat (zero when
// no sink was told of a firing alert).
func (g *Group) nextRepeat(t Timing) time.Time {
	var next time.Time
	for _, log := range g.Sinks {
		if len(log.Firing) == 0 {
			continue
		}
		if at := log.SentAt.Add(t.RepeatInterval); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}

// silenced reports whether a silence mutes one of the group's alerts at
// wall: its end (or a new one) changes what sinks see, so every tick counts.
func (g *Group) silenced(silences []Silence, wall time.Time) bool {
	for _, a := range g.Alerts {
		if Silenced(silences, &a, wall) {
			return true
		}
	}
	return false
}

// Flush is flush with one clock for event and wall time.
func (g *Group) Flush(now time.Time, t Timing, sinks []SinkFilter, silences []Silence) []Notification {
	return g.flush(now, now, t, sinks, silences)
}

// flush decides, at now, what each sink is sent: a sink gets a
// notification when the set of firing alerts it takes changed since it was
// last told, when one it was told about resolved, when one resolved that it
// was never told fired (it fired and resolved between two flushes: it is
// sent resolved, with its starts_at and ends_at), or when RepeatInterval
// passed with alerts still firing. Silenced alerts (at wall) are left out.
// While a dataset_drift alert fires, the model's feature_drift alerts are
// listed inside it instead of on their own. Resolved alerts leave the
// group.
func (g *Group) flush(now, wall time.Time, t Timing, sinks []SinkFilter, silences []Silence) []Notification {
	alerts := make([]Alert, 0, len(g.Alerts))
	for _, a := range g.Alerts {
		alerts = append(alerts, a)
	}
	SortAlerts(alerts)
	var out []Notification
	for _, sink := range sinks {
		var view []Alert
		for _, a := range alerts {
			if sink.Accepts(&a) && !Silenced(silences, &a, wall) {
				view = append(view, a)
			}
		}
		view = inhibit(view)
		log := g.Sinks[sink.Name]
		var firing []string
		var send []Alert
		resolvedNews := false
		for _, a := range view {
			switch {
			case a.Firing():
				firing = append(firing, a.Fingerprint)
				send = append(send, a)
			case slices.Contains(log.Firing, a.Fingerprint), !slices.Contains(log.Shown, a.Fingerprint):
				send = append(send, a)
				resolvedNews = true
			}
		}
		slices.Sort(firing)
		var shown []string
		for _, a := range send {
			for _, in := range a.Inhibited {
				if in.Firing() {
					shown = append(shown, in.Fingerprint)
				}
			}
		}
		slices.Sort(shown)
		changed := !slices.Equal(firing, log.Firing)
		repeat := len(firing) > 0 && !now.Before(log.SentAt.Add(t.RepeatInterval))
		if !changed && !resolvedNews && !repeat {
			continue
		}
		if len(send) > 0 {
			status := StatusResolved
			if len(firing) > 0 {
				status = StatusFiring
			}
			n := Notification{Sink: sink.Name, Model: g.Model, Status: status, Alerts: send, SentAt: wall}
			n.ID = notificationID(&n, now)
			out = append(out, n)
		}
		if len(firing) == 0 {
			delete(g.Sinks, sink.Name)
		} else {
			g.Sinks[sink.Name] = SinkLog{Firing: firing, Shown: shown, SentAt: now}
		}
	}
	for fp, a := range g.Alerts {
		if !a.Firing() {
			delete(g.Alerts, fp)
		}
	}
	g.LastFlush = now
	g.Dirty = false
	g.NextFlush = time.Time{}
	if len(g.Alerts) > 0 {
		g.NextFlush = now.Add(t.GroupInterval)
	}
	return out
}

// inhibit moves feature_drift alerts inside a firing dataset_drift alert
// of the same model.
func inhibit(view []Alert) []Alert {
	dataset := -1
	for i := range view {
		if view[i].Rule == RuleDatasetDrift && view[i].Firing() {
			dataset = i
			break
		}
	}
	if dataset < 0 {
		return view
	}
	out := make([]Alert, 0, len(view))
	var inhibited []Alert
	for _, a := range view {
		if a.Rule == RuleFeatureDrift {
			inhibited = append(inhibited, a)
			continue
		}
		out = append(out, a)
	}
	for i := range out {
		if out[i].Rule == RuleDatasetDrift && out[i].Firing() {
			out[i].Inhibited = inhibited
		}
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// notificationID is the same for the same flush (at the group's clock
// reading at) of the same group, so a flush repeated after a crash is
// dropped by JetStream as a duplicate.
func notificationID(n *Notification, at time.Time) string {
	h := sha256.New()
	h.Write([]byte(n.Sink + "\x00" + n.Model + "\x00" + strconv.FormatInt(at.UnixNano(), 10)))
	for _, a := range n.Alerts {
		h.Write([]byte("\x00" + a.Fingerprint + ":" + a.Status))
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
