package drift

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
)

// benchMessages returns n prediction messages as ingest publishes them
// (contract JSON), with 20 numerical features and one categorical.
func benchMessages(n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for i := range out {
		c := rng.Float64()
		p := &event.Prediction{
			Id: fmt.Sprintf("id-%d", i), Model: "bench", Version: "v1", Role: event.RoleProduction,
			TsUnixNano: proto.Int64(start.Add(time.Duration(i) * time.Millisecond).UnixNano()),
			Features:   map[string]*event.Value{"plan": event.Text([]string{"basic", "pro", "team"}[i%3])},
			Prediction: event.Number(rng.Float64()), Confidence: &c,
		}
		for f := range 20 {
			p.Features[fmt.Sprintf("f%02d", f)] = event.Number(rng.NormFloat64())
		}
		out[i] = event.AppendJSON(nil, p)
	}
	return out
}

// BenchmarkWindow measures the drift service's work per event (decode the
// message, add it to its model's window) and per window (compare with a
// reference of 10,000 events), at three window sizes, with the default
// sample cap of 100,000 values per feature. It reports the sustained
// events per second and the heap in use when the window is full: past the
// cap the heap levels off.
//
//	go test ./services/drift -run '^$' -bench Window -benchtime 3x
func BenchmarkWindow(b *testing.B) {
	msgs := benchMessages(10000)
	sample := driftreport.SampleOptions{Cap: driftreport.DefaultSampleCap}
	ref := newWindow(1, time.Time{}, sample)
	for i, m := range msgs {
		p, reasons := event.DecodePrediction(m, event.DecodeOptions{})
		if len(reasons) > 0 {
			b.Fatal(reasons)
		}
		ref.add(uint64(i+1), p)
	}
	refView := &driftreport.Dataset{Features: ref.features.Features, Rows: ref.rows,
		Prediction: ref.outputs["v1"].Prediction, Confidence: ref.outputs["v1"].Confidence}
	for _, size := range []int{10000, 100000, 1000000} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			var heap uint64
			var sampled bool
			start := time.Now()
			events := 0
			for b.Loop() {
				w := newWindow(1, time.Time{}, sample)
				for i := range size {
					p, _ := event.DecodePrediction(msgs[i%len(msgs)], event.DecodeOptions{})
					w.add(uint64(i+1), p)
				}
				events += size
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				heap = max(heap, ms.HeapInuse)
				cur := &driftreport.Dataset{Features: w.features.Features, Rows: w.rows,
					Prediction: w.outputs["v1"].Prediction, Confidence: w.outputs["v1"].Confidence}
				r := driftreport.Compare(refView, cur, driftreport.Options{})
				sampled = r.Sampled
				if len(r.Features) != 21 {
					b.Fatalf("%d features compared", len(r.Features))
				}
			}
			b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
			if sampled != (size > driftreport.DefaultSampleCap) {
				b.Errorf("sampled = %v at %d events", sampled, size)
			}
		})
	}
}
