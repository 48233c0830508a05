package httpingest

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// TestBentoMLExport: the captured-shape BentoML export, in protobuf, JSON
// and gzipped protobuf, becomes three predictions of the monitor's model
// with its version, features, prediction and request ids (record 2
// without bento_meta takes the schema of record 1, record 3 is the str()
// of a dict), and its two target values become feedback that joins them.
// The answer is an ExportResponse in the request's encoding with no
// partial success.
func TestBentoMLExport(t *testing.T) {
	for _, c := range []struct {
		name, file, ctype string
		gz                bool
	}{
		{"protobuf", "logs.pb", "application/x-protobuf", false},
		{"json", "logs.json", "application/json", false},
		{"gzip protobuf", "logs.pb", "application/x-protobuf", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, Config{})
			status, out := post(t, r.url+"/v1/logs", c.ctype, fixture(t, c.file), c.gz)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, out)
			}
			resp := plogotlp.NewExportResponse()
			var err error
			if c.ctype == "application/json" {
				err = resp.UnmarshalJSON(out)
			} else {
				err = resp.UnmarshalProto(out)
			}
			if err != nil {
				t.Fatalf("answer is not an ExportResponse: %v (%q)", err, out)
			}
			if n := resp.PartialSuccess().RejectedLogRecords(); n != 0 {
				t.Fatalf("rejected %d records: %s", n, resp.PartialSuccess().ErrorMessage())
			}
			preds := messages(t, r.js, natsbus.StreamPredictions, subjects.For(natsbus.KindPredictions, fixtureMonitor), 3)
			wantReq := []string{"6413930528999883196", "6413930528999883197", "6413930528999883198"}
			wantSepal := []float64{5.1, 4.9, 6.3}
			wantPred := []string{"setosa", "setosa", "virginica"}
			for i, b := range preds {
				p, reasons := event.DecodePrediction(b, event.DecodeOptions{})
				if len(reasons) > 0 {
					t.Fatalf("prediction %d: %v", i, reasons)
				}
				if p.GetModel() != fixtureMonitor || p.GetVersion() != fixtureVersion || p.GetRequestId() != wantReq[i] ||
					p.GetPrediction().GetText() != wantPred[i] || len(p.GetFeatures()) != 4 ||
					p.GetFeatures()["sepal length"].GetNumber() != wantSepal[i] {
					t.Errorf("prediction %d: %s", i, b)
				}
				wantTS := time.Unix(0, int64((fixtureT0+float64(i))*1e9)).UTC()
				if d := event.Time(p).Sub(wantTS); d > time.Millisecond || d < -time.Millisecond {
					t.Errorf("prediction %d at %v, want %v (the timestamp column)", i, event.Time(p), wantTS)
				}
			}
			fbs := messages(t, r.js, natsbus.StreamFeedback, subjects.For(natsbus.KindFeedback, fixtureMonitor), 2)
			if !strings.Contains(string(fbs[0]), `"request_id":"6413930528999883197"`) || !strings.Contains(string(fbs[0]), `"label":"versicolor"`) {
				t.Errorf("feedback %s", fbs[0])
			}
			natstest.WaitFor(t, 30*time.Second, func() error {
				if got := metricValue(t, r.reg, "lookout_feedback_events_total", "result", "joined"); got != 2 {
					return fmt.Errorf("feedback joined %v, want 2", got)
				}
				return nil
			})
		})
	}
}

// TestBentoMLRejections: a NaN feature, a monitor never seen with its
// schema, and a body that is no dict are counted in partial_success with
// their reasons, and land on lookout.rejected.*; the valid record of the
// same request is stored. A schema seen before a restart is still known
// after it (the key-value bucket), and otlp.models maps a monitor.
func TestBentoMLRejections(t *testing.T) {
	r := newRig(t, Config{Models: map[string]string{"iris_classifier_prediction": "iris"}})
	req := bentoRequest()
	lrs := req.Logs().ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	// Record 2 gets a NaN; record 3 becomes a body no parser takes.
	lrs.At(1).Body().Map().PutDouble("sepal width", math.NaN())
	lrs.At(2).Body().SetStr("{'a': os.system('x')}")
	other := req.Logs().ResourceLogs().AppendEmpty()
	other.Resource().Attributes().PutStr("service.name", "iris_classifier:unknown_monitor")
	lr := other.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetEmptyMap().PutStr("pred", "setosa")
	body, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	status, out := post(t, r.url+"/v1/logs", "application/x-protobuf", body, false)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, out)
	}
	resp := plogotlp.NewExportResponse()
	if err := resp.UnmarshalProto(out); err != nil {
		t.Fatal(err)
	}
	ps := resp.PartialSuccess()
	if ps.RejectedLogRecords() != 3 || !strings.Contains(ps.ErrorMessage(), "finite") ||
		!strings.Contains(ps.ErrorMessage(), "unknown_monitor") || !strings.Contains(ps.ErrorMessage(), "unknown name") {
		t.Errorf("partial success %d: %q", ps.RejectedLogRecords(), ps.ErrorMessage())
	}
	preds := messages(t, r.js, natsbus.StreamPredictions, subjects.For(natsbus.KindPredictions, "iris"), 1)
	if !strings.Contains(string(preds[0]), `"request_id":"6413930528999883196"`) {
		t.Errorf("stored prediction %s", preds[0])
	}
	// The NaN prediction and the unreadable body on iris, the unknown
	// monitor on its own name. Record 2's label is valid feedback.
	messages(t, r.js, natsbus.StreamRejected, subjects.For(natsbus.KindRejected, "iris"), 2)
	messages(t, r.js, natsbus.StreamRejected, subjects.For(natsbus.KindRejected, "unknown_monitor"), 1)

	// A new handler (a restarted Lookout) knows the schema from the bucket.
	h := r.newHandler(t, Config{Models: map[string]string{"iris_classifier_prediction": "iris"}})
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "iris_classifier:"+fixtureMonitor)
	m := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetEmptyMap()
	m.PutDouble("sepal length", 7.0)
	m.PutStr("pred", "versicolor")
	m.PutStr("request_id", "after-restart")
	m.PutDouble("timestamp", fixtureT0+10)
	msgs, problems := h.mapRecord(t.Context(), rl.ScopeLogs().At(0).LogRecords().At(0), "iris_classifier:"+fixtureMonitor, 1, time.Now())
	if len(problems) > 0 || len(msgs) != 1 {
		t.Fatalf("after a restart: %v", problems)
	}
	var ev map[string]any
	_ = json.Unmarshal(msgs[0].msg.Data, &ev)
	if ev["version"] != fixtureVersion || ev["model"] != "iris" || msgs[0].msg.Subject != subjects.For(natsbus.KindIngest, "iris") {
		t.Errorf("after a restart: %s on %s", msgs[0].msg.Data, msgs[0].msg.Subject)
	}
}
