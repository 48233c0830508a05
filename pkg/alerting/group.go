package alerting

import (
	"slices"
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
	Firing []string  `json:"firing"`
	SentAt time.Time `json:"sent_at"`
}

// Group is the alerts of one model on their way to notifications. It is
// plain data, so the service can persist it as JSON.
type Group struct {
	Model string `json:"model"`
	// Alerts holds the latest event of each alert, by fingerprint.
	Alerts map[string]Alert `json:"alerts"`
	// NextFlush is when the group is next looked at (zero: idle).
	NextFlush time.Time `json:"next_flush"`
	LastFlush time.Time `json:"last_flush"`
	// Sinks is what each sink was last sent.
	Sinks map[string]SinkLog `json:"sinks"`
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

// Flush decides, at now, what each sink is sent: a sink gets a
// notification when the set of firing alerts it takes changed since it was
// last told, when one it was told about resolved, or when RepeatInterval
// passed with alerts still firing. Silenced alerts are left out. While a
// dataset_drift alert fires, the model's feature_drift alerts are listed
// inside it instead of on their own. Resolved alerts leave the group.
func (g *Group) Flush(now time.Time, t Timing, sinks []SinkFilter, silences []Silence) []Notification {
	alerts := make([]Alert, 0, len(g.Alerts))
	for _, a := range g.Alerts {
		alerts = append(alerts, a)
	}
	SortAlerts(alerts)
	var out []Notification
	for _, sink := range sinks {
		var view []Alert
		for _, a := range alerts {
			if sink.Accepts(&a) && !Silenced(silences, &a, now) {
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
			case slices.Contains(log.Firing, a.Fingerprint):
				send = append(send, a)
				resolvedNews = true
			}
		}
		slices.Sort(firing)
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
			out = append(out, Notification{Sink: sink.Name, Model: g.Model, Status: status, Alerts: send, SentAt: now})
		}
		if len(firing) == 0 {
			delete(g.Sinks, sink.Name)
		} else {
			g.Sinks[sink.Name] = SinkLog{Firing: firing, SentAt: now}
		}
	}
	for fp, a := range g.Alerts {
		if !a.Firing() {
			delete(g.Alerts, fp)
		}
	}
	g.LastFlush = now
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
