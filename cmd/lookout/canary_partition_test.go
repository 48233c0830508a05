package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/service"
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
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lookout.yaml")
	// Event times are fixed (one 24h window, idle for a day of wall time),
	// so windows close only full: a replay closes the same ones.
	if err := os.WriteFile(cfg, []byte(`
nats:
  partitions: 4
canary:
  window: 24h
  window_pairs: 50
  min_pairs: 10
  wait: 1h
  checkpoint: 2s
`), 0o644); err != nil {
		t.Fatal(err)
	}
	hub := startLookout(t, filepath.Join(dir, "hub"), "--config", cfg, "--only", "ingest")
	logOnFailure(t, hub)
	c1 := startLookout(t, filepath.Join(dir, "c1"), "--nats", hub.NATSURL, "--config", cfg, "--only", "canary")
	logOnFailure(t, c1)
	c2 := startLookout(t, filepath.Join(dir, "c2"), "--nats", hub.NATSURL, "--config", cfg, "--only", "canary")
	logOnFailure(t, c2)
	holders := map[string]*lookoutProcess{service.LeaseHolder(c1.DataDir): c1, service.LeaseHolder(c2.DataDir): c2}

	nc, err := nats.Connect(hub.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	subjects := natsbus.NewSubjects("")
	ctx := context.Background()

	leaders, err := js.KeyValue(ctx, subjects.StreamName(service.LeadersRole))
	if err != nil {
		t.Fatal(err)
	}
	leaseHolders := func() (map[string]int, error) {
		held := map[string]int{}
		for i := range 4 {
			e, err := leaders.Get(ctx, fmt.Sprintf("canary.p%d", i))
			if err != nil {
				return nil, fmt.Errorf("canary.p%d: %w", i, err)
			}
			held[string(e.Value())]++
		}
		return held, nil
	}
	natstest.WaitFor(t, 60*time.Second, func() error {
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

	const models, pairs = 8, 50
	names := make([]string, models)
	inPartition := map[int]int{}
	for i := range names {
		names[i] = fmt.Sprintf("cm-%02d", i)
		inPartition[natsbus.PartitionOf(names[i], 4)]++
	}
	if len(inPartition) != 4 {
		t.Fatalf("models in partitions %v: the test needs every partition", inPartition)
	}
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

	// Two full windows a model, then kill the first process half way
	// through two more.
	publishWindows(2)
	waitReports(models * 2)
	before, err := reports()
	if err != nil {
		t.Fatal(err)
	}
	byProcess := map[string]int{}
	for _, r := range before {
		byProcess[r.process]++
	}
	for h := range holders {
		if byProcess[h] == 0 {
			t.Fatalf("process %s made no report before the kill: %v", h, byProcess)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		publishWindows(2)
	}()
	natstest.WaitFor(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if published < models*pairs*3 {
			return fmt.Errorf("%d pairs published", published)
		}
		return nil
	})
	c1.Kill(t)
	<-done
	if t.Failed() {
		t.FailNow()
	}
	survivor := service.LeaseHolder(c2.DataDir)
	natstest.WaitFor(t, 60*time.Second, func() error {
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

	perModel := map[string][]canaryPartitionReport{}
	seen := map[string]bool{}
	for _, r := range all {
		if r.msgID == "" || seen[r.msgID] {
			t.Errorf("model %s: window %q reported twice (or without an id)", r.model, r.msgID)
		}
		seen[r.msgID] = true
		if holders[r.process] == nil {
			t.Errorf("report of %s from unknown process %q", r.model, r.process)
		}
		if r.pairs != pairs {
			t.Errorf("model %s window %s: %d pairs, want %d", r.model, r.msgID, r.pairs, pairs)
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
