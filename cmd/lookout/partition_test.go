package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/services/drift"
)

// partitionReport is one drift report as the partition test sees it.
type partitionReport struct {
	model, window, process string
	seq                    uint64
}

// TestDriftPartitionsSpreadModels runs two `lookout run --only drift`
// processes with nats.partitions 4 beside one that runs the server and
// ingest, and publishes windows of 20 models. The partitions' leases are
// shared between the two processes, each model's reports come from one
// process at a time, and when one is killed (SIGKILL) mid-stream the other
// takes its models: every window after each model's first (its reference)
// is reported exactly once, none twice, none lost.
func TestDriftPartitionsSpreadModels(t *testing.T) {
	r := startPartitionRig(t, "drift", `
nats:
  partitions: 4
drift:
  window: 1h
  window_events: 100
`)
	js, subjects := r.js, r.subjects

	const models = 20
	names := make([]string, models)
	for i := range names {
		names[i] = fmt.Sprintf("pm-%02d", i)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	var mu sync.Mutex
	published := 0
	publishWindows := func(windows int) {
		t.Helper()
		for range windows {
			for _, model := range names {
				for range 100 {
					mu.Lock()
					published++
					id := fmt.Sprintf("p-%06d", published)
					mu.Unlock()
					conf := 0.8 + 0.1*rng.Float64()
					p := &event.Prediction{
						Id: id, Version: "v1", Model: model, TsUnixNano: proto.Int64(time.Now().UnixNano()),
						Features:   map[string]*event.Value{"age": event.Number(40 + 8*rng.NormFloat64())},
						Prediction: event.Number(rng.Float64()), Confidence: &conf,
					}
					if _, err := js.PublishAsync(subjects.For(natsbus.KindIngest, model), event.AppendJSON(nil, p)); err != nil {
						t.Fatal(err)
					}
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(60 * time.Second):
				t.Fatal("publish not acknowledged")
			}
		}
	}
	reports := func() ([]partitionReport, error) {
		var out []partitionReport
		for _, model := range names {
			msgs, err := subjectMsgs(js, subjects.StreamName(natsbus.StreamReports), subjects.For(natsbus.KindDrift, model))
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				var r map[string]any
				if err := json.Unmarshal(m.Data, &r); err != nil {
					return nil, err
				}
				out = append(out, partitionReport{model: model, window: m.Header.Get(drift.HeaderWindowSeq),
					process: m.Header.Get(drift.HeaderProcess), seq: m.Sequence})
			}
		}
		slices.SortFunc(out, func(a, b partitionReport) int { return int(a.seq) - int(b.seq) })
		return out, nil
	}
	waitReports := func(want int) []partitionReport {
		t.Helper()
		var rs []partitionReport
		natstest.WaitFor(t, 120*time.Second, func() error {
			var err error
			if rs, err = reports(); err != nil {
				return err
			}
			if len(rs) < want {
				return fmt.Errorf("%d drift reports, want %d", len(rs), want)
			}
			return nil
		})
		return rs
	}

	// Three windows a model: the reference and two reports each.
	publishWindows(3)
	before := waitReports(models * 2)
	procs := make([]string, len(before))
	for i, rep := range before {
		procs[i] = rep.process
	}
	byProcess := r.bothReported(t, procs)

	// Kill the first process between two more windows a model (its
	// reports of the first may still be in flight); the last is held back
	// until it is dead, so that the survivor reports it.
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
		if published < models*100*4 {
			return fmt.Errorf("%d published", published)
		}
		return nil
	})
	survivor := r.killFirst(t, killed)
	<-done
	waitReports(models * 4)
	time.Sleep(3 * time.Second) // a quiet period: nothing more may arrive
	all, err := reports()
	if err != nil {
		t.Fatal(err)
	}

	perModel := map[string][]string{}
	seen := map[string]bool{}
	for _, rep := range all {
		key := rep.model + "/" + rep.window
		if seen[key] {
			t.Errorf("model %s window %s reported twice", rep.model, rep.window)
		}
		seen[key] = true
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
