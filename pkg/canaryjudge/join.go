package canaryjudge

import (
	"math"

	"github.com/lookout-ml/lookout/pkg/event"
	lookoutv1 "github.com/lookout-ml/lookout/proto/lookout/v1"
)

// Sides of a pair. Shadow predictions play the canary side.
const (
	Production = 0
	Candidate  = 1
)

// SideOf returns the side of a role: Production for "production" (and the
// empty default), Candidate for "canary" and "shadow"; ok is false for
// anything else.
func SideOf(role string) (side int, ok bool) {
	switch role {
	case event.RoleProduction, "":
		return Production, true
	case event.RoleCanary, event.RoleShadow:
		return Candidate, true
	}
	return 0, false
}

// Half is what the join keeps of one prediction while it waits for its
// pair: only the figures a window needs.
type Half struct {
	RequestID string
	// ID is the prediction's id, kept for feedback lookups (Accuracy).
	ID      string
	Side    int
	Version string
	// At is when the half arrived, in the tracker's clock (unix ns).
	At int64
	// Label is the prediction when IsLabel, Score when not.
	Label   string
	Score   float64
	IsLabel bool
	// Confidence and LatencyMS are NaN when the prediction had none.
	Confidence float64
	LatencyMS  float64
}

// HalfOf returns the half of p arriving at at, or ok false when p is no
// join candidate: no request_id, an unknown role, or a null prediction.
func HalfOf(p *event.Prediction, at int64) (h Half, ok bool) {
	if p.GetRequestId() == "" {
		return Half{}, false
	}
	side, ok := SideOf(p.GetRole())
	if !ok {
		return Half{}, false
	}
	h = Half{RequestID: p.GetRequestId(), ID: p.GetId(), Side: side, Version: p.GetVersion(), At: at,
		Confidence: math.NaN(), LatencyMS: math.NaN()}
	switch v := p.GetPrediction().GetKind().(type) {
	case *lookoutv1.Value_Number:
		h.Score = v.Number
	case *lookoutv1.Value_Text:
		h.Label, h.IsLabel = v.Text, true
	case *lookoutv1.Value_Flag:
		h.IsLabel = true
		h.Label = "false"
		if v.Flag {
			h.Label = "true"
		}
	default:
		return Half{}, false
	}
	if p.Confidence != nil {
		h.Confidence = *p.Confidence
	}
	if p.LatencyMs != nil {
		h.LatencyMS = *p.LatencyMs
	}
	return h, true
}

// AddResult says what Joiner.Add did with a half.
type AddResult int

// Results of Joiner.Add.
const (
	// Waiting: the half waits for its pair.
	Waiting AddResult = iota
	// Joined: the half's pair was waiting; both left the joiner.
	Joined
	// Duplicate: a half of the same side and request was already
	// waiting; the new one was dropped.
	Duplicate
)

// Joiner holds the halves of one model that wait for their pair, oldest
// first. It is not safe for concurrent use.
type Joiner struct {
	byID       map[string]*node
	head, tail *node // head is the oldest
}

type node struct {
	half       Half
	prev, next *node
}

// NewJoiner returns an empty joiner.
func NewJoiner() *Joiner { return &Joiner{byID: make(map[string]*node)} }

// Len returns the number of halves waiting.
func (j *Joiner) Len() int { return len(j.byID) }

// Add joins h with the waiting half of the other side and the same
// request, or keeps it waiting. Halves must be added in order of At.
func (j *Joiner) Add(h Half) (other Half, result AddResult) {
	if n, ok := j.byID[h.RequestID]; ok {
		if n.half.Side == h.Side {
			return Half{}, Duplicate
		}
		j.unlink(n)
		delete(j.byID, h.RequestID)
		return n.half, Joined
	}
	n := &node{half: h, prev: j.tail}
	if j.tail != nil {
		j.tail.next = n
	} else {
		j.head = n
	}
	j.tail = n
	j.byID[h.RequestID] = n
	return Half{}, Waiting
}

// Oldest returns the half that has waited longest; ok is false when none
// waits.
func (j *Joiner) Oldest() (h Half, ok bool) {
	if j.head == nil {
		return Half{}, false
	}
	return j.head.half, true
}

// PopOldest removes and returns the half that has waited longest.
func (j *Joiner) PopOldest() (h Half, ok bool) {
	n := j.head
	if n == nil {
		return Half{}, false
	}
	j.unlink(n)
	delete(j.byID, n.half.RequestID)
	return n.half, true
}

// Halves returns the waiting halves, oldest first.
func (j *Joiner) Halves() []Half {
	out := make([]Half, 0, len(j.byID))
	for n := j.head; n != nil; n = n.next {
		out = append(out, n.half)
	}
	return out
}

func (j *Joiner) unlink(n *node) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		j.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		j.tail = n.prev
	}
	n.prev, n.next = nil, nil
}
