package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
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
	// Label times are fixed (one 24h window, idle for an hour of wall
	// time), so windows close only full.
	r := startPartitionRig(t, "feedback", `
nats:
  partitions: 4
feedback:
  window: 24h
  window_labels: 50
  idle_timeout: 1h
  wait: 10m
`)
	js, subjects := r.js, r.subjects
	ctx := context.Background()

	const models, labels, windows = 8, 50, 4
	names := partitionedModels(t, "cm", models)
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

	// Two full windows a model, then kill the first process between two
	// more (its reports of the third may still be in flight); the last is
	// held back until it is dead, so that the survivor reports it.
	publishWindows(0, 2)
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
		publishWindows(2, 3)
		<-killed
		publishWindows(3, windows)
	}()
	natstest.WaitFor(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if sent < models*labels*3 {
			return fmt.Errorf("%d labels sent", sent)
		}
		return nil
	})
	survivor := r.killFirst(t, killed)
	<-done
	if t.Failed() {
		t.FailNow()
	}
	waitReports(models * windows)
	time.Sleep(3 * time.Second) // a quiet period: nothing more may arrive
	all, err := reports()
	if err != nil {
		t.Fatal(err)
	}

	perModel := map[string][]string{}
	seen := map[string]bool{}
	for _, rep := range all {
		if rep.msgID == "" || seen[rep.msgID] || seen[rep.model+"/"+rep.window] {
			t.Errorf("model %s: window %q (%s) reported twice (or without an id)", rep.model, rep.msgID, rep.window)
		}
		seen[rep.msgID], seen[rep.model+"/"+rep.window] = true, true
		if rep.feedback != labels || rep.unmatched != 0 {
			t.Errorf("model %s window %s: %d labels (%d unmatched), want %d all joined", rep.model, rep.window, rep.feedback, rep.unmatched, labels)
		}
		perModel[rep.model] = append(perModel[rep.model], rep.process)
	}
	for _, model := range names {
		if len(perModel[model]) != windows {
			t.Errorf("model %s: %d reports, want %d", model, len(perModel[model]), windows)
			continue
		}
		r.oneOwnerAtATime(t, model, perModel[model], survivor)
	}
	t.Logf("%d reports of %d models; before the kill by process: %v", len(all), models, byProcess)
}
