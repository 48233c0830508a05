package canaryjudge

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/window"
)

// Options tune a Tracker.
type Options struct {
	// Wait is how long, in event time, a half waits for its pair.
	Wait time.Duration
	// WindowPairs closes a window after this many pairs ...
	WindowPairs int
	// Window ... and is the length of a window in event time; windows are
	// aligned to it (pkg/window).
	Window time.Duration
	// AllowedLateness is how far behind its model's latest event time a
	// prediction may be and still count in its window.
	AllowedLateness time.Duration
	// IdleTimeout closes a model's windows, and expires its halves, once
	// its event time has not advanced for this long on the tracker's
	// clock; 0: Window.
	IdleTimeout time.Duration
	// MaxHalves caps the halves waiting per model; past it the one due
	// first expires early and is counted unmatched.
	MaxHalves int
	// MaxLabels caps the feedback labels kept per model until their
	// pair's window closes; past it the oldest are dropped.
	MaxLabels int
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
	// Late counts predictions and rejections whose window had already
	// closed: they are in no report.
	Late uint64
	// Labels counts feedback labels kept; LabelsDropped those dropped
	// past max_labels before their pair's window closed.
	Labels        uint64
	LabelsDropped uint64
}

// Tracker joins predictions into pairs and cuts them into event-time
// windows for every model, and judges each window as it closes.
//
// Event time is the predictions' ts. A pair's event time is its
// production half's: the pair then lands in the window that production's
// own traffic (and so the drift report of the same span) falls in, and a
// shadow that scores a request later than production does not move the
// pair to a later window. Pairs are cut by a pkg/window assigner keyed by
// model (Window is its size, WindowPairs its MaxEvents); every prediction
// of a model, paired or not, moves the model's event time (and so its
// watermark: the latest ts minus AllowedLateness). A half waits until the
// watermark reaches the earlier of its ts plus Wait and the end of its
// window, then expires, counted unmatched in its window; so no half is
// still waiting when its window closes, and a pair never lands in a
// closed window. Counts that are no pair (unmatched halves, rejections,
// predictions without a request_id) go to the window of their own ts.
//
// The tracker's clock is the other time: it stands for wall time, only
// moves forward, and is driven by the times given to Prediction, Rejected
// and Advance (the service gives it the times messages were stored). It
// decides only the idle timeout: a model whose event time has not
// advanced for IdleTimeout on it has its halves expired and its windows
// closed. Feeding the same events at the same times again gives the same
// reports. It is not safe for concurrent use.
//
// Drift windows (Drift) in which production's inputs shifted turn a
// failing window they overlap into a hold: see Drift for which count.
type Tracker struct {
	opts     Options
	clock    int64
	win      *window.Assigner[struct{}]
	models   map[string]*modelState
	counters Counters
	// nextIdle is a time at or before which no model becomes idle.
	nextIdle int64
}

type modelState struct {
	join   *Joiner
	labels *labelStore
	// spans are the model's open windows by start: one per span, the
	// current part.
	spans  map[int64]*Window
	streak int
	// drifts are the drift windows that shifted, oldest first (Drift).
	drifts []driftSpan
	// seen and maxTS mirror the assigner's: the latest event time.
	seen  bool
	maxTS int64
	// progressed is the clock when the event time last advanced.
	progressed int64
}

// NewTracker returns an empty tracker.
func NewTracker(opts Options) *Tracker {
	if opts.WindowPairs <= 0 {
		opts.WindowPairs = 0 // no limit
	}
	if opts.Window <= 0 {
		opts.Window = time.Duration(math.MaxInt64 / 4)
	}
	opts.AllowedLateness = max(opts.AllowedLateness, 0)
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = opts.Window
	}
	if opts.MaxHalves <= 0 {
		opts.MaxHalves = math.MaxInt
	}
	if opts.MaxLabels <= 0 {
		opts.MaxLabels = math.MaxInt
	}
	if opts.Judge == nil {
		opts.Judge = &Judge{Guardrails: DefaultGuardrails()}
	}
	win, err := window.New[struct{}](window.Config{
		Size: opts.Window, MaxEvents: opts.WindowPairs, AllowedLateness: opts.AllowedLateness, IdleTimeout: opts.IdleTimeout,
	})
	if err != nil {
		panic(fmt.Sprintf("canaryjudge: %v", err)) // every setting was made valid above
	}
	return &Tracker{opts: opts, win: win, models: make(map[string]*modelState), nextIdle: math.MaxInt64}
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

// Watermark returns a model's watermark, false before its first
// prediction.
func (t *Tracker) Watermark(model string) (time.Time, bool) { return t.win.Watermark(model) }

// Prediction moves the clock to at and adds p at its event time (its ts;
// the clock when it has none): it is counted in its model's window and,
// when it is a join candidate (HalfOf), joined with its waiting pair or
// left waiting. It returns the reports of the windows that closed, in
// order.
func (t *Tracker) Prediction(at time.Time, p *event.Prediction) []Report {
	out := t.tick(at, nil)
	side, ok := SideOf(p.GetRole())
	if !ok || p.GetModel() == "" {
		t.counters.Ignored++
		return out
	}
	name := p.GetModel()
	ts := t.clock
	if p.TsUnixNano != nil {
		ts = p.GetTsUnixNano()
	}
	m := t.model(name)
	out = t.advance(name, m, ts, out)
	if t.win.IsLate(name, time.Unix(0, ts)) {
		t.counters.Late++
		return out
	}
	h, ok := HalfOf(p, ts)
	if !ok {
		m.span(t.startOf(ts)).AddPrediction(side, p.GetVersion())
		t.counters.Ignored++
		return out
	}
	h.Due = min(satAdd(ts, t.opts.Wait.Nanoseconds()), t.endOf(t.startOf(ts)))
	other, result := m.join.Add(h)
	switch result {
	case Waiting:
		if m.join.Len() > t.opts.MaxHalves {
			old, _ := m.join.PopOldest()
			t.unmatched(m, old)
			t.counters.Evicted++
		}
		// A half that came after its wait was over waits no longer.
		out = t.settle(name, m, false, out)
	case Joined:
		out = t.pair(name, m, h, other, out)
	case Duplicate:
		m.span(t.startOf(ts)).AddPrediction(side, p.GetVersion())
		t.counters.Duplicates++
	}
	return out
}

// Feedback moves the clock to at and keeps f's label, if it has one, for
// the pair of the request or prediction it names, until that pair's
// window closes: a label counts in the window's quality when it arrives
// before the window closes, before or after the pair itself. Feedback
// does not move event time.
func (t *Tracker) Feedback(at time.Time, f *event.Feedback) []Report {
	out := t.tick(at, nil)
	l, ok := LabelOf(f)
	if !ok || f.GetModel() == "" || f.GetRequestId() == "" && f.GetId() == "" {
		return out
	}
	m := t.model(f.GetModel())
	key := requestKey(f.GetRequestId())
	if f.GetRequestId() == "" {
		key = predictionKey(f.GetId())
	}
	t.counters.Labels++
	t.counters.LabelsDropped += uint64(m.labels.add(key, l, t.opts.MaxLabels))
	return out
}

// Rejected moves the clock to at and counts a rejected input of model for
// role ("production", "canary" for canary or shadow, or "unknown") in the
// window of ts. A zero ts (a rejected input's own ts is not to be trusted
// and may be missing) counts it in the window of the model's latest event
// time, the one being filled when it came. A rejection does not move
// event time.
func (t *Tracker) Rejected(at, ts time.Time, model, role string) []Report {
	out := t.tick(at, nil)
	if model == "" {
		return out
	}
	m := t.model(model)
	n := ts.UnixNano()
	switch {
	case !ts.IsZero():
	case m.seen:
		n = m.maxTS
	default:
		n = t.clock
	}
	if t.win.IsLate(model, time.Unix(0, n)) {
		t.counters.Late++
		return out
	}
	m.span(t.startOf(n)).AddRejected(role)
	return out
}

// Advance moves the clock to now (never back): the halves and windows of
// models idle for the idle timeout expire and close. It returns the
// reports of the windows that closed.
func (t *Tracker) Advance(now time.Time) []Report {
	return t.tick(now, nil)
}

// tick moves the clock and handles the models that became idle.
func (t *Tracker) tick(at time.Time, out []Report) []Report {
	if n := at.UnixNano(); n > t.clock {
		t.clock = n
	}
	if t.clock < t.nextIdle {
		return out
	}
	t.nextIdle = math.MaxInt64
	now := t.now()
	// The assigner closes the idle models' pair windows and raises their
	// watermarks to the end of what it closed; settle reports them.
	t.win.CloseIdle(now)
	idle := t.opts.IdleTimeout.Nanoseconds()
	for _, name := range slices.Sorted(maps.Keys(t.models)) {
		m := t.models[name]
		if m.join.Len() == 0 && len(m.spans) == 0 {
			continue
		}
		due := satAdd(m.progressed, idle)
		if due > t.clock {
			t.nextIdle = min(t.nextIdle, due)
			continue
		}
		// Nothing of this model has come for the idle timeout: its
		// halves expire (they are not kept waiting forever) and the
		// windows its watermark now passed are reported. A window with
		// no pair stays open until the model's event time moves on: the
		// assigner's watermark did not pass it, so a pair could still
		// join it.
		out = t.settle(name, m, true, out)
	}
	return out
}

// advance moves model name's event time to ts, when later, and settles
// what its new watermark passed.
func (t *Tracker) advance(name string, m *modelState, ts int64, out []Report) []Report {
	if m.seen && ts <= m.maxTS {
		return out
	}
	m.seen, m.maxTS, m.progressed = true, ts, t.clock
	t.win.Advance(name, time.Unix(0, ts), t.now())
	return t.settle(name, m, false, out)
}

// settle expires the halves the watermark reached (all of them when
// expireAll) and reports the windows it passed, in order of start.
func (t *Tracker) settle(name string, m *modelState, expireAll bool, out []Report) []Report {
	wm, ok := t.win.Watermark(name)
	for h, waiting := m.join.Oldest(); waiting; h, waiting = m.join.Oldest() {
		if !expireAll && !(ok && h.Due <= wm.UnixNano()) {
			break
		}
		m.join.PopOldest()
		t.unmatched(m, h)
		t.counters.Expired++
	}
	if !ok {
		return out
	}
	var late []int64
	for start := range m.spans {
		if t.win.IsLate(name, time.Unix(0, start)) {
			late = append(late, start)
		}
	}
	slices.Sort(late)
	for _, start := range late {
		out = t.close(name, m, start, false, out)
	}
	return out
}

// pair adds the pair of h and other to the window of its production
// half's event time.
func (t *Tracker) pair(name string, m *modelState, h, other Half, out []Report) []Report {
	prod, cand := h, other
	if prod.Side != Production {
		prod, cand = other, h
	}
	w, closed := t.win.Add(name, time.Unix(0, prod.At), t.now())
	if w == nil {
		// Not expected: a waiting half expires before its window closes,
		// and the half that just came was not late. Counted, never lost
		// silently.
		t.counters.Late++
		return out
	}
	start := w.Start.UnixNano()
	sp := m.span(start)
	sp.AddPrediction(Production, prod.Version)
	sp.AddPrediction(Candidate, cand.Version)
	sp.AddPair(NewPair(h, other), prod.At)
	t.counters.Pairs++
	for _, c := range closed { // full: the pair's own window
		full := c.Reason == window.Full
		var ended int64
		if w := m.spans[c.Start.UnixNano()]; w != nil && full {
			_, ended = w.reportSpan(c.Start.UnixNano(), t.endOf(c.Start.UnixNano()), true)
		}
		out = t.close(name, m, c.Start.UnixNano(), full, out)
		if full {
			// The next part starts where this one's report ended.
			m.spans[start] = &Window{IsOpen: true, Start: start, Part: c.Part + 1, From: ended}
		}
	}
	return out
}

// unmatched counts a half that found no pair in the window of its event
// time.
func (t *Tracker) unmatched(m *modelState, h Half) {
	sp := m.span(t.startOf(h.At))
	sp.Unmatched[h.Side]++
	sp.AddPrediction(h.Side, h.Version)
}

// close ends m's window of the span at start and, when it compared
// anything, judges it.
func (t *Tracker) close(name string, m *modelState, start int64, full bool, out []Report) []Report {
	w := m.spans[start]
	delete(m.spans, start)
	if w != nil && w.HasCandidate() {
		from, to := w.reportSpan(start, t.endOf(start), full)
		r := w.Report(name, from, to)
		r.Quality = qualityOf(w.Pairs, m.labels)
		streak := m.streak
		m.streak = t.opts.Judge.Judge(&r, w.Pairs, m.streak)
		// The pairs' own event time, not the whole span: a span closed
		// full has several windows, and only the drift of the inputs the
		// failing pairs saw excuses them.
		if d, ok := m.driftOver(w.pairSpan(start, t.endOf(start))); ok && m.streak > streak {
			// A guardrail failed (rollback, or a hold on the way to one)
			// while production's own inputs shifted in this span: the
			// failure is the inputs', not the canary's. Hold, and do not
			// count the window towards consecutive_windows.
			r.Verdict = VerdictHold
			r.Reasons = append([]string{d.reason()}, r.Reasons...)
			m.streak = streak
		}
		out = append(out, r)
	}
	return out
}

// span returns m's open window of the span at start, opening it.
func (m *modelState) span(start int64) *Window {
	w := m.spans[start]
	if w == nil {
		w = &Window{}
		w.Open(start)
		m.spans[start] = w
	}
	return w
}

// model returns a model's state, creating it. Whatever is about to be
// added to it, the model may be idle no sooner than the idle timeout after
// its event time last moved.
func (t *Tracker) model(name string) *modelState {
	m, ok := t.models[name]
	if !ok {
		m = &modelState{join: NewJoiner(), labels: newLabelStore(), spans: map[int64]*Window{}, progressed: t.clock}
		t.models[name] = m
	}
	t.nextIdle = min(t.nextIdle, satAdd(m.progressed, t.opts.IdleTimeout.Nanoseconds()))
	return m
}

func (t *Tracker) now() time.Time { return time.Unix(0, t.clock) }

func (t *Tracker) startOf(ts int64) int64 { return t.win.Start(time.Unix(0, ts)).UnixNano() }

// endOf is start plus the window, saturating at the largest time.
func (t *Tracker) endOf(start int64) int64 { return satAdd(start, t.opts.Window.Nanoseconds()) }

// satAdd is a + d for d >= 0, saturating at the largest int64.
func satAdd(a, d int64) int64 {
	if a > math.MaxInt64-d {
		return math.MaxInt64
	}
	return a + d
}

// trackerState is the serialised form of a Tracker.
type trackerState struct {
	Clock    int64
	Counters Counters
	Models   map[string]modelSnapshot
}

type modelSnapshot struct {
	Halves []Half
	// Spans are the open windows, by start.
	Spans  []Window
	Streak int
	// Assigner is the window assigner's state of the model.
	Assigner window.KeyState
	Seen     bool
	MaxTS    int64
	// Labels are the feedback labels kept, in arrival order.
	Labels []labelEntry
	// Drifts are the drift windows that shifted, oldest first; absent in
	// snapshots from before drift reports were read.
	Drifts []driftSpan
}

// MarshalBinary returns the tracker's state: waiting halves, open windows
// with the window assigner's state, failure streaks and the clock.
func (t *Tracker) MarshalBinary() ([]byte, error) {
	st := trackerState{Clock: t.clock, Counters: t.counters, Models: make(map[string]modelSnapshot, len(t.models))}
	for name, m := range t.models {
		snap := modelSnapshot{Halves: m.join.Halves(), Streak: m.streak, Seen: m.seen, MaxTS: m.maxTS, Labels: m.labels.live(), Drifts: m.drifts}
		for _, start := range slices.Sorted(maps.Keys(m.spans)) {
			snap.Spans = append(snap.Spans, *m.spans[start])
		}
		if ks, err := t.win.State(name); err == nil {
			snap.Assigner = ks
		}
		st.Models[name] = snap
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&st); err != nil {
		return nil, fmt.Errorf("tracker snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// UnmarshalBinary replaces the tracker's state with one MarshalBinary
// returned; the options stay. The assigner is restored and given each
// open window's pairs again, so it makes the decisions the saved one
// would have (the same parts, the same closes) when the options are the
// same.
func (t *Tracker) UnmarshalBinary(data []byte) error {
	var st trackerState
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		return fmt.Errorf("tracker restore: %w", err)
	}
	fresh := NewTracker(t.opts)
	fresh.clock, fresh.counters = st.Clock, st.Counters
	fresh.nextIdle = math.MaxInt64
	for _, name := range slices.Sorted(maps.Keys(st.Models)) {
		snap := st.Models[name]
		m := fresh.model(name)
		m.streak, m.seen, m.maxTS, m.drifts = snap.Streak, snap.Seen, snap.MaxTS, snap.Drifts
		if snap.Assigner.Seen {
			fresh.win.Restore(name, snap.Assigner, fresh.now())
		}
		for i := range snap.Spans {
			w := snap.Spans[i]
			// Under other options (window or window_pairs changed since
			// the snapshot) a window may not rebuild: it is kept as it is
			// and reported once the watermark passes it, rather than
			// lost or keeping the service from starting.
			rebuild := fresh.startOf(w.Start) == w.Start
			for k := 0; rebuild && k < len(w.Pairs); k++ {
				aw, closed := fresh.win.Add(name, time.Unix(0, w.Start), fresh.now())
				rebuild = aw != nil && len(closed) == 0 && aw.Part == w.Part
			}
			m.spans[w.Start] = &w
		}
		for _, h := range snap.Halves {
			m.join.Add(h)
		}
		for _, e := range snap.Labels {
			m.labels.add(e.Key, e.Label, fresh.opts.MaxLabels)
		}
	}
	*t = *fresh
	return nil
}
