package canary

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// waitSum waits until the counter name sums to want.
func (r *running) waitSum(t *testing.T, name string, want float64) {
	t.Helper()
	natstest.WaitFor(t, 15*time.Second, func() error {
		if got := r.sum(t, name); got != want {
			return fmt.Errorf("%s = %v, want %v", name, got, want)
		}
		return nil
	})
}

// TestReportThatCannotBeStoredIsDropped: a report the reports stream
// refuses for good (over its size limit) is logged, counted and dropped;
// it neither stays pending forever nor holds back the reports after it.
func TestReportThatCannotBeStoredIsDropped(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	ctx := context.Background()
	setMaxMsgSize := func(size int32) {
		t.Helper()
		st, err := js.Stream(ctx, subjects.StreamName(natsbus.StreamReports))
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		cfg.MaxMsgSize = size
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	setMaxMsgSize(64) // every report is larger
	svc := start(t, nc, js, testConfig())
	prod, can := pairs("churn", 200, 0, 1)
	publish(t, js, shuffled(prod, can))
	svc.waitSum(t, "lookout_canary_reports_dropped_total", 1)

	// The stream takes reports again: the next window's report is stored,
	// and the dropped one is not tried again.
	setMaxMsgSize(-1)
	prod, can = pairs("other", 200, 0, 1)
	publish(t, js, shuffled(prod, can))
	waitReports(t, js, "other", 1)
	if got := reports(t, js, "churn"); len(got) != 0 {
		t.Errorf("%d reports of churn stored, want 0 (it was dropped)", len(got))
	}
	// The counter follows the stored acknowledgement: wait for it.
	svc.waitSum(t, "lookout_canary_reports_total", 1)
}

// TestReportMsgIDScopedByModel: the de-duplication id of a report names
// its model through natsbus.MsgID, so no two (model, window, part) share
// one, however the model names run together with the window's start.
func TestReportMsgIDScopedByModel(t *testing.T) {
	starts := []time.Time{time.Unix(0, 5), time.Unix(0, -5), time.Unix(0, 15), time.Unix(1700000000, 0)}
	models := []string{"a", "a-", "a-1", "a_1", "churn"}
	ids := map[string]string{}
	for _, m := range models {
		for _, s := range slices.Concat(starts, starts) {
			part := 0
			if _, ok := ids[reportMsgID(m, s, 0)]; ok {
				part = 1 // the second window of the span, after one closed full
			}
			id := reportMsgID(m, s, part)
			key := fmt.Sprintf("%s@%d.%d", m, s.UnixNano(), part)
			if other, ok := ids[id]; ok {
				t.Errorf("%s and %s share the id %q", key, other, id)
			}
			ids[id] = key
			if !strings.Contains(id, natsbus.MsgID(m, "")) {
				t.Errorf("id %q of %s is not scoped by natsbus.MsgID", id, key)
			}
		}
	}
}

// TestStoredPredictionsDecode: what ingest accepts and stores (the same
// pkg/event validation, re-encoded as JSON) decodes in the canary, even
// above event.DefaultMaxBytes when ingest.max_message_bytes allows it.
func TestStoredPredictionsDecode(t *testing.T) {
	lat, conf := 12.5, 0.75
	protobuf, err := proto.Marshal(&event.Prediction{Id: "pb", RequestId: "r", Version: "v2", Role: event.RoleShadow,
		Prediction: event.Number(3), Features: map[string]*event.Value{"x": event.Number(1)}, LatencyMs: &lat, Confidence: &conf})
	if err != nil {
		t.Fatal(err)
	}
	inputs := []struct {
		name, contentType string
		data              []byte
	}{
		{"full JSON", "", []byte(`{"id":"a","request_id":"r","version":"v4","role":"canary","ts":"2024-05-01T10:00:00Z",` +
			`"prediction":"churn","confidence":0.9,"latency_ms":12,"features":{"age":40,"plan":"pro","on":true},"scores":{"churn":0.9},"tags":{"k":"v"}}`)},
		{"minimal JSON", "", []byte(`{"version":"v1","prediction":1.5}`)},
		{"ts at 1970", "", []byte(`{"id":"z","version":"v1","ts":"1970-01-01T00:00:00Z","prediction":"x"}`)},
		{"protobuf", event.ContentTypeProtobuf, protobuf},
		{"over 1 MiB", "", []byte(`{"id":"big","version":"v1","prediction":"x","features":{"blob":"` + strings.Repeat("b", 3<<19) + `"}}`)},
	}
	received := time.Now()
	for _, in := range inputs {
		// As ingest does: validate, then store the normalised JSON.
		p, reasons := event.DecodePrediction(in.data, event.DecodeOptions{
			SubjectModel: "churn", ContentType: in.contentType, MaxBytes: 4 << 20, Received: received,
		})
		if len(reasons) > 0 {
			t.Fatalf("%s: ingest rejects it: %v", in.name, reasons)
		}
		if p.Id == "" {
			p.Id = "derived"
		}
		stored := event.AppendJSON(nil, p)
		got, reasons := (*event.Stored)(nil).Decode(1, stored, "churn", event.ContentTypeJSON, received.Add(time.Second))
		if len(reasons) > 0 {
			t.Errorf("%s: the canary cannot decode what ingest stored: %v", in.name, reasons)
			continue
		}
		if !proto.Equal(got, p) {
			t.Errorf("%s: decoded as\n%v\nwant\n%v", in.name, got, p)
		}
	}
}

// TestLargePredictionPairs: a prediction over event.DefaultMaxBytes that
// ingest stored (its limit raised) is read and paired, not dropped.
func TestLargePredictionPairs(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	svc := start(t, nc, js, testConfig())
	prod, can := pairs("churn", 1, 0, 1)
	prod[0].Features = map[string]*event.Value{"blob": event.Text(strings.Repeat("b", 3<<19))}
	publish(t, js, append(prod, can...))
	svc.waitRead(t, 2)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if got := svc.sum(t, "lookout_canary_pairs_total"); got != 1 {
			return fmt.Errorf("%v pairs, want 1", got)
		}
		return nil
	})
	if got := svc.sum(t, "lookout_canary_undecodable_total"); got != 0 {
		t.Errorf("%v undecodable predictions, want 0", got)
	}
}

// TestUndecodablePredictionCounted: a prediction on the stream that does
// not decode (not written by ingest) is counted, not silently dropped.
func TestUndecodablePredictionCounted(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	svc := start(t, nc, js, testConfig())
	if _, err := js.Publish(context.Background(), subjects.For(natsbus.KindPredictions, "churn"), []byte(`{"prediction":`)); err != nil {
		t.Fatal(err)
	}
	svc.waitSum(t, "lookout_canary_undecodable_total", 1)
}

// TestStreamDeletedFailsLoudly: deleting a stream the service reads ends
// Run with an error, and health says so meanwhile; before, the service
// went on reading nothing while /healthz said ok.
func TestStreamDeletedFailsLoudly(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	env := natstest.Env(t, nc, js)
	svc, err := New(env, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	natstest.WaitFor(t, 10*time.Second, func() error {
		parts, ok := env.Health.Snapshot()
		if !ok || parts["canary:predictions"] != "ok" || parts["canary:rejected"] != "ok" {
			return fmt.Errorf("health %v", parts)
		}
		return nil
	})
	if err := js.DeleteStream(ctx, subjects.StreamName(natsbus.StreamRejected)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, natsbus.ErrStreamGone) {
			t.Fatalf("Run returned %v, want ErrStreamGone", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run still going 30s after the rejected stream was deleted")
	}
	if parts, ok := env.Health.Snapshot(); ok || !strings.Contains(parts["canary:rejected"], "deleted") {
		t.Errorf("health %v, want canary:rejected failing", parts)
	}
	// What was read is saved on the way out.
	if _, err := js.ObjectStore(context.Background(), StateBucket(subjects)); err != nil {
		t.Errorf("state bucket: %v", err)
	}
}
