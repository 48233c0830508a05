package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// runDemo publishes predictions of a churn model, 200 a second, with a
// canary beside production on a tenth of the requests and labels for a
// fifth of them a little later. Every third
// ten-minute period the world shifts: customers get older, the plan mix
// changes, and confidence falls, so drift and alerts have something to see.
func runDemo(ctx context.Context, js jetstream.JetStream, subjects natsbus.Subjects, log *zap.Logger) {
	const model = "demo-churn"
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	log.Info("demo publishing", zap.String("subject", subjects.For(natsbus.KindIngest, model)))
	plans := []string{"free", "pro", "team"}
	run := strconv.FormatInt(time.Now().Unix(), 36)
	type labelled struct {
		n       int
		id      string
		score   float64
		shifted bool
	}
	var pending []labelled
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		shifted := time.Now().Minute()/10%3 == 2
		age := 40 + 10*rng.NormFloat64()
		plan := plans[rng.IntN(2)]
		if shifted {
			age += 12
			plan = plans[1+rng.IntN(2)]
		}
		income := 50000 + 15000*rng.NormFloat64()
		score := 1 / (1 + math.Exp(-(age-45)/8))
		conf := 0.75 + 0.2*math.Abs(score-0.5)*2
		if shifted {
			conf -= 0.15
		}
		// Only requests that the canary also scores carry a request id: a
		// production half with one would wait for a pair in vain.
		withCanary := n%10 == 0
		requestID := ""
		if withCanary {
			requestID = fmt.Sprintf("req-%d-%d", time.Now().Unix(), n)
		}
		publish := func(role, version string, s float64, latency float64) {
			p := &event.Prediction{
				Id:        fmt.Sprintf("demo-%s-%d-%s", run, n, role),
				RequestId: requestID, Model: model, Version: version, Role: role,
				TsUnixNano: proto.Int64(time.Now().UnixNano()),
				Features: map[string]*event.Value{
					"age": event.Number(math.Round(age*10) / 10), "plan": event.Text(plan),
					"income": event.Number(math.Round(income)), "trial": event.Flag(rng.IntN(4) == 0),
				},
				Prediction: event.Number(math.Round(s*1000) / 1000),
				Confidence: &conf,
				LatencyMs:  &latency,
			}
			msg := nats.NewMsg(subjects.For(natsbus.KindIngest, model))
			msg.Data = event.AppendJSON(nil, p)
			if _, err := js.PublishMsgAsync(msg); err != nil && ctx.Err() == nil {
				log.Warn("demo publish failed", zap.Error(err))
			}
		}
		publish(event.RoleProduction, "v1", score, 4+rng.ExpFloat64())
		// The truth comes later: a label for every fifth prediction, about
		// two seconds after it; while the world is shifted the model is
		// wrong more often.
		if n%5 == 0 {
			pending = append(pending, labelled{n: n, id: fmt.Sprintf("demo-%s-%d-%s", run, n, event.RoleProduction), score: score, shifted: shifted})
		}
		for len(pending) > 0 && n-pending[0].n >= 400 {
			l := pending[0]
			pending = pending[1:]
			truth := rng.Float64() < l.score
			if l.shifted && rng.IntN(3) == 0 {
				truth = !truth
			}
			label := 0
			if truth {
				label = 1
			}
			data := fmt.Appendf(nil, `{"id":%q,"label":%d,"helpful":%t}`, l.id, label, rng.IntN(4) != 0)
			if _, err := js.PublishAsync(subjects.For(natsbus.KindFeedback, model), data); err != nil && ctx.Err() == nil {
				log.Warn("demo feedback publish failed", zap.Error(err))
			}
		}
		if withCanary {
			// A little slower than production, well within the guardrail.
			publish(event.RoleCanary, "v2", math.Min(1, score+0.02*rng.NormFloat64()), 4.2+rng.ExpFloat64())
		}
	}
}
