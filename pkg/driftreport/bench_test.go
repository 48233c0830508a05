package driftreport

import (
	"fmt"
	"testing"
)

// BenchmarkCompare100kx20 is the scale of the scipy comparison: 20
// numerical features of 100,000 rows on each side. The reference's sorted
// values are cached after the first run, as for a drift service that
// compares every window with one reference.
func BenchmarkCompare100kx20(b *testing.B) {
	ref, cur := NewDataset(SampleOptions{}), NewDataset(SampleOptions{})
	for f := 0; f < 20; f++ {
		name := fmt.Sprintf("f%02d", f)
		rc, cc := ref.Column(name), cur.Column(name)
		for _, v := range normals(100000, uint64(f+1), 0, 1) {
			rc.AddNumber(v)
		}
		for _, v := range normals(100000, uint64(f+100), float64(f%3)*0.05, 1) {
			cc.AddNumber(v)
		}
	}
	ref.Rows, cur.Rows = 100000, 100000
	for b.Loop() {
		// A new window each time: drop the current side's sort cache.
		for _, c := range cur.Features {
			c.invalidate()
		}
		r := Compare(ref, cur, Options{})
		if len(r.Features) != 20 {
			b.Fatal("features missing")
		}
	}
}

// BenchmarkCompare100kx20Cold also sorts the reference every time.
func BenchmarkCompare100kx20Cold(b *testing.B) {
	ref, cur := NewDataset(SampleOptions{}), NewDataset(SampleOptions{})
	for f := 0; f < 20; f++ {
		name := fmt.Sprintf("f%02d", f)
		rc, cc := ref.Column(name), cur.Column(name)
		for _, v := range normals(100000, uint64(f+1), 0, 1) {
			rc.AddNumber(v)
		}
		for _, v := range normals(100000, uint64(f+100), float64(f%3)*0.05, 1) {
			cc.AddNumber(v)
		}
	}
	for b.Loop() {
		for _, c := range cur.Features {
			c.invalidate()
		}
		for _, c := range ref.Features {
			c.invalidate()
		}
		_ = Compare(ref, cur, Options{})
	}
}
