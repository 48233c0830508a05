package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/services/alert"
)

// freePort returns a loopback port nobody listens on (for the embedded
// NATS server, whose URL the test needs before Run prints it).
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestDemoShowsItAll runs `lookout run --demo` in process, with the
// default configuration and the demo's own timings, ten times faster than
// the wall clock: the same events with the same event times a user's
// demo publishes (the alert waits, which partly run on wall time, are cut
// by the same factor). Within the first five minutes of event time it must
// show drift reports, a dataset_drift and a confidence_drop alert that
// start in the shift phase, canary reports and a canary_rollback alert
// that starts in the canary's bad phase, performance reports of late
// labels that reach both roles' predictions by request_id, and each alert
// as a notification in the demo's log sink.
func TestDemoShowsItAll(t *testing.T) {
	const speed = 10
	port := freePort(t)
	// A group's notification clock runs on by wall time between alert
	// events (a canary report names its window's aligned end, ahead of
	// the demo's clock), so the wall-time waits shrink by the speed too.
	cfg := defaultConfig()
	ac := cfg.section(alert.Component).(alert.Config)
	ac.GroupWait, ac.GroupInterval = ac.GroupWait/speed, demoGroupInterval/speed
	cfg.sections[alert.Component.Name()] = ac
	core, logs := observer.New(zapcore.InfoLevel)
	m := &Main{
		Options: runOptions{
			listen: "127.0.0.1:" + strconv.Itoa(port), httpAddr: "127.0.0.1:0",
			dataDir: filepath.Join(t.TempDir(), "data"), demo: true,
		},
		Config: cfg, Log: zap.New(core), Stdout: io.Discard,
		demo: demoOptions{Speed: speed, Seed: 42},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	var nc *nats.Conn
	for deadline := time.Now().Add(20 * time.Second); ; {
		var err error
		if nc, err = nats.Connect(url); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect to the embedded server: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer nc.Close()
	subjects := natsbus.NewSubjects("")
	var (
		mu          sync.Mutex
		drift       []map[string]any
		canary      []map[string]any
		performance []map[string]any
		alerts      []alerting.Alert
		arrived     []time.Time // wall time each alert arrived
	)
	collect := func(kind string, into *[]map[string]any) {
		if _, err := nc.Subscribe(subjects.For(kind, demoModel), func(msg *nats.Msg) {
			var r map[string]any
			if err := json.Unmarshal(msg.Data, &r); err != nil {
				t.Errorf("%s report: %v", kind, err)
				return
			}
			mu.Lock()
			*into = append(*into, r)
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
	}
	collect(natsbus.KindDrift, &drift)
	collect(natsbus.KindCanary, &canary)
	collect(natsbus.KindPerformance, &performance)
	if _, err := nc.Subscribe(subjects.For(natsbus.KindAlerts, demoModel), func(msg *nats.Msg) {
		var a alerting.Alert
		if err := json.Unmarshal(msg.Data, &a); err != nil {
			t.Errorf("alert: %v", err)
			return
		}
		mu.Lock()
		alerts = append(alerts, a)
		arrived = append(arrived, time.Now())
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}

	// The demo's event clock starts at its first phase; demoAt says where
	// it was at a wall time.
	var start, startWall time.Time
	for deadline := time.Now().Add(20 * time.Second); start.IsZero(); {
		for _, e := range logs.FilterMessage("demo phase").All() {
			if ts, ok := e.ContextMap()["event_time"].(time.Time); ok {
				start, startWall = ts, e.Time
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the demo never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	demoAt := func(wall time.Time) time.Time { return start.Add(wall.Sub(startWall) * speed) }
	phase := demoPhase
	// inPhase says whether demo time at falls in phase k, or in the minute
	// after it, and within five minutes of the start: when a user watching
	// a live demo would see it.
	inPhase := func(at time.Time, k demoPhaseKind) bool {
		// A window straddling a phase boundary reports up to one window
		// (50 s) into the next phase.
		// And all of it within five minutes of the start.
		from := start.Add(time.Duration(k) * phase)
		to := start.Add(min(time.Duration(k)*phase+phase+time.Minute, 5*time.Minute))
		return !at.Before(from) && !at.After(to)
	}
	firing := func(rule string, k demoPhaseKind) bool {
		for i, a := range alerts {
			if a.Rule == rule && a.Firing() && inPhase(demoAt(arrived[i]), k) {
				return true
			}
		}
		return false
	}
	notified := func(rule, status string, from, to time.Duration) bool {
		for _, e := range logs.FilterMessage("notification").All() {
			f := e.ContextMap()
			at := demoAt(e.Time).Sub(start)
			if f["rule"] == rule && f["status"] == status && at >= from && at <= to {
				return true
			}
		}
		return false
	}
	labelled := func() bool {
		for _, r := range performance {
			roles, _ := r["roles"].(map[string]any)
			prod, _ := roles["production"].(map[string]any)
			can, _ := roles["canary"].(map[string]any)
			if n, _ := prod["accuracy_count"].(float64); n > 0 {
				if n, _ := can["accuracy_count"].(float64); n > 0 {
					return true
				}
			}
		}
		return false
	}
	// timeline logs what came when, in demo time (-v shows it on success).
	timeline := func() {
		mu.Lock()
		defer mu.Unlock()
		for i, a := range alerts {
			t.Logf("alert %s %s at %v of the demo: %s", a.Rule, a.Status, demoAt(arrived[i]).Sub(start), a.Summary)
		}
		for _, e := range logs.FilterMessage("notification").All() {
			f := e.ContextMap()
			t.Logf("notification %v %v at %v of the demo", f["rule"], f["status"], demoAt(e.Time).Sub(start))
		}
		for _, r := range drift {
			t.Logf("drift %v share %v drifted %v", r["window"], r["drift_share"], r["dataset_drifted"])
		}
		for _, r := range canary {
			t.Logf("canary %v %v %v", r["window"], r["verdict"], r["reasons"])
		}
		t.Logf("%d drift, %d canary, %d performance reports", len(drift), len(canary), len(performance))
	}
	// Six minutes of event time take 36 s at this speed; the rest of the
	// bound is for a loaded machine.
	var missing []string
	for deadline := time.Now().Add(55 * time.Second); ; {
		mu.Lock()
		missing = missing[:0]
		check := func(ok bool, what string) {
			if !ok {
				missing = append(missing, what)
			}
		}
		check(len(drift) >= 3, "three drift reports")
		check(firing(alerting.RuleDatasetDrift, phaseShift), "dataset_drift firing in the shift phase")
		check(firing(alerting.RuleConfidenceDrop, phaseShift), "confidence_drop firing in the shift phase")
		check(len(canary) >= 2, "two canary reports")
		check(firing(alerting.RuleCanaryRollback, phaseCanaryWorse), "canary_rollback firing in the canary's bad phase")
		check(labelled(), "a performance report with labels for both roles")
		// Live, both notifications come before five minutes (2:10 and
		// 3:50); at ten times the speed a loaded machine's delays count ten
		// times in demo time, so the bound here has a minute of slack.
		check(notified(alerting.RuleDatasetDrift, alerting.StatusFiring, phase, 6*time.Minute), "dataset_drift notified to the log sink")
		check(notified(alerting.RuleCanaryRollback, alerting.StatusFiring, 2*phase, 6*time.Minute), "canary_rollback notified to the log sink")
		// The drift alerts resolve after two normal windows, and the
		// resolution is notified before the inputs shift again.
		check(notified(alerting.RuleDatasetDrift, alerting.StatusResolved, 3*phase, 5*phase), "dataset_drift's resolution notified before the next shift")
		mu.Unlock()
		if len(missing) == 0 {
			timeline()
			break
		}
		if time.Now().After(deadline) {
			timeline()
			t.Fatalf("after 55 s the demo has not shown: %v", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
