package archive

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/service"
)

// BenchmarkService measures the archive service writing 100,000 rows
// already on lookout.predictions.* (two models) to Parquet files: consume,
// decode, buffer, write, sync, rename, journal, acknowledge. Compare with
// pkg/archive's BenchmarkWrite/raw-parquet-go, parquet-go alone on the same
// rows. One op = all rows.
func BenchmarkService(b *testing.B) {
	const n = 100000
	_, nc, js := natstest.RunWithStreams(b)
	base := time.Now()
	preds := make([]*event.Prediction, n)
	for i := range preds {
		preds[i] = prediction(fmt.Sprintf("m%d", i%2), i, base)
	}
	publishPredictions(b, js, preds, nil)
	for b.Loop() {
		b.StopTimer()
		env := service.Env{NC: nc, JS: js, Subjects: natsbus.NewSubjects(""), Log: zap.NewNop(),
			Metrics: prometheus.NewRegistry(), DataDir: b.TempDir()}
		svc, err := New(env, Config{Window: time.Minute, MaxRows: n / 2})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		go func() { done <- svc.Run(ctx) }()
		natstest.WaitFor(b, 120*time.Second, func() error {
			var written float64
			for _, m := range []string{"m0", "m1"} {
				written += value(svc.metrics.rows.WithLabelValues(m))
			}
			if written < n {
				return fmt.Errorf("%v rows written", written)
			}
			return nil
		})
		b.StopTimer()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}
