package feedback_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/services/feedback"
)

// TestPartitionedReadsItsModels runs the service of one partition of two
// beside predictions and labels of a model of each: it reports its own
// model with every label joined (its predictions read from the partitions
// stream), acknowledges the other model's labels at once on its own
// durable (feedback-p<i>: none held waiting for a prediction it never
// indexes, none rejected), and reports nothing of the other model.
func TestPartitionedReadsItsModels(t *testing.T) {
	ns := natstest.RunServer(t)
	nc, js := natstest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := natsbus.DefaultStreamOptions()
	opts.Partitions = 2
	if err := natsbus.EnsureStreams(ctx, js, subjects, opts); err != nil {
		t.Fatal(err)
	}
	const mine, theirs, n = "cm-00", "cm-03", 20
	part := natsbus.PartitionOf(mine, 2)
	if natsbus.PartitionOf(theirs, 2) == part {
		t.Fatal("the models must be in two partitions")
	}
	for _, model := range []string{theirs, mine} {
		for i := range n {
			predict(t, js, model, fmt.Sprintf("p-%d", i), "v1", event.Text("yes"))
		}
	}
	env := natstest.Env(t, nc, js)
	env.Partitions, env.Partition = 2, part
	cfg := feedback.DefaultConfig()
	cfg.WindowLabels = n
	cfg.Wait = time.Hour // a label held for a prediction stays held
	svc, err := feedback.New(env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	natstest.RunService(t, svc)
	// The other model's labels first: the durable reads them before ours.
	for _, model := range []string{theirs, mine} {
		for i := range n {
			send(t, js, model, at(fmt.Sprintf(`{"id":"p-%d","label":"yes"}`, i), time.Duration(i)*time.Second))
		}
	}
	got := waitReports(t, js, mine, 1)
	if len(got) != 1 || got[0].Window.Feedback != n || got[0].Unmatched != 0 || got[0].Labelled != n {
		t.Fatalf("reports of %s: %+v", mine, got)
	}
	cons, err := js.Consumer(ctx, subjects.StreamName(natsbus.StreamFeedback), fmt.Sprintf("%s-p%d", feedback.ConsumerName, part))
	if err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.AckFloor.Stream != 2*n {
			return fmt.Errorf("ack pending %d, floor %d, want none pending and floor %d", info.NumAckPending, info.AckFloor.Stream, 2*n)
		}
		return nil
	})
	if rs := reports(t, js, theirs); len(rs) != 0 {
		t.Errorf("%d reports of the other partition's model", len(rs))
	}
	if rej := stored(t, js, natsbus.StreamRejected, subjects.For(natsbus.KindRejected, theirs)); len(rej) != 0 {
		t.Errorf("%d rejections of the other partition's model", len(rej))
	}
}
