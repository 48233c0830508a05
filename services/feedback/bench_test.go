package feedback

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/quality"
)

// BenchmarkIndexPut measures remembering predictions with 36-byte ids,
// and reports the memory each one takes once the index is full.
func BenchmarkIndexPut(b *testing.B) {
	const size = 200_000
	ids := make([]string, size)
	for i := range ids {
		ids[i] = "0193c1d2-7e4f-8a00-b000-" + strconv.FormatInt(100_000_000_000+int64(i), 10)
	}
	t0 := time.Unix(1000, 0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := newIndex(size)
	for i, id := range ids {
		x.put("churn", id, id, quality.Prediction{Version: "v1", Value: quality.Number(0.5), Time: t0}, uint64(i+1), t0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perPrediction := float64(after.HeapAlloc-before.HeapAlloc) / size
	for i := 0; b.Loop(); i++ {
		x.put("churn", ids[i%size], ids[i%size], quality.Prediction{Version: "v1", Value: quality.Number(0.5), Time: t0}, uint64(size+i+1), t0)
	}
	runtime.KeepAlive(x)
	b.ReportMetric(perPrediction, "bytes/prediction")
}
