package httpingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/services/feedback"
	"github.com/lookout-ml/lookout/services/ingest"
)

var subjects = natsbus.NewSubjects("")

// rig is a real embedded server with the ingest and feedback services
// running and the handler on a real HTTP server.
type rig struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	url     string
	reg     *prometheus.Registry
	handler *Handler
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	_, nc, js := natstest.RunWithStreams(t)
	r := &rig{nc: nc, js: js}
	env := natstest.Env(t, nc, js)
	r.reg = env.Metrics.(*prometheus.Registry)
	natstest.RunService(t, ingest.New(env, ingest.DefaultConfig()))
	fb, err := feedback.New(env, feedback.Config{WindowLabels: 100, Window: time.Hour, Wait: time.Second, IdleTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	natstest.RunService(t, fb)
	r.handler = r.newHandler(t, cfg)
	mux := http.NewServeMux()
	r.handler.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *rig) newHandler(t *testing.T, cfg Config) *Handler {
	t.Helper()
	h, err := New(context.Background(), Options{NC: r.nc, JS: r.js, Subjects: subjects, Config: cfg, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func post(t *testing.T, url, ctype string, body []byte, gz bool) (int, []byte) {
	t.Helper()
	if gz {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = b.Bytes()
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// Errorf, not Fatal: post also runs on goroutines of its own.
		t.Errorf("post %s: %v", url, err)
		return 0, nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// messages waits until subject holds n messages in stream and returns them.
func messages(t *testing.T, js jetstream.JetStream, stream, subject string, n int) [][]byte {
	t.Helper()
	ctx := context.Background()
	var out [][]byte
	natstest.WaitFor(t, 20*time.Second, func() error {
		s, err := js.Stream(ctx, subjects.StreamName(stream))
		if err != nil {
			return err
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			return err
		}
		if got := int(info.State.Subjects[subject]); got != n {
			return fmt.Errorf("%s holds %d messages, want %d", subject, got, n)
		}
		return nil
	})
	cons, err := js.OrderedConsumer(ctx, subjects.StreamName(stream), jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		out = append(out, m.Data())
	}
	if len(out) != n {
		t.Fatalf("read %d messages of %s, want %d", len(out), subject, n)
	}
	return out
}

func metricValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestPredictionLines: JSON lines get one answer with the accepted count
// and each rejected line's number and reasons (blank lines counted in the
// numbering); the accepted lines reach lookout.predictions.<model> through
// the ingest service, the rejected ones lookout.rejected.<model> with the
// same reasons, as if they had been published over NATS.
func TestPredictionLines(t *testing.T) {
	r := newRig(t, Config{})
	body := strings.Join([]string{
		`{"id":"p1","version":"v1","prediction":0.8,"features":{"age":42},"request_id":"r1"}`,
		``,
		`{"id":"p2","version":"v1","prediction":0.3,"confidence":2}`,
		`{"id":"p3","model":"fraud","version":"v1","prediction":0.3}`,
		`{"version":"v1","prediction":"stay"}`,
		`not json at all`,
	}, "\n")
	status, out := post(t, r.url+"/v1/predictions/churn", "application/x-ndjson", []byte(body), false)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, out)
	}
	var answer linesAnswer
	if err := json.Unmarshal(out, &answer); err != nil {
		t.Fatal(err)
	}
	if answer.Accepted != 2 {
		t.Errorf("accepted %d, want 2: %s", answer.Accepted, out)
	}
	want := map[int]string{3: event.CodeOutOfRange, 4: event.CodeModelMismatch, 6: event.CodeNotJSON}
	if len(answer.Rejected) != len(want) {
		t.Fatalf("rejected %+v, want lines 3, 4 and 6", answer.Rejected)
	}
	for _, rej := range answer.Rejected {
		if len(rej.Reasons) == 0 || rej.Reasons[0].Code != want[rej.Line] {
			t.Errorf("line %d: reasons %+v, want code %q", rej.Line, rej.Reasons, want[rej.Line])
		}
	}
	preds := messages(t, r.js, natsbus.StreamPredictions, subjects.For(natsbus.KindPredictions, "churn"), 2)
	p, reasons := event.DecodePrediction(preds[0], event.DecodeOptions{})
	if len(reasons) > 0 || p.GetId() != "p1" || p.GetRequestId() != "r1" || p.GetFeatures()["age"].GetNumber() != 42 {
		t.Errorf("first prediction %s (%v)", preds[0], reasons)
	}
	rejected := messages(t, r.js, natsbus.StreamRejected, subjects.For(natsbus.KindRejected, "churn"), 3)
	var codes []string
	for _, b := range rejected {
		rej, err := event.UnmarshalRejection(b)
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, rej.GetReasons()[0].GetCode())
	}
	if strings.Join(codes, ",") != "out_of_range,model_mismatch,not_json" {
		t.Errorf("rejections on lookout.rejected.churn have codes %v", codes)
	}
	if got := metricValue(t, r.handler.metricsRegistry(), "lookout_http_ingest_events_total", "result", "rejected"); got != 3 {
		t.Errorf("rejected events counted %v, want 3", got)
	}

	// The same request again: the events with an id are stored once.
	status, out = post(t, r.url+"/v1/predictions/churn", "application/json", []byte(body), false)
	if status != http.StatusOK || !strings.Contains(string(out), `"duplicates":1`) {
		t.Errorf("retry: status %d, %s; want one duplicate (p1)", status, out)
	}
}

// TestFeedbackLines: feedback lines are checked like feedback on NATS,
// and a label by request_id joins the prediction sent over HTTP.
func TestFeedbackLines(t *testing.T) {
	r := newRig(t, Config{})
	ts := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	status, out := post(t, r.url+"/v1/predictions/churn", "application/json",
		[]byte(`{"id":"p1","request_id":"r1","version":"v1","prediction":"churn","ts":"`+ts+`"}`), false)
	if status != http.StatusOK {
		t.Fatalf("prediction: %d %s", status, out)
	}
	status, out = post(t, r.url+"/v1/feedback/churn", "application/json",
		[]byte(`{"request_id":"r1","label":"churn","ts":"`+ts+`"}`+"\n"+`{"id":"p1"}`), false)
	if status != http.StatusOK {
		t.Fatalf("feedback: %d %s", status, out)
	}
	var answer linesAnswer
	_ = json.Unmarshal(out, &answer)
	if answer.Accepted != 1 || len(answer.Rejected) != 1 || answer.Rejected[0].Line != 2 || answer.Rejected[0].Reasons[0].Code != event.CodeMissing {
		t.Errorf("feedback answer %s, want 1 accepted and line 2 rejected as missing", out)
	}
	natstest.WaitFor(t, 20*time.Second, func() error {
		if got := metricValue(t, r.reg, "lookout_feedback_events_total", "result", "joined"); got != 1 {
			return fmt.Errorf("feedback joined %v, want 1", got)
		}
		return nil
	})
	rej := messages(t, r.js, natsbus.StreamRejected, subjects.For(natsbus.KindRejected, "churn"), 1)
	if !strings.Contains(string(rej[0]), `"missing"`) {
		t.Errorf("feedback rejection %s", rej[0])
	}
}

// TestBadRequests: a body that is not JSON at all, a bad model token and a
// body over the limit (also once gunzipped) are refused whole, and
// nothing is published.
func TestBadRequests(t *testing.T) {
	r := newRig(t, Config{})
	big := bytes.Repeat([]byte(`{"version":"v1","prediction":1}`+"\n"), MaxBodyBytes/31+10)
	cases := []struct {
		name   string
		path   string
		body   []byte
		gz     bool
		status int
	}{
		{"not JSON", "/v1/predictions/churn", []byte("hello\nworld"), false, http.StatusBadRequest},
		{"empty", "/v1/feedback/churn", nil, false, http.StatusBadRequest},
		{"bad model", "/v1/predictions/a.b", []byte(`{}`), false, http.StatusBadRequest},
		{"over the limit", "/v1/predictions/churn", big, false, http.StatusRequestEntityTooLarge},
		{"over the limit gunzipped", "/v1/predictions/churn", big, true, http.StatusRequestEntityTooLarge},
	}
	for _, c := range cases {
		status, out := post(t, r.url+c.path, "application/json", c.body, c.gz)
		if status != c.status {
			t.Errorf("%s: status %d (%s), want %d", c.name, status, out, c.status)
		}
	}
	s, err := r.js.Stream(context.Background(), subjects.StreamName(natsbus.StreamIngest))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.LastSeq != 0 {
		t.Errorf("the ingest stream stored %d messages, want none", info.State.LastSeq)
	}
}

// TestConcurrentRequests: more lines in flight than the handler's pending
// limit (8 requests of 1,500 lines at once) are all stored and counted,
// each request answering only once its lines are stored.
func TestConcurrentRequests(t *testing.T) {
	r := newRig(t, Config{})
	const requests, lines = 8, 1500
	errs := make(chan error, requests)
	for k := range requests {
		go func() {
			var b strings.Builder
			for i := range lines {
				fmt.Fprintf(&b, `{"id":"c%d-%d","version":"v1","prediction":%d}`+"\n", k, i, i)
			}
			status, out := post(t, r.url+"/v1/predictions/load", "application/json", []byte(b.String()), k%2 == 1)
			if status != http.StatusOK || !strings.Contains(string(out), fmt.Sprintf(`"accepted":%d,`, lines)) {
				errs <- fmt.Errorf("request %d: %d %.200s", k, status, out)
				return
			}
			errs <- nil
		}()
	}
	for range requests {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	natstest.WaitFor(t, 60*time.Second, func() error {
		s, err := r.js.Stream(context.Background(), subjects.StreamName(natsbus.StreamPredictions))
		if err != nil {
			return err
		}
		info, err := s.Info(context.Background())
		if err != nil {
			return err
		}
		if info.State.Msgs != requests*lines {
			return fmt.Errorf("%d predictions stored, want %d", info.State.Msgs, requests*lines)
		}
		return nil
	})
}
