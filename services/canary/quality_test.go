package canary

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	judge "github.com/lookout-ml/lookout/pkg/canaryjudge"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// prodLabel is the production label of request i in pairs().
func prodLabel(i int) string {
	if i%4 == 0 {
		return "churn"
	}
	return "stay"
}

func otherLabel(l string) string {
	if l == "stay" {
		return "churn"
	}
	return "stay"
}

// publishFeedback stores the labels truth gives (request i: truth(i), ""
// for none) on lookout.feedback.<model>, every third by the production
// prediction's id, every third by the canary's, the rest by request_id.
func publishFeedback(t *testing.T, js jetstream.JetStream, model string, n int, truth func(int) string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sent := 0
	for i := range n {
		l := truth(i)
		if l == "" {
			continue
		}
		id := fmt.Sprintf("req-%04d", i)
		name := `"request_id":"` + id + `"`
		switch i % 3 {
		case 1:
			name = `"id":"p-` + id + `"`
		case 2:
			name = `"id":"c-` + id + `"`
		}
		msg := nats.NewMsg(subjects.For(natsbus.KindFeedback, model))
		msg.Data = []byte(`{` + name + `,"model":"` + model + `","label":"` + l + `","ts":"` + eventBase.Add(time.Hour).Format(time.RFC3339Nano) + `"}`)
		msg.Header.Set("Content-Type", "application/json")
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	return sent
}

// TestQualityVerdicts runs the service with labels on the feedback stream:
// labelled quality outranks agreement, a worse canary rolls back on it,
// and too few labels leave low agreement at hold.
func TestQualityVerdicts(t *testing.T) {
	cases := []struct {
		name      string
		flipEvery int
		truth     func(int) string
		verdict   string
		labelled  int
		check     func(t *testing.T, q *judge.Quality)
	}{
		// 1 in 16 flipped: agreement 0.9375 < 0.95, but on the labels the
		// canary is as good as production (production is the one wrong on
		// every other flipped request): promote.
		{"equally good, 94% agreement", 16, func(i int) string {
			if i%32 == 0 {
				return otherLabel(prodLabel(i))
			}
			return prodLabel(i)
		}, judge.VerdictPromote, 400, func(t *testing.T, q *judge.Quality) {
			if q.Production != 1-13.0/400 || q.Canary != 1-12.0/400 || q.PValue != 1 {
				t.Errorf("quality %+v", q)
			}
		}},
		// 1 in 20 flipped and production always right, labels on 320
		// requests: the canary is 5 points worse, significantly: rollback.
		{"5 points worse", 20, func(i int) string {
			if i < 320 {
				return prodLabel(i)
			}
			return ""
		}, judge.VerdictRollback, 320, func(t *testing.T, q *judge.Quality) {
			if q.Production != 1 || q.Canary != 0.95 || q.Difference > -0.0499 || q.PValue >= 1e-4 {
				t.Errorf("quality %+v", q)
			}
		}},
		// 50 labels, agreement 0.9: hold, not rollback.
		{"too few labels", 10, func(i int) string {
			if i < 50 {
				return prodLabel(i)
			}
			return ""
		}, judge.VerdictHold, 50, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, nc, js := natstest.RunWithStreams(t)
			cfg := testConfig()
			cfg.WindowPairs = 400
			svc := start(t, nc, js, cfg)
			// Labels first: a full window closes at its last pair, and
			// labels count only until it closes.
			sent := publishFeedback(t, js, "churn", 400, c.truth)
			natstest.WaitFor(t, 10*time.Second, func() error {
				if got := svc.sum(t, "lookout_canary_feedback_total"); got < float64(sent) {
					return errors.New("feedback not read yet")
				}
				return nil
			})
			prod, can := pairs("churn", 400, c.flipEvery, 1)
			publish(t, js, shuffled(prod, can))
			r := waitReports(t, js, "churn", 1)[0]
			if r.Verdict != c.verdict {
				t.Errorf("verdict %s %q, want %s", r.Verdict, r.Reasons, c.verdict)
			}
			q := r.Quality
			if q == nil || q.LabelledPairs != c.labelled || q.Metric != judge.MetricAccuracy || q.Test != judge.TestMcNemar {
				t.Fatalf("quality %+v, want %d labelled pairs by accuracy and mcnemar", q, c.labelled)
			}
			if c.check != nil {
				c.check(t, q)
			}
		})
	}
}
