package drift_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/dataset"
	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	lookoutv1 "github.com/lookout-ml/lookout/proto/lookout/v1"
	driftsvc "github.com/lookout-ml/lookout/services/drift"
)

// tagged adds a region tag and a 4-dimensional embedding to the
// generator's events; region eu's age moves by ageShift and every
// embedding by embShift.
func tagged(g *generator, ageShift, embShift float64) *event.Prediction {
	p := g.next()
	region := []string{"eu", "us", "apac"}[g.n%3]
	p.Tags = map[string]string{"region": region}
	if region == "eu" {
		p.Features["age"] = event.Number(p.Features["age"].GetNumber() + ageShift)
	}
	v := make([]float64, 4)
	for i := range v {
		v[i] = g.rng.NormFloat64() + embShift
	}
	p.Embeddings = map[string]*lookoutv1.Embedding{"text": {Values: v}}
	return p
}

// TestServiceMatchesOffline: the drift service's report of a window equals
// the report `lookout drift` computes from the same events and reference
// (thresholds from reference chunks, multivariate, embeddings, root cause
// and the first window's sequential detectors included), but for the
// window's times, the reference's source and the estimate the service
// adds.
func TestServiceMatchesOffline(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	cfg := driftsvc.DefaultConfig()
	cfg.WindowEvents = 500
	cfg.Window = time.Hour

	g := newGenerator(5)
	ref := driftreport.NewDataset(driftreport.SampleOptions{})
	var add dataset.Adder
	for range 3000 {
		add.Add(ref, ref, tagged(g, 0, 0))
	}
	ctx := context.Background()
	refs, err := driftsvc.OpenReferences(ctx, js, subjects)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := refs.SetPinned(ctx, "churn", "test", ref); err != nil {
		t.Fatal(err)
	}
	startDrift(t, nc, js, cfg)

	cur := driftreport.NewDataset(driftreport.SampleOptions{})
	var curAdd dataset.Adder
	for range 500 {
		p := tagged(g, 8, 0.5)
		data := event.AppendJSON(nil, p)
		decoded, reasons := event.DecodePrediction(data, event.DecodeOptions{})
		if len(reasons) > 0 {
			t.Fatal(reasons)
		}
		curAdd.Add(cur, cur, decoded)
		msg := nats.NewMsg(subjects.For(natsbus.KindPredictions, p.Model))
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, p.Id)
		if _, err := js.PublishMsgAsync(msg); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publish not acknowledged")
	}
	service := waitReports(t, js, "churn", 1)[0]
	offline := driftreport.Compare(ref, cur, cfg.Options())
	var seq driftreport.SequentialState
	offline.Sequential = seq.Update(&offline)

	if f := service.Features["age"]; !f.Drifted || f.ThresholdSource != driftreport.SourceReferenceChunks {
		t.Errorf("service: age %+v, want drifted against reference chunks", f)
	}
	if service.Multivariate == nil || service.Embeddings["text"].PValue >= 0.01 || service.RootCause == nil ||
		len(service.RootCause.Segments) == 0 || service.RootCause.Segments[0].Value != "eu" {
		t.Errorf("service: multivariate %+v, embeddings %+v, root cause %+v", service.Multivariate, service.Embeddings, service.RootCause)
	}
	// The histograms are part of what must match.
	for name, f := range service.Features {
		if h := f.Histogram; h == nil || len(h.Reference) == 0 || len(h.Reference) != len(h.Current) {
			t.Errorf("service: feature %s has no histogram: %+v", name, h)
		}
	}
	normalise := func(r driftreport.Report) string {
		r.Model, r.Version, r.Reference.Source = "", "", ""
		r.Window.Start, r.Window.End = time.Time{}, time.Time{}
		r.EstimatedPerformance = nil
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if a, b := normalise(service), normalise(offline); a != b {
		t.Errorf("service and offline reports differ:\nservice %s\noffline %s", a, b)
	}
}
