package canaryjudge

import (
	"cmp"
	"container/heap"
	"math"
	"slices"

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
	// At is the half's event time, its prediction's ts (unix ns).
	At int64
	// Due is the event time (unix ns) at which the half stops waiting once
	// its model's watermark reaches it: the Tracker sets it to the earlier
	// of At plus the wait and the end of At's window.
	Due int64
	// Label is the prediction when IsLabel, Score when not.
	Label   string
	Score   float64
	IsLabel bool
	// Confidence and LatencyMS are NaN when the prediction had none.
	Confidence float64
	LatencyMS  float64
}

// HalfOf returns the half of p with event time at, or ok false when p is no
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

// Joiner holds the halves of one model that wait for their pair, ordered
// by Due (then by arrival): event times come out of order, so the half
// that is due first is not always the one that came first. It is not safe
// for concurrent use.
type Joiner struct {
	byID map[string]*node
	due  dueHeap
	seq  uint64
}

type node struct {
	half  Half
	seq   uint64 // arrival order, for ties
	index int    // in the heap
}

// NewJoiner returns an empty joiner.
func NewJoiner() *Joiner { return &Joiner{byID: make(map[string]*node)} }

// Len returns the number of halves waiting.
func (j *Joiner) Len() int { return len(j.byID) }

// Add joins h with the waiting half of the other side and the same
// request, or keeps it waiting.
func (j *Joiner) Add(h Half) (other Half, result AddResult) {
	if n, ok := j.byID[h.RequestID]; ok {
		if n.half.Side == h.Side {
			return Half{}, Duplicate
		}
		heap.Remove(&j.due, n.index)
		delete(j.byID, h.RequestID)
		return n.half, Joined
	}
	j.seq++
	n := &node{half: h, seq: j.seq}
	heap.Push(&j.due, n)
	j.byID[h.RequestID] = n
	return Half{}, Waiting
}

// Oldest returns the half that is due first; ok is false when none waits.
func (j *Joiner) Oldest() (h Half, ok bool) {
	if len(j.due) == 0 {
		return Half{}, false
	}
	return j.due[0].half, true
}

// PopOldest removes and returns the half that is due first.
func (j *Joiner) PopOldest() (h Half, ok bool) {
	if len(j.due) == 0 {
		return Half{}, false
	}
	n := heap.Pop(&j.due).(*node)
	delete(j.byID, n.half.RequestID)
	return n.half, true
}

// Halves returns the waiting halves, due first (then by arrival): added
// again in this order, they come out of a new joiner in the same order.
func (j *Joiner) Halves() []Half {
	nodes := slices.Clone(j.due)
	slices.SortFunc(nodes, compareNodes)
	out := make([]Half, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.half)
	}
	return out
}

func compareNodes(a, b *node) int {
	return cmp.Or(cmp.Compare(a.half.Due, b.half.Due), cmp.Compare(a.seq, b.seq))
}

// dueHeap is a container/heap of waiting halves, the one due first on top.
type dueHeap []*node

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, k int) bool { return compareNodes(h[i], h[k]) < 0 }
func (h dueHeap) Swap(i, k int) {
	h[i], h[k] = h[k], h[i]
	h[i].index, h[k].index = i, k
}
func (h *dueHeap) Push(x any) {
	n := x.(*node)
	n.index = len(*h)
	*h = append(*h, n)
}
func (h *dueHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return n
}
