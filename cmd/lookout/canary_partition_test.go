package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/services/canary"
)

// canaryPartitionReport is one canary report as the partition test sees it.
type canaryPartitionReport struct {
	model, msgID, process string
	pairs                 int
	seq                   uint64
}

// TestCanaryPartitionsSpreadModels runs two `lookout run --only canary`
// processes with nats.partitions 4 beside one that runs the server and
// ingest, and publishes production and canary predictions of 8 models (two
// in each partition), windows closed full at 50 pairs. The partitions'
// leases are shared between the two processes, each model's reports come
// from one process at a time, and when one is killed (SIGKILL) mid-stream
// the other takes its partitions from their own checkpoints: every window
// is reported exactly once (one report per Nats-Msg-Id, 50 pairs each),
// none twice, none lost.
func TestCanaryPartitionsSpreadModels(t *testing.T) {
	// Event times are fixed (one 24h window, idle for a day of wall time),
	// so windows close only full: a replay closes the same ones.
	r := startPartitionRig(t, "canary", `
nats:
  partitions: 4
canary:
  window: 24h
  window_pairs: 50
  min_pairs: 10
  wait: 1h
  checkpoint: 2s
`)
	js, subjects := r.js, r.subjects

	const models, pairs = 8, 50
	names := partitionedModels(t, "cm", models)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	published := 0
	publishWindows := func(windows int) {
		for range windows {
			for _, model := range names {
				for range pairs {
					mu.Lock()
					published++
					n := published
					mu.Unlock()
					// Increasing event times within one 24h window.
					ts := base.Add(time.Duration(n) * time.Millisecond).Format(time.RFC3339Nano)
					for _, side := range [][2]string{{"production", "v1"}, {"canary", "v2"}} {
						e := fmt.Sprintf(`{"id":"%s-%d","request_id":"r-%d","version":"%s","role":"%s","ts":"%s","prediction":"yes","confidence":0.9,"latency_ms":10}`,
							side[0], n, n, side[1], side[0], ts)
						if _, err := js.PublishAsync(subjects.For(natsbus.KindIngest, model), []byte(e)); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(60 * time.Second):
				t.Error("publish not acknowledged")
				return
			}
		}
	}
	reports := func() ([]canaryPartitionReport, error) {
		var out []canaryPartitionReport
		for _, model := range names {
			msgs, err := subjectMsgs(js, subjects.StreamName(natsbus.StreamReports), subjects.For(natsbus.KindCanary, model))
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				var r struct {
					Window struct {
						Pairs int `json:"pairs"`
					} `json:"window"`
				}
				if err := json.Unmarshal(m.Data, &r); err != nil {
					return nil, err
				}
				out = append(out, canaryPartitionReport{model: model, msgID: m.Header.Get(jetstream.MsgIDHeader),
					process: m.Header.Get(canary.HeaderProcess), pairs: r.Window.Pairs, seq: m.Sequence})
			}
		}
		slices.SortFunc(out, func(a, b canaryPartitionReport) int { return int(a.seq) - int(b.seq) })
		return out, nil
	}
	waitReports := func(want int) {
		t.Helper()
		natstest.WaitFor(t, 90*time.Second, func() error {
			rs, err := reports()
			if err != nil {
				return err
			}
			if len(rs) < want {
				return fmt.Errorf("%d canary reports, want %d", len(rs), want)
			}
			return nil
		})
	}

	// Two full windows a model, then kill the first process between two
	// more (its reports of the third may still be in flight); the last is
	// held back until it is dead, so that the survivor reports it.
	publishWindows(2)
	waitReports(models * 2)
	before, err := reports()
	if err != nil {
		t.Fatal(err)
	}
	procs := make([]string, len(before))
	for i, rep := range before {
		procs[i] = rep.process
	}
	byProcess := r.bothReported(t, procs)
	done, killed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		publishWindows(1)
		<-killed
		publishWindows(1)
	}()
	natstest.WaitFor(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if published < models*pairs*3 {
			return fmt.Errorf("%d pairs published", published)
		}
		return nil
	})
	survivor := r.killFirst(t, killed)
	<-done
	if t.Failed() {
		t.FailNow()
	}
	waitReports(models * 4)
	time.Sleep(3 * time.Second) // a quiet period: nothing more may arrive
	all, err := reports()
	if err != nil {
		t.Fatal(err)
	}

	perModel := map[string][]string{}
	seen := map[string]bool{}
	for _, rep := range all {
		if rep.msgID == "" || seen[rep.msgID] {
			t.Errorf("model %s: window %q reported twice (or without an id)", rep.model, rep.msgID)
		}
		seen[rep.msgID] = true
		if rep.pairs != pairs {
			t.Errorf("model %s window %s: %d pairs, want %d", rep.model, rep.msgID, rep.pairs, pairs)
		}
		perModel[rep.model] = append(perModel[rep.model], rep.process)
	}
	for _, model := range names {
		if len(perModel[model]) != 4 {
			t.Errorf("model %s: %d reports, want 4", model, len(perModel[model]))
			continue
		}
		r.oneOwnerAtATime(t, model, perModel[model], survivor)
	}
	t.Logf("%d reports of %d models; before the kill by process: %v", len(all), models, byProcess)
}
