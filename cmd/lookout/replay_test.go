package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
)

// writeReplayArchive writes n archived events of model churn and returns
// the archive folder.
func writeReplayArchive(t *testing.T, n int) string {
	t.Helper()
	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	preds := make([]*event.Prediction, n)
	for i := range preds {
		raw, _ := json.Marshal(archiveEvent("churn", i, base))
		p, reasons := event.DecodePrediction(raw, event.DecodeOptions{})
		if len(reasons) > 0 {
			t.Fatal(reasons)
		}
		preds[i] = p
	}
	dir := t.TempDir()
	if _, err := parquetarchive.WriteFile(filepath.Join(parquetarchive.Dir(dir, "churn", base), "a.parquet"), preds, parquetarchive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestReplayToSubjectWithoutStreamFailsAtOnce: replaying to a subject no
// stream captures fails within seconds with an error naming the subject,
// and publishes nothing, whether nobody listens on the subject (the server
// answers "no responders") or a plain subscriber does (nobody ever
// answers: the replay used to wait forever).
func TestReplayToSubjectWithoutStreamFailsAtOnce(t *testing.T) {
	dir := writeReplayArchive(t, 5000)
	ns, nc, _ := natstest.RunWithStreams(t)
	for _, listener := range []bool{false, true} {
		t.Run(fmt.Sprintf("listener=%v", listener), func(t *testing.T) {
			if listener {
				sub, err := nc.Subscribe("nowhere.>", func(*nats.Msg) {})
				if err != nil {
					t.Fatal(err)
				}
				defer sub.Unsubscribe()
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code := run(ctx, []string{"replay", "--nats", ns.ClientURL(), "--no-progress", "--subject", "nowhere." + modelToken, dir}, &stdout, &stderr)
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("replay took %v to fail", elapsed)
			}
			if code != 1 || !strings.Contains(stderr.String(), `no JetStream stream captures subject "nowhere.churn"`) {
				t.Errorf("exit code %d, want 1 naming the subject; stderr:\n%s", code, &stderr)
			}
			if !strings.Contains(stdout.String(), "published 0,") {
				t.Errorf("want nothing published:\n%s", &stdout)
			}
		})
	}
}

// TestReplayStopsPromptlyWhenInterrupted: with publishes the server never
// acknowledges (it went away mid-replay), cancelling the context ends the
// replay at once with the context's error.
func TestReplayStopsPromptlyWhenInterrupted(t *testing.T) {
	dir := writeReplayArchive(t, 20000)
	files, err := parquetarchive.ExpandPaths([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	ns, nc, _ := natstest.RunWithStreams(t)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sum := make(chan *replaySummary, 1)
	errc := make(chan error, 1)
	opts := replayOptions{subject: "lookout.ingest." + modelToken, header: event.ReplayOnly, rate: 2000, maxPending: 4096}
	go func() {
		s, err := replay(ctx, js, files, opts)
		sum <- s
		errc <- err
	}()
	// Let some events be acknowledged, then take the server away: what is
	// published after that is never acknowledged.
	natstest.WaitFor(t, 10*time.Second, func() error {
		if n := js.PublishAsyncPending(); n == 0 {
			return errors.New("nothing published yet")
		}
		return nil
	})
	ns.Shutdown()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if nc.IsConnected() {
			return errors.New("still connected")
		}
		return nil
	})
	// Publishes that will never be acknowledged pile up.
	atDisconnect := js.PublishAsyncPending()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if js.PublishAsyncPending() <= atDisconnect+10 {
			return errors.New("no publishes since the server went away")
		}
		return nil
	})
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("replay returned %v, want context.Canceled", err)
		}
		s := <-sum
		if s.published == 0 || s.acked >= s.published {
			t.Errorf("published %d, acknowledged %d: want some unacknowledged", s.published, s.acked)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("replay did not stop within 5s of the interrupt")
	}
}
