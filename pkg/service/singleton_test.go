package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/service"
)

// activity counts how many copies of a fake service run at once.
type activity struct {
	now, most, starts atomic.Int32
}

func (a *activity) service() service.Service {
	return service.Func(func(ctx context.Context) error {
		a.starts.Add(1)
		n := a.now.Add(1)
		for m := a.most.Load(); n > m && !a.most.CompareAndSwap(m, n); m = a.most.Load() {
		}
		<-ctx.Done()
		a.now.Add(-1)
		return nil
	})
}

func waitActive(t *testing.T, a *activity, starts int32) {
	t.Helper()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if a.now.Load() != 1 || a.starts.Load() != starts {
			return fmt.Errorf("%d running, %d starts; want 1 running after %d starts", a.now.Load(), a.starts.Load(), starts)
		}
		return nil
	})
}

// TestSingletonHandsOverOnStop: of two processes running the same
// singleton, one works and one stands by; when the first stops cleanly the
// second takes over at once, and the two never run together.
func TestSingletonHandsOverOnStop(t *testing.T) {
	ns, nc, js := natstest.RunWithStreams(t)
	_ = ns
	var a activity
	first := &service.Singleton{Env: natstest.Env(t, nc, js), Name: "drift", Service: a.service(), TTL: 3 * time.Second}
	stopFirst := natstest.RunService(t, first)
	waitActive(t, &a, 1)
	second := &service.Singleton{Env: natstest.Env(t, nc, js), Name: "drift", Service: a.service(), TTL: 3 * time.Second}
	natstest.RunService(t, second)
	time.Sleep(3500 * time.Millisecond) // longer than the TTL: the lease is renewed, the standby waits
	if a.starts.Load() != 1 {
		t.Fatalf("the standby started while the leader renews its lease (%d starts)", a.starts.Load())
	}
	stopFirst()
	waitActive(t, &a, 2)
	if a.most.Load() != 1 {
		t.Fatalf("%d copies ran at once", a.most.Load())
	}
}

// TestSingletonTakesOverFromACrashedLeader: a leader whose connection dies
// stops its service when it cannot renew; the standby takes over once the
// lease expires.
func TestSingletonTakesOverFromACrashedLeader(t *testing.T) {
	ns, nc, js := natstest.RunWithStreams(t)
	crashConn, crashJS := natstest.Connect(t, ns)
	var a activity
	leader := &service.Singleton{Env: natstest.Env(t, crashConn, crashJS), Name: "canary", Service: a.service(), TTL: time.Second}
	leaderDone := make(chan error, 1)
	go func() { leaderDone <- leader.Run(context.Background()) }()
	waitActive(t, &a, 1)
	standby := &service.Singleton{Env: natstest.Env(t, nc, js), Name: "canary", Service: a.service(), TTL: time.Second}
	natstest.RunService(t, standby)

	crashConn.Close() // the leader can no longer renew
	select {
	case err := <-leaderDone:
		if !errors.Is(err, service.ErrLeaseLost) {
			t.Fatalf("the cut-off leader returned %v, want ErrLeaseLost", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cut-off leader went on")
	}
	waitActive(t, &a, 2)
	if a.most.Load() != 1 {
		t.Fatalf("%d copies ran at once", a.most.Load())
	}
}

// TestSingletonReclaimsItsOwnLease: a process that crashed and restarts
// with the same holder name takes its lease back at once, not after the
// TTL, while a process with another name still waits.
func TestSingletonReclaimsItsOwnLease(t *testing.T) {
	ns, nc, js := natstest.RunWithStreams(t)
	crashConn, crashJS := natstest.Connect(t, ns)
	var a activity
	crashed := &service.Singleton{Env: natstest.Env(t, crashConn, crashJS), Name: "alert", Service: a.service(), TTL: time.Hour, Holder: "host-a:/data"}
	go func() { _ = crashed.Run(context.Background()) }()
	waitActive(t, &a, 1)
	crashConn.Close() // a crash: the lease stays for an hour

	var b activity
	other := &service.Singleton{Env: natstest.Env(t, nc, js), Name: "alert", Service: b.service(), TTL: time.Hour, Holder: "host-b:/data"}
	natstest.RunService(t, other)
	restarted := &service.Singleton{Env: natstest.Env(t, nc, js), Name: "alert", Service: b.service(), TTL: time.Hour, Holder: "host-a:/data"}
	natstest.RunService(t, restarted)
	waitActive(t, &b, 1)
	time.Sleep(300 * time.Millisecond)
	if b.starts.Load() != 1 {
		t.Fatalf("%d started; only the restarted holder may", b.starts.Load())
	}
}

// TestSingletonSurvivesForeignWrites: someone outside the protocol writes
// or deletes the lease key (`nats kv put LOOKOUT_LEADERS drift attacker`,
// every few hundred milliseconds) on a bus without users. The leader takes
// its lease back each time and its service never stops: a lost lease makes
// a process stop only when it cannot renew.
func TestSingletonSurvivesForeignWrites(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	var a activity
	ttl := 1500 * time.Millisecond
	leader := &service.Singleton{Env: natstest.Env(t, nc, js), Name: "drift", Service: a.service(), TTL: ttl}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- leader.Run(ctx) }()
	waitActive(t, &a, 1)
	kv, err := js.KeyValue(ctx, "LOOKOUT_LEADERS")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 { // four TTLs
		if i%3 == 2 {
			_ = kv.Delete(ctx, "drift")
		} else if _, err := kv.Put(ctx, "drift", []byte("attacker")); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("the leader stopped after a foreign write: %v", err)
		case <-time.After(ttl / 3):
		}
	}
	natstest.WaitFor(t, 5*time.Second, func() error {
		e, err := kv.Get(ctx, "drift")
		if err != nil {
			return err
		}
		if string(e.Value()) == "attacker" {
			return errors.New("the lease still holds the foreign value")
		}
		return nil
	})
	if a.starts.Load() != 1 || a.now.Load() != 1 {
		t.Fatalf("%d starts, %d running; want the first start still running", a.starts.Load(), a.now.Load())
	}
}

// TestSingletonLeadsAgainAfterLosingItsLease: a leader that cannot renew
// (its leases bucket gone, as while a cluster elects the bucket's new
// leader) stops its service in time, and, building the service anew, takes
// the lease again once it can; the process does not stop.
func TestSingletonLeadsAgainAfterLosingItsLease(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	var a activity
	ttl := 1500 * time.Millisecond
	leader := service.NewTestSingleton(natstest.Env(t, nc, js), "canary", ttl, func() (service.Service, error) { return a.service(), nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- leader.Run(ctx) }()
	waitActive(t, &a, 1)
	kv, err := js.KeyValue(ctx, "LOOKOUT_LEADERS")
	if err != nil {
		t.Fatal(err)
	}
	status, _ := kv.Status(ctx)
	if err := js.DeleteKeyValue(ctx, "LOOKOUT_LEADERS"); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		if a.now.Load() != 0 {
			return errors.New("the service still runs without a lease")
		}
		return nil
	})
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "LOOKOUT_LEADERS", TTL: status.TTL(), History: 1}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, &a, 2)
	select {
	case err := <-done:
		t.Fatalf("the singleton stopped: %v", err)
	default:
	}
}
