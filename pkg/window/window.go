// Package window assigns events to tumbling event-time windows, one series
// per key (a model), and says when each window closes. It holds no clock
// and starts no goroutine: the caller passes the event time of each event
// and the wall time ("now"), so every decision is deterministic and a
// service that replays the same events after a restart rebuilds the same
// windows.
//
// Windows are aligned to Config.Size on the Unix epoch: an event at ts
// belongs to [ts - ts mod Size, that + Size). A key's watermark is the
// latest event time it has seen minus Config.AllowedLateness. A window
// closes, and is handed back to the caller, when
//
//   - the watermark reaches its end (Watermark),
//   - it holds Config.MaxEvents events (Full); later events of the same
//     time span go to a new window of that span, the next Part,
//   - or its key's event time has not advanced for Config.IdleTimeout of
//     wall time (Idle): a quiet key is not left open forever. An idle close
//     raises the key's watermark to the end of what it closed.
//
// Late events: an event whose window has already closed by its watermark
// or its idle timeout (its window's end is at or before the watermark) is
// dropped, not put in a later window, because a window stands for a span
// of event time and a report on it would otherwise describe the wrong
// span. Dropped events are counted per key (Late) and on the next window
// the key closes (Window.Late).
package window

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Reason says what closed a window.
type Reason string

// The reasons a window closes.
const (
	// Watermark: the key's watermark reached the window's end.
	Watermark Reason = "watermark"
	// Full: the window holds Config.MaxEvents events.
	Full Reason = "full"
	// Idle: the key's event time stood still for Config.IdleTimeout.
	Idle Reason = "idle"
)

// Config says how windows are cut.
type Config struct {
	// Size is the length of a window in event time; it must be positive.
	Size time.Duration
	// MaxEvents closes a window when it holds this many events; 0: no
	// limit.
	MaxEvents int
	// AllowedLateness is how far behind the latest event time an event
	// may be and still join its window; not negative.
	AllowedLateness time.Duration
	// IdleTimeout closes a key's open windows once its event time has not
	// advanced for this long in wall time; 0: never.
	IdleTimeout time.Duration
}

// Window is one open or closed window of one key. Value is the caller's:
// the assigner never reads it.
type Window[T any] struct {
	Key string
	// Start and End bound the window's event time: [Start, End).
	Start, End time.Time
	// Part is 0 for the first window of [Start, End), n after n of them
	// closed full.
	Part int
	// Events is how many events were assigned to it.
	Events int
	// Reason is what closed it; empty while it is open.
	Reason Reason
	// Late is, on a closed window, how many late events of its key were
	// dropped since the key last closed a window.
	Late  int
	Value T
}

// KeyState is what a key's windows depend on apart from the events in
// open windows: with it (Restore) and those events replayed in their
// order, an assigner makes the same decisions as the one it was taken
// from (State).
type KeyState struct {
	// Seen is false until the key has had an event.
	Seen bool `json:"seen"`
	// MaxTS is the latest event time seen, in Unix nanoseconds.
	MaxTS int64 `json:"max_ts"`
	// Floor is the least watermark, raised by idle closes (Unix ns;
	// math.MinInt64 until then, so that events before 1970 are not late).
	Floor int64 `json:"floor"`
	// Parts is, by window start (Unix ns), the Part the next window of
	// that span gets, for spans the watermark has not passed.
	Parts map[int64]int `json:"parts,omitempty"`
}

// Assigner keeps the windows of every key. It is not safe for concurrent
// use.
type Assigner[T any] struct {
	cfg  Config
	keys map[string]*key[T]
}

type key[T any] struct {
	KeyState
	// progressed is the wall time at which the key's event time last
	// advanced (or it was restored).
	progressed time.Time
	open       map[int64]*Window[T] // by start
	late       int                  // since the key last closed a window
	lateTotal  uint64
}

// New returns an assigner, or an error naming a setting it cannot work
// with.
func New[T any](cfg Config) (*Assigner[T], error) {
	switch {
	case cfg.Size <= 0:
		return nil, fmt.Errorf("window: size %v: must be positive", cfg.Size)
	case cfg.MaxEvents < 0:
		return nil, fmt.Errorf("window: max events %d: must not be negative", cfg.MaxEvents)
	case cfg.AllowedLateness < 0:
		return nil, fmt.Errorf("window: allowed lateness %v: must not be negative", cfg.AllowedLateness)
	case cfg.IdleTimeout < 0:
		return nil, fmt.Errorf("window: idle timeout %v: must not be negative", cfg.IdleTimeout)
	}
	return &Assigner[T]{cfg: cfg, keys: map[string]*key[T]{}}, nil
}

// ErrUnknownKey is returned by State for a key the assigner has never seen.
var ErrUnknownKey = errors.New("window: unknown key")

// Add assigns one event of key at event time ts, with now the wall time.
// It returns the window the event belongs to, nil when the event is late
// (dropped and counted), and the windows that closed: first those the
// event's watermark passed, in order of start, then the event's own window
// when the event filled it. Add the event to w.Value before handling the
// closed windows: a window closed full holds it.
func (a *Assigner[T]) Add(name string, ts, now time.Time) (w *Window[T], closed []*Window[T]) {
	k := a.key(name, now)
	t := ts.UnixNano()
	if !k.Seen || t > k.MaxTS {
		k.Seen, k.MaxTS, k.progressed = true, t, now
		closed = a.closeUpTo(name, k, a.watermark(k), Watermark)
	}
	start := a.startOf(t)
	end := a.endOf(start)
	if end <= a.watermark(k) {
		k.late++
		k.lateTotal++
		return nil, closed
	}
	w = k.open[start]
	if w == nil {
		w = &Window[T]{Key: name, Start: time.Unix(0, start).UTC(), End: time.Unix(0, end).UTC(), Part: k.Parts[start]}
		k.open[start] = w
	}
	w.Events++
	if a.cfg.MaxEvents > 0 && w.Events >= a.cfg.MaxEvents {
		delete(k.open, start)
		if k.Parts == nil {
			k.Parts = map[int64]int{}
		}
		k.Parts[start] = w.Part + 1
		closed = append(closed, a.closing(k, w, Full))
	}
	return w, closed
}

// Advance moves a key's event time to ts without assigning an event to a
// window, as Add would for an event that counts towards no window (the
// canary joins two predictions into one windowed pair, but each of them
// is a sign of how far the key's event time has come). It returns the
// windows the watermark passed, in order of start.
func (a *Assigner[T]) Advance(name string, ts, now time.Time) []*Window[T] {
	k := a.key(name, now)
	t := ts.UnixNano()
	if k.Seen && t <= k.MaxTS {
		return nil
	}
	k.Seen, k.MaxTS, k.progressed = true, t, now
	return a.closeUpTo(name, k, a.watermark(k), Watermark)
}

// CloseIdle closes the open windows of every key whose event time has not
// advanced for IdleTimeout before now, by key and then start, and raises
// each such key's watermark to the end of what it closed.
func (a *Assigner[T]) CloseIdle(now time.Time) []*Window[T] {
	if a.cfg.IdleTimeout <= 0 {
		return nil
	}
	var names []string
	for name, k := range a.keys {
		if len(k.open) > 0 && now.Sub(k.progressed) >= a.cfg.IdleTimeout {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var closed []*Window[T]
	for _, name := range names {
		k := a.keys[name]
		var last int64 = math.MinInt64
		for start := range k.open {
			last = max(last, a.endOf(start))
		}
		k.Floor = max(k.Floor, last)
		closed = append(closed, a.closeUpTo(name, k, last, Idle)...)
	}
	return closed
}

// Open returns a key's open windows in order of start.
func (a *Assigner[T]) Open(name string) []*Window[T] {
	k := a.keys[name]
	if k == nil {
		return nil
	}
	out := make([]*Window[T], 0, len(k.open))
	for _, w := range k.open {
		out = append(out, w)
	}
	slices.SortFunc(out, func(x, y *Window[T]) int { return x.Start.Compare(y.Start) })
	return out
}

// Watermark returns a key's watermark, false before its first event.
func (a *Assigner[T]) Watermark(name string) (time.Time, bool) {
	k := a.keys[name]
	if k == nil || !k.Seen {
		return time.Time{}, false
	}
	return time.Unix(0, a.watermark(k)).UTC(), true
}

// IsLate says whether an event of key at ts would be dropped as late.
func (a *Assigner[T]) IsLate(name string, ts time.Time) bool {
	k := a.keys[name]
	return k != nil && k.Seen && a.endOf(a.startOf(ts.UnixNano())) <= a.watermark(k)
}

// Late returns how many late events of a key were dropped in all.
func (a *Assigner[T]) Late(name string) uint64 {
	if k := a.keys[name]; k != nil {
		return k.lateTotal
	}
	return 0
}

// Start returns the start of the window span ts falls in.
func (a *Assigner[T]) Start(ts time.Time) time.Time {
	return time.Unix(0, a.startOf(ts.UnixNano())).UTC()
}

// State returns what a key's decisions depend on, apart from the events of
// its open windows; ErrUnknownKey for a key never seen.
func (a *Assigner[T]) State(name string) (KeyState, error) {
	k := a.keys[name]
	if k == nil {
		return KeyState{}, ErrUnknownKey
	}
	st := k.KeyState
	st.Parts = nil
	wm := a.watermark(k)
	for start, part := range k.Parts {
		if a.endOf(start) > wm {
			if st.Parts == nil {
				st.Parts = map[int64]int{}
			}
			st.Parts[start] = part
		}
	}
	return st, nil
}

// Restore sets a key's state, as State returned it, with no window open;
// its idle timeout counts from now. Replay the events of the windows that
// were open, in their order, to rebuild them.
func (a *Assigner[T]) Restore(name string, st KeyState, now time.Time) {
	k := &key[T]{KeyState: st, progressed: now, open: map[int64]*Window[T]{}}
	if st.Parts != nil {
		k.Parts = make(map[int64]int, len(st.Parts))
		for s, p := range st.Parts {
			k.Parts[s] = p
		}
	}
	a.keys[name] = k
}

func (a *Assigner[T]) key(name string, now time.Time) *key[T] {
	k := a.keys[name]
	if k == nil {
		k = &key[T]{KeyState: KeyState{Floor: math.MinInt64}, progressed: now, open: map[int64]*Window[T]{}}
		a.keys[name] = k
	}
	return k
}

// closeUpTo closes a key's open windows that end at or before limit, in
// order of start, and forgets the part numbers of spans now behind it.
func (a *Assigner[T]) closeUpTo(name string, k *key[T], limit int64, why Reason) []*Window[T] {
	var closed []*Window[T]
	for _, w := range a.Open(name) {
		if a.endOf(w.Start.UnixNano()) <= limit {
			delete(k.open, w.Start.UnixNano())
			closed = append(closed, a.closing(k, w, why))
		}
	}
	for start := range k.Parts {
		if a.endOf(start) <= limit {
			delete(k.Parts, start)
		}
	}
	return closed
}

// closing marks w closed and hands it the key's late count.
func (a *Assigner[T]) closing(k *key[T], w *Window[T], why Reason) *Window[T] {
	w.Reason = why
	w.Late, k.late = k.late, 0
	return w
}

// watermark is the key's latest event time minus the allowed lateness, or
// its floor when higher; saturating, so that extreme times do not wrap.
func (a *Assigner[T]) watermark(k *key[T]) int64 {
	if !k.Seen {
		return math.MinInt64
	}
	wm := k.MaxTS - int64(a.cfg.AllowedLateness)
	if wm > k.MaxTS { // wrapped below MinInt64
		wm = math.MinInt64
	}
	return max(wm, k.Floor)
}

// startOf is the start of the span t falls in, also before 1970.
func (a *Assigner[T]) startOf(t int64) int64 {
	size := int64(a.cfg.Size)
	r := t % size
	if r < 0 {
		r += size
	}
	return t - r
}

// endOf is start + Size, saturating at the largest time.
func (a *Assigner[T]) endOf(start int64) int64 {
	size := int64(a.cfg.Size)
	if start > math.MaxInt64-size {
		return math.MaxInt64
	}
	return start + size
}
