// Package natstest starts real NATS servers with JetStream for tests.
package natstest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/service"
)

// RunServer starts an embedded NATS server with JetStream in a temporary
// folder on a free port, and shuts it down when the test ends.
func RunServer(tb testing.TB) *server.Server {
	tb.Helper()
	ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{Listen: "127.0.0.1:-1", DataDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// Connect connects to ns and closes the connection when the test ends.
func Connect(tb testing.TB, ns *server.Server) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}

// RunWithStreams starts a server, connects to it and creates Lookout's
// streams under the default prefix.
func RunWithStreams(tb testing.TB) (*server.Server, *nats.Conn, jetstream.JetStream) {
	tb.Helper()
	ns := RunServer(tb)
	nc, js := Connect(tb, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := natsbus.EnsureStreams(ctx, js, natsbus.NewSubjects(""), natsbus.DefaultStreamOptions()); err != nil {
		tb.Fatal(err)
	}
	return ns, nc, js
}

// WaitFor polls cond every 20ms until it returns nil or timeout passes,
// then fails the test with cond's last error.
func WaitFor(tb testing.TB, timeout time.Duration, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Env returns a service environment on nc and js under the default prefix,
// with a test logger and a registry of its own.
func Env(tb testing.TB, nc *nats.Conn, js jetstream.JetStream) service.Env {
	return service.Env{
		NC: nc, JS: js, Subjects: natsbus.NewSubjects(""),
		Log: zaptest.NewLogger(tb), Metrics: prometheus.NewRegistry(), Health: service.NewHealth(),
	}
}

// RunService runs svc until the returned stop is called or the test ends.
// stop cancels the service, waits for Run to return, and fails the test
// when Run returns an error or takes longer than 30 seconds. Calling stop
// again does nothing.
func RunService(tb testing.TB, svc service.Service) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("%T.Run returned %v", svc, err)
				}
			case <-time.After(30 * time.Second):
				tb.Errorf("%T.Run did not return within 30s of its cancel", svc)
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}
