package drift_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/cbpe"
	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	driftsvc "github.com/lookout-ml/lookout/services/drift"
)

// A classifier's drift reports carry the CBPE estimate: the window's mean
// confidence as its accuracy and the learned reference's (the first
// window's) as the reference accuracy, uncalibrated since drift has no
// labels, and saying so; a confidence drop lowers the estimate.
func TestEstimatedPerformanceOfClassifier(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := driftsvc.DefaultConfig()
	cfg.WindowEvents = 1000
	cfg.Window = time.Hour
	startDrift(t, nc, js, cfg)

	rng := rand.New(rand.NewPCG(10, 4))
	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var sums [3]float64
	n := 0
	for w := range 3 {
		for range 1000 {
			n++
			c := 0.8 + 0.2*rng.Float64()
			if w == 2 {
				c = 0.5 + 0.2*rng.Float64() // the confidence drops
			}
			sums[w] += c
			p := &event.Prediction{
				Id: fmt.Sprintf("c%d", n), Model: "intent", Version: "v1", Role: event.RoleProduction,
				TsUnixNano: proto.Int64(base.Add(time.Duration(n) * time.Millisecond).UnixNano()),
				Features:   map[string]*event.Value{"x": event.Number(rng.NormFloat64())},
				Prediction: event.Text([]string{"buy", "browse", "leave"}[rng.IntN(3)]),
				Confidence: &c,
			}
			msg := nats.NewMsg(subjects.For(natsbus.KindPredictions, p.Model))
			msg.Data = event.AppendJSON(nil, p)
			msg.Header.Set("Content-Type", event.ContentTypeJSON)
			msg.Header.Set(jetstream.MsgIDHeader, p.Id)
			if _, err := js.PublishMsg(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The third window closes on the idle timeout; whether the first is
	// reported against itself does not matter here.
	third := base.Add(2001 * time.Millisecond)
	var last driftreport.Report
	natstest.WaitFor(t, 60*time.Second, func() error {
		for _, r := range reports(t, js, "intent") {
			if r.Window.Start.Equal(third) {
				last = r
				return nil
			}
		}
		return fmt.Errorf("no report of the window from %v yet", third)
	})
	e := last.EstimatedPerformance
	if e == nil {
		t.Fatal("no estimated_performance on a classifier's report")
	}
	if e.Method != cbpe.Method || e.Calibrated || e.Note == "" {
		t.Errorf("method %q calibrated %v note %q, want cbpe, false and why", e.Method, e.Calibrated, e.Note)
	}
	if want := sums[2] / 1000; math.Abs(e.Accuracy-want) > 1e-9 {
		t.Errorf("accuracy %.12f, want the window's mean confidence %.12f", e.Accuracy, want)
	}
	if want := sums[0] / 1000; math.Abs(e.ReferenceAccuracy-want) > 1e-9 {
		t.Errorf("reference accuracy %.12f, want the first window's mean confidence %.12f", e.ReferenceAccuracy, want)
	}
	if e.ReferenceAccuracy-e.Accuracy < 0.25 {
		t.Errorf("estimate %.3f against reference %.3f: the confidence drop is not seen", e.Accuracy, e.ReferenceAccuracy)
	}
}
