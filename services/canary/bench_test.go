package canary

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/service"
)

// BenchmarkService measures the service's sustained rate end to end: b.N
// pairs (2·b.N predictions as ingest writes them) are stored first, then
// the service reads, decodes, joins and judges them all (windows of 1,000
// pairs). Run with e.g. -benchtime 100000x.
func BenchmarkService(b *testing.B) {
	_, nc, js := natstest.RunWithStreams(b)
	ctx := context.Background()
	var futures []jetstream.PubAckFuture
	for i := range b.N {
		id := fmt.Sprintf("req-%08d", i)
		for _, role := range []string{event.RoleProduction, event.RoleCanary} {
			lat, conf := 10+float64(i%7), 0.9
			p := &event.Prediction{Id: role + id, RequestId: id, Model: "churn", Version: "v3", Role: role,
				TsUnixNano: proto.Int64(time.Now().UnixNano()), Prediction: event.Text("stay"), LatencyMs: &lat, Confidence: &conf,
				Features: map[string]*event.Value{"age": event.Number(42), "plan": event.Text("pro")}}
			msg := nats.NewMsg(subjects.For(natsbus.KindPredictions, "churn"))
			msg.Data = event.AppendJSON(nil, p)
			f, err := js.PublishMsgAsync(msg)
			if err != nil {
				b.Fatal(err)
			}
			futures = append(futures, f)
			if len(futures)%2048 == 0 {
				select {
				case <-js.PublishAsyncComplete():
				case <-time.After(time.Minute):
					b.Fatal("publish acks not back within a minute")
				}
			}
		}
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			b.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.Wait = time.Hour
	svc, err := New(service.Env{NC: nc, JS: js, Subjects: subjects, Log: zap.NewNop(), Metrics: reg}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	// Read from the first message: the fresh start looks one wait back.
	b.ResetTimer()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	r := &running{reg: reg}
	deadline := time.Now().Add(5 * time.Minute)
	for r.read(b) < float64(2*b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("read %v of %d predictions", r.read(b), 2*b.N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "msgs/s")
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
