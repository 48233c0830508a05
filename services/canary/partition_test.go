package canary

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// TestPartitionedReadsItsModels runs the service of one partition of two
// beside the predictions, labels and rejections of a model of each: it
// reports its own model, with every label joined (feedback is read whole
// and filtered by natsbus.PartitionOf), counts only its own model's
// rejections, reports nothing of the other partition's model, and keeps
// its checkpoint in its own object, state.p<i>.
func TestPartitionedReadsItsModels(t *testing.T) {
	ns := natstest.RunServer(t)
	nc, js := natstest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := natsbus.DefaultStreamOptions()
	opts.Partitions = 2
	if err := natsbus.EnsureStreams(ctx, js, subjects, opts); err != nil {
		t.Fatal(err)
	}
	const mine, theirs, n = "cm-00", "cm-03", 200
	part := natsbus.PartitionOf(mine, 2)
	if natsbus.PartitionOf(theirs, 2) == part {
		t.Fatal("the models must be in two partitions")
	}
	env := natstest.Env(t, nc, js)
	env.Partitions, env.Partition = 2, part
	svc, err := New(env, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	r := &running{reg: env.Metrics.(*prometheus.Registry), stop: natstest.RunService(t, svc)}

	// The other model first, so that its messages are read before ours;
	// labels before their predictions, as the quality tests do, so that a
	// window closed full at its last pair has every label (published
	// after, they raced the close).
	for _, model := range []string{theirs, mine} {
		prod, can := pairs(model, n, 0, 1)
		publishFeedback(t, js, model, n, prodLabel)
		publish(t, js, shuffled(prod, can))
		reject(t, js, model, `{"role":"canary","confidence":7}`)
	}
	got := waitReports(t, js, mine, 1)
	if len(got) != 1 || got[0].Window.Pairs != n {
		t.Fatalf("reports of %s: %+v", mine, got)
	}
	if q := got[0].Quality; q == nil || q.LabelledPairs != n {
		t.Errorf("quality of %s: %+v, want %d labelled pairs", mine, q, n)
	}
	if rej := r.sum(t, "lookout_canary_rejected_total"); rej != 1 {
		t.Errorf("%v rejections counted, want 1 (its own model's)", rej)
	}
	if read := r.read(t); read != 2*n {
		t.Errorf("%v predictions read, want %d (its own model's)", read, 2*n)
	}
	r.stop()
	if rs := reports(t, js, theirs); len(rs) != 0 {
		t.Errorf("%d reports of the other partition's model", len(rs))
	}
	obs, err := js.ObjectStore(ctx, StateBucket(subjects))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.GetInfo(ctx, fmt.Sprintf("%s.p%d", StateObject, part)); err != nil {
		t.Errorf("partition checkpoint: %v", err)
	}
	if _, err := obs.GetInfo(ctx, StateObject); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Errorf("unpartitioned checkpoint: %v, want none", err)
	}
}
