package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"
)

// Partitioned runs a service that keeps per-model state over many
// processes: the models are cut into Env.Partitions partitions (by
// natsbus.PartitionOf, the hash JetStream's partition subject transform
// uses), one service per partition reads only its partition's models, and
// each partition has a lease of its own (<name>.p<i> in LOOKOUT_LEADERS),
// so each model is worked on by one process at a time.
//
// Every process registers itself in the same bucket (members.<name>.<id>,
// renewed like a lease), and takes leases up to its fair share, the
// partitions divided by the live processes, rounded up. A process that
// holds more than its share (one that started first, before a second
// joined) hands partitions over one at a time, cleanly: the service stops,
// stores its checkpoints and releases the lease, and another process takes
// it at once. A crashed process's leases and registration expire after the
// TTL, and the others take its partitions.
type Partitioned struct {
	Env  Env
	Name string
	// Build makes the service of one partition (env.Partition); it is
	// called each time a partition's lease is taken.
	Build  func(env Env) (Service, error)
	Holder string
	// TTL is the leases' lifetime; 0 means DefaultLeaseTTL.
	TTL time.Duration
}

var _ Service = (*Partitioned)(nil)

// Run runs the partitions' singletons until ctx ends (nil) or one fails
// (its error).
func (p *Partitioned) Run(ctx context.Context) error {
	ttl := p.TTL
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	kv, err := openLeases(ctx, p.Env, ttl)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	sh := &share{partitions: p.Env.Partitions}
	sh.members.Store(1)
	member := "members." + p.Name + "." + nuid.Next()
	// Register, then wait a counting round before taking leases: processes
	// started together (a compose file's) then share the partitions from
	// the start, instead of one taking all and handing half over.
	settled := make(chan struct{})
	go p.register(runCtx, kv, member, ttl, sh, settled)
	select {
	case <-settled:
	case <-ctx.Done():
		return nil
	}

	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for i := range p.Env.Partitions {
		env := p.Env
		env.Partition = i
		env.Log = p.Env.Log.With(zap.Int("partition", i))
		single := &Singleton{
			Env: env, Name: fmt.Sprintf("%s.p%d", p.Name, i), Holder: p.Holder, TTL: ttl, gate: sh,
			fresh: func() (Service, error) { return p.Build(env) },
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := single.Run(runCtx); err != nil && runCtx.Err() == nil {
				once.Do(func() { firstErr = err })
				cancel()
			}
		}()
	}
	wg.Wait()
	delCtx, cancelDel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = kv.Delete(delCtx, member)
	cancelDel()
	return firstErr
}

// register keeps this process's registration alive and counts the live
// processes of the service.
func (p *Partitioned) register(ctx context.Context, kv jetstream.KeyValue, member string, ttl time.Duration, sh *share, settled chan<- struct{}) {
	prefix := "members." + p.Name + "."
	put := time.Time{}
	for round := 0; ctx.Err() == nil; round++ {
		if time.Since(put) >= ttl/3 {
			putCtx, cancel := context.WithTimeout(ctx, ttl/3)
			if _, err := kv.Put(putCtx, member, []byte(p.Holder)); err == nil {
				put = time.Now()
			} else if ctx.Err() == nil {
				p.Env.Log.Warn("registration not renewed; trying again", zap.Error(err))
			}
			cancel()
		}
		listCtx, cancel := context.WithTimeout(ctx, ttl/3)
		keys, err := kv.Keys(listCtx)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrNoKeysFound) {
			n := int64(0)
			for _, k := range keys {
				if strings.HasPrefix(k, prefix) {
					n++
				}
			}
			if old := sh.members.Swap(max(n, 1)); old != max(n, 1) {
				p.Env.Log.Info("processes of the service changed", zap.Int64("processes", max(n, 1)),
					zap.Int("partitions", p.Env.Partitions), zap.Int("share", sh.fair()))
			}
		}
		if round == 1 {
			close(settled)
		}
		sleep(ctx, ttl/5)
	}
}

// share is the fair share of one process: how many partitions' leases it
// may hold, and how many it holds (or is taking).
type share struct {
	partitions int
	members    atomic.Int64
	mu         sync.Mutex
	held       int
}

func (s *share) fair() int {
	n := int(s.members.Load())
	return (s.partitions + n - 1) / n
}

func (s *share) take() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held >= s.fair() {
		return false
	}
	s.held++
	return true
}

func (s *share) give() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held--
}

func (s *share) yield() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held > s.fair() {
		s.held--
		return true
	}
	return false
}
