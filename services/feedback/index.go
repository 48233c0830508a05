package feedback

import (
	"slices"
	"time"

	"github.com/lookout-ml/lookout/pkg/quality"
)

// maxPerRequest bounds the predictions remembered for one request: a
// request is scored by a production model and a canary or shadow or two,
// and a client that sends one request_id on every prediction must not
// make each eviction walk a list of millions.
const maxPerRequest = 64

// key names a prediction, or with req a request: ids and request ids are
// unique per model only (CONTRACT.md), so the same id on two models is two
// predictions, and the same request_id two requests.
type key struct {
	model string // interned
	id    string // the prediction id, or the request id when req
	req   bool
}

// entry is what the index keeps of one prediction.
type entry struct {
	id   string
	req  string // its request_id, empty when none
	pred quality.Prediction
	seq  uint64 // stream sequence, to tell a replaced entry from its queue item
}

// queued is an index entry in arrival order.
type queued struct {
	key    key
	seq    uint64
	stored int64 // unix nano
}

// index remembers recent predictions by (model, id), and the ids of each
// (model, request_id), bounded by count; the oldest (by stream order) go
// first, from both.
type index struct {
	max     int
	byKey   map[key]entry
	byReq   map[key][]string // prediction ids, oldest first
	order   []queued         // arrival order; order[head:] is live
	head    int
	strings map[string]string // interned models and versions
}

func newIndex(max int) *index {
	return &index{max: max, byKey: make(map[key]entry, min(max, 1<<16)), byReq: map[key][]string{}, strings: map[string]string{}}
}

func (x *index) intern(s string) string {
	if v, ok := x.strings[s]; ok {
		return v
	}
	if len(x.strings) < 1<<16 {
		x.strings[s] = s
	}
	return s
}

// put remembers a prediction and returns how many were evicted to make
// room.
func (x *index) put(model, id, req string, pred quality.Prediction, seq uint64, stored time.Time) int {
	pred.Version = x.intern(pred.Version)
	pred.Role = x.intern(pred.Role)
	k := key{model: x.intern(model), id: id}
	old, replaced := x.byKey[k]
	if replaced && old.req != req {
		x.unlink(k.model, old)
	}
	x.byKey[k] = entry{id: id, req: req, pred: pred, seq: seq}
	if req != "" && (!replaced || old.req != req) {
		rk := key{model: k.model, id: req, req: true}
		ids := x.byReq[rk]
		if len(ids) >= maxPerRequest {
			ids = append(ids[:0], ids[1:]...)
		}
		x.byReq[rk] = append(ids, id)
	}
	x.order = append(x.order, queued{key: k, seq: seq, stored: stored.UnixNano()})
	before := len(x.byKey)
	for len(x.byKey) > x.max && x.pop() {
	}
	return max(before-len(x.byKey), 0)
}

// get returns the model's prediction with this id.
func (x *index) get(model, id string) (entry, bool) {
	e, ok := x.byKey[key{model: model, id: id}]
	return e, ok
}

// request returns the model's predictions of this request, oldest first.
func (x *index) request(model, req string) []entry {
	ids := x.byReq[key{model: model, id: req, req: true}]
	out := make([]entry, 0, len(ids))
	for _, id := range ids {
		if e, ok := x.byKey[key{model: model, id: id}]; ok {
			out = append(out, e)
		}
	}
	return out
}

// unlink removes a forgotten prediction from its request's ids.
func (x *index) unlink(model string, e entry) {
	if e.req == "" {
		return
	}
	rk := key{model: model, id: e.req, req: true}
	ids := x.byReq[rk]
	// Predictions go in stream order, so the one to remove is nearly
	// always first.
	if i := slices.Index(ids, e.id); i >= 0 {
		ids = slices.Delete(ids, i, i+1)
	}
	if len(ids) == 0 {
		delete(x.byReq, rk)
	} else {
		x.byReq[rk] = ids
	}
}

// expire forgets predictions stored before cutoff and returns how many.
func (x *index) expire(cutoff time.Time) int {
	n := 0
	c := cutoff.UnixNano()
	for x.head < len(x.order) && x.order[x.head].stored < c {
		before := len(x.byKey)
		x.pop()
		n += before - len(x.byKey)
	}
	return n
}

// pop forgets the oldest queue item; false when the queue is empty.
func (x *index) pop() bool {
	if x.head >= len(x.order) {
		return false
	}
	q := x.order[x.head]
	x.order[x.head] = queued{}
	x.head++
	if e, ok := x.byKey[q.key]; ok && e.seq == q.seq {
		delete(x.byKey, q.key)
		x.unlink(q.key.model, e)
	}
	if x.head > 1024 && x.head > len(x.order)/2 {
		x.order = append(x.order[:0:0], x.order[x.head:]...)
		x.head = 0
	}
	return true
}

// len returns the number of remembered predictions.
func (x *index) len() int { return len(x.byKey) }
