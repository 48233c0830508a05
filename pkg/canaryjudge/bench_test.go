package canaryjudge

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/event"
)

// heapInUse returns the bytes of heap in use after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func benchHalf(i int, side int) Half {
	id := "req-" + strconv.Itoa(i) + "-0123456789abcdef0123456789" // about a UUID's length
	return Half{RequestID: id, ID: id, Side: side, Version: "2026-11-01", Label: "churn", IsLabel: true,
		Confidence: 0.9, LatencyMS: 12.5, At: int64(i)}
}

// BenchmarkJoin measures the join's sustained rate with a steady number
// of halves waiting: each iteration adds the production half of a new
// request and the canary half of the one that has waited longest, so one
// pair completes per iteration. It reports pairs/s and the heap the
// waiting halves take.
func BenchmarkJoin(b *testing.B) {
	for _, inFlight := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("in_flight=%d", inFlight), func(b *testing.B) {
			base := heapInUse()
			j := NewJoiner()
			for i := range inFlight {
				j.Add(benchHalf(i, Production))
			}
			held := heapInUse() - base
			// Pre-build the halves so the loop measures the join only.
			prod := make([]Half, 4096)
			can := make([]Half, 4096)
			b.ResetTimer()
			for i := range b.N {
				if i%4096 == 0 {
					b.StopTimer()
					for k := range prod {
						prod[k] = benchHalf(inFlight+i+k, Production)
						can[k] = benchHalf(i+k, Candidate)
					}
					b.StartTimer()
				}
				j.Add(prod[i%4096])
				if _, res := j.Add(can[i%4096]); res != Joined {
					b.Fatalf("iteration %d: %v", i, res)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
			b.ReportMetric(float64(held)/(1<<20), "heap_MiB")
			b.ReportMetric(float64(held)/float64(inFlight), "heap_B/half")
			if j.Len() != inFlight {
				b.Fatalf("in flight %d, want %d", j.Len(), inFlight)
			}
		})
	}
}

// BenchmarkTracker measures the whole pure path for one model: each
// iteration adds two predictions that complete a pair, with windows of
// 1,000 pairs closing and being judged along the way, and the given number
// of halves waiting. Decoding the messages is not included.
func BenchmarkTracker(b *testing.B) {
	for _, inFlight := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("in_flight=%d", inFlight), func(b *testing.B) {
			tr := NewTracker(Options{Wait: time.Hour, WindowPairs: 1000, Window: time.Hour, MaxHalves: 200000,
				Judge: &Judge{Guardrails: DefaultGuardrails(), MinPairs: 500}})
			pred := func(i int, role string) *event.Prediction {
				lat, conf := 10+float64(i%7), 0.9
				return &event.Prediction{Id: role + strconv.Itoa(i), RequestId: "req-" + strconv.Itoa(i), Model: "churn",
					Version: "v3", Role: role, Prediction: event.Text([]string{"churn", "stay"}[i%2]), LatencyMs: &lat, Confidence: &conf}
			}
			at := time.Unix(1_800_000_000, 0)
			for i := range inFlight {
				tr.Prediction(at, pred(i, event.RoleProduction))
			}
			prod := make([]*event.Prediction, 4096)
			can := make([]*event.Prediction, 4096)
			reports := 0
			b.ResetTimer()
			for i := range b.N {
				if i%4096 == 0 {
					b.StopTimer()
					for k := range prod {
						prod[k] = pred(inFlight+i+k, event.RoleProduction)
						can[k] = pred(i+k, event.RoleCanary)
					}
					b.StartTimer()
				}
				at = at.Add(time.Microsecond)
				reports += len(tr.Prediction(at, prod[i%4096]))
				reports += len(tr.Prediction(at, can[i%4096]))
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
			if want := b.N / 1000; math.Abs(float64(reports-want)) > 1 {
				b.Fatalf("%d reports for %d pairs", reports, b.N)
			}
		})
	}
}

// BenchmarkSnapshot measures saving and restoring a tracker with 100,000
// halves waiting (the service's checkpoint, before it goes to JetStream).
func BenchmarkSnapshot(b *testing.B) {
	tr := NewTracker(Options{Wait: time.Hour, Window: time.Hour})
	at := time.Unix(1_800_000_000, 0)
	for i := range 100000 {
		lat, conf := 10+float64(i%7), 0.9
		tr.Prediction(at, &event.Prediction{Id: "p" + strconv.Itoa(i), RequestId: "req-" + strconv.Itoa(i) + "-0123456789abcdef0123456789",
			Model: "churn", Version: "v3", Role: event.RoleProduction, Prediction: event.Text("stay"), LatencyMs: &lat, Confidence: &conf})
	}
	var size int
	b.ResetTimer()
	for range b.N {
		data, err := tr.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
		if err := NewTracker(Options{}).UnmarshalBinary(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/(1<<20), "snapshot_MiB")
}
