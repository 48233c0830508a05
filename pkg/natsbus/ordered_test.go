package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

var subjects = natsbus.NewSubjects("")

// seen records what a reader delivered and what it last told health.
type seen struct {
	mu     sync.Mutex
	seqs   []uint64
	health error
	told   bool
}

func (s *seen) handle(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seqs = append(s.seqs, meta.Sequence.Stream)
}

func (s *seen) report(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.health, s.told = err, true
}

func (s *seen) state() (seqs []uint64, told bool, health error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seqs), s.told, s.health
}

// waitSeqs waits until the reader delivered exactly want.
func (s *seen) waitSeqs(t *testing.T, want []uint64) {
	t.Helper()
	natstest.WaitFor(t, 10*time.Second, func() error {
		got, _, _ := s.state()
		if !slices.Equal(got, want) {
			return fmt.Errorf("delivered %v, want %v", got, want)
		}
		return nil
	})
}

// waitHealthy waits until the reader last reported nil.
func (s *seen) waitHealthy(t *testing.T) {
	t.Helper()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if _, told, err := s.state(); !told || err != nil {
			return fmt.Errorf("health: told %v, %v", told, err)
		}
		return nil
	})
}

func publishTo(t *testing.T, js jetstream.JetStream, subject string, n int) {
	t.Helper()
	for i := range n {
		if _, err := js.Publish(context.Background(), subject, fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
}

// consume runs r until the test ends; stop cancels it and returns what
// Consume returned.
func consume(t *testing.T, r *natsbus.Ordered, s *seen) (stop func() error) {
	t.Helper()
	r.Log, r.Health = zaptest.NewLogger(t), s.report
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Consume(ctx, s.handle) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Error("Consume did not return within 30s of its cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// TestOrderedResumesFromSequence: a reader started after a checkpoint's
// sequence delivers the messages after it, in order, then the live ones,
// and reports itself healthy; after a clean stop it leaves no consumer.
func TestOrderedResumesFromSequence(t *testing.T) {
	_, _, js := natstest.RunWithStreams(t)
	publishTo(t, js, subjects.For(natsbus.KindPredictions, "a"), 10)
	stream := subjects.StreamName(natsbus.StreamPredictions)
	s := &seen{}
	stop := consume(t, &natsbus.Ordered{JS: js, Stream: stream, StartSeq: 7, Name: "test", CheckEvery: 50 * time.Millisecond}, s)
	s.waitSeqs(t, seqRange(7, 10))
	publishTo(t, js, subjects.For(natsbus.KindPredictions, "b"), 3)
	s.waitSeqs(t, seqRange(7, 13))
	s.waitHealthy(t)
	if err := stop(); err != nil {
		t.Fatalf("Consume returned %v after its cancel, want nil", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 5*time.Second, func() error {
		names := st.ConsumerNames(ctx)
		var left []string
		for n := range names.Name() {
			left = append(left, n)
		}
		if len(left) > 0 {
			return fmt.Errorf("consumers left after the reader stopped: %v", left)
		}
		return names.Err()
	})
}

// TestOrderedFilterAndStartTime: a wildcard filter reads only its subjects,
// and a start time skips what was stored before it.
func TestOrderedFilterAndStartTime(t *testing.T) {
	_, _, js := natstest.RunWithStreams(t)
	publishTo(t, js, subjects.For(natsbus.KindRejected, "a"), 2) // 1, 2: before the start
	time.Sleep(5 * time.Millisecond)                             // stored times must differ from the start's
	start := time.Now()
	publishTo(t, js, subjects.For(natsbus.KindRejected, "b"), 2) // 3, 4
	s := &seen{}
	consume(t, &natsbus.Ordered{JS: js, Stream: subjects.StreamName(natsbus.StreamRejected),
		Filter: []string{subjects.All(natsbus.KindRejected)}, StartTime: start}, s)
	s.waitSeqs(t, []uint64{3, 4})

	// A filter that names one model of a wildcard stream.
	_, _, js = natstest.RunWithStreams(t)
	publishTo(t, js, subjects.For(natsbus.KindPredictions, "a"), 2) // 1, 2
	publishTo(t, js, subjects.For(natsbus.KindPredictions, "b"), 2) // 3, 4
	publishTo(t, js, subjects.For(natsbus.KindPredictions, "a"), 1) // 5
	s = &seen{}
	consume(t, &natsbus.Ordered{JS: js, Stream: subjects.StreamName(natsbus.StreamPredictions),
		Filter: []string{subjects.For(natsbus.KindPredictions, "a")}, StartSeq: 2}, s)
	s.waitSeqs(t, []uint64{2, 5})
}

// TestOrderedConsumerDeleted: a consumer deleted from outside is recreated
// by the client after the last message delivered: nothing is skipped or
// delivered twice, and health is ok again.
func TestOrderedConsumerDeleted(t *testing.T) {
	_, _, js := natstest.RunWithStreams(t)
	stream := subjects.StreamName(natsbus.StreamPredictions)
	publishTo(t, js, subjects.For(natsbus.KindPredictions, "a"), 3)
	s := &seen{}
	consume(t, &natsbus.Ordered{JS: js, Stream: stream, Name: "deleted", CheckEvery: 50 * time.Millisecond}, s)
	s.waitSeqs(t, seqRange(1, 3))
	ctx := context.Background()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	names := st.ConsumerNames(ctx)
	for n := range names.Name() {
		if !strings.HasPrefix(n, "deleted_") {
			t.Fatalf("consumer %s is not named for its reader", n)
		}
		if err := st.DeleteConsumer(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	publishTo(t, js, subjects.For(natsbus.KindPredictions, "a"), 3)
	s.waitSeqs(t, seqRange(1, 6))
	s.waitHealthy(t)
}

// TestOrderedStreamDeleted: a reader whose stream is deleted stops with an
// error that says so, and its health reports it; one whose stream does
// not exist fails at start.
func TestOrderedStreamDeleted(t *testing.T) {
	_, _, js := natstest.RunWithStreams(t)
	stream := subjects.StreamName(natsbus.StreamPredictions)
	publishTo(t, js, subjects.For(natsbus.KindPredictions, "a"), 2)
	s := &seen{}
	r := &natsbus.Ordered{JS: js, Stream: stream, CheckEvery: 50 * time.Millisecond, Log: zaptest.NewLogger(t), Health: s.report}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- r.Consume(ctx, s.handle) }()
	s.waitSeqs(t, seqRange(1, 2))
	s.waitHealthy(t)
	if err := js.DeleteStream(ctx, stream); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, natsbus.ErrStreamGone) {
			t.Fatalf("Consume returned %v, want ErrStreamGone", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Consume still running 30s after its stream was deleted")
	}
	if _, _, err := s.state(); !errors.Is(err, natsbus.ErrStreamGone) {
		t.Errorf("health says %v, want ErrStreamGone", err)
	}

	missing := &natsbus.Ordered{JS: js, Stream: "NO_SUCH_STREAM", Health: s.report}
	if err := missing.Consume(ctx, s.handle); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("Consume on a missing stream returned %v, want ErrStreamNotFound", err)
	}
	if _, _, err := s.state(); err == nil {
		t.Error("health not told about the missing stream")
	}
}
