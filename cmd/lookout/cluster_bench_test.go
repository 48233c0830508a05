package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// BenchmarkDriftPartitions measures drift's throughput with one and with
// two `lookout run --only drift` processes (nats.partitions 4), 20 models:
// 200,000 predictions (20 models, ten windows of 1,000 each) are published
// straight to lookout.predictions.* first; then the drift processes start,
// timed from their start until every window after each model's first is
// reported (their start-up and the handover of leases included).
func BenchmarkDriftPartitions(b *testing.B) {
	const models, windows, perWindow = 20, 10, 1000
	for _, procs := range []int{1, 2} {
		b.Run(fmt.Sprintf("processes=%d", procs), func(b *testing.B) {
			for b.Loop() {
				dir := b.TempDir()
				cfg := filepath.Join(dir, "lookout.yaml")
				if err := os.WriteFile(cfg, []byte(fmt.Sprintf("nats:\n  partitions: 4\ndrift:\n  window: 1h\n  window_events: %d\n", perWindow)), 0o644); err != nil {
					b.Fatal(err)
				}
				hub := startLookout(b, filepath.Join(dir, "hub"), "--config", cfg, "--only", "ingest")
				nc, err := nats.Connect(hub.NATSURL)
				if err != nil {
					b.Fatal(err)
				}
				js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*perWindow))
				ctx := context.Background()
				subjects := natsbus.NewSubjects("")
				reports, err := js.Stream(ctx, subjects.StreamName(natsbus.StreamReports))
				if err != nil {
					b.Fatal(err)
				}
				for w := range windows {
					for m := range models {
						model := fmt.Sprintf("bm-%02d", m)
						for i := range perWindow {
							p := &event.Prediction{
								Id: fmt.Sprintf("%d-%d", w, i), Version: "v1", Model: model, TsUnixNano: proto.Int64(time.Now().UnixNano()),
								Features:   map[string]*event.Value{"age": event.Number(float64(20 + i%50)), "plan": event.Text([]string{"free", "pro"}[i%2])},
								Prediction: event.Number(float64(i%100) / 100),
							}
							if _, err := js.PublishAsync(subjects.For(natsbus.KindPredictions, model), event.AppendJSON(nil, p)); err != nil {
								b.Fatal(err)
							}
						}
						<-js.PublishAsyncComplete() // a model's window at a time: never more in flight than the client allows
					}
				}
				<-js.PublishAsyncComplete()
				parts, err := js.Stream(ctx, subjects.StreamName(natsbus.StreamPartitions))
				if err != nil {
					b.Fatal(err)
				}
				natstest.WaitFor(b, 2*time.Minute, func() error {
					info, err := parts.Info(ctx)
					if err != nil {
						return err
					}
					if info.State.Msgs < models*windows*perWindow {
						return fmt.Errorf("partitions stream holds %d", info.State.Msgs)
					}
					return nil
				})
				start := time.Now()
				var drifts []*lookoutProcess
				for i := range procs {
					drifts = append(drifts, startLookout(b, filepath.Join(dir, fmt.Sprintf("d%d", i)), "--nats", hub.NATSURL, "--config", cfg, "--only", "drift"))
				}
				want := uint64(models * (windows - 1))
				natstest.WaitFor(b, 10*time.Minute, func() error {
					info, err := reports.Info(ctx)
					if err != nil {
						return err
					}
					if info.State.Msgs < want {
						return fmt.Errorf("%d reports of %d", info.State.Msgs, want)
					}
					return nil
				})
				took := time.Since(start)
				b.ReportMetric(float64(models*windows*perWindow)/took.Seconds(), "events/s")
				nc.Close()
				for _, d := range drifts {
					d.Stop(b)
				}
				hub.Stop(b)
			}
		})
	}
}

// BenchmarkNodeKillToReport measures, on a three-node cluster with
// nats.replicas 3 and a real `lookout run --nats url1,url2,url3`, the time
// from killing the leader of the predictions stream (SIGKILL) while
// windows of one model arrive to the first drift report stored after the
// kill.
func BenchmarkNodeKillToReport(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		cluster := startNATSClusterTB(b)
		dir := b.TempDir()
		cfg := filepath.Join(dir, "lookout.yaml")
		if err := os.WriteFile(cfg, []byte("nats:\n  replicas: 3\ndrift:\n  window: 1h\n  window_events: 200\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		lk := startLookout(b, filepath.Join(dir, "data"), "--nats", cluster.URLs(), "--config", cfg, "--only", "ingest,drift")
		nc, err := nats.Connect(cluster.URLs(), nats.MaxReconnects(-1))
		if err != nil {
			b.Fatal(err)
		}
		js, _ := jetstream.New(nc)
		subjects := natsbus.NewSubjects("")
		pub := &ackedPublisher{js: js}
		ctx, cancel := context.WithCancel(context.Background())
		published := make(chan struct{})
		go func() {
			defer close(published)
			for i := 0; ctx.Err() == nil; i++ {
				p := &event.Prediction{Id: fmt.Sprintf("k-%07d", i), Version: "v1", Model: "kill", TsUnixNano: proto.Int64(time.Now().UnixNano()),
					Features: map[string]*event.Value{"age": event.Number(float64(20 + i%50))}, Prediction: event.Number(0.5)}
				if pub.publish(ctx, subjects.For(natsbus.KindIngest, "kill"), p.GetId(), event.AppendJSON(nil, p)) != nil {
					return
				}
			}
		}()
		lastReport := func() (time.Time, error) {
			s, err := js.Stream(ctx, subjects.StreamName(natsbus.StreamReports))
			if err != nil {
				return time.Time{}, err
			}
			m, err := s.GetLastMsgForSubject(ctx, subjects.For(natsbus.KindDrift, "kill"))
			if err != nil {
				return time.Time{}, err
			}
			return m.Time, nil
		}
		natstest.WaitFor(b, 2*time.Minute, func() error { _, err := lastReport(); return err })
		stream, err := js.Stream(ctx, subjects.StreamName(natsbus.StreamPredictions))
		if err != nil {
			b.Fatal(err)
		}
		victim := cluster.node(stream.CachedInfo().Cluster.Leader)
		if victim == nil {
			b.Fatalf("no leader node: %+v", stream.CachedInfo().Cluster)
		}
		b.StartTimer()
		killed := time.Now()
		victim.kill()
		var took time.Duration
		natstest.WaitFor(b, 3*time.Minute, func() error {
			at, err := lastReport()
			if err != nil {
				return err
			}
			if !at.After(killed) {
				return fmt.Errorf("no report since the kill")
			}
			took = time.Since(killed)
			return nil
		})
		b.StopTimer()
		b.ReportMetric(took.Seconds(), "s-kill-to-report")
		cancel()
		<-published
		nc.Close()
		lk.Stop(b)
		b.StartTimer()
	}
}
