package feedback_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/quality"
	"github.com/lookout-ml/lookout/services/feedback"
)

// predictRequest stores a prediction of a request, in a role, as ingest
// would.
func predictRequest(t *testing.T, js jetstream.JetStream, model, id, request, role, version string, pred *event.Value) {
	t.Helper()
	p := &event.Prediction{Id: id, RequestId: request, Model: model, Version: version, Role: role,
		TsUnixNano: proto.Int64(time.Now().Add(-time.Hour).UnixNano()), Prediction: pred}
	msg := nats.NewMsg(subjects.For(natsbus.KindPredictions, model))
	msg.Data = event.AppendJSON(nil, p)
	msg.Header.Set(jetstream.MsgIDHeader, natsbus.MsgID(model, id))
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

func checkMetrics(t *testing.T, name string, m quality.Metrics, feedback int, accuracy float64) {
	t.Helper()
	if m.Feedback != feedback || m.AccuracyCount != feedback {
		t.Errorf("%s: feedback %d, accuracy count %d, want %d", name, m.Feedback, m.AccuracyCount, feedback)
	}
	near(t, name+" accuracy", m.Accuracy, accuracy)
}

// TestFeedbackJoinsRequests: one label by request_id reaches both the
// production and the canary prediction of the request, each counted
// under its role and version; a label by id reaches the named prediction
// and the others of its request; a prediction without a request is joined
// alone; an unknown request_id counts as unmatched after the wait; the
// same request_id on another model is another request.
func TestFeedbackJoinsRequests(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	predictRequest(t, js, "churn", "p1", "r1", event.RoleProduction, "v1", event.Text("churn"))
	predictRequest(t, js, "churn", "c1", "r1", event.RoleCanary, "v2", event.Text("stay"))
	predictRequest(t, js, "churn", "p2", "r2", event.RoleProduction, "v1", event.Text("stay"))
	predictRequest(t, js, "churn", "c2", "r2", event.RoleCanary, "v2", event.Text("stay"))
	predictRequest(t, js, "churn", "p3", "", event.RoleProduction, "v1", event.Text("churn"))
	predictRequest(t, js, "fraud", "f1", "r1", event.RoleProduction, "w1", event.Text("ok"))
	start(t, nc, js, feedback.Config{WindowLabels: 4, Window: time.Hour, Wait: time.Second, IdleTimeout: 2 * time.Second})

	send(t, js, "churn", at(`{"request_id":"r1","label":"churn"}`, time.Minute))     // p1 right, c1 wrong
	send(t, js, "churn", at(`{"id":"p2","label":"stay"}`, 2*time.Minute))            // p2 and c2 right
	send(t, js, "churn", at(`{"id":"p3","label":"churn"}`, 3*time.Minute))           // p3 right
	send(t, js, "churn", at(`{"request_id":"nope","label":"churn"}`, 4*time.Minute)) // unmatched
	send(t, js, "fraud", at(`{"request_id":"r1","label":"bad"}`, time.Minute))       // f1 wrong

	r := waitReports(t, js, "churn", 1)[0]
	if r.Window.Feedback != 4 || r.Unmatched != 1 || r.Labelled != 5 {
		t.Errorf("churn report: window feedback %d, unmatched %d, labelled %d; want 4, 1, 5", r.Window.Feedback, r.Unmatched, r.Labelled)
	}
	checkMetrics(t, "churn", r.Metrics, 5, 4.0/5)
	if len(r.Roles) != 2 {
		t.Errorf("roles %v, want production and canary", r.Roles)
	}
	checkMetrics(t, "churn production", r.Roles["production"], 3, 1)
	checkMetrics(t, "churn canary", r.Roles["canary"], 2, 0.5)
	checkMetrics(t, "churn v1", r.Versions["v1"], 3, 1)
	checkMetrics(t, "churn v2", r.Versions["v2"], 2, 0.5)

	f := waitReports(t, js, "fraud", 1)[0]
	if f.Window.Feedback != 1 || f.Unmatched != 0 || len(f.Roles) != 1 {
		t.Errorf("fraud report: %+v", f)
	}
	checkMetrics(t, "fraud production", f.Roles["production"], 1, 0)
}

// TestFeedbackByRequestWaits: feedback by request_id that arrives before
// the request's predictions waits for them and joins each, the one that
// comes after the first too; feedback by id still waits for its
// prediction.
func TestFeedbackByRequestWaits(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	start(t, nc, js, feedback.Config{WindowLabels: 2, Window: time.Hour, Wait: 20 * time.Second})
	send(t, js, "churn", at(`{"request_id":"r1","label":"churn"}`, time.Minute))
	send(t, js, "churn", at(`{"id":"p9","label":"stay"}`, 2*time.Minute))
	waitAckPending(t, js, 2, 2)

	predictRequest(t, js, "churn", "p1", "r1", event.RoleProduction, "v1", event.Text("churn"))
	predictRequest(t, js, "churn", "c1", "r1", event.RoleCanary, "v2", event.Text("stay"))
	predictRequest(t, js, "churn", "p9", "", event.RoleProduction, "v1", event.Text("stay"))

	r := waitReports(t, js, "churn", 1)[0]
	if r.Window.Feedback != 2 || r.Unmatched != 0 {
		t.Errorf("report: window feedback %d, unmatched %d; want 2, 0", r.Window.Feedback, r.Unmatched)
	}
	checkMetrics(t, "all", r.Metrics, 3, 2.0/3)
	checkMetrics(t, "production", r.Roles["production"], 2, 1)
	checkMetrics(t, "canary", r.Roles["canary"], 1, 0)
}
