package feedback

import (
	"strconv"
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
		return x.put("m", id, "", quality.Prediction{Version: "v1", Value: quality.Number(float64(seq))}, seq, t0.Add(time.Duration(seq)*time.Second))
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
	x.put("a", "p1", "", quality.Prediction{Version: "va"}, 1, t0)
	x.put("b", "p1", "", quality.Prediction{Version: "vb"}, 2, t0)
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

// TestIndexRequests: the predictions of a request are found by (model,
// request_id), per model, and leave the request when evicted or when their
// id is stored again with another request.
func TestIndexRequests(t *testing.T) {
	x := newIndex(3)
	t0 := time.Unix(1000, 0)
	x.put("m", "p1", "r1", quality.Prediction{Version: "v1", Role: "production"}, 1, t0)
	x.put("m", "c1", "r1", quality.Prediction{Version: "v2", Role: "canary"}, 2, t0)
	x.put("other", "o1", "r1", quality.Prediction{Version: "v9"}, 3, t0)
	if got := x.request("m", "r1"); len(got) != 2 || got[0].id != "p1" || got[1].id != "c1" || got[1].pred.Role != "canary" {
		t.Fatalf("m/r1 = %+v", got)
	}
	if got := x.request("other", "r1"); len(got) != 1 || got[0].pred.Version != "v9" {
		t.Fatalf("other/r1 = %+v", got)
	}
	// A fourth prediction evicts p1, from its request too.
	x.put("m", "p2", "r2", quality.Prediction{}, 4, t0.Add(time.Second))
	if got := x.request("m", "r1"); len(got) != 1 || got[0].id != "c1" {
		t.Fatalf("after eviction m/r1 = %+v", got)
	}
	// c1 stored again under r2 leaves r1.
	x.put("m", "c1", "r2", quality.Prediction{}, 5, t0.Add(time.Second))
	if got := x.request("m", "r1"); len(got) != 0 {
		t.Fatalf("after move m/r1 = %+v", got)
	}
	if got := x.request("m", "r2"); len(got) != 2 {
		t.Fatalf("m/r2 = %+v", got)
	}
	// Expiry empties the request map with the index.
	x.expire(t0.Add(time.Hour))
	if x.len() != 0 || len(x.byReq) != 0 {
		t.Fatalf("after expiry len %d, requests %d", x.len(), len(x.byReq))
	}
	// One request_id on many predictions keeps only the newest maxPerRequest.
	y := newIndex(1000)
	for i := range maxPerRequest + 10 {
		y.put("m", strconv.Itoa(i), "same", quality.Prediction{}, uint64(i+1), t0)
	}
	if got := y.request("m", "same"); len(got) != maxPerRequest || got[0].id != "10" {
		t.Fatalf("capped request: %d, first %q", len(got), got[0].id)
	}
}
