package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// BenchmarkRunVsRawPublish measures the whole pipeline as a user runs it:
// a real `lookout run` (every service, or ingest alone), 200,000 events of
// about 200 bytes published with JetStream async publish to
// lookout.ingest.<model>, timed until all are stored on
// lookout.predictions.<model>; beside it, in the same run on the same
// server, raw async publish of the same events into a stream of their own.
// It reports both rates and their ratio.
func BenchmarkRunVsRawPublish(b *testing.B) {
	const n = 200_000
	events := make([][]byte, n)
	for i := range events {
		events[i] = fmt.Appendf(nil, `{"id":"b-%08d","version":"v1","ts":"2026-11-24T10:%02d:%02d.123Z",`+
			`"features":{"age":%d,"plan":"pro","income":52000.5,"trial":false},"prediction":0.83,"confidence":0.91,"latency_ms":12.5}`,
			i, (i/1000)%60, (i/10)%60, 20+i%60)
	}
	b.Logf("event size %d bytes", len(events[0]))
	type variant struct {
		name, only string
		env        []string
	}
	variants := []variant{{name: "all"}, {name: "ingest", only: "ingest"}}
	if ab := os.Getenv("LOOKOUT_BENCH_AB"); ab != "" {
		// Weighs a setting side by side: each case runs again with these
		// variables (KEY=VALUE,...) in the lookout process's environment.
		env := strings.Split(ab, ",")
		variants = []variant{{name: "all"}, {name: "all-ab", env: env}, {name: "ingest", only: "ingest"}, {name: "ingest-ab", only: "ingest", env: env}}
	}
	for _, v := range variants {
		name, only := v.name, v.only
		b.Run(name, func(b *testing.B) {
			for _, kv := range v.env {
				k, val, _ := strings.Cut(kv, "=")
				b.Setenv(k, val)
			}
			var rawRate, runRate float64
			for b.Loop() {
				args := []string{}
				if only != "" {
					args = append(args, "--only", only)
				}
				if path := os.Getenv("LOOKOUT_BENCH_CONFIG"); path != "" {
					// A configuration to weigh a setting against the default.
					args = append(args, "--config", path)
				}
				if dir := os.Getenv("LOOKOUT_BENCH_PROFILES"); dir != "" {
					// A CPU profile of the lookout process (cmd/lookout/profile.go).
					b.Setenv("LOOKOUT_CPUPROFILE", filepath.Join(dir, name+".cpu"))
				}
				lk := startLookout(b, "", args...)
				nc, err := nats.Connect(lk.NATSURL)
				if err != nil {
					b.Fatal(err)
				}
				js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
				ctx := context.Background()
				if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage}); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				benchPublish(b, js, "raw.bench", events)
				rawRate = n / time.Since(start).Seconds()

				subjects := natsbus.NewSubjects("")
				stream, err := js.Stream(ctx, subjects.StreamName(natsbus.StreamPredictions))
				if err != nil {
					b.Fatal(err)
				}
				start = time.Now()
				benchPublish(b, js, subjects.For(natsbus.KindIngest, "bench"), events)
				for {
					info, err := stream.Info(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if info.State.Msgs >= n {
						break
					}
					if time.Since(start) > 5*time.Minute {
						b.Fatalf("%d of %d stored after 5 minutes", info.State.Msgs, n)
					}
					time.Sleep(5 * time.Millisecond)
				}
				runRate = n / time.Since(start).Seconds()
				if resp, err := http.Get("http://" + lk.HTTPAddr + "/metrics"); err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					for _, line := range strings.Split(string(body), "\n") {
						if strings.HasPrefix(line, "lookout_stored_decode") || strings.HasPrefix(line, "lookout_ingest_received_total") ||
							strings.HasPrefix(line, "lookout_ingest_duplicates_total") {
							b.Log(line)
						}
					}
				}
				nc.Close()
				lk.Stop(b)
			}
			b.ReportMetric(rawRate, "raw_msgs/s")
			b.ReportMetric(runRate, "lookout_msgs/s")
			b.ReportMetric(runRate/rawRate, "ratio")
		})
	}
}

func benchPublish(b *testing.B, js jetstream.JetStream, subject string, events [][]byte) {
	b.Helper()
	for _, e := range events {
		if _, err := js.PublishAsync(subject, e, jetstream.WithStallWait(30*time.Second)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("publish not acknowledged within 5 minutes")
	}
}
