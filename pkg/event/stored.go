package event

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Stored decodes the predictions that services read back from the
// predictions stream, where ingest stored them validated. Each message is
// decoded once per process, however many services read it: in a
// `lookout run` the archive, drift, canary and feedback services read every
// prediction, and decoding is most of what they spend on it. There is no
// size limit (ingest applied its own, which may be above DefaultMaxBytes),
// so a prediction ingest accepted is never refused here.
//
// The predictions it returns are shared between services: they must be
// read, never changed. A nil *Stored decodes every time.
type Stored struct {
	seed  maphash.Seed
	mu    sync.Mutex
	slots []storedSlot
	// hits and misses count reads served from memory and decodes.
	hits, misses atomic.Uint64
}

// storedMaxBytes bounds what is kept: larger messages are decoded each
// time, so memory stays about slots × 2 KiB.
const storedMaxBytes = 2 << 10

type storedSlot struct {
	seq     uint64
	sum     uint64 // of the bytes: a recreated stream reuses sequences
	p       *Prediction
	reasons []*Reason
}

// NewStored returns a decoder that remembers the last size decoded
// messages (by stream sequence).
func NewStored(size int) *Stored {
	return &Stored{seed: maphash.MakeSeed(), slots: make([]storedSlot, max(size, 1))}
}

// Decode returns the prediction in data, the message at seq of the
// predictions stream on subject model's subject, stored at stored.
func (s *Stored) Decode(seq uint64, data []byte, model, contentType string, stored time.Time) (*Prediction, []*Reason) {
	decode := func() (*Prediction, []*Reason) {
		return DecodePrediction(data, DecodeOptions{
			SubjectModel: model, ContentType: contentType, Received: stored, MaxBytes: max(len(data), 1),
		})
	}
	if s == nil || len(data) > storedMaxBytes {
		return decode()
	}
	sum := maphash.Bytes(s.seed, data)
	slot := &s.slots[seq%uint64(len(s.slots))]
	s.mu.Lock()
	if slot.seq == seq && slot.sum == sum && (slot.p != nil || slot.reasons != nil) {
		p, reasons := slot.p, slot.reasons
		s.mu.Unlock()
		s.hits.Add(1)
		return p, reasons
	}
	s.mu.Unlock()
	s.misses.Add(1)
	p, reasons := decode()
	s.mu.Lock()
	*slot = storedSlot{seq: seq, sum: sum, p: p, reasons: reasons}
	s.mu.Unlock()
	return p, reasons
}

// Counts returns how many reads were served from memory and how many
// were decoded.
func (s *Stored) Counts() (hits, misses uint64) {
	if s == nil {
		return 0, 0
	}
	return s.hits.Load(), s.misses.Load()
}
