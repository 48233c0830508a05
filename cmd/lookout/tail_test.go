package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// tailRun runs `lookout tail` in the background and returns its output so
// far and a channel with its exit code.
func tailRun(t *testing.T, ctx context.Context, args ...string) (stdout, stderr *syncBuffer, code <-chan int) {
	t.Helper()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	c := make(chan int, 1)
	go func() { c <- run(ctx, append([]string{"tail"}, args...), stdout, stderr) }()
	return stdout, stderr, c
}

func waitLines(t *testing.T, out *syncBuffer, n int) []string {
	t.Helper()
	var lines []string
	natstest.WaitFor(t, 15*time.Second, func() error {
		lines = strings.Split(strings.TrimSpace(out.String()), "\n")
		if out.String() == "" || len(lines) < n {
			return fmt.Errorf("%d lines: %q", len(lines), out.String())
		}
		return nil
	})
	return lines
}

// TestTailSinceWildcard: `tail --since` on a subject with a wildcard
// prints what the stream kept of every subject it matches, and only
// those, then goes on with what is published live.
func TestTailSinceWildcard(t *testing.T) {
	ns, _, js := natstest.RunWithStreams(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := natsbus.NewSubjects("")
	pub := func(subject, data string) {
		t.Helper()
		if _, err := js.Publish(ctx, subject, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	pub(s.For(natsbus.KindRejected, "a"), `{"n": 1}`)
	pub(s.For(natsbus.KindRejected, "b"), `{"n": 2}`)
	pub(s.For(natsbus.KindPredictions, "a"), `{"n": "not rejected"}`)
	stdout, stderr, code := tailRun(t, ctx, "--nats", ns.ClientURL(), "--since", "1h", "-n", "3", s.All(natsbus.KindRejected))
	waitLines(t, stdout, 2)
	pub(s.For(natsbus.KindRejected, "c"), `{"n": 3}`)
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("tail exit %d: %s", c, stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("tail did not stop after 3 events: %q", stdout.String())
	}
	if got, want := stdout.String(), "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"; got != want {
		t.Errorf("tail printed %q, want %q", got, want)
	}
}

// TestTailSinceStreamDeleted: a stream deleted under `tail --since` ends
// it with an error that says so, instead of a hang that prints nothing.
func TestTailSinceStreamDeleted(t *testing.T) {
	ns, _, js := natstest.RunWithStreams(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := natsbus.NewSubjects("")
	if _, err := js.Publish(ctx, s.For(natsbus.KindRejected, "a"), []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := tailRun(t, ctx, "--nats", ns.ClientURL(), "--since", "1h", s.All(natsbus.KindRejected))
	waitLines(t, stdout, 1)
	if err := js.DeleteStream(ctx, s.StreamName(natsbus.StreamRejected)); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != 1 || !strings.Contains(stderr.String(), "was deleted") {
			t.Errorf("tail exit %d, stderr %q; want 1 and the stream deleted", c, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("tail still running 30s after its stream was deleted")
	}
}

// TestTailSinceNoStream: a subject no stream keeps is an error at once.
func TestTailSinceNoStream(t *testing.T) {
	ns, _, _ := natstest.RunWithStreams(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"tail", "--nats", ns.ClientURL(), "--since", "1h", "nothing.here"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "no stream keeps nothing.here") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
