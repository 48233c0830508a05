package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/service"
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
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lookout.yaml")
	if err := os.WriteFile(cfg, []byte(`
nats:
  partitions: 4
drift:
  window: 1h
  window_events: 100
`), 0o644); err != nil {
		t.Fatal(err)
	}
	hub := startLookout(t, filepath.Join(dir, "hub"), "--config", cfg, "--only", "ingest")
	logOnFailure(t, hub)
	d1 := startLookout(t, filepath.Join(dir, "d1"), "--nats", hub.NATSURL, "--config", cfg, "--only", "drift")
	logOnFailure(t, d1)
	d2 := startLookout(t, filepath.Join(dir, "d2"), "--nats", hub.NATSURL, "--config", cfg, "--only", "drift")
	logOnFailure(t, d2)
	holders := map[string]*lookoutProcess{service.LeaseHolder(d1.DataDir): d1, service.LeaseHolder(d2.DataDir): d2}

	nc, err := nats.Connect(hub.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	subjects := natsbus.NewSubjects("")
	ctx := context.Background()

	// The leases settle at two partitions each.
	leaders, err := js.KeyValue(ctx, subjects.StreamName(service.LeadersRole))
	if err != nil {
		t.Fatal(err)
	}
	leaseHolders := func() (map[string]int, error) {
		held := map[string]int{}
		for i := range 4 {
			e, err := leaders.Get(ctx, fmt.Sprintf("drift.p%d", i))
			if err != nil {
				return nil, fmt.Errorf("drift.p%d: %w", i, err)
			}
			held[string(e.Value())]++
		}
		return held, nil
	}
	natstest.WaitFor(t, 90*time.Second, func() error {
		held, err := leaseHolders()
		if err != nil {
			return err
		}
		for h := range holders {
			if held[h] != 2 {
				return fmt.Errorf("leases held: %v", held)
			}
		}
		return nil
	})

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
	byProcess := map[string]int{}
	for _, r := range before {
		byProcess[r.process]++
	}
	for h := range holders {
		if byProcess[h] == 0 {
			t.Fatalf("process %s made no report before the kill: %v", h, byProcess)
		}
	}

	// Kill the first process half way through two more windows a model.
	done := make(chan struct{})
	go func() {
		defer close(done)
		publishWindows(2)
	}()
	natstest.WaitFor(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if published < models*100*4 {
			return fmt.Errorf("%d published", published)
		}
		return nil
	})
	d1.Kill(t)
	<-done
	survivor := service.LeaseHolder(d2.DataDir)
	natstest.WaitFor(t, 90*time.Second, func() error {
		held, err := leaseHolders()
		if err != nil {
			return err
		}
		if held[survivor] != 4 {
			return fmt.Errorf("leases held: %v", held)
		}
		return nil
	})
	waitReports(models * 4)
	time.Sleep(3 * time.Second) // a quiet period: nothing more may arrive
	all, err := reports()
	if err != nil {
		t.Fatal(err)
	}

	perModel := map[string][]partitionReport{}
	seen := map[string]bool{}
	for _, r := range all {
		key := r.model + "/" + r.window
		if seen[key] {
			t.Errorf("model %s window %s reported twice", r.model, r.window)
		}
		seen[key] = true
		if holders[r.process] == nil {
			t.Errorf("report of %s from unknown process %q", r.model, r.process)
		}
		perModel[r.model] = append(perModel[r.model], r)
	}
	for _, model := range names {
		rs := perModel[model]
		if len(rs) != 4 {
			t.Errorf("model %s: %d reports, want 4", model, len(rs))
			continue
		}
		// One owner at a time: the owner changes at most once (from the
		// killed process to the survivor), never back and forth.
		var owners []string
		for _, r := range rs {
			if len(owners) == 0 || owners[len(owners)-1] != r.process {
				owners = append(owners, r.process)
			}
		}
		if len(owners) > 2 || (len(owners) == 2 && owners[1] != survivor) {
			t.Errorf("model %s reported by %s", model, strings.Join(owners, " then "))
		}
		if last := rs[len(rs)-1].process; last != survivor {
			t.Errorf("model %s: last report from %s, not the survivor", model, last)
		}
	}
	t.Logf("%d reports of %d models; before the kill by process: %v", len(all), models, byProcess)
}
