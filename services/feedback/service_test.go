package feedback_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/quality"
	"github.com/lookout-ml/lookout/services/feedback"
)

var subjects = natsbus.NewSubjects("")

func start(t *testing.T, nc *nats.Conn, js jetstream.JetStream, cfg feedback.Config) (stop func()) {
	t.Helper()
	svc, err := feedback.New(natstest.Env(t, nc, js), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return natstest.RunService(t, svc)
}

// predict stores a prediction on lookout.predictions.<model> as ingest
// would (with its model-scoped message id).
func predict(t *testing.T, js jetstream.JetStream, model, id, version string, pred *event.Value) {
	t.Helper()
	p := &event.Prediction{Id: id, Model: model, Version: version, Role: event.RoleProduction,
		TsUnixNano: proto.Int64(time.Now().Add(-time.Hour).UnixNano()), Prediction: pred}
	msg := nats.NewMsg(subjects.For(natsbus.KindPredictions, model))
	msg.Data = event.AppendJSON(nil, p)
	msg.Header.Set(jetstream.MsgIDHeader, natsbus.MsgID(model, id))
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

// span is the start of an hour of event time in the past: feedback given
// a ts in it (at) falls in one aligned window of an hour, whenever a test
// runs.
var span = time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)

// at returns feedback JSON with a ts set, d into span.
func at(body string, d time.Duration) string {
	return body[:len(body)-1] + `,"ts":"` + span.Add(d).Format(time.RFC3339Nano) + `"}`
}

// send publishes feedback JSON on lookout.feedback.<model>.
func send(t *testing.T, js jetstream.JetStream, model, body string) {
	t.Helper()
	if _, err := js.Publish(context.Background(), subjects.For(natsbus.KindFeedback, model), []byte(body)); err != nil {
		t.Fatal(err)
	}
}

// stored returns the messages stored on one subject of a stream, oldest
// first.
func stored(t *testing.T, js jetstream.JetStream, role, subject string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	stream, err := js.Stream(ctx, subjects.StreamName(role))
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if m.Subject == subject {
			out = append(out, m)
		}
	}
	return out
}

func reports(t *testing.T, js jetstream.JetStream, model string) []quality.Report {
	t.Helper()
	var out []quality.Report
	for _, m := range stored(t, js, natsbus.StreamReports, subjects.For(natsbus.KindPerformance, model)) {
		var r quality.Report
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("report %s: %v", m.Data, err)
		}
		out = append(out, r)
	}
	return out
}

func waitReports(t *testing.T, js jetstream.JetStream, model string, n int) []quality.Report {
	t.Helper()
	var got []quality.Report
	natstest.WaitFor(t, 20*time.Second, func() error {
		if got = reports(t, js, model); len(got) < n {
			return fmt.Errorf("%d performance reports, want %d", len(got), n)
		}
		return nil
	})
	return got
}

func near(t *testing.T, name string, got *float64, want float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s missing, want %v", name, want)
	} else if math.Abs(*got-want) > 1e-9 {
		t.Errorf("%s = %v, want %v", name, *got, want)
	}
}

// TestFeedbackJoinsAndReports: labels join their predictions (one whose
// feedback came first joins within the wait), feedback for an unknown
// prediction is counted unmatched, invalid feedback is rejected, and the
// report is one an alert rule on accuracy fires on. The window closes full
// at its fifth feedback event and is reported once the unmatched one's
// wait is over, naming the event time it covers: from its aligned span's
// start to its latest feedback.
func TestFeedbackJoinsAndReports(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	predict(t, js, "churn", "p1", "v1", event.Text("churn"))
	predict(t, js, "churn", "p2", "v1", event.Text("stay"))
	predict(t, js, "churn", "p3", "v2", event.Number(0.9))
	start(t, nc, js, feedback.Config{WindowLabels: 5, Window: time.Hour, Wait: time.Second})

	send(t, js, "churn", at(`{"id":"p1","label":"churn"}`, time.Minute))                   // right
	send(t, js, "churn", at(`{"id":"p2","label":"churn","helpful":false}`, 2*time.Minute)) // wrong
	send(t, js, "churn", at(`{"id":"nope","label":"churn"}`, 3*time.Minute))               // no such prediction
	send(t, js, "churn", at(`{"id":"p4","label":"stay"}`, 4*time.Minute))                  // before its prediction
	send(t, js, "churn", `{"id":"p9"}`)                                                    // invalid: no label nor helpful
	predict(t, js, "churn", "p4", "v2", event.Text("stay"))                                // right, once joined
	send(t, js, "churn", at(`{"id":"p3","helpful":true}`, 5*time.Minute))                  // fifth event: closes the window

	got := waitReports(t, js, "churn", 1)
	r := got[0]
	if r.Model != "churn" || r.Feedback != 4 || r.Labelled != 3 || r.Unmatched != 1 || r.HelpfulCount != 2 || r.Window.Feedback != 5 {
		t.Fatalf("first report: %+v", r)
	}
	if !r.Window.Start.Equal(span) || !r.Window.End.Equal(span.Add(5*time.Minute)) {
		t.Errorf("window %v - %v, want the aligned hour's start to the last feedback %v - %v", r.Window.Start, r.Window.End, span, span.Add(5*time.Minute))
	}
	near(t, "accuracy", r.Accuracy, 2.0/3)
	near(t, "helpful_rate", r.HelpfulRate, 0.5)
	near(t, "v1 accuracy", r.Versions["v1"].Accuracy, 0.5)
	near(t, "v2 accuracy", r.Versions["v2"].Accuracy, 1)

	rejected := stored(t, js, natsbus.StreamRejected, subjects.For(natsbus.KindRejected, "churn"))
	if len(rejected) != 1 {
		t.Fatalf("%d rejections, want 1", len(rejected))
	}
	rej, err := event.UnmarshalRejection(rejected[0].Data)
	if err != nil || len(rej.Reasons) != 1 || rej.Reasons[0].Code != event.CodeMissing || string(rej.Original) != `{"id":"p9"}` {
		t.Fatalf("rejection %s: %v", rejected[0].Data, err)
	}
	if rejected[0].Header.Get(event.HeaderInput) != event.InputFeedback {
		t.Errorf("rejected feedback is not marked %s: %s (rejection rates would count it as prediction input)", event.HeaderInput, rejected[0].Header)
	}

	// Every feedback message is acknowledged once reported.
	natstest.WaitFor(t, 10*time.Second, func() error {
		c, err := js.Consumer(context.Background(), subjects.StreamName(natsbus.StreamFeedback), feedback.ConsumerName)
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.AckFloor.Stream != 6 {
			return fmt.Errorf("ack pending %d, ack floor %d", info.NumAckPending, info.AckFloor.Stream)
		}
		return nil
	})

	// The README's example rule fires on the first report.
	rule := alerting.Rule{Name: "accuracy_low", Source: alerting.SourcePerformance, Field: "accuracy", Op: "<", Threshold: 0.8}
	eval, err := alerting.NewEvaluator([]alerting.Rule{rule})
	if err != nil {
		t.Fatal(err)
	}
	first := stored(t, js, natsbus.StreamReports, subjects.For(natsbus.KindPerformance, "churn"))[0]
	report, err := alerting.DecodeReport(first.Data)
	if err != nil {
		t.Fatal(err)
	}
	res := eval.Evaluate(alerting.SourcePerformance, "churn", first.Subject, report, time.Now())
	if len(res.Events) != 1 || res.Events[0].Status != "firing" {
		t.Fatalf("accuracy rule: %+v", res.Events)
	}
}

// TestFeedbackRestart: a new process rebuilds the index from the
// predictions stream, so feedback for a prediction it never saw live still
// joins, and the window open at shutdown is rebuilt, not lost.
func TestFeedbackRestart(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := feedback.Config{WindowLabels: 3, Window: time.Hour, Wait: 5 * time.Second}
	stop := start(t, nc, js, cfg)
	predict(t, js, "churn", "p1", "v1", event.Number(0.8))
	send(t, js, "churn", at(`{"id":"p1","label":1}`, time.Minute))
	// Wait until the first process holds the feedback in its open window.
	natstest.WaitFor(t, 10*time.Second, func() error {
		c, err := js.Consumer(context.Background(), subjects.StreamName(natsbus.StreamFeedback), feedback.ConsumerName)
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumAckPending != 1 {
			return fmt.Errorf("ack pending %d", info.NumAckPending)
		}
		return nil
	})
	stop()

	// Predictions stored while no feedback service ran.
	predict(t, js, "churn", "p2", "v1", event.Number(0.3))
	predict(t, js, "churn", "p3", "v1", event.Number(0.4))
	start(t, nc, js, cfg)
	send(t, js, "churn", at(`{"id":"p2","label":1}`, 2*time.Minute))   // wrong at 0.5
	send(t, js, "churn", at(`{"id":"p3","label":0.4}`, 3*time.Minute)) // not 0/1: error 0 only... and not classified

	got := waitReports(t, js, "churn", 1)
	r := got[0]
	if r.Feedback != 3 || r.Labelled != 3 || r.Unmatched != 0 || r.AccuracyCount != 2 || r.RegressionCount != 3 {
		t.Fatalf("report after restart: %+v", r)
	}
	near(t, "accuracy", r.Accuracy, 0.5)
	near(t, "mae", r.MAE, (0.2+0.7+0)/3)
	if len(got) != 1 {
		t.Fatalf("%d reports, want 1", len(got))
	}
}

// TestFeedbackProtobuf: feedback sent as binary protobuf joins too.
func TestFeedbackProtobuf(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	predict(t, js, "fraud", "f1", "v7", event.Text("fraud"))
	start(t, nc, js, feedback.Config{WindowLabels: 1})
	data, _ := proto.Marshal(&event.Feedback{Id: "f1", Label: event.Text("fraud")})
	msg := nats.NewMsg(subjects.For(natsbus.KindFeedback, "fraud"))
	msg.Data = data
	msg.Header.Set("Content-Type", event.ContentTypeProtobuf)
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	r := waitReports(t, js, "fraud", 1)[0]
	near(t, "accuracy", r.Accuracy, 1)
	if r.Versions["v7"].Feedback != 1 {
		t.Fatalf("versions: %+v", r.Versions)
	}
}

// TestFeedbackIDsArePerModel: the same prediction id on two models is two
// predictions; each model's feedback joins its own model's prediction.
// The index used to be keyed by id alone, so the second model's
// prediction replaced the first's and the first's label went unmatched.
func TestFeedbackIDsArePerModel(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	predict(t, js, "churn", "p1", "c1", event.Text("churn"))
	predict(t, js, "fraud", "p1", "f1", event.Number(0.2))
	start(t, nc, js, feedback.Config{WindowLabels: 1, Window: time.Hour, Wait: 5 * time.Second})
	send(t, js, "churn", `{"id":"p1","label":"churn"}`)
	send(t, js, "fraud", `{"id":"p1","label":0}`)

	for model, version := range map[string]string{"churn": "c1", "fraud": "f1"} {
		r := waitReports(t, js, model, 1)[0]
		if r.Feedback != 1 || r.Labelled != 1 || r.Unmatched != 0 || r.Versions[version].Feedback != 1 {
			t.Fatalf("%s report: %+v", model, r)
		}
		near(t, model+" accuracy", r.Accuracy, 1)
	}
}
