package feedback

import (
	"time"

	"github.com/lookout-ml/lookout/pkg/quality"
)

// key names a prediction: ids are unique per model only (CONTRACT.md),
// so the same id on two models is two predictions.
type key struct {
	model string // interned
	id    string
}

// entry is what the index keeps of one prediction.
type entry struct {
	pred quality.Prediction
	seq  uint64 // stream sequence, to tell a replaced entry from its queue item
}

// queued is an index entry in arrival order.
type queued struct {
	key    key
	seq    uint64
	stored int64 // unix nano
}

// index remembers recent predictions by (model, id), bounded by count; the
// oldest (by stream order) go first.
type index struct {
	max     int
	byKey   map[key]entry
	order   []queued // arrival order; order[head:] is live
	head    int
	strings map[string]string // interned models and versions
}

func newIndex(max int) *index {
	return &index{max: max, byKey: make(map[key]entry, min(max, 1<<16)), strings: map[string]string{}}
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
func (x *index) put(model, id string, pred quality.Prediction, seq uint64, stored time.Time) int {
	pred.Version = x.intern(pred.Version)
	k := key{model: x.intern(model), id: id}
	x.byKey[k] = entry{pred: pred, seq: seq}
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
	}
	if x.head > 1024 && x.head > len(x.order)/2 {
		x.order = append(x.order[:0:0], x.order[x.head:]...)
		x.head = 0
	}
	return true
}

// len returns the number of remembered predictions.
func (x *index) len() int { return len(x.byKey) }
