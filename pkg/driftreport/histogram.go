package driftreport

import (
	"cmp"
	"math"
	"slices"
	"unicode/utf8"
)

// Bounds of a Histogram: it goes in every report on the stream, so it
// stays small whatever the feature holds.
const (
	// MaxHistogramCategories is how many categories a histogram names;
	// the rest are gathered in one bin, OtherCategory.
	MaxHistogramCategories = 20
	// OtherCategory names the bin of the categories past the top ones.
	OtherCategory = "other"
	// MaxCategoryName bounds a category's name in a histogram, in bytes.
	MaxCategoryName = 64
	// histogramDigits is the decimals a share keeps: 1e-6 of a window is
	// below any bar a chart can draw.
	histogramDigits = 1e6
)

// Histogram is a feature's distribution on both sides, over the bins its
// psi and jensen_shannon compare, for plotting reference against window.
type Histogram struct {
	// Edges are a numerical feature's bin edges, the reference's distinct
	// deciles (see the contract's psi): bin 0 holds x < Edges[0], bin i
	// Edges[i-1] <= x < Edges[i], the last x >= Edges[len(Edges)-1].
	Edges []float64 `json:"edges,omitempty"`
	// Categories name a categorical feature's bins: the top
	// MaxHistogramCategories by reference plus current share (ties by
	// name), then OtherCategory when Other is set.
	Categories []string `json:"categories,omitempty"`
	// Other is true when the last bin gathers the remaining categories.
	Other bool `json:"other,omitempty"`
	// Reference and Current are each bin's share of the side's values
	// (nulls and values of another type left out), rounded to 6 decimals.
	Reference []float64 `json:"reference"`
	Current   []float64 `json:"current"`
}

func roundShares(s []float64) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = math.Round(v*histogramDigits) / histogramDigits
	}
	return out
}

// numericalHistogram is the histogram of the bins psi compared.
func numericalHistogram(edges, rs, cs []float64) *Histogram {
	h := &Histogram{Edges: slices.Clone(edges), Reference: roundShares(rs), Current: roundShares(cs)}
	for i, e := range h.Edges {
		h.Edges[i] = finite(e)
	}
	return h
}

// categoricalHistogram keeps the top categories of cats by rs+cs and
// gathers the rest.
func categoricalHistogram(cats []string, rs, cs []float64) *Histogram {
	idx := make([]int, len(cats))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		return cmp.Or(cmp.Compare(rs[b]+cs[b], rs[a]+cs[a]), cmp.Compare(cats[a], cats[b]))
	})
	h := &Histogram{Categories: []string{}, Reference: []float64{}, Current: []float64{}}
	var otherR, otherC float64
	for k, i := range idx {
		if k >= MaxHistogramCategories {
			h.Other = true
			otherR += rs[i]
			otherC += cs[i]
			continue
		}
		h.Categories = append(h.Categories, shortName(cats[i]))
		h.Reference = append(h.Reference, rs[i])
		h.Current = append(h.Current, cs[i])
	}
	if h.Other {
		h.Categories = append(h.Categories, OtherCategory)
		h.Reference = append(h.Reference, otherR)
		h.Current = append(h.Current, otherC)
	}
	h.Reference, h.Current = roundShares(h.Reference), roundShares(h.Current)
	return h
}

// shortName cuts a category's name to MaxCategoryName bytes on a rune
// boundary, marking the cut.
func shortName(s string) string {
	if len(s) <= MaxCategoryName {
		return s
	}
	cut := MaxCategoryName - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
