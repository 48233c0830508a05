package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/service"
)

// rigPartitions is nats.partitions in the partition tests' configs.
const rigPartitions = 4

// partitionRig is what the partition tests of drift, canary and feedback
// share: a hub process that runs the server and ingest, two processes
// that run one partitioned component beside it, and a client of the hub.
type partitionRig struct {
	component     string
	first, second *lookoutProcess
	// holders are the two component processes by lease holder name.
	holders  map[string]*lookoutProcess
	js       jetstream.JetStream
	subjects natsbus.Subjects
	leaders  jetstream.KeyValue
}

// startPartitionRig starts the hub and two processes running component
// with config (which must set nats.partitions to rigPartitions), and
// waits until the leases settle at half the partitions each.
func startPartitionRig(t *testing.T, component, config string) *partitionRig {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lookout.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	hub := startLookout(t, filepath.Join(dir, "hub"), "--config", cfg, "--only", "ingest")
	logOnFailure(t, hub)
	r := &partitionRig{component: component, subjects: natsbus.NewSubjects("")}
	r.first = startLookout(t, filepath.Join(dir, component+"1"), "--nats", hub.NATSURL, "--config", cfg, "--only", component)
	logOnFailure(t, r.first)
	r.second = startLookout(t, filepath.Join(dir, component+"2"), "--nats", hub.NATSURL, "--config", cfg, "--only", component)
	logOnFailure(t, r.second)
	r.holders = map[string]*lookoutProcess{service.LeaseHolder(r.first.DataDir): r.first, service.LeaseHolder(r.second.DataDir): r.second}

	nc, err := nats.Connect(hub.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r.js, _ = jetstream.New(nc)
	if r.leaders, err = r.js.KeyValue(context.Background(), r.subjects.StreamName(service.LeadersRole)); err != nil {
		t.Fatal(err)
	}
	r.waitLeases(t, func(held map[string]int) bool {
		for h := range r.holders {
			if held[h] != rigPartitions/2 {
				return false
			}
		}
		return true
	})
	return r
}

// leaseHolders counts the partitions' leases by holder.
func (r *partitionRig) leaseHolders() (map[string]int, error) {
	held := map[string]int{}
	for i := range rigPartitions {
		lease := fmt.Sprintf("%s.p%d", r.component, i)
		e, err := r.leaders.Get(context.Background(), lease)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", lease, err)
		}
		held[string(e.Value())]++
	}
	return held, nil
}

func (r *partitionRig) waitLeases(t *testing.T, settled func(held map[string]int) bool) {
	t.Helper()
	natstest.WaitFor(t, 90*time.Second, func() error {
		held, err := r.leaseHolders()
		if err != nil {
			return err
		}
		if !settled(held) {
			return fmt.Errorf("leases held: %v", held)
		}
		return nil
	})
}

// partitionedModels names n models (prefix-00 ...) and fails the test
// unless every partition has one.
func partitionedModels(t *testing.T, prefix string, n int) []string {
	t.Helper()
	names := make([]string, n)
	inPartition := map[int]int{}
	for i := range names {
		names[i] = fmt.Sprintf("%s-%02d", prefix, i)
		inPartition[natsbus.PartitionOf(names[i], rigPartitions)]++
	}
	if len(inPartition) != rigPartitions {
		t.Fatalf("models in partitions %v: the test needs every partition", inPartition)
	}
	return names
}

// bothReported fails the test unless each process made one of the
// reports processes names; it returns the reports by process.
func (r *partitionRig) bothReported(t *testing.T, processes []string) map[string]int {
	t.Helper()
	byProcess := map[string]int{}
	for _, p := range processes {
		byProcess[p]++
	}
	for h := range r.holders {
		if byProcess[h] == 0 {
			t.Fatalf("process %s made no report before the kill: %v", h, byProcess)
		}
	}
	return byProcess
}

// killFirst kills the first process (SIGKILL), closes killed (the tests
// hold back their last window until then, so that the survivor reports it
// whatever the timing), and waits until the second holds every lease; it
// returns the second's lease holder name.
func (r *partitionRig) killFirst(t *testing.T, killed chan<- struct{}) string {
	t.Helper()
	r.first.Kill(t)
	close(killed)
	survivor := service.LeaseHolder(r.second.DataDir)
	r.waitLeases(t, func(held map[string]int) bool { return held[survivor] == rigPartitions })
	return survivor
}

// oneOwnerAtATime checks a model's reports, by the processes that made
// them in order: each from one of the two processes, the owner changing at
// most once (from the killed process to the survivor), never back and
// forth, and the last from the survivor.
func (r *partitionRig) oneOwnerAtATime(t *testing.T, model string, processes []string, survivor string) {
	t.Helper()
	var owners []string
	for _, p := range processes {
		if r.holders[p] == nil {
			t.Errorf("report of %s from unknown process %q", model, p)
		}
		if len(owners) == 0 || owners[len(owners)-1] != p {
			owners = append(owners, p)
		}
	}
	if len(owners) > 2 || (len(owners) == 2 && owners[1] != survivor) {
		t.Errorf("model %s reported by %s", model, strings.Join(owners, " then "))
	}
	if len(processes) > 0 && processes[len(processes)-1] != survivor {
		t.Errorf("model %s: last report from %s, not the survivor", model, processes[len(processes)-1])
	}
}
