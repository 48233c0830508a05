package feedback

import (
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/quality"
)

// TestIndexBounds: the index forgets the oldest predictions past its
// size and those stored before the horizon, and a replaced id survives
// the eviction of its older copy.
func TestIndexBounds(t *testing.T) {
	t0 := time.Unix(1000, 0)
	x := newIndex(2)
	put := func(id string, seq uint64) int {
		return x.put("m", id, quality.Prediction{Version: "v1", Value: quality.Number(float64(seq))}, seq, t0.Add(time.Duration(seq)*time.Second))
	}
	put("a", 1)
	put("b", 2)
	if n := put("c", 3); n != 1 || x.len() != 2 {
		t.Fatalf("evicted %d, len %d", n, x.len())
	}
	if _, ok := x.get("m", "a"); ok {
		t.Fatal("a not evicted")
	}
	// b again, newer: its old queue item must not evict the new copy.
	if n := put("b", 4); n != 0 {
		t.Fatalf("replacing evicted %d", n)
	}
	if e, ok := x.get("m", "b"); !ok || e.pred.Value.Number != 4 {
		t.Fatalf("b = %+v %v", e, ok)
	}
	if n := put("d", 5); n != 1 {
		t.Fatalf("evicted %d", n)
	}
	if _, ok := x.get("m", "c"); ok {
		t.Fatal("c not evicted")
	}
	if _, ok := x.get("m", "b"); !ok {
		t.Fatal("b evicted")
	}
	// Expire everything stored before second 5: b (4) goes, d (5) stays.
	if n := x.expire(t0.Add(5 * time.Second)); n != 1 || x.len() != 1 {
		t.Fatalf("expired %d, len %d", n, x.len())
	}
	if _, ok := x.get("m", "d"); !ok {
		t.Fatal("d expired")
	}
}

// TestIndexIDsArePerModel: the same id on two models is two entries.
func TestIndexIDsArePerModel(t *testing.T) {
	x := newIndex(10)
	t0 := time.Unix(1000, 0)
	x.put("a", "p1", quality.Prediction{Version: "va"}, 1, t0)
	x.put("b", "p1", quality.Prediction{Version: "vb"}, 2, t0)
	if x.len() != 2 {
		t.Fatalf("len %d, want 2", x.len())
	}
	for model, version := range map[string]string{"a": "va", "b": "vb"} {
		if e, ok := x.get(model, "p1"); !ok || e.pred.Version != version {
			t.Errorf("%s/p1 = %+v %v", model, e, ok)
		}
	}
	if _, ok := x.get("c", "p1"); ok {
		t.Error("c/p1 found")
	}
}
