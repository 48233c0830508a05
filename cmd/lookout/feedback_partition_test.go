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
	"github.com/lookout-ml/lookout/services/feedback"
)

// feedbackPartitionReport is one performance report as the partition test
// sees it.
type feedbackPartitionReport struct {
	model, msgID, window, process string
	feedback, unmatched           int
	seq                           uint64
}

// TestFeedbackPartitionsSpreadModels runs two `lookout run --only
// feedback` processes with nats.partitions 4 beside one that runs the
// server and ingest: predictions of 8 models (two in each partition), then
// labels for them, windows closed full at 50 labels. The partitions'
// leases are shared between the two processes, each model's reports come
// from one process at a time, and when one is killed (SIGKILL) mid-stream
// the other takes its partitions (their durables, at their floors): every
// label is in exactly one report (one report per Nats-Msg-Id and feedback
// span, 50 labels each), none twice, none lost.
func TestFeedbackPartitionsSpreadModels(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lookout.yaml")
	// Label times are fixed (one 24h window, idle for an hour of wall
	// time), so windows close only full.
	if err := os.WriteFile(cfg, []byte(`
nats:
  partitions: 4
feedback:
  window: 24h
  window_labels: 50
  idle_timeout: 1h
  wait: 10m
`), 0o644); err != nil {
		t.Fatal(err)
	}
	hub := startLookout(t, filepath.Join(dir, "hub"), "--config", cfg, "--only", "ingest")
	logOnFailure(t, hub)
	f1 := startLookout(t, filepath.Join(dir, "f1"), "--nats", hub.NATSURL, "--config", cfg, "--only", "feedback")
	logOnFailure(t, f1)
	f2 := startLookout(t, filepath.Join(dir, "f2"), "--nats", hub.NATSURL, "--config", cfg, "--only", "feedback")
	logOnFailure(t, f2)
	holders := map[string]*lookoutProcess{service.LeaseHolder(f1.DataDir): f1, service.LeaseHolder(f2.DataDir): f2}

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
			e, err := leaders.Get(ctx, fmt.Sprintf("feedback.p%d", i))
			if err != nil {
				return nil, fmt.Errorf("feedback.p%d: %w", i, err)
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

	const models, labels, windows = 8, 50, 4
	names := make([]string, models)
	inPartition := map[int]int{}
	for i := range names {
		names[i] = fmt.Sprintf("cm-%02d", i)
		inPartition[natsbus.PartitionOf(names[i], 4)]++
	}
	if len(inPartition) != 4 {
		t.Fatalf("models in partitions %v: the test needs every partition", inPartition)
	}
	// Every prediction first, so that each label finds its own.
	for _, model := range names {
		for i := range labels * windows {
			e := fmt.Sprintf(`{"id":"f-%d","version":"v1","prediction":"yes","confidence":0.9}`, i)
			if _, err := js.PublishAsync(subjects.For(natsbus.KindIngest, model), []byte(e)); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		t.Fatal("publish not acknowledged")
	}
	natstest.WaitFor(t, 60*time.Second, func() error {
		s, err := js.Stream(ctx, subjects.StreamName(natsbus.StreamPartitions))
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs < models*labels*windows {
			return fmt.Errorf("%d predictions in the partitions stream", info.State.Msgs)
		}
		return nil
	})

	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	sent := 0
	publishWindows := func(from, to int) {
		for w := from; w < to; w++ {
			for _, model := range names {
				for i := w * labels; i < (w+1)*labels; i++ {
					mu.Lock()
					sent++
					n := sent
					mu.Unlock()
					// Increasing label times within one 24h window.
					ts := base.Add(time.Duration(n) * time.Millisecond).Format(time.RFC3339Nano)
					e := fmt.Sprintf(`{"id":"f-%d","model":"%s","label":"yes","ts":"%s"}`, i, model, ts)
					if _, err := js.PublishAsync(subjects.For(natsbus.KindFeedback, model), []byte(e)); err != nil {
						t.Error(err)
						return
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
	reports := func() ([]feedbackPartitionReport, error) {
		var out []feedbackPartitionReport
		for _, model := range names {
			msgs, err := subjectMsgs(js, subjects.StreamName(natsbus.StreamReports), subjects.For(natsbus.KindPerformance, model))
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				var r struct {
					Window struct {
						Feedback int `json:"feedback"`
					} `json:"window"`
					Unmatched int `json:"unmatched"`
				}
				if err := json.Unmarshal(m.Data, &r); err != nil {
					return nil, err
				}
				out = append(out, feedbackPartitionReport{model: model, msgID: m.Header.Get(jetstream.MsgIDHeader),
					window: m.Header.Get(feedback.HeaderWindowSeq), process: m.Header.Get(feedback.HeaderProcess),
					feedback: r.Window.Feedback, unmatched: r.Unmatched, seq: m.Sequence})
			}
		}
		slices.SortFunc(out, func(a, b feedbackPartitionReport) int { return int(a.seq) - int(b.seq) })
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
				return fmt.Errorf("%d performance reports, want %d", len(rs), want)
			}
			return nil
		})
	}

	// Two full windows a model, then kill the first process half way
	// through two more.
	publishWindows(0, 2)
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
		publishWindows(2, windows)
	}()
	natstest.WaitFor(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if sent < models*labels*3 {
			return fmt.Errorf("%d labels sent", sent)
		}
		return nil
	})
	f1.Kill(t)
	<-done
	if t.Failed() {
		t.FailNow()
	}
	survivor := service.LeaseHolder(f2.DataDir)
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
	waitReports(models * windows)
	time.Sleep(3 * time.Second) // a quiet period: nothing more may arrive
	all, err := reports()
	if err != nil {
		t.Fatal(err)
	}

	perModel := map[string][]feedbackPartitionReport{}
	seen := map[string]bool{}
	for _, r := range all {
		if r.msgID == "" || seen[r.msgID] || seen[r.model+"/"+r.window] {
			t.Errorf("model %s: window %q (%s) reported twice (or without an id)", r.model, r.msgID, r.window)
		}
		seen[r.msgID], seen[r.model+"/"+r.window] = true, true
		if holders[r.process] == nil {
			t.Errorf("report of %s from unknown process %q", r.model, r.process)
		}
		if r.feedback != labels || r.unmatched != 0 {
			t.Errorf("model %s window %s: %d labels (%d unmatched), want %d all joined", r.model, r.window, r.feedback, r.unmatched, labels)
		}
		perModel[r.model] = append(perModel[r.model], r)
	}
	for _, model := range names {
		rs := perModel[model]
		if len(rs) != windows {
			t.Errorf("model %s: %d reports, want %d", model, len(rs), windows)
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
