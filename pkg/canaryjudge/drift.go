package canaryjudge

import (
	"fmt"
	"time"
)

// MaxDriftWindows is how many drifted drift windows the tracker keeps per
// model; past it the oldest is dropped. Drift windows are a window long
// or more, so a few dozen cover far more event time than the open canary
// windows and their lateness.
const MaxDriftWindows = 64

// DriftWindow is a drift report's window in which production's own inputs
// or quality shifted: its first and last event time, both included, and
// why it counts.
type DriftWindow struct {
	Start, End time.Time
	// Share is the report's drift_share.
	Share float64
	// DatasetDrifted and ConfidenceDropped say which shift it was.
	DatasetDrifted    bool
	ConfidenceDropped bool
}

// driftSpan is a DriftWindow as kept in the tracker (and its snapshot).
type driftSpan struct {
	Start, End        int64
	Share             float64
	DatasetDrifted    bool
	ConfidenceDropped bool
}

// Drift moves the clock to at and, when d shifted (dataset drifted or
// confidence dropped), keeps d for model: a canary window of the model
// that closes later with the verdict rollback and overlaps d in event
// time is held instead (the inputs shifted, so the failure is not the
// canary's). A drift window that did not shift is ignored. Drift does not
// move event time.
//
// Only drift windows already seen when a canary window closes count: a
// drift report that comes after the canary window closed does not change
// a verdict already published. The drift service closes its windows on
// the same event time, so its report of a span usually comes about when
// the canary's window of that span closes; which comes first is a race
// the operator can tilt by giving the canary the larger allowed_lateness.
func (t *Tracker) Drift(at time.Time, model string, d DriftWindow) []Report {
	out := t.tick(at, nil)
	if model == "" || !d.DatasetDrifted && !d.ConfidenceDropped || d.End.Before(d.Start) {
		return out
	}
	m := t.model(model)
	m.drifts = append(m.drifts, driftSpan{
		Start: d.Start.UnixNano(), End: d.End.UnixNano(), Share: d.Share,
		DatasetDrifted: d.DatasetDrifted, ConfidenceDropped: d.ConfidenceDropped,
	})
	if n := len(m.drifts) - MaxDriftWindows; n > 0 {
		m.drifts = append(m.drifts[:0], m.drifts[n:]...)
	}
	return out
}

// driftOver returns the latest kept drift window that overlaps the event
// time [first, last], both included.
func (m *modelState) driftOver(first, last int64) (driftSpan, bool) {
	for i := len(m.drifts) - 1; i >= 0; i-- {
		d := m.drifts[i]
		if d.Start <= last && d.End >= first {
			return d, true
		}
	}
	return driftSpan{}, false
}

// reason says why the window is held.
func (d driftSpan) reason() string {
	what := "inputs shifted"
	switch {
	case d.DatasetDrifted && d.ConfidenceDropped:
		what = "inputs shifted and production's confidence dropped"
	case d.ConfidenceDropped:
		what = "production's confidence dropped"
	}
	return fmt.Sprintf("%s in this window (drift share %s): not attributed to the canary", what, formatNumber(d.Share))
}
