package feedback_test

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/services/feedback"
)

// predictConfident stores a class prediction of a request, in a role, with
// a confidence (none when conf < 0), as ingest would.
func predictConfident(t *testing.T, js jetstream.JetStream, model, id, request, role, version, class string, conf float64) {
	t.Helper()
	p := &event.Prediction{Id: id, RequestId: request, Model: model, Version: version, Role: role,
		TsUnixNano: proto.Int64(time.Now().Add(-time.Hour).UnixNano()), Prediction: event.Text(class)}
	if conf >= 0 {
		p.Confidence = proto.Float64(conf)
	}
	msg := nats.NewMsg(subjects.For(natsbus.KindPredictions, model))
	msg.Data = event.AppendJSON(nil, p)
	msg.Header.Set(jetstream.MsgIDHeader, natsbus.MsgID(model, id))
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

// TestFeedbackEstimatedAccuracy: a performance report carries
// estimated_accuracy beside the realised accuracy, equal to the mean
// confidence of the joined labelled class predictions that sent one, with
// its count, at the top and per version and role; a prediction without
// confidence counts toward accuracy only.
func TestFeedbackEstimatedAccuracy(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	predictConfident(t, js, "churn", "p1", "r1", event.RoleProduction, "v1", "churn", 0.9)
	predictConfident(t, js, "churn", "c1", "r1", event.RoleCanary, "v2", "stay", 0.55)
	predictConfident(t, js, "churn", "p2", "r2", event.RoleProduction, "v1", "stay", 0.8)
	predictConfident(t, js, "churn", "c2", "r2", event.RoleCanary, "v2", "stay", -1)
	start(t, nc, js, feedback.Config{WindowLabels: 2, Window: time.Hour, Wait: time.Second})

	send(t, js, "churn", at(`{"request_id":"r1","label":"churn"}`, time.Minute)) // p1 right, c1 wrong
	send(t, js, "churn", at(`{"id":"p2","label":"churn"}`, 2*time.Minute))       // p2 and c2 wrong

	r := waitReports(t, js, "churn", 1)[0]
	check := func(name string, acc, est *float64, accN, estN int, wantAcc, wantEst float64, wantAccN, wantEstN int) {
		t.Helper()
		if accN != wantAccN || estN != wantEstN {
			t.Errorf("%s: accuracy_count %d, estimated_accuracy_count %d; want %d, %d", name, accN, estN, wantAccN, wantEstN)
		}
		near(t, name+" accuracy", acc, wantAcc)
		near(t, name+" estimated_accuracy", est, wantEst)
	}
	check("window", r.Accuracy, r.EstimatedAccuracy, r.AccuracyCount, r.EstimatedAccuracyCount, 1.0/4, (0.9+0.55+0.8)/3, 4, 3)
	pr, ca := r.Roles["production"], r.Roles["canary"]
	check("production", pr.Accuracy, pr.EstimatedAccuracy, pr.AccuracyCount, pr.EstimatedAccuracyCount, 0.5, (0.9+0.8)/2, 2, 2)
	check("canary", ca.Accuracy, ca.EstimatedAccuracy, ca.AccuracyCount, ca.EstimatedAccuracyCount, 0, 0.55, 2, 1)
	v1, v2 := r.Versions["v1"], r.Versions["v2"]
	check("v1", v1.Accuracy, v1.EstimatedAccuracy, v1.AccuracyCount, v1.EstimatedAccuracyCount, 0.5, (0.9+0.8)/2, 2, 2)
	check("v2", v2.Accuracy, v2.EstimatedAccuracy, v2.AccuracyCount, v2.EstimatedAccuracyCount, 0, 0.55, 2, 1)

	// The contract's field names, in the published JSON itself.
	msgs := stored(t, js, natsbus.StreamReports, subjects.For(natsbus.KindPerformance, "churn"))
	var raw map[string]any
	if err := json.Unmarshal(msgs[0].Data, &raw); err != nil {
		t.Fatal(err)
	}
	if f, ok := raw["estimated_accuracy"].(float64); !ok || math.Abs(f-(0.9+0.55+0.8)/3) > 1e-9 || raw["estimated_accuracy_count"] != 3.0 {
		t.Errorf("published estimated_accuracy %v of %v", raw["estimated_accuracy"], raw["estimated_accuracy_count"])
	}
}
