package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// TestEveryAcknowledgedMessageEndsSomewhere publishes, to a real `lookout
// run` with every service, each input of issue 9 that used to end nowhere
// (stuck, silently dropped, or redelivered for ever) and counts what ends
// where: every acknowledged message is a prediction or a rejection.
func TestEveryAcknowledgedMessageEndsSomewhere(t *testing.T) {
	config := filepath.Join(t.TempDir(), "lookout.yaml")
	if err := os.WriteFile(config, []byte("archive: {window: 1s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lk := startLookout(t, "", "--config", config)
	nc, err := nats.Connect(lk.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	subjects := natsbus.NewSubjects("")
	ctx := context.Background()
	publish := func(subject string, data []byte, header nats.Header) {
		t.Helper()
		msg := &nats.Msg{Subject: subject, Data: data, Header: header}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("publish on %s: %v", subject, err)
		}
	}
	ingest := func(model string) string { return subjects.For(natsbus.KindIngest, model) }

	// 1.5 MB of invalid input: its rejection used to exceed the max payload.
	huge := []byte(`{"version":"v1","prediction":` + strings.Repeat("9", 1500*1024))
	publish(ingest("huge"), huge, nil)
	// Protobuf with an empty feature name: accepted, then dropped later.
	pb, _ := proto.Marshal(&event.Prediction{Version: "v1", Prediction: event.Number(1),
		Features: map[string]*event.Value{"": event.Number(3)}})
	publish(ingest("pb"), pb, nats.Header{"Content-Type": []string{event.ContentTypeProtobuf}})
	// A literal wildcard subject: stored, never delivered.
	publish("lookout.ingest.>", []byte(`{"version":"v1","prediction":1}`), nil)
	// The same id on two models: two predictions.
	for _, model := range []string{"ida", "idb"} {
		publish(ingest(model), []byte(`{"id":"same","version":"v1","prediction":1}`), nil)
	}
	// Timestamps no int64 of nanoseconds holds, and the epoch itself.
	publish(ingest("ts"), []byte(`{"id":"late","version":"v1","prediction":1,"ts":"9999-12-31T23:59:59Z"}`), nil)
	publish(ingest("ts"), []byte(`{"id":"early","version":"v1","prediction":1,"ts":"0001-01-01T00:00:00Z"}`), nil)
	publish(ingest("ts"), []byte(`{"id":"epoch","version":"v1","prediction":1,"ts":"1970-01-01T00:00:00Z"}`), nil)
	const published, accepted = 8, 3

	// Nothing stays in the ingest stream; all ends on one of two streams.
	natstest.WaitFor(t, 30*time.Second, func() error {
		in := streamMsgs(t, js, subjects.StreamName(natsbus.StreamIngest))
		preds := streamMsgs(t, js, subjects.StreamName(natsbus.StreamPredictions))
		rejected := streamMsgs(t, js, subjects.StreamName(natsbus.StreamRejected))
		if in != 0 || preds != accepted || rejected != published-accepted {
			return fmt.Errorf("ingest stream %d, predictions %d, rejected %d; want 0, %d, %d", in, preds, rejected, accepted, published-accepted)
		}
		return nil
	})
	reasons := map[string]string{}
	for _, m := range streamRead(t, js, subjects.StreamName(natsbus.StreamRejected)) {
		r, err := event.UnmarshalRejection(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		reasons[r.GetModel()+"/"+r.Reasons[0].GetField()] += r.Reasons[0].GetCode() + " "
	}
	for key, code := range map[string]string{
		"huge/":            event.CodeTooLarge,
		"pb/features":      event.CodeInvalid,
		"_unknown/subject": event.CodeInvalid,
		"ts/ts":            event.CodeOutOfRange + " " + event.CodeOutOfRange,
	} {
		if strings.TrimSpace(reasons[key]) != code {
			t.Errorf("rejections of %s: %q, want %q (all: %v)", key, reasons[key], code, reasons)
		}
	}
	epoch := readPredictions(t, lk.NATSURL, "ts", 1)[0]
	if epoch.GetTsUnixNano() != 0 {
		t.Errorf("1970-01-01T00:00:00Z became %v", event.Time(epoch))
	}
	// Both "same" ids are archived, each under its model, and the epoch
	// under its own date.
	for _, dir := range []string{"model=ida", "model=idb", "model=ts/date=1970-01-01"} {
		natstest.WaitFor(t, 30*time.Second, func() error {
			files, _ := filepath.Glob(filepath.Join(lk.DataDir, "archive", dir, "**", "*.parquet"))
			more, _ := filepath.Glob(filepath.Join(lk.DataDir, "archive", dir, "*.parquet"))
			if len(files)+len(more) == 0 {
				return fmt.Errorf("nothing archived under %s", dir)
			}
			return nil
		})
	}

	// Deleting a consumer no longer stops its service silently: the
	// archive's reader is recreated, and health says ok again.
	predictions, err := js.Stream(ctx, subjects.StreamName(natsbus.StreamPredictions))
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	names := predictions.ConsumerNames(ctx)
	for name := range names.Name() {
		if strings.HasPrefix(name, "archive_") {
			if err := js.DeleteConsumer(ctx, predictions.CachedInfo().Config.Name, name); err != nil {
				t.Fatal(err)
			}
			deleted++
		}
	}
	if err := names.Err(); err != nil || deleted != 1 {
		t.Fatalf("deleted %d consumers of the archive's (%v), want 1", deleted, err)
	}
	publish(ingest("after"), []byte(`{"id":"a1","version":"v1","prediction":1}`), nil)
	natstest.WaitFor(t, 30*time.Second, func() error {
		files, _ := filepath.Glob(filepath.Join(lk.DataDir, "archive", "model=after", "*", "*.parquet"))
		if len(files) == 0 {
			return fmt.Errorf("nothing archived after the consumer was deleted")
		}
		return healthOK(lk.HTTPAddr)
	})
}

// TestBurstOfLargeMessagesKeepsMemoryBounded: 150 messages of 1.2 MB used
// to push a `lookout run` to 3.2 GB and cut its own connection. Each is
// rejected, the process's peak memory stays under 300 MB, and Lookout's
// connection is never cut.
func TestBurstOfLargeMessagesKeepsMemoryBounded(t *testing.T) {
	lk := startLookout(t, "", strings.Fields(os.Getenv("LOOKOUT_BURST_ARGS"))...)
	nc, err := nats.Connect(lk.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	subjects := natsbus.NewSubjects("")
	big := []byte(`{"version":"v1","prediction":1,"features":{"blob":"` + strings.Repeat("x", 1200*1024) + `"}}`)
	const n = 150
	for range n {
		if _, err := js.PublishAsync(subjects.For(natsbus.KindIngest, "big"), big); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(120 * time.Second):
		t.Fatal("burst not acknowledged")
	}
	natstest.WaitFor(t, 60*time.Second, func() error {
		if got := streamMsgs(t, js, subjects.StreamName(natsbus.StreamRejected)); got != n {
			return fmt.Errorf("%d of %d rejected", got, n)
		}
		return nil
	})
	peak := peakRSS(t, lk.cmd.Process.Pid)
	t.Logf("peak RSS during the burst: %d MB", peak>>20)
	if peak > 300<<20 {
		t.Errorf("peak RSS %d MB, want under 300 MB", peak>>20)
	}
	if logs := lk.Logs(); strings.Contains(logs, "nats disconnected") {
		t.Errorf("Lookout's connection was cut during the burst:\n%s", logs)
	}
}

// peakRSS reads the process's high-water mark of resident memory.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

func healthOK(addr string) error {
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz %d: %v", resp.StatusCode, body)
	}
	return nil
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// streamRead returns every message a stream holds.
func streamRead(t *testing.T, js jetstream.JetStream, name string) []jetstream.Msg {
	t.Helper()
	total := streamMsgs(t, js, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for uint64(len(out)) < total {
		m, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		out = append(out, m)
	}
	return out
}
