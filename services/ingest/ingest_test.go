package ingest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/service"
	"github.com/lookout-ml/lookout/services/ingest"
)

var subjects = natsbus.NewSubjects("")

// startIngest runs one ingest service until the returned stop is called
// (or the test ends).
func startIngest(t *testing.T, nc *nats.Conn, js jetstream.JetStream, reg *prometheus.Registry) (stop func()) {
	t.Helper()
	return startIngestWith(t, nc, js, reg, nil, ingest.DefaultConfig())
}

// startIngestWith runs one ingest service with cfg, its metrics in reg and
// its health in health (each may be nil).
func startIngestWith(t *testing.T, nc *nats.Conn, js jetstream.JetStream, reg *prometheus.Registry, health *service.Health, cfg ingest.Config) (stop func()) {
	t.Helper()
	env := natstest.Env(t, nc, js)
	if reg != nil {
		env.Metrics = reg
	}
	if health != nil {
		env.Health = health
	}
	return natstest.RunService(t, ingest.New(env, cfg))
}

// collect reads every message of a stream's subject from the start.
func collect(t *testing.T, js jetstream.JetStream, stream, subject string) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	if total == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for uint64(len(out)) < total {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read %s after %d of %d: %v", subject, len(out), total, err)
		}
		out = append(out, msg)
	}
	return out
}

func count(t *testing.T, js jetstream.JetStream, stream, subject string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	return total
}

func waitCount(t *testing.T, js jetstream.JetStream, role, subject string, want uint64) {
	t.Helper()
	natstest.WaitFor(t, 30*time.Second, func() error {
		if got := count(t, js, subjects.StreamName(role), subject); got != want {
			return fmt.Errorf("%s holds %d messages, want %d", subject, got, want)
		}
		return nil
	})
}

func TestIngestValidatesAndRepublishes(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	reg := prometheus.NewRegistry()
	startIngest(t, nc, js, reg)
	ctx := context.Background()

	good := `{"id":"p1","version":"v1","prediction":0.8,"confidence":0.9,"features":{"age":42,"trial":false}}`
	noID := `{"version":"v1","prediction":"stay"}`
	bad := `{"version":"v1","prediction":NaN,"confidence":1.5}`
	for _, body := range []string{good, noID, bad} {
		if _, err := js.Publish(ctx, subjects.For(natsbus.KindIngest, "churn"), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	// A plain NATS publish is captured by the stream too.
	if err := nc.Publish(subjects.For(natsbus.KindIngest, "churn"), []byte(`{"id":"plain","version":"v1","prediction":1}`)); err != nil {
		t.Fatal(err)
	}
	// Binary protobuf, announced by its content type.
	pb, _ := proto.Marshal(&event.Prediction{Id: "pb", Version: "v2", Prediction: event.Text("churn")})
	msg := nats.NewMsg(subjects.For(natsbus.KindIngest, "churn"))
	msg.Data = pb
	msg.Header.Set("Content-Type", event.ContentTypeProtobuf)
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}

	predSubject := subjects.For(natsbus.KindPredictions, "churn")
	waitCount(t, js, natsbus.StreamPredictions, predSubject, 4)
	waitCount(t, js, natsbus.StreamRejected, subjects.For(natsbus.KindRejected, "churn"), 1)

	got := map[string]*event.Prediction{}
	for _, m := range collect(t, js, subjects.StreamName(natsbus.StreamPredictions), predSubject) {
		p, reasons := event.DecodePrediction(m.Data(), event.DecodeOptions{SubjectModel: "churn"})
		if len(reasons) > 0 {
			t.Fatalf("republished event does not validate: %s: %v", m.Data(), reasons)
		}
		if want := natsbus.MsgID("churn", p.Id); m.Headers().Get(jetstream.MsgIDHeader) != want {
			t.Errorf("Nats-Msg-Id %q, want the model-scoped event id %q", m.Headers().Get(jetstream.MsgIDHeader), want)
		}
		if p.Model != "churn" || p.Role != event.RoleProduction || p.GetTsUnixNano() == 0 || p.Id == "" {
			t.Errorf("not normalised: %s", m.Data())
		}
		got[p.Version+"/"+p.Id] = p
	}
	if p := got["v1/p1"]; p == nil || p.Features["trial"].GetKind() == nil || p.Features["age"].GetNumber() != 42 {
		t.Errorf("p1 missing or changed: %v", got)
	}
	if got["v1/plain"] == nil || got["v2/pb"] == nil {
		t.Errorf("plain publish or protobuf missing: %v", got)
	}

	rejected := collect(t, js, subjects.StreamName(natsbus.StreamRejected), subjects.For(natsbus.KindRejected, "churn"))
	r, err := event.UnmarshalRejection(rejected[0].Data())
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Original) != bad || len(r.Reasons) != 2 {
		t.Fatalf("rejection %s, want the original bytes and two reasons", rejected[0].Data())
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		accepted, rejected := metricValue(t, reg, "lookout_ingest_accepted_total"), metricValue(t, reg, "lookout_ingest_rejected_messages_total")
		if accepted != 4 || rejected != 1 {
			return fmt.Errorf("metrics say %v accepted and %v rejected, want 4 and 1", accepted, rejected)
		}
		return nil
	})
	if n := metricValue(t, reg, "lookout_ingest_received_total"); n != 5 {
		t.Errorf("received %v, want 5", n)
	}
}

// metricValue returns the sum of a counter's series in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestIngestSharedConsumerExactlyOnce: two ingest processes share the work
// through one durable consumer, one of them stops half way, and every event
// is republished exactly once.
func TestIngestSharedConsumerExactlyOnce(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	stopA := startIngest(t, nc, js, nil)
	startIngest(t, nc, js, nil)

	const n = 3000
	for i := range n {
		body := fmt.Sprintf(`{"id":"e%d","version":"v1","prediction":%d}`, i, i)
		if i%3 == 0 {
			body = fmt.Sprintf(`{"version":"v1","prediction":%d}`, i) // id derived by ingest
		}
		if _, err := js.PublishAsync(subjects.For(natsbus.KindIngest, "m"), []byte(body)); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			stopA() // hands back what it holds; the other one goes on
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publish not acknowledged")
	}
	waitCount(t, js, natsbus.StreamPredictions, subjects.For(natsbus.KindPredictions, "m"), n)
	seen := map[string]bool{}
	for _, m := range collect(t, js, subjects.StreamName(natsbus.StreamPredictions), subjects.For(natsbus.KindPredictions, "m")) {
		p, reasons := event.DecodePrediction(m.Data(), event.DecodeOptions{})
		if len(reasons) > 0 {
			t.Fatal(reasons)
		}
		if seen[p.Id] {
			t.Fatalf("id %s republished twice", p.Id)
		}
		seen[p.Id] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct ids, want %d", len(seen), n)
	}
	// The work queue is empty: every input was acknowledged.
	natstest.WaitFor(t, 10*time.Second, func() error {
		if c := count(t, js, subjects.StreamName(natsbus.StreamIngest), subjects.All(natsbus.KindIngest)); c != 0 {
			return fmt.Errorf("%d messages still in the ingest stream", c)
		}
		return nil
	})
}
