package driftreport

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/lookout-ml/lookout/pkg/stats"
)

// Root-cause defaults.
const (
	DefaultRootCauseTags     = 3
	DefaultRootCauseSegments = 5
	// minSegmentRows: smaller segments are not judged.
	minSegmentRows = 30
	// mostlyShare is the share of a feature's shift one segment must hold
	// for the summary to say the feature drifted mostly there.
	mostlyShare = 0.5
)

// RootCause says which features moved most and where.
type RootCause struct {
	// Features lists the compared features, drifted first, then by score
	// relative to threshold (threshold/score for p-values), largest first.
	Features []string `json:"features"`
	// Segments are the tag values whose rows drifted most, strongest
	// first: at most MaxTags tags (those most rows carry) and MaxSegments
	// values each (the largest).
	Segments []Segment `json:"segments"`
	// ByFeature tells, for a drifted feature whose shift is mostly in one
	// segment, where: "mostly in region=eu (80% of the shift)".
	ByFeature map[string]string `json:"by_feature,omitempty"`
	// Summary is one line for alerts: "age drifted, mostly in region=eu
	// (80% of the shift); plan drifted".
	Summary string `json:"summary"`
}

// Segment is the drift of the window's rows with one tag value.
type Segment struct {
	Tag   string `json:"tag"`
	Value string `json:"value"`
	// Rows is the segment's rows in the window's row sample.
	Rows int `json:"rows"`
	// DriftShare is the share of the window's drifted features that also
	// drift within the segment alone against the whole reference (KS or
	// chi-squared, p below FamilyAlpha / features). Segments are sorted
	// by it, then by their mean ShiftShare, then by Rows.
	DriftShare float64 `json:"drift_share"`
	// ShiftShare gives, per drifted feature, the segment's share of the
	// window's shift: of its mean's move for a number, of the category
	// shares' move for a category.
	ShiftShare map[string]float64 `json:"shift_share,omitempty"`
}

// relative returns a feature's score relative to its threshold: above 1
// means drifted, for p-values and distances alike.
func relative(fd FeatureDrift) float64 {
	switch fd.Method {
	case MethodKS, MethodChi2:
		return fd.Threshold / math.Max(fd.Score, 1e-300)
	}
	if fd.Threshold <= 0 {
		return fd.Score
	}
	return fd.Score / fd.Threshold
}

// rootCause ranks the features and finds the segments of the window's row
// sample where drifted features drift.
func rootCause(ref, cur *Dataset, r *Report, opts Options) *RootCause {
	names := sortedKeys(r.Features)
	if len(names) == 0 {
		return nil
	}
	slices.SortStableFunc(names, func(a, b string) int {
		fa, fb := r.Features[a], r.Features[b]
		if fa.Drifted != fb.Drifted {
			if fa.Drifted {
				return -1
			}
			return 1
		}
		return cmp.Compare(relative(fb), relative(fa))
	})
	rc := &RootCause{Features: names, Segments: []Segment{}}
	var drifted []string
	for _, n := range names {
		if r.Features[n].Drifted && r.Features[n].Note == "" {
			drifted = append(drifted, n)
		}
	}
	if len(drifted) > 0 && cur.Sample != nil && ref != nil {
		rc.Segments = segments(ref, cur.Sample, drifted, r, opts)
	}
	rc.ByFeature = map[string]string{}
	var parts []string
	for i, f := range drifted {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(drifted)-3))
			break
		}
		best, share := "", 0.0
		for _, s := range rc.Segments {
			if v := s.ShiftShare[f]; v > share {
				best, share = s.Tag+"="+s.Value, v
			}
		}
		part := f + " drifted"
		if share >= mostlyShare {
			where := fmt.Sprintf("mostly in %s (%.0f%% of the shift)", best, 100*share)
			rc.ByFeature[f] = where
			part += ", " + where
		}
		parts = append(parts, part)
	}
	if len(rc.ByFeature) == 0 {
		rc.ByFeature = nil
	}
	rc.Summary = strings.Join(parts, "; ")
	return rc
}

// segments judges the largest values of the most common tags.
func segments(ref *Dataset, cur *RowSample, drifted []string, r *Report, opts Options) []Segment {
	tagRows := map[string]map[string][]int{}
	for i := range cur.Rows {
		for k, v := range cur.Rows[i].Tags {
			m := tagRows[k]
			if m == nil {
				m = map[string][]int{}
				tagRows[k] = m
			}
			m[v] = append(m[v], i)
		}
	}
	tags := sortedKeys(tagRows)
	count := func(m map[string][]int) int {
		n := 0
		for _, rows := range m {
			n += len(rows)
		}
		return n
	}
	slices.SortStableFunc(tags, func(a, b string) int { return cmp.Compare(count(tagRows[b]), count(tagRows[a])) })
	if len(tags) > opts.RootCauseTags {
		tags = tags[:opts.RootCauseTags]
	}
	index := map[string]int{}
	for _, f := range drifted {
		if i, ok := cur.lookup(f); ok {
			index[f] = i
		}
	}
	alpha := opts.FamilyAlpha / float64(max(len(r.Features), 1))
	var out []Segment
	for _, tag := range tags {
		values := sortedKeys(tagRows[tag])
		slices.SortStableFunc(values, func(a, b string) int { return cmp.Compare(len(tagRows[tag][b]), len(tagRows[tag][a])) })
		if len(values) > opts.RootCauseSegments {
			values = values[:opts.RootCauseSegments]
		}
		for _, v := range values {
			rows := tagRows[tag][v]
			if len(rows) < minSegmentRows {
				continue
			}
			seg := Segment{Tag: tag, Value: v, Rows: len(rows), ShiftShare: map[string]float64{}}
			n := 0
			for _, f := range drifted {
				fi, ok := index[f]
				col := ref.Features[f]
				if !ok || col == nil {
					continue
				}
				segDrift, share := segmentFeature(col, cur, fi, rows, r.Features[f].Kind, alpha)
				seg.ShiftShare[f] = share
				if segDrift {
					n++
				}
			}
			seg.DriftShare = float64(n) / float64(len(drifted))
			out = append(out, seg)
		}
	}
	// Strongest first: the most drifted features, then the largest share
	// of their shift (a segment that holds the whole shift beats one that
	// merely overlaps it), then size.
	meanShift := func(s Segment) float64 {
		var t float64
		for _, v := range s.ShiftShare {
			t += v
		}
		return t / float64(max(len(s.ShiftShare), 1))
	}
	slices.SortStableFunc(out, func(a, b Segment) int {
		return cmp.Or(cmp.Compare(b.DriftShare, a.DriftShare), cmp.Compare(meanShift(b), meanShift(a)), cmp.Compare(b.Rows, a.Rows))
	})
	return out
}

// segmentFeature judges one feature on one segment's rows against the
// reference column, and the segment's share of the window's shift.
func segmentFeature(refCol *Column, cur *RowSample, fi int, rows []int, kind string, alpha float64) (bool, float64) {
	in := make([]bool, len(cur.Rows))
	for _, i := range rows {
		in[i] = true
	}
	if kind == KindNumerical {
		ref := refCol.sortedNumbers()
		if len(ref) == 0 {
			return false, 0
		}
		mean := stats.Mean(ref)
		var seg []float64
		var segDev, allDev float64
		for i := range cur.Rows {
			x := cur.Rows[i].number(fi)
			if math.IsNaN(x) {
				continue
			}
			allDev += x - mean
			if in[i] {
				seg = append(seg, x)
				segDev += x - mean
			}
		}
		share := 0.0
		if allDev != 0 {
			share = clamp01(segDev / allDev)
		}
		if len(seg) == 0 {
			return false, share
		}
		slices.Sort(seg)
		d := stats.KSStatisticSorted(ref, seg)
		n, m := float64(len(ref)), float64(len(seg))
		return kolmogorovSF(math.Sqrt(n*m/(n+m))*d) < alpha, share
	}
	refCounts := map[string]int{}
	for _, s := range refCol.Strings {
		refCounts[s]++
	}
	total := float64(len(refCol.Strings))
	if total == 0 {
		return false, 0
	}
	curCounts, segCounts := map[string]int{}, map[string]int{}
	curN, segN := 0, 0
	for i := range cur.Rows {
		s := cur.Rows[i].str(fi)
		if s == "" {
			continue
		}
		curCounts[s]++
		curN++
		if in[i] {
			segCounts[s]++
			segN++
		}
	}
	// The window's excess of each category over the reference's share,
	// and the segment's part of it in the same direction.
	var moved, part float64
	for c, k := range curCounts {
		excess := float64(k) - float64(curN)*float64(refCounts[c])/total
		segExcess := float64(segCounts[c]) - float64(segN)*float64(refCounts[c])/total
		moved += math.Abs(excess)
		if excess*segExcess > 0 {
			part += math.Min(math.Abs(segExcess), math.Abs(excess))
		}
	}
	share := 0.0
	if moved > 0 {
		share = clamp01(part / moved)
	}
	cats := sortedKeys(refCounts)
	for c := range segCounts {
		if _, ok := refCounts[c]; !ok {
			cats = append(cats, c)
		}
	}
	table := [][]float64{make([]float64, len(cats)), make([]float64, len(cats))}
	for i, c := range cats {
		table[0][i], table[1][i] = float64(refCounts[c]), float64(segCounts[c])
	}
	chi, err := stats.Chi2Contingency(table)
	return err == nil && chi.PValue < alpha, share
}

// kolmogorovSF returns P(K > x) for Kolmogorov's distribution: the
// asymptotic two-sample KS p-value at sqrt(nm/(n+m))·D.
func kolmogorovSF(x float64) float64 {
	if x <= 0 {
		return 1
	}
	var s float64
	for k := 1; k <= 100; k++ {
		term := math.Exp(-2 * float64(k*k) * x * x)
		if k%2 == 1 {
			s += term
		} else {
			s -= term
		}
		if term < 1e-16 {
			break
		}
	}
	return math.Min(math.Max(2*s, 0), 1)
}

func clamp01(v float64) float64 { return math.Min(math.Max(v, 0), 1) }
