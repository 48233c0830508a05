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
// by now, and the service cannot be built anew: it has been stopped, and
// the process should exit and be restarted clean, rather than resume with
// state another process moved on from. A Singleton that builds its
// service for each lease (components do) stands by and leads again
// instead.
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

	// gate, for one partition of a Partitioned, says whether this process
	// may take one more lease and whether it holds more than its share;
	// nil: take the lease whenever it is free.
	gate gate
	// fresh, if set, builds the service anew for each lease taken: a
	// service handed over and taken back must start from what is stored,
	// not from the state it had.
	fresh func() (Service, error)
}

// gate bounds the leases a process holds (see Partitioned).
type gate interface {
	// take reserves a lease; false when the process holds its share.
	take() bool
	// give returns a reservation or a lease.
	give()
	// yield says whether the process holds more than its share, and if
	// so counts this lease as given back.
	yield() bool
}

// errYielded: the service was stopped and its lease given back for a
// process that held less than its share.
var errYielded = errors.New("lease yielded")

var _ Service = (*Singleton)(nil)

// Run waits for the lease, runs the service while it holds it, and
// returns when ctx ends (nil), the service fails (its error) or the lease
// is lost (ErrLeaseLost, after stopping the service).
func (s *Singleton) Run(ctx context.Context) error {
	ttl := s.TTL
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	kv, err := openLeases(ctx, s.Env, ttl)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	me := []byte(s.Holder)
	if s.Holder == "" {
		me = []byte(nuid.Next())
	}
	standingBy := false
	for ctx.Err() == nil {
		if s.gate != nil && !s.gate.take() {
			sleep(ctx, ttl/5)
			continue
		}
		rev, err := kv.Create(ctx, s.Name, me)
		if errors.Is(err, jetstream.ErrKeyExists) {
			rev, err = s.reclaim(ctx, kv, me)
		}
		if err != nil {
			if s.gate != nil {
				s.gate.give()
			}
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
		err = s.lead(ctx, kv, rev, me, ttl)
		if errors.Is(err, errYielded) {
			s.Env.Log.Info("lease handed over: this process held more than its share", zap.String("lease", s.Name))
			standingBy = false
			continue
		}
		if errors.Is(err, ErrLeaseLost) && s.fresh != nil && ctx.Err() == nil {
			// The service stopped before anyone else could take the
			// lease; the next one starts from what is stored, so the
			// process need not exit: it stands by and takes the lease
			// again (a cluster electing a new leader for the leases
			// bucket, say).
			s.Env.Log.Warn("lease lost; standing by to take it again", zap.String("lease", s.Name), zap.Error(err))
			if s.gate != nil {
				s.gate.give()
			}
			standingBy = false
			continue
		}
		if s.gate != nil {
			s.gate.give()
		}
		return err
	}
	return nil
}

// openLeases opens (creating it when missing) the bucket of leases.
func openLeases(ctx context.Context, env Env, ttl time.Duration) (jetstream.KeyValue, error) {
	bucket := env.Subjects.StreamName(LeadersRole)
	var kv jetstream.KeyValue
	err := natsbus.Retry(ctx, env.Log, "kv "+bucket, func(ctx context.Context) error {
		replicas, err := natsbus.StreamReplicas(ctx, env.JS, env.Subjects)
		if err != nil {
			return err
		}
		kv, err = env.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
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
		return nil, fmt.Errorf("leases %s: %w", bucket, err)
	}
	return kv, nil
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
	svc := s.Service
	if s.fresh != nil {
		var err error
		if svc, err = s.fresh(); err != nil {
			s.release(kv, rev)
			return err
		}
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
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
			if s.gate != nil && s.gate.yield() {
				cancel()
				err := <-done
				s.release(kv, rev)
				if err != nil {
					return err
				}
				return errYielded
			}
			if time.Since(renewed) < ttl/3 {
				continue
			}
			next, err := kv.Update(ctx, s.Name, me, rev)
			if errors.Is(err, jetstream.ErrKeyExists) && time.Since(renewed) < ttl {
				// Someone wrote the key under us. No process that follows
				// this protocol can have: a standby only creates the key
				// once ours expired or was released, and ours is still
				// valid. Take it back rather than stop working because of
				// a foreign write.
				next, err = s.takeBack(ctx, kv, me)
			}
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

// takeBack overwrites a lease written by someone outside the protocol
// while this process still held it.
func (s *Singleton) takeBack(ctx context.Context, kv jetstream.KeyValue, me []byte) (uint64, error) {
	entry, err := kv.Get(ctx, s.Name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return kv.Create(ctx, s.Name, me)
	}
	if err != nil {
		return 0, err
	}
	s.Env.Log.Warn("lease overwritten from outside while held; taking it back",
		zap.String("lease", s.Name), zap.Int("foreign_value_bytes", len(entry.Value())))
	return kv.Update(ctx, s.Name, me, entry.Revision())
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
