package canaryjudge

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/lookout-ml/lookout/pkg/event"
)

// Options tune a Tracker.
type Options struct {
	// Wait is how long a half waits for its pair.
	Wait time.Duration
	// WindowPairs closes a window after this many pairs ...
	WindowPairs int
	// Window ... or this long after it opened.
	Window time.Duration
	// MaxHalves caps the halves waiting per model; past it the oldest
	// expires early and is counted unmatched.
	MaxHalves int
	// Judge gives each closed window its verdict.
	Judge *Judge
}

// Counters are a tracker's running totals, for metrics.
type Counters struct {
	Pairs      uint64
	Expired    uint64
	Evicted    uint64
	Duplicates uint64
	Ignored    uint64
}

// Tracker joins predictions into pairs and windows for every model, and
// judges each window as it closes. Time is a logical clock that only moves
// forward, driven by the times given to Prediction, Rejected and Advance
// (the service gives it the times messages were stored), so feeding the
// same events again gives the same reports. It is not safe for concurrent
// use.
type Tracker struct {
	opts     Options
	clock    int64
	models   map[string]*modelState
	counters Counters
	// next is a time at or before the earliest expiry or window end of
	// any model: Advance does nothing before it.
	next int64
}

type modelState struct {
	join   *Joiner
	win    Window
	streak int
}

// NewTracker returns an empty tracker.
func NewTracker(opts Options) *Tracker {
	if opts.WindowPairs <= 0 {
		opts.WindowPairs = math.MaxInt
	}
	if opts.Window <= 0 {
		opts.Window = time.Duration(math.MaxInt64 / 4)
	}
	if opts.MaxHalves <= 0 {
		opts.MaxHalves = math.MaxInt
	}
	if opts.Judge == nil {
		opts.Judge = &Judge{Guardrails: DefaultGuardrails()}
	}
	return &Tracker{opts: opts, models: make(map[string]*modelState)}
}

// Clock returns the tracker's time.
func (t *Tracker) Clock() time.Time { return time.Unix(0, t.clock).UTC() }

// Counters returns the running totals.
func (t *Tracker) Counters() Counters { return t.counters }

// InFlight returns the number of halves waiting for their pair.
func (t *Tracker) InFlight() int {
	n := 0
	for _, m := range t.models {
		n += m.join.Len()
	}
	return n
}

// Prediction moves the clock to at and adds p: it is counted in its
// model's window and, when it is a join candidate (HalfOf), joined with
// its waiting pair or left waiting. It returns the reports of the windows
// that closed, in order.
func (t *Tracker) Prediction(at time.Time, p *event.Prediction) []Report {
	out := t.Advance(at)
	side, ok := SideOf(p.GetRole())
	if !ok || p.GetModel() == "" {
		t.counters.Ignored++
		return out
	}
	name := p.GetModel()
	m := t.model(name)
	m.win.Open(t.clock)
	t.touched()
	m.win.AddPrediction(side, p.GetVersion())
	h, ok := HalfOf(p, t.clock)
	if !ok {
		t.counters.Ignored++
		return out
	}
	other, result := m.join.Add(h)
	switch result {
	case Waiting:
		if m.join.Len() > t.opts.MaxHalves {
			old, _ := m.join.PopOldest()
			m.win.Unmatched[old.Side]++
			t.counters.Evicted++
		}
	case Joined:
		m.win.Pairs = append(m.win.Pairs, NewPair(h, other))
		t.counters.Pairs++
		if len(m.win.Pairs) >= t.opts.WindowPairs {
			out = t.close(name, m, t.clock, out)
		}
	case Duplicate:
		t.counters.Duplicates++
	}
	return out
}

// Rejected moves the clock to at and counts a rejected input of model for
// role: "production", "canary" (canary or shadow) or "unknown".
func (t *Tracker) Rejected(at time.Time, model, role string) []Report {
	out := t.Advance(at)
	if model == "" {
		return out
	}
	m := t.model(model)
	m.win.Open(t.clock)
	t.touched()
	m.win.AddRejected(role)
	return out
}

// Advance moves the clock to now (never back): halves that waited out the
// wait expire, and windows whose time is up close. It returns the reports
// of the windows that closed.
func (t *Tracker) Advance(now time.Time) []Report {
	var out []Report
	if n := now.UnixNano(); n > t.clock {
		t.clock = n
	}
	if t.clock < t.next {
		return nil
	}
	t.next = math.MaxInt64
	names := make([]string, 0, len(t.models))
	for name := range t.models {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		m := t.models[name]
		out = t.advanceModel(name, m, out)
		if m.join.Len() == 0 && !m.win.IsOpen && m.streak == 0 {
			delete(t.models, name)
			continue
		}
		t.next = min(t.next, t.deadline(m))
	}
	return out
}

// deadline returns m's earliest expiry or window end.
func (t *Tracker) deadline(m *modelState) int64 {
	d := int64(math.MaxInt64)
	if h, ok := m.join.Oldest(); ok {
		d = h.At + t.opts.Wait.Nanoseconds()
	}
	if m.win.IsOpen {
		d = min(d, m.win.Start+t.opts.Window.Nanoseconds())
	}
	return d
}

// touched notes that m changed at the current clock: a half that just
// started waiting or a window that just opened is due no sooner than the
// shorter of the wait and the window from now.
func (t *Tracker) touched() {
	t.next = min(t.next, t.clock+min(t.opts.Wait, t.opts.Window).Nanoseconds())
}

// advanceModel expires halves and closes windows of one model, in time
// order, up to the clock.
func (t *Tracker) advanceModel(name string, m *modelState, out []Report) []Report {
	wait, window := t.opts.Wait.Nanoseconds(), t.opts.Window.Nanoseconds()
	for {
		expiry, end := int64(math.MaxInt64), int64(math.MaxInt64)
		if h, ok := m.join.Oldest(); ok {
			expiry = h.At + wait
		}
		if m.win.IsOpen {
			end = m.win.Start + window
		}
		switch {
		case expiry <= t.clock && expiry <= end:
			h, _ := m.join.PopOldest()
			m.win.Open(expiry)
			m.win.Unmatched[h.Side]++
			t.counters.Expired++
		case end <= t.clock:
			out = t.close(name, m, end, out)
		default:
			return out
		}
	}
}

// close ends m's window at end and, when it compared anything, judges it.
func (t *Tracker) close(name string, m *modelState, end int64, out []Report) []Report {
	if m.win.HasCandidate() {
		r := m.win.Report(name, end)
		m.streak = t.opts.Judge.Judge(&r, m.win.Pairs, m.streak)
		out = append(out, r)
	}
	m.win = Window{}
	return out
}

func (t *Tracker) model(name string) *modelState {
	m, ok := t.models[name]
	if !ok {
		m = &modelState{join: NewJoiner()}
		t.models[name] = m
	}
	return m
}

// trackerState is the serialised form of a Tracker.
type trackerState struct {
	Clock    int64
	Counters Counters
	Models   map[string]modelSnapshot
}

type modelSnapshot struct {
	Halves []Half
	Window Window
	Streak int
}

// MarshalBinary returns the tracker's state: waiting halves, open windows,
// failure streaks and the clock.
func (t *Tracker) MarshalBinary() ([]byte, error) {
	st := trackerState{Clock: t.clock, Counters: t.counters, Models: make(map[string]modelSnapshot, len(t.models))}
	for name, m := range t.models {
		st.Models[name] = modelSnapshot{Halves: m.join.Halves(), Window: m.win, Streak: m.streak}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&st); err != nil {
		return nil, fmt.Errorf("tracker snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// UnmarshalBinary replaces the tracker's state with one MarshalBinary
// returned; the options stay.
func (t *Tracker) UnmarshalBinary(data []byte) error {
	var st trackerState
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		return fmt.Errorf("tracker restore: %w", err)
	}
	t.clock, t.counters, t.next = st.Clock, st.Counters, 0
	t.models = make(map[string]*modelState, len(st.Models))
	for name, snap := range st.Models {
		m := &modelState{join: NewJoiner(), win: snap.Window, streak: snap.Streak}
		for _, h := range snap.Halves {
			m.join.Add(h)
		}
		t.models[name] = m
	}
	return nil
}
