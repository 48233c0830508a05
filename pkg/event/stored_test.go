package event

import (
	"testing"
	"time"
)

func TestStoredDecodesOncePerMessage(t *testing.T) {
	s := NewStored(4)
	a := []byte(`{"id":"a","version":"v1","prediction":1}`)
	b := []byte(`{"id":"b","version":"v1","prediction":2}`)
	now := time.Unix(100, 0)
	p1, _ := s.Decode(7, a, "m", "", now)
	p2, _ := s.Decode(7, a, "m", "", now)
	if p1 == nil || p1 != p2 {
		t.Fatalf("the second read of seq 7 decoded again: %p %p", p1, p2)
	}
	// The same sequence with other bytes (a recreated stream) is decoded.
	p3, _ := s.Decode(7, b, "m", "", now)
	if p3.GetId() != "b" {
		t.Fatalf("got %q for new bytes at the same sequence", p3.GetId())
	}
	// A slot reused by another sequence is decoded again.
	p4, _ := s.Decode(11, a, "m", "", now)
	if p4 == p1 || p4.GetId() != "a" {
		t.Fatal("sequence 11 took seq 7's prediction")
	}
	// No size limit: ingest applied its own.
	big := []byte(`{"version":"v1","prediction":1,"tags":{"x":"` + string(make([]byte, 0)) + repeat('y', DefaultMaxBytes) + `"}}`)
	if _, reasons := s.Decode(12, big, "m", "", now); len(reasons) > 0 {
		t.Fatalf("a stored prediction over DefaultMaxBytes refused: %v", reasons[0])
	}
	var none *Stored
	if p, _ := none.Decode(1, a, "m", "", now); p.GetId() != "a" {
		t.Fatal("nil Stored does not decode")
	}
}

func repeat(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}
