package canaryjudge

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/lookout-ml/lookout/pkg/stats"
)

// Pair is a production and a canary prediction of the same input.
type Pair struct {
	RequestID string
	// IDs are the two predictions' ids, production first.
	IDs [2]string
	// IsLabel is true when either prediction is a label; then Labels
	// hold both (a number printed as text), else Scores do.
	IsLabel bool
	Labels  [2]string
	Scores  [2]float64
	// Confidence and LatencyMS are NaN where a prediction had none.
	Confidence [2]float64
	LatencyMS  [2]float64
}

// NewPair joins two halves of opposite sides.
func NewPair(a, b Half) Pair {
	if a.Side != Production {
		a, b = b, a
	}
	p := Pair{
		RequestID:  a.RequestID,
		IDs:        [2]string{a.ID, b.ID},
		IsLabel:    a.IsLabel || b.IsLabel,
		Scores:     [2]float64{a.Score, b.Score},
		Confidence: [2]float64{a.Confidence, b.Confidence},
		LatencyMS:  [2]float64{a.LatencyMS, b.LatencyMS},
	}
	if p.IsLabel {
		p.Labels = [2]string{labelOf(a), labelOf(b)}
	}
	return p
}

func labelOf(h Half) string {
	if h.IsLabel {
		return h.Label
	}
	return strconv.FormatFloat(h.Score, 'g', -1, 64)
}

// Window accumulates the pairs and counts of one model's event-time window
// (one Part of it) until it closes. The zero Window is closed; Open starts
// it.
type Window struct {
	IsOpen bool
	// Start is the start of the window's event-time span (unix ns).
	Start int64
	// Part is 0 for the first window of the span, n after n of them
	// closed full (window_pairs).
	Part  int
	Pairs []Pair
	// Seen counts predictions per side, paired or not.
	Seen [2]int
	// Unmatched counts halves that expired per side.
	Unmatched [2]int
	// Rejected counts rejected input per role name.
	Rejected map[string]int
	// Versions counts predictions per side and version.
	Versions [2]map[string]int
	// First and Last are the earliest and latest event time of Pairs (a
	// pair's is its production half's), unix ns; both 0 in windows from
	// snapshots from before they were kept.
	First, Last int64
	// From is where a later part's report window starts (unix ns): the end
	// of the part before it, which closed full. 0 in the first part (and
	// in snapshots from before it was kept): the window starts at Start.
	From int64
}

// reportSpan returns the event time the window's report names, for the
// span [start, end): from its start (Start, or From for a later part) to
// end when it closed on the watermark or idle, to its latest pair when it
// closed full (window_pairs), so that the parts of one span are distinct
// and contiguous and an alert on a part starts no later than its pairs.
func (w *Window) reportSpan(start, end int64, full bool) (from, to int64) {
	from = start
	if w.Part > 0 && w.From > start {
		from = w.From
	}
	if !full {
		return from, end
	}
	return from, max(from, w.Last)
}

// AddPair adds p, whose event time is at.
func (w *Window) AddPair(p Pair, at int64) {
	if len(w.Pairs) == 0 || at < w.First {
		w.First = at
	}
	if len(w.Pairs) == 0 || at > w.Last {
		w.Last = at
	}
	w.Pairs = append(w.Pairs, p)
}

// pairSpan returns the event time the window's pairs cover, both ends
// included: First to Last, or the whole span [start, end) when the window
// holds no pair or does not know (a window from an older snapshot).
func (w *Window) pairSpan(start, end int64) (first, last int64) {
	if len(w.Pairs) == 0 || w.First == 0 && w.Last == 0 {
		return start, end - 1
	}
	return w.First, w.Last
}

// Open starts the window of the span at start unless it is open already.
func (w *Window) Open(start int64) {
	if w.IsOpen {
		return
	}
	*w = Window{IsOpen: true, Start: start}
}

// HasCandidate reports whether the window saw any canary or shadow
// prediction: a window without one compares nothing and is not reported.
func (w *Window) HasCandidate() bool {
	return w.Seen[Candidate] > 0 || w.Unmatched[Candidate] > 0 || w.Rejected[roleName(Candidate)] > 0
}

// AddPrediction counts a prediction of side and version.
func (w *Window) AddPrediction(side int, version string) {
	w.Seen[side]++
	if w.Versions[side] == nil {
		w.Versions[side] = make(map[string]int)
	}
	w.Versions[side][version]++
}

// AddRejected counts a rejected input of role (production, canary or
// unknown).
func (w *Window) AddRejected(role string) {
	if w.Rejected == nil {
		w.Rejected = make(map[string]int)
	}
	w.Rejected[role]++
}

func roleName(side int) string {
	if side == Candidate {
		return "canary"
	}
	return "production"
}

// Report returns the window's figures, without checks or verdict (Judge
// adds those), over the event time [start, end) (see reportSpan).
func (w *Window) Report(model string, start, end int64) Report {
	r := Report{
		Model: model,
		Window: ReportWindow{
			Start: time.Unix(0, start).UTC(),
			End:   time.Unix(0, end).UTC(),
			Pairs: len(w.Pairs),
			Part:  w.Part,
		},
		Unmatched: Unmatched{Production: w.Unmatched[Production], Canary: w.Unmatched[Candidate]},
		Checks:    []Check{},
		Reasons:   []string{},
	}
	if total := w.Seen[Production] + w.Seen[Candidate]; total > 0 {
		r.CanaryShare = float64(w.Seen[Candidate]) / float64(total)
	}
	sides := [2]*Side{&r.Production, &r.Canary}
	var latencies [2][]float64
	for s, side := range sides {
		side.Version = topVersion(w.Versions[s])
		side.Predictions = w.Seen[s]
		var conf []float64
		for i := range w.Pairs {
			if c := w.Pairs[i].Confidence[s]; !math.IsNaN(c) {
				conf = append(conf, c)
			}
		}
		if len(conf) > 0 {
			side.ConfidenceMean = ptr(mean(conf))
		}
		latencies[s] = stats.SortFinite(pluck(w.Pairs, func(p *Pair) float64 { return p.LatencyMS[s] }))
		if len(latencies[s]) > 0 {
			side.LatencyMS = &Latency{
				P50: stats.QuantileSorted(latencies[s], 0.5),
				P95: stats.QuantileSorted(latencies[s], 0.95),
				P99: stats.QuantileSorted(latencies[s], 0.99),
			}
		}
	}
	if r.Production.ConfidenceMean != nil && r.Canary.ConfidenceMean != nil {
		r.ConfidenceDiff = ptr(*r.Canary.ConfidenceMean - *r.Production.ConfidenceMean)
	}
	if p, c := r.Production.LatencyMS, r.Canary.LatencyMS; p != nil && c != nil {
		r.LatencyRatio = &Latency{P50: ratio(c.P50, p.P50), P95: ratio(c.P95, p.P95), P99: ratio(c.P99, p.P99)}
	}
	r.Agreement, r.Confusion = agreement(w.Pairs)
	r.ScoreDiff = scoreDiff(w.Pairs)
	if len(w.Rejected) > 0 {
		r.Rejected = make(map[string]Rejected, len(w.Rejected))
		for role, n := range w.Rejected {
			accepted := 0
			switch role {
			case "production":
				accepted = w.Seen[Production]
			case "canary":
				accepted = w.Seen[Candidate]
			}
			r.Rejected[role] = Rejected{Count: n, Rate: float64(n) / float64(n+accepted)}
		}
	}
	return r
}

// agreement returns the share of label pairs with equal labels and their
// confusion table; nil, nil without label pairs.
func agreement(pairs []Pair) (*float64, map[string]map[string]int) {
	n, same := 0, 0
	var confusion map[string]map[string]int
	for i := range pairs {
		p := &pairs[i]
		if !p.IsLabel {
			continue
		}
		n++
		if p.Labels[0] == p.Labels[1] {
			same++
		}
		if confusion == nil {
			confusion = make(map[string]map[string]int)
		}
		row := confusion[p.Labels[0]]
		if row == nil {
			row = make(map[string]int)
			confusion[p.Labels[0]] = row
		}
		row[p.Labels[1]]++
	}
	if n == 0 {
		return nil, nil
	}
	return ptr(float64(same) / float64(n)), confusion
}

// scoreDiff compares the numeric pairs; nil without any.
func scoreDiff(pairs []Pair) *ScoreDiff {
	var prod, cand, abs []float64
	for i := range pairs {
		p := &pairs[i]
		if p.IsLabel {
			continue
		}
		prod = append(prod, p.Scores[0])
		cand = append(cand, p.Scores[1])
		abs = append(abs, math.Abs(p.Scores[1]-p.Scores[0]))
	}
	if len(prod) == 0 {
		return nil
	}
	d := &ScoreDiff{MeanAbs: mean(abs), Correlation: pearson(prod, cand)}
	slices.Sort(abs)
	d.P95Abs = stats.QuantileSorted(abs, 0.95)
	if ks, err := stats.KS2Samp(prod, cand); err == nil {
		d.KS = &ks
	}
	return d
}

// pearson returns Pearson's correlation of x and y, or nil when either has
// no variance.
func pearson(x, y []float64) *float64 {
	if len(x) < 2 {
		return nil
	}
	mx, my := mean(x), mean(y)
	var sxy, sxx, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return nil
	}
	r := sxy / math.Sqrt(sxx*syy)
	return ptr(max(-1, min(1, r)))
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func ratio(a, b float64) float64 {
	if b == 0 {
		if a == 0 {
			return 1
		}
		return math.MaxFloat64
	}
	return a / b
}

func pluck(pairs []Pair, f func(*Pair) float64) []float64 {
	out := make([]float64, 0, len(pairs))
	for i := range pairs {
		out = append(out, f(&pairs[i]))
	}
	return out
}

// topVersion returns the most common version (ties: the smallest name).
func topVersion(counts map[string]int) string {
	names := make([]string, 0, len(counts))
	for v := range counts {
		names = append(names, v)
	}
	sort.Strings(names)
	best := ""
	for _, v := range names {
		if best == "" || counts[v] > counts[best] {
			best = v
		}
	}
	return best
}

func ptr[T any](v T) *T { return &v }
