package ingest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/service"
	"github.com/lookout-ml/lookout/services/ingest"
)

// The failure paths of issue 9: each test publishes what a tester did and
// counts where it ends. Every acknowledged message must end on the
// predictions or the rejected stream, within seconds.

// rejections returns the decoded rejections stored for model.
func rejections(t *testing.T, js jetstream.JetStream, model string) []*event.Rejection {
	t.Helper()
	var out []*event.Rejection
	for _, m := range collect(t, js, subjects.StreamName(natsbus.StreamRejected), subjects.For(natsbus.KindRejected, model)) {
		r, err := event.UnmarshalRejection(m.Data())
		if err != nil {
			t.Fatalf("rejection does not decode: %v", err)
		}
		out = append(out, r)
	}
	return out
}

func waitIngestEmpty(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	natstest.WaitFor(t, 20*time.Second, func() error {
		if c := count(t, js, subjects.StreamName(natsbus.StreamIngest), ">"); c != 0 {
			return fmt.Errorf("%d messages still in the ingest stream", c)
		}
		return nil
	})
}

// A publish on the literal subject lookout.ingest.> is stored by the
// stream; it used to stay there for ever, never delivered to ingest.
func TestIngestRejectsWildcardSubject(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	startIngest(t, nc, js, nil)
	for _, subject := range []string{"lookout.ingest.>", "lookout.ingest.*"} {
		if _, err := js.Publish(context.Background(), subject, []byte(`{"version":"v1","prediction":1}`)); err != nil {
			t.Fatalf("publish on %s: %v", subject, err)
		}
	}
	waitCount(t, js, natsbus.StreamRejected, subjects.For(natsbus.KindRejected, "_unknown"), 2)
	for _, r := range rejections(t, js, "_unknown") {
		if r.Reasons[0].GetField() != "subject" || r.Reasons[0].GetCode() != event.CodeInvalid {
			t.Errorf("reasons %v, want the subject named as invalid", r.Reasons)
		}
	}
	waitIngestEmpty(t, js)
}

// The same id on two models is two predictions; the same id twice on one
// model is a duplicate, counted as such and never as accepted.
func TestIngestIDsArePerModel(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	reg := prometheus.NewRegistry()
	startIngest(t, nc, js, reg)
	body := []byte(`{"id":"same","version":"v1","prediction":1}`)
	for _, model := range []string{"a", "b", "a"} {
		if _, err := js.Publish(context.Background(), subjects.For(natsbus.KindIngest, model), body); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, js, natsbus.StreamPredictions, subjects.For(natsbus.KindPredictions, "a"), 1)
	waitCount(t, js, natsbus.StreamPredictions, subjects.For(natsbus.KindPredictions, "b"), 1)
	natstest.WaitFor(t, 10*time.Second, func() error {
		accepted, dups := metricValue(t, reg, "lookout_ingest_accepted_total"), metricValue(t, reg, "lookout_ingest_duplicates_total")
		if accepted != 2 || dups != 1 {
			return fmt.Errorf("accepted %v, duplicates %v; want 2 and 1", accepted, dups)
		}
		return nil
	})
	waitIngestEmpty(t, js)
}

// A message held by a process that was killed (delivered, never
// acknowledged) is delivered again within seconds, not after 30.
func TestIngestRedeliversWhatAKilledProcessHeld(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	// The first ingest creates the consumer and is stopped.
	stop := startIngest(t, nc, js, nil)
	natstest.WaitFor(t, 10*time.Second, func() error {
		_, err := js.Consumer(context.Background(), subjects.StreamName(natsbus.StreamIngest), ingest.ConsumerName)
		return err
	})
	stop()
	if _, err := js.Publish(context.Background(), subjects.For(natsbus.KindIngest, "m"), []byte(`{"id":"held","version":"v1","prediction":1}`)); err != nil {
		t.Fatal(err)
	}
	// A "killed" process: it pulls the message and never answers.
	cons, err := js.Consumer(context.Background(), subjects.StreamName(natsbus.StreamIngest), ingest.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	held := time.Now()
	startIngest(t, nc, js, nil)
	waitCount(t, js, natsbus.StreamPredictions, subjects.For(natsbus.KindPredictions, "m"), 1)
	if d := time.Since(held); d > 15*time.Second {
		t.Fatalf("redelivered after %v", d)
	}
}

// Deleting ingest's consumer used to stop ingest silently while health
// said ok. The consumer is recreated within seconds, health says so while
// it is gone, and what is published after is handled.
func TestIngestRecreatesDeletedConsumer(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	health := service.NewHealth()
	startIngestWith(t, nc, js, nil, health, ingest.DefaultConfig())
	natstest.WaitFor(t, 10*time.Second, func() error {
		if parts, ok := health.Snapshot(); !ok || parts["ingest"] != "ok" {
			return fmt.Errorf("health %v", parts)
		}
		return nil
	})
	ctx := context.Background()
	stream := subjects.StreamName(natsbus.StreamIngest)
	if err := js.DeleteConsumer(ctx, stream, ingest.ConsumerName); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		if _, err := js.Consumer(ctx, stream, ingest.ConsumerName); err != nil {
			return fmt.Errorf("consumer not recreated: %w", err)
		}
		return nil
	})
	if _, err := js.Publish(ctx, subjects.For(natsbus.KindIngest, "m"), []byte(`{"id":"after","version":"v1","prediction":1}`)); err != nil {
		t.Fatal(err)
	}
	waitCount(t, js, natsbus.StreamPredictions, subjects.For(natsbus.KindPredictions, "m"), 1)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if parts, ok := health.Snapshot(); !ok {
			return fmt.Errorf("health %v", parts)
		}
		return nil
	})
}

// A message that cannot be handled (here: its republish has no stream to
// go to) is rejected as undeliverable after a few deliveries, instead of
// being redelivered for ever.
func TestIngestDeadLettersUndeliverable(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	ctx := context.Background()
	if err := js.DeleteStream(ctx, subjects.StreamName(natsbus.StreamPredictions)); err != nil {
		t.Fatal(err)
	}
	cfg := ingest.DefaultConfig()
	cfg.MaxDeliveries = 2
	cfg.UndeliverableAfter = time.Millisecond
	startIngestWith(t, nc, js, nil, nil, cfg)
	if _, err := js.Publish(ctx, subjects.For(natsbus.KindIngest, "m"), []byte(`{"id":"x","version":"v1","prediction":1}`)); err != nil {
		t.Fatal(err)
	}
	waitCount(t, js, natsbus.StreamRejected, subjects.For(natsbus.KindRejected, "m"), 1)
	r := rejections(t, js, "m")[0]
	if r.Reasons[0].GetCode() != event.CodeUndeliverable {
		t.Fatalf("reasons %v, want undeliverable", r.Reasons)
	}
	waitIngestEmpty(t, js)
}

// A burst of large messages is refused without buffering them all and
// without the server cutting Lookout's own connection as a slow consumer.
func TestIngestBurstOfLargeMessages(t *testing.T) {
	ns, nc, js := natstest.RunWithStreams(t)
	// ingest on a connection of its own, to count its disconnects.
	var disconnects int
	inc, err := nats.Connect(ns.ClientURL(), nats.DisconnectErrHandler(func(*nats.Conn, error) { disconnects++ }))
	if err != nil {
		t.Fatal(err)
	}
	defer inc.Close()
	ijs, err := jetstream.New(inc)
	if err != nil {
		t.Fatal(err)
	}
	startIngest(t, inc, ijs, nil)
	big := []byte(`{"version":"v1","prediction":1,"features":{"blob":"` + strings.Repeat("x", 1200*1024) + `"}}`)
	const n = 150
	for range n {
		if _, err := js.PublishAsync(subjects.For(natsbus.KindIngest, "big"), big); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		t.Fatal("burst not acknowledged")
	}
	waitCount(t, js, natsbus.StreamRejected, subjects.For(natsbus.KindRejected, "big"), n)
	for _, r := range rejections(t, js, "big") {
		if r.Reasons[0].GetCode() != event.CodeTooLarge {
			t.Fatalf("reasons %v, want too_large", r.Reasons)
		}
	}
	waitIngestEmpty(t, js)
	if disconnects != 0 || inc.Stats().Reconnects != 0 {
		t.Fatalf("ingest's connection was cut %d times", disconnects)
	}
	_ = nc
}
