package window

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// step is one input to an assigner: an event (key, event time as an offset
// from t0, wall time as an offset from t0) or, with idle set, a CloseIdle
// call at wall time.
type step struct {
	key  string
	ts   time.Duration
	wall time.Duration
	idle bool
}

func ev(key string, ts, wall time.Duration) step { return step{key: key, ts: ts, wall: wall} }
func idleAt(wall time.Duration) step             { return step{wall: wall, idle: true} }

// run feeds the steps to an assigner whose windows hold the event times
// added to them, and returns what closed, one line a window
// ("key start+part reason events [ts...] late=n"), and the steps that were
// dropped as late, by index.
func run(t *testing.T, cfg Config, steps []step) (closed []string, late []int) {
	t.Helper()
	a, err := New[[]time.Duration](cfg)
	if err != nil {
		t.Fatal(err)
	}
	describe := func(ws []*Window[[]time.Duration]) {
		for _, w := range ws {
			closed = append(closed, fmt.Sprintf("%s %v+%d %s %d %v late=%d",
				w.Key, w.Start.Sub(t0), w.Part, w.Reason, w.Events, w.Value, w.Late))
		}
	}
	for i, s := range steps {
		now := t0.Add(s.wall)
		if s.idle {
			describe(a.CloseIdle(now))
			continue
		}
		w, c := a.Add(s.key, t0.Add(s.ts), now)
		if w == nil {
			late = append(late, i)
		} else {
			w.Value = append(w.Value, s.ts)
		}
		describe(c)
	}
	return closed, late
}

func TestAssigner(t *testing.T) {
	const s = time.Second
	base := Config{Size: 10 * s, AllowedLateness: 2 * s}
	withMax := base
	withMax.MaxEvents = 3
	withIdle := base
	withIdle.IdleTimeout = 30 * s
	cases := []struct {
		name   string
		cfg    Config
		steps  []step
		closed []string
		late   []int
	}{
		{
			// Proves: a window closes only once the watermark (latest
			// event time minus lateness) reaches its end, not at the
			// first event past its end.
			name:  "watermark closes after the allowed lateness",
			cfg:   base,
			steps: []step{ev("m", 1*s, 0), ev("m", 9*s, 0), ev("m", 11*s, 0), ev("m", 12*s, 0)},
			closed: []string{
				"m 0s+0 watermark 2 [1s 9s] late=0",
			},
		},
		{
			// Proves: an event out of order within the allowed lateness
			// lands in its own event-time window, even after a later
			// window has opened.
			name:  "out of order within lateness joins its window",
			cfg:   base,
			steps: []step{ev("m", 5*s, 0), ev("m", 11*s, 0), ev("m", 9*s, 0), ev("m", 25*s, 0)},
			closed: []string{
				"m 0s+0 watermark 2 [5s 9s] late=0",
				"m 10s+0 watermark 1 [11s] late=0",
			},
		},
		{
			// Proves: an event whose window the watermark has passed is
			// dropped (not put in a later window) and counted on the next
			// window the key closes.
			name:   "late events are dropped and counted",
			cfg:    base,
			steps:  []step{ev("m", 1*s, 0), ev("m", 13*s, 0), ev("m", 3*s, 0), ev("m", 4*s, 0), ev("m", 35*s, 0)},
			closed: []string{"m 0s+0 watermark 1 [1s] late=0", "m 10s+0 watermark 1 [13s] late=2"},
			late:   []int{2, 3},
		},
		{
			// Proves: a full window closes at once with the event that
			// filled it, and the same span goes on in the next part.
			name:  "full by count, then the next part",
			cfg:   withMax,
			steps: []step{ev("m", 1*s, 0), ev("m", 2*s, 0), ev("m", 3*s, 0), ev("m", 4*s, 0), ev("m", 30*s, 0)},
			closed: []string{
				"m 0s+0 full 3 [1s 2s 3s] late=0",
				"m 0s+1 watermark 1 [4s] late=0",
			},
		},
		{
			// Proves: keys are independent: one key's event time does not
			// move another's watermark.
			name:   "per key watermarks",
			cfg:    base,
			steps:  []step{ev("a", 1*s, 0), ev("b", 1*s, 0), ev("b", 50*s, 0)},
			closed: []string{"b 0s+0 watermark 1 [1s] late=0"},
		},
		{
			// Proves: a quiet key's window is closed by the idle timeout in
			// wall time, no earlier, while a key whose event time still
			// advances is left open; and an event of the idle-closed span
			// is then late.
			name: "idle timeout closes a quiet key",
			cfg:  withIdle,
			steps: []step{
				ev("quiet", 1*s, 0), ev("busy", 1*s, 0),
				ev("busy", 2*s, 20*s), // busy advances at wall 20s
				idleAt(29 * s),        // not yet 30s for quiet
				idleAt(30 * s),        // quiet closes; busy has 10s to go
				ev("quiet", 5*s, 31*s),
			},
			closed: []string{"quiet 0s+0 idle 1 [1s] late=0"},
			late:   []int{5},
		},
		{
			// Proves: an event that is not the newest (event time does not
			// advance) does not reset the idle timer.
			name:   "old events do not keep a key alive",
			cfg:    withIdle,
			steps:  []step{ev("m", 5*s, 0), ev("m", 4*s, 20*s), idleAt(30 * s)},
			closed: []string{"m 0s+0 idle 2 [5s 4s] late=0"},
		},
		{
			// Proves: with no idle timeout, CloseIdle never closes.
			name:  "no idle timeout",
			cfg:   base,
			steps: []step{ev("m", 1*s, 0), idleAt(1000 * time.Hour)},
		},
		{
			// Proves: zero lateness closes a window at the first event at
			// or past its end; that event opens the next window.
			name:   "zero lateness",
			cfg:    Config{Size: 10 * s},
			steps:  []step{ev("m", 1*s, 0), ev("m", 10*s, 0)},
			closed: []string{"m 0s+0 watermark 1 [1s] late=0"},
		},
		{
			// Proves: windows before 1970 are aligned like any other (no
			// event is late because its time is negative).
			name:   "before 1970",
			cfg:    base,
			steps:  []step{ev("m", -t0.Sub(time.Unix(0, 0))-5*s, 0), ev("m", -t0.Sub(time.Unix(0, 0))+20*s, 0)},
			closed: []string{fmt.Sprintf("m %v+0 watermark 1 [%v] late=0", -t0.Sub(time.Unix(0, 0))-10*s, -t0.Sub(time.Unix(0, 0))-5*s)},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			closed, late := run(t, c.cfg, c.steps)
			if strings.Join(closed, "\n") != strings.Join(c.closed, "\n") {
				t.Errorf("closed:\n%s\nwant:\n%s", strings.Join(closed, "\n"), strings.Join(c.closed, "\n"))
			}
			if !slices.Equal(late, c.late) {
				t.Errorf("late steps %v, want %v", late, c.late)
			}
		})
	}
}

// A state taken with State and given to Restore, plus the open windows'
// events replayed, makes the same decisions: the guarantee a service
// relies on to rebuild its windows after a restart.
func TestRestoreReplays(t *testing.T) {
	const s = time.Second
	cfg := Config{Size: 10 * s, AllowedLateness: 2 * s, MaxEvents: 2}
	a, _ := New[int](cfg)
	add := func(a *Assigner[int], ts time.Duration) []*Window[int] {
		w, c := a.Add("m", t0.Add(ts), t0)
		if w != nil {
			w.Value++
		}
		return c
	}
	add(a, 1*s)
	add(a, 2*s)  // span 0 part 0 closes full
	add(a, 3*s)  // span 0 part 1 opens
	add(a, 11*s) // span 0 not passed yet (watermark 9s)
	st, err := a.State("m")
	if err != nil {
		t.Fatal(err)
	}
	if st.Parts[t0.UnixNano()] != 1 || st.MaxTS != t0.Add(11*s).UnixNano() {
		t.Fatalf("state %+v", st)
	}
	b, _ := New[int](cfg)
	b.Restore("m", st, t0)
	add(b, 3*s) // replayed: the open part 1 of span 0
	add(b, 11*s)
	if ws := b.Open("m"); len(ws) != 2 || ws[0].Part != 1 || ws[0].Events != 1 || ws[1].Events != 1 {
		t.Fatalf("rebuilt windows %+v", ws)
	}
	if !b.IsLate("m", t0.Add(-time.Second)) || b.IsLate("m", t0.Add(time.Second)) {
		t.Error("IsLate after restore")
	}
	c := add(b, 30*s) // watermark 28s passes both
	if len(c) != 2 || c[0].Part != 1 || c[0].Reason != Watermark || c[1].Start != t0.Add(10*s) {
		t.Errorf("closed after replay: %+v", c)
	}
	if _, err := b.State("other"); err != ErrUnknownKey {
		t.Errorf("unknown key: %v", err)
	}
}

// Bad settings are refused with the setting named.
func TestNewRefuses(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "size"}, // no size
		{Config{Size: time.Second, MaxEvents: -1}, "max events"},     // negative count
		{Config{Size: time.Second, AllowedLateness: -1}, "lateness"}, // negative lateness
		{Config{Size: time.Second, IdleTimeout: -1}, "idle"},         // negative idle timeout
	}
	for _, c := range cases {
		if _, err := New[int](c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.want)
		}
	}
}

// Extreme event times neither wrap the watermark nor the window's end.
func TestExtremeTimes(t *testing.T) {
	a, _ := New[int](Config{Size: time.Hour, AllowedLateness: time.Hour})
	w, _ := a.Add("m", time.Unix(0, math.MaxInt64), t0)
	if w == nil || w.End.UnixNano() != math.MaxInt64 {
		t.Fatalf("window at the largest time: %+v", w)
	}
	w, _ = a.Add("n", time.Unix(0, math.MinInt64), t0)
	if w == nil {
		t.Fatal("the smallest time is late")
	}
}

// TestAdvance: Advance moves the watermark like an event that joins no
// window: it closes what the watermark passed, counts no event, and does
// not move event time back.
func TestAdvance(t *testing.T) {
	a, err := New[int](Config{Size: time.Minute, AllowedLateness: 10 * time.Second, IdleTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := a.Add("m", t0.Add(5*time.Second), t0)
	if closed := a.Advance("m", t0.Add(65*time.Second), t0); len(closed) != 0 {
		t.Fatalf("closed %d windows before the watermark reached the end", len(closed))
	}
	if closed := a.Advance("m", t0.Add(30*time.Second), t0); len(closed) != 0 {
		t.Fatal("an earlier time closed a window")
	}
	if wm, _ := a.Watermark("m"); !wm.Equal(t0.Add(55 * time.Second)) {
		t.Fatalf("watermark %v, want t0+55s", wm)
	}
	closed := a.Advance("m", t0.Add(70*time.Second), t0.Add(time.Second))
	if len(closed) != 1 || closed[0] != w || w.Events != 1 || w.Reason != Watermark {
		t.Fatalf("closed %+v, want the first window with its one event", closed)
	}
	if !a.IsLate("m", t0.Add(59*time.Second)) || a.IsLate("m", t0.Add(60*time.Second)) {
		t.Error("late after Advance: want the first span late and the second not")
	}
	// Advance counts as progress for the idle timeout.
	if got := a.CloseIdle(t0.Add(50 * time.Second)); len(got) != 0 {
		t.Errorf("idle close %d windows; nothing open", len(got))
	}
}
