package canaryjudge

import (
	"strconv"

	"github.com/lookout-ml/lookout/pkg/event"
	lookoutv1 "github.com/lookout-ml/lookout/proto/lookout/v1"
)

// Label is a ground-truth label from feedback: a class (Text) or a number.
type Label struct {
	Text   string
	Number float64
	IsText bool
}

// LabelOf returns the label of a feedback event; ok is false for feedback
// without one (a "helpful" answer only).
func LabelOf(f *event.Feedback) (l Label, ok bool) {
	switch v := f.GetLabel().GetKind().(type) {
	case *lookoutv1.Value_Text:
		return Label{Text: v.Text, IsText: true}, true
	case *lookoutv1.Value_Number:
		return Label{Number: v.Number}, true
	}
	return Label{}, false
}

// class returns the label as a class name, the way Pair.Labels print a
// number.
func (l Label) class() string {
	if l.IsText {
		return l.Text
	}
	return strconv.FormatFloat(l.Number, 'g', -1, 64)
}

// number returns the label as a number; ok is false for a class that is
// no number.
func (l Label) number() (float64, bool) {
	if !l.IsText {
		return l.Number, true
	}
	f, err := strconv.ParseFloat(l.Text, 64)
	return f, err == nil
}

// Label keys: feedback names a request or a prediction.
func requestKey(id string) string    { return "r\x00" + id }
func predictionKey(id string) string { return "i\x00" + id }

// labelEntry is one stored label, in arrival order.
type labelEntry struct {
	Key   string
	Label Label
	Seq   uint64
}

// labelStore holds one model's labels until the window of their pair
// closes, at most max of them: past it the oldest are dropped. Labels
// are kept whether or not their pair is known yet, since feedback may be
// read before the prediction it names.
type labelStore struct {
	byKey map[string]labelEntry
	order []labelEntry // arrival order; entries replaced or used are skipped
	seq   uint64
}

func newLabelStore() *labelStore { return &labelStore{byKey: make(map[string]labelEntry)} }

// add stores l under key (a later label for the same key replaces it) and
// drops the oldest labels past max; it returns how many it dropped.
func (s *labelStore) add(key string, l Label, limit int) int {
	s.seq++
	e := labelEntry{Key: key, Label: l, Seq: s.seq}
	s.byKey[key] = e
	s.order = append(s.order, e)
	dropped := 0
	for len(s.byKey) > limit && len(s.order) > 0 {
		old := s.order[0]
		s.order = s.order[1:]
		if cur, ok := s.byKey[old.Key]; ok && cur.Seq == old.Seq {
			delete(s.byKey, old.Key)
			dropped++
		}
	}
	// Labels used or replaced leave stale entries behind: compact so the
	// order stays within a constant factor of the labels held.
	if len(s.order) > 2*len(s.byKey)+1024 {
		s.order = s.live()
	}
	return dropped
}

// live returns the labels held, in arrival order.
func (s *labelStore) live() []labelEntry {
	out := make([]labelEntry, 0, len(s.byKey))
	for _, e := range s.order {
		if cur, ok := s.byKey[e.Key]; ok && cur.Seq == e.Seq {
			out = append(out, e)
		}
	}
	return out
}

// take returns and removes the label of a pair: by its request_id, else
// by the id of either half. Every key of the pair is removed: a request
// pairs once, so its label is used once.
func (s *labelStore) take(p *Pair) (Label, bool) {
	keys := [3]string{requestKey(p.RequestID), predictionKey(p.IDs[0]), predictionKey(p.IDs[1])}
	var l Label
	found := false
	for i, k := range keys {
		if i > 0 && p.IDs[i-1] == "" {
			continue
		}
		if e, ok := s.byKey[k]; ok {
			if !found {
				l, found = e.Label, true
			}
			delete(s.byKey, k)
		}
	}
	return l, found
}
