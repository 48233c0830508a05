package driftreport

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
)

// DefaultRowCap is how many whole rows a dataset keeps (a uniform sample
// past it) for the figures that need features side by side: multivariate
// drift and root-cause segments.
const DefaultRowCap = 10000

// RowSample keeps a bounded uniform sample of a dataset's rows (reservoir
// sampling), each row's features aligned by index with Names, and its
// tags. Column keeps each feature's values apart; RowSample is what keeps
// them together.
type RowSample struct {
	// Names are the features in the order rows index them.
	Names []string
	// Rows are the sampled rows.
	Rows []SampledRow
	// Seen counts every row offered, kept or not.
	Seen int

	cap   int
	rng   *rand.Rand
	index map[string]int
}

// SampledRow is one sampled row. Numbers[i] is feature i's number, NaN
// when it is null, absent or not a number; Strings[i] (nil when the row
// has no category) its category, "" when it has none.
type SampledRow struct {
	Numbers []float64
	Strings []string
	// Tags are the row's tags (shared with the event: never modified).
	Tags map[string]string
}

// NewRowSample returns an empty sample of at most cap rows (cap <= 0
// means DefaultRowCap).
func NewRowSample(cap int, seed uint64) *RowSample {
	if cap <= 0 {
		cap = DefaultRowCap
	}
	if seed == 0 {
		seed = DefaultSeed
	}
	return &RowSample{cap: cap, rng: rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d)), index: map[string]int{}}
}

// Cap returns the most rows the sample keeps.
func (s *RowSample) Cap() int {
	if s.cap <= 0 {
		return DefaultRowCap
	}
	return s.cap
}

// Merge offers every row other holds to s, as if they had been added to
// it, and counts the rows other saw and dropped as seen: a uniform sample
// of other's rows, not of all it saw, when other had dropped some.
func (s *RowSample) Merge(other *RowSample) {
	if other == nil {
		return
	}
	index := make([]int, len(other.Names))
	for i, n := range other.Names {
		index[i] = s.Index(n)
	}
	for i := range other.Rows {
		src := &other.Rows[i]
		dst := s.Next()
		if dst == nil {
			continue
		}
		for j, v := range src.Numbers {
			dst.SetNumber(index[j], v)
		}
		for j, v := range src.Strings {
			if v != "" {
				dst.SetString(index[j], v)
			}
		}
		dst.Tags = src.Tags
	}
	s.Seen += other.Seen - len(other.Rows)
}

// Index returns the index of a feature, adding it when new.
func (s *RowSample) Index(name string) int {
	if s.index == nil {
		s.index = make(map[string]int, len(s.Names))
		for i, n := range s.Names {
			s.index[n] = i
		}
	}
	i, ok := s.index[name]
	if !ok {
		i = len(s.Names)
		s.Names = append(s.Names, name)
		s.index[name] = i
	}
	return i
}

// Next counts a new row and returns the row to fill in, or nil when the
// reservoir drops it. A returned row is empty: no features, no tags.
func (s *RowSample) Next() *SampledRow {
	if s.cap <= 0 {
		s.cap = DefaultRowCap
	}
	if s.rng == nil {
		s.rng = rand.New(rand.NewPCG(DefaultSeed, DefaultSeed))
	}
	t := s.Seen
	s.Seen++
	if t < s.cap {
		// Room for every known feature at once: rows grow one value at a
		// time, and doubling slices cost an allocation each.
		s.Rows = append(s.Rows, SampledRow{Numbers: make([]float64, 0, len(s.Names))})
		return &s.Rows[len(s.Rows)-1]
	}
	j := s.rng.IntN(t + 1)
	if j >= s.cap {
		return nil
	}
	r := &s.Rows[j]
	r.Numbers, r.Strings, r.Tags = r.Numbers[:0], r.Strings[:0], nil
	return r
}

// Set sets feature i of the row to a number, string, bool or nil (any
// other type counts as nil).
func (r *SampledRow) Set(i int, v any) {
	for len(r.Numbers) <= i {
		r.Numbers = append(r.Numbers, math.NaN())
	}
	switch x := v.(type) {
	case float64:
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			r.Numbers[i] = x
		}
	case string:
		r.setString(i, x)
	case bool:
		r.setString(i, strconv.FormatBool(x))
	default:
		if f, ok := toFloat(v); ok {
			r.Numbers[i] = f
		}
	}
}

// SetNumber sets feature i to a number (NaN and infinities: none).
func (r *SampledRow) SetNumber(i int, v float64) {
	for len(r.Numbers) <= i {
		r.Numbers = append(r.Numbers, math.NaN())
	}
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		r.Numbers[i] = v
	}
}

// SetString sets feature i to a category.
func (r *SampledRow) SetString(i int, s string) { r.setString(i, s) }

func (r *SampledRow) setString(i int, s string) {
	if len(r.Strings) <= i && cap(r.Strings) <= i {
		grown := make([]string, len(r.Strings), max(i+1, cap(r.Numbers)))
		copy(grown, r.Strings)
		r.Strings = grown
	}
	for len(r.Strings) <= i {
		r.Strings = append(r.Strings, "")
	}
	r.Strings[i] = s
}

// number returns feature i's number, NaN when it has none.
func (r *SampledRow) number(i int) float64 {
	if i < len(r.Numbers) {
		return r.Numbers[i]
	}
	return math.NaN()
}

// str returns feature i's category, "" when it has none.
func (r *SampledRow) str(i int) string {
	if i < len(r.Strings) {
		return r.Strings[i]
	}
	return ""
}

func toFloat(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case float32:
		f = float64(x)
	case int:
		f = float64(x)
	case int32:
		f = float64(x)
	case int64:
		f = float64(x)
	case uint:
		f = float64(x)
	case uint32:
		f = float64(x)
	case uint64:
		f = float64(x)
	case json.Number:
		v, err := x.Float64()
		if err != nil {
			return 0, false
		}
		f = v
	case *float64:
		if x == nil {
			return 0, false
		}
		f = *x
	default:
		return 0, false
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}
