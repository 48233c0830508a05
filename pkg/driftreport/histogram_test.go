package driftreport

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestHistogramOracle checks each feature's histogram (edges, categories,
// both sides' shares) against numpy (testdata/gen_histogram.py: the
// contract's decile edges, searchsorted side="right", top 20 categories
// and the rest as "other").
func TestHistogramOracle(t *testing.T) {
	b, err := os.ReadFile("testdata/histogram.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []struct {
			Name, Kind         string
			Ref, Cur           json.RawMessage
			Edges              []float64
			Categories         []string
			Other              bool
			Reference, Current []float64
		}
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) < 5 {
		t.Fatalf("%d cases, want 5", len(file.Cases))
	}
	near := func(got, want []float64, tol float64) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if math.Abs(got[i]-want[i]) > tol {
				return false
			}
		}
		return true
	}
	for _, c := range file.Cases {
		ref, cur := NewDataset(SampleOptions{}), NewDataset(SampleOptions{})
		add := func(d *Dataset, raw json.RawMessage) {
			if c.Kind == KindNumerical {
				var xs []float64
				if err := json.Unmarshal(raw, &xs); err != nil {
					t.Fatal(err)
				}
				for _, x := range xs {
					_ = d.Add(Row{Features: map[string]any{"f": x}})
				}
				return
			}
			var xs []string
			if err := json.Unmarshal(raw, &xs); err != nil {
				t.Fatal(err)
			}
			for _, x := range xs {
				_ = d.Add(Row{Features: map[string]any{"f": x}})
			}
		}
		add(ref, c.Ref)
		add(cur, c.Cur)
		r := Compare(ref, cur, Options{})
		h := r.Features["f"].Histogram
		if h == nil {
			t.Fatalf("%s: no histogram", c.Name)
		}
		// Shares are rounded to 6 decimals.
		if !near(h.Reference, c.Reference, 5e-7) || !near(h.Current, c.Current, 5e-7) {
			t.Errorf("%s: shares\n ref %v\n cur %v\nnumpy\n ref %v\n cur %v", c.Name, h.Reference, h.Current, c.Reference, c.Current)
		}
		if c.Kind == KindNumerical {
			if !near(h.Edges, c.Edges, 1e-12) || h.Categories != nil {
				t.Errorf("%s: edges %v, numpy %v", c.Name, h.Edges, c.Edges)
			}
			if len(h.Reference) != len(h.Edges)+1 {
				t.Errorf("%s: %d bins for %d edges", c.Name, len(h.Reference), len(h.Edges))
			}
			continue
		}
		if !slices.Equal(h.Categories, c.Categories) || h.Other != c.Other || h.Edges != nil {
			t.Errorf("%s: categories %v other %v, numpy %v other %v", c.Name, h.Categories, h.Other, c.Categories, c.Other)
		}
		if len(h.Categories) > MaxHistogramCategories+1 {
			t.Errorf("%s: %d categories, bound %d", c.Name, len(h.Categories), MaxHistogramCategories+1)
		}
	}
}

// TestHistogramBounded checks that a feature of thousands of long
// categories gives a small histogram, the same on every run.
func TestHistogramBounded(t *testing.T) {
	build := func() []byte {
		ref, cur := NewDataset(SampleOptions{}), NewDataset(SampleOptions{})
		long := strings.Repeat("é", 200)
		for i := range 5000 {
			_ = ref.Add(Row{Features: map[string]any{"f": long + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26))}})
			_ = cur.Add(Row{Features: map[string]any{"f": long + string(rune('a'+(i*7)%26)) + string(rune('a'+i/26%26))}})
		}
		r := Compare(ref, cur, Options{})
		b, err := json.Marshal(r.Features["f"].Histogram)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := build(), build()
	if string(a) != string(b) {
		t.Errorf("histogram differs between runs:\n%s\n%s", a, b)
	}
	if len(a) > 3000 {
		t.Errorf("histogram of many long categories is %d bytes, want under 3000", len(a))
	}
	var h Histogram
	_ = json.Unmarshal(a, &h)
	if !h.Other || len(h.Categories) != MaxHistogramCategories+1 || h.Categories[MaxHistogramCategories] != OtherCategory {
		t.Errorf("categories %d, other %v: want %d and the rest gathered", len(h.Categories), h.Other, MaxHistogramCategories)
	}
	var sum float64
	for _, v := range h.Reference {
		sum += v
	}
	if math.Abs(sum-1) > 1e-4 {
		t.Errorf("reference shares sum to %v, want 1", sum)
	}
	for _, c := range h.Categories {
		if len(c) > MaxCategoryName {
			t.Errorf("category name of %d bytes, bound %d", len(c), MaxCategoryName)
		}
	}
}
