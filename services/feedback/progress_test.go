package feedback

import (
	"maps"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestProgressHeaders: the progress record reads back as written, a
// record too long to write lowers what it claims rather than claim too
// much, and a header this service did not write is an error.
func TestProgressHeaders(t *testing.T) {
	upTo, open := encodeOpen(20, []uint64{3, 5, 6, 7, 20})
	if upTo != 20 || open != "3,5-7,20" {
		t.Fatalf("encoded %d %q", upTo, open)
	}
	h := nats.Header{}
	h.Set(HeaderDone, "20")
	h.Set(HeaderOpen, open)
	p, err := parseProgress(h)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(p.open)); p.upTo != 20 || !slices.Equal(got, []uint64{3, 5, 6, 7, 20}) {
		t.Fatalf("parsed %d %v", p.upTo, got)
	}

	// Every other sequence open: one range each, past the cap.
	var many []uint64
	for i := range uint64(maxOpenRanges + 10) {
		many = append(many, 10+2*i)
	}
	upTo, open = encodeOpen(1<<20, many)
	if want := many[maxOpenRanges] - 1; upTo != want {
		t.Fatalf("capped record claims up to %d, want %d", upTo, want)
	}
	h.Set(HeaderDone, "1048576")
	h.Set(HeaderOpen, open)
	if p, err := parseProgress(h); err != nil || len(p.open) != maxOpenRanges {
		t.Fatalf("capped record: %v, %d open", err, len(p.open))
	}

	h.Set(HeaderDone, "20")
	for _, bad := range []string{"x", "7-5", "5-21", "1-x", "-3"} {
		h.Set(HeaderOpen, bad)
		if _, err := parseProgress(h); err == nil {
			t.Errorf("%s %q accepted", HeaderOpen, bad)
		}
	}
	h.Set(HeaderDone, "99999999999")
	h.Set(HeaderOpen, "1-99999999999")
	if _, err := parseProgress(h); err == nil {
		t.Error("a range past maxOpenSeqs accepted")
	}
	if p, err := parseProgress(nats.Header{}); p != nil || err != nil {
		t.Errorf("no record: %v %v", p, err)
	}
}
