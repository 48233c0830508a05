package natsbus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// TestPartitionOfAgreesWithJetStream publishes predictions of 60 models and
// checks that the partitions stream, whose subject transform JetStream
// applies, files each under the partition PartitionOf computes, keeping
// the predictions stream's subjects as they are.
func TestPartitionOfAgreesWithJetStream(t *testing.T) {
	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	ctx := context.Background()
	subjects := natsbus.NewSubjects("")
	opts := natsbus.DefaultStreamOptions()
	opts.Partitions = 7
	if err := natsbus.EnsureStreams(ctx, js, subjects, opts); err != nil {
		t.Fatal(err)
	}
	const models = 60
	for i := range models {
		if _, err := js.Publish(ctx, subjects.For(natsbus.KindPredictions, fmt.Sprintf("model-%d", i)), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := js.Stream(ctx, subjects.StreamName(natsbus.StreamPartitions))
	if err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 30*time.Second, func() error {
		info, err := stream.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != models {
			return fmt.Errorf("partitions stream holds %d, want %d", info.State.Msgs, models)
		}
		return nil
	})
	used := map[int]bool{}
	for seq := uint64(1); seq <= models; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		model := subjects.PartitionedModel(m.Subject)
		p := natsbus.PartitionOf(model, opts.Partitions)
		used[p] = true
		if want := fmt.Sprintf("lookout.p.%d.%s", p, model); m.Subject != want {
			t.Errorf("stored as %s, PartitionOf says %s", m.Subject, want)
		}
	}
	if len(used) < 5 {
		t.Errorf("60 models fill only %d of 7 partitions", len(used))
	}
	preds, err := js.Stream(ctx, subjects.StreamName(natsbus.StreamPredictions))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := preds.GetMsg(ctx, 1); err != nil || m.Subject != "lookout.predictions.model-0" {
		t.Fatalf("predictions stream: %v %v", m, err)
	}
}
