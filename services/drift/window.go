package drift

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/lookout-ml/lookout/pkg/dataset"
	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
	ew "github.com/lookout-ml/lookout/pkg/window"
)

// window is what one event-time window of a model holds (pkg/window says
// which events belong to it and when it closes): the features of its
// events, and the predictions and confidences of each model version apart,
// each a sample bounded by the sample cap.
type window struct {
	features    *driftreport.Dataset
	outputs     map[string]*driftreport.Dataset // by model version
	versionRows map[string]int
	rows        int
	// firstSeq and lastSeq are the stream sequences of its first and last
	// events; firstStored is when JetStream stored the first one (with
	// firstSeq, the report's message id).
	firstSeq, lastSeq uint64
	firstStored       time.Time
	// minTS and maxTS are the earliest and latest event times (ts), the
	// report's window start and end.
	minTS, maxTS int64
	adder        dataset.Adder
	sample       driftreport.SampleOptions
}

func newWindow(seq uint64, stored time.Time, sample driftreport.SampleOptions) *window {
	// A seed per window keeps a rebuilt window's sample the same.
	sample.Seed = seq
	return &window{
		features:    driftreport.NewDataset(sample),
		outputs:     map[string]*driftreport.Dataset{},
		versionRows: map[string]int{},
		firstSeq:    seq,
		firstStored: stored,
		sample:      sample,
	}
}

// add adds one event.
func (w *window) add(seq uint64, p *event.Prediction) {
	w.adder.AddRow(w.features, p.GetFeatures(), p.GetTags())
	dataset.AddEmbeddings(w.features, p.GetEmbeddings())
	v := p.GetVersion()
	out, ok := w.outputs[v]
	if !ok {
		out = driftreport.NewDataset(w.sample)
		w.outputs[v] = out
	}
	dataset.AddOutputs(out, p, true)
	w.versionRows[v]++
	w.rows++
	w.lastSeq = seq
	ts := p.GetTsUnixNano()
	if w.rows == 1 || ts < w.minTS {
		w.minTS = ts
	}
	if w.rows == 1 || ts > w.maxTS {
		w.maxTS = ts
	}
}

// checkpoint is what the state bucket keeps of a model (JSON): with the
// predictions stream, enough to rebuild its open windows after a restart.
type checkpoint struct {
	// From is the first stream sequence of the model's oldest open window,
	// 0 when none is open: the stream is read again from the lowest From.
	From uint64 `json:"from,omitempty"`
	// Done: every event of the model at or before this sequence is in a
	// closed window or was dropped as late.
	Done uint64 `json:"done"`
	// Through is, by window start (Unix ns), the last sequence of the last
	// window of that span that closed full: the span's events up to it are
	// in closed windows, the later ones in its open window.
	Through map[int64]uint64 `json:"through,omitempty"`
	// ClosedFirst is the highest first sequence of a closed window: the
	// rolling history keeps no window past it.
	ClosedFirst uint64 `json:"closed_first,omitempty"`
	// Window is the window assigner's state of the model.
	Window ew.KeyState `json:"window"`
	// Sequential is the sequential detectors' state after the model's last
	// reported window, so that a restart resumes them. Stored with Done,
	// it never counts a window twice: a window reported again after a
	// crash resumes from the state before it.
	Sequential driftreport.SequentialState `json:"sequential"`
}

// parseCheckpoint reads a checkpoint, or the last reported sequence that
// older versions stored (a decimal number; their windows were contiguous,
// so every event up to it was reported).
func parseCheckpoint(b []byte) (checkpoint, error) {
	if n, err := strconv.ParseUint(string(b), 10, 64); err == nil {
		return checkpoint{Done: n, ClosedFirst: n, Window: ew.KeyState{Floor: math.MinInt64}}, nil
	}
	var ck checkpoint
	if err := json.Unmarshal(b, &ck); err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	return ck, nil
}

// dominantVersion returns the version with the most events (the smallest
// name on a tie).
func (w *window) dominantVersion() string {
	best, n := "", -1
	for v, c := range w.versionRows {
		if c > n || (c == n && v < best) {
			best, n = v, c
		}
	}
	return best
}

func (w *window) start() time.Time { return time.Unix(0, w.minTS).UTC() }
func (w *window) end() time.Time   { return time.Unix(0, w.maxTS).UTC() }

// span describes the window for a reference's source.
func (w *window) span() string {
	return w.start().Format(time.RFC3339) + " to " + w.end().Format(time.RFC3339)
}

// merge joins the samples of several datasets into one bounded by cap: a
// uniform sample of the values they hold, with their counts summed. The
// rolling reference merges the previous windows this way.
func merge(sample driftreport.SampleOptions, ds []*driftreport.Dataset) *driftreport.Dataset {
	out := driftreport.NewDataset(sample)
	mergeColumn := func(dst *driftreport.Column, src *driftreport.Column) {
		if src == nil {
			return
		}
		seen, strs, nulls := dst.Seen, dst.StringsSeen, dst.Nulls
		for _, s := range src.Strings {
			dst.AddString(s)
		}
		dst.AddNumbers(src.Numbers)
		dst.Seen = seen + src.Seen
		dst.StringsSeen = strs + src.StringsSeen
		dst.Nulls = nulls + src.Nulls
		dst.Mixed = dst.Mixed || src.Mixed
	}
	for _, d := range ds {
		if d == nil {
			continue
		}
		out.Rows += d.Rows
		out.Sample.Merge(d.Sample)
		for name, e := range d.Embeddings {
			out.Embedding(name).Merge(e)
		}
		for name, c := range d.Features {
			mergeColumn(out.Column(name), c)
		}
		mergeColumn(out.Prediction, d.Prediction)
		mergeColumn(out.Confidence, d.Confidence)
	}
	return out
}
