package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// LeadersRole names the JetStream key-value bucket that holds the leases of
// singleton services: <PREFIX>_LEADERS.
const LeadersRole = "LEADERS"

// DefaultLeaseTTL is how long a lease outlives a leader that stopped
// renewing it (a crash, a partition) before a standby takes over.
const DefaultLeaseTTL = 10 * time.Second

// ErrLeaseLost is returned by Singleton.Run when the process could not
// renew its lease in time (a partition, a long pause) and another may lead
// by now. The service has been stopped; the process should exit and be
// restarted clean, rather than resume with state another process moved on
// from.
var ErrLeaseLost = errors.New("lease lost")

// Singleton runs a service that keeps per-model state (drift windows,
// canary halves, alert groups) in one process at a time, however many
// processes run it: the one holding a lease in JetStream works, the others
// stand by and take over when the lease ends. A process that stops cleanly
// gives the lease back at once; a crashed one loses it after TTL.
type Singleton struct {
	Env     Env
	Name    string
	Service Service
	// Holder names this process in the lease. A process that restarts
	// with the same holder (the same host and data folder, say) takes its
	// own lease back at once instead of waiting for it to expire; empty
	// means a name of its own for every run.
	Holder string
	// TTL is the lease's lifetime without renewal; 0 means DefaultLeaseTTL.
	TTL time.Duration
}

var _ Service = (*Singleton)(nil)

// Run waits for the lease, runs the service while it holds it, and
// returns when ctx ends (nil), the service fails (its error) or the lease
// is lost (ErrLeaseLost, after stopping the service).
func (s *Singleton) Run(ctx context.Context) error {
	ttl := s.TTL
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	bucket := s.Env.Subjects.StreamName(LeadersRole)
	var kv jetstream.KeyValue
	err := natsbus.Retry(ctx, s.Env.Log, "kv "+bucket, func(ctx context.Context) error {
		replicas, err := natsbus.StreamReplicas(ctx, s.Env.JS, s.Env.Subjects)
		if err != nil {
			return err
		}
		kv, err = s.Env.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      bucket,
			Description: "lookout: leases of singleton services",
			TTL:         ttl,
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("leases %s: %w", bucket, err)
	}
	me := []byte(s.Holder)
	if s.Holder == "" {
		me = []byte(nuid.Next())
	}
	standingBy := false
	for ctx.Err() == nil {
		rev, err := kv.Create(ctx, s.Name, me)
		if errors.Is(err, jetstream.ErrKeyExists) {
			rev, err = s.reclaim(ctx, kv, me)
		}
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
				s.Env.Log.Warn("lease not taken; trying again", zap.String("lease", s.Name), zap.Error(err))
			} else if !standingBy && ctx.Err() == nil {
				s.Env.Log.Info("another process leads; standing by", zap.String("lease", s.Name))
				standingBy = true
			}
			sleep(ctx, ttl/5)
			continue
		}
		s.Env.Log.Info("leading", zap.String("lease", s.Name))
		return s.lead(ctx, kv, rev, me, ttl)
	}
	return nil
}

// reclaim takes over a lease this holder left behind (a crash and a quick
// restart); it fails with ErrKeyExists when another holder has it.
func (s *Singleton) reclaim(ctx context.Context, kv jetstream.KeyValue, me []byte) (uint64, error) {
	entry, err := kv.Get(ctx, s.Name)
	if err != nil {
		return 0, err
	}
	if s.Holder == "" || string(entry.Value()) != s.Holder {
		return 0, jetstream.ErrKeyExists
	}
	return kv.Update(ctx, s.Name, me, entry.Revision())
}

// lead runs the service while the lease is renewed every TTL/3. A failed
// renewal is tried again while the lease still has a third of its life;
// past that the service stops, before anyone else could take the lease.
func (s *Singleton) lead(ctx context.Context, kv jetstream.KeyValue, rev uint64, me []byte, ttl time.Duration) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Service.Run(runCtx) }()
	renew := time.NewTicker(ttl / 6)
	defer renew.Stop()
	renewed := time.Now()
	for {
		select {
		case err := <-done:
			s.release(kv, rev)
			return err
		case <-ctx.Done():
			err := <-done
			s.release(kv, rev)
			return err
		case <-renew.C:
			if time.Since(renewed) < ttl/3 {
				continue
			}
			next, err := kv.Update(ctx, s.Name, me, rev)
			switch {
			case err == nil:
				rev, renewed = next, time.Now()
			case ctx.Err() != nil:
				// Shutting down: the Done case follows.
			case time.Since(renewed) < 2*ttl/3:
				// A blip (a reconnect, say): the lease holds a while yet,
				// and no one else can take it before it expires.
				s.Env.Log.Warn("lease not renewed; trying again", zap.String("lease", s.Name), zap.Error(err))
			default:
				s.Env.Log.Error("lease not renewed in time; stopping the service", zap.String("lease", s.Name), zap.Error(err))
				cancel()
				<-done
				return fmt.Errorf("%s: %w: %v", s.Name, ErrLeaseLost, err)
			}
		}
	}
}

// release gives the lease back so that a standby need not wait for it to
// expire; it does nothing if another process holds it by now.
func (s *Singleton) release(kv jetstream.KeyValue, rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := kv.Delete(ctx, s.Name, jetstream.LastRevision(rev)); err != nil {
		s.Env.Log.Debug("lease not released; it expires by itself", zap.String("lease", s.Name), zap.Error(err))
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
