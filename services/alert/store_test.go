package alert

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/service"
)

// watchedKV is the real silences bucket, handing each watcher it starts
// to the test.
type watchedKV struct {
	jetstream.KeyValue
	watchers chan jetstream.KeyWatcher
}

func (k *watchedKV) WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	w, err := k.KeyValue.WatchAll(ctx, opts...)
	if err == nil {
		k.watchers <- w
	}
	return w, err
}

// When the silences watcher closes under the dispatcher (as when its
// ordered consumer cannot be recreated), a new watch starts, health is ok
// again, and a silence added after it is seen.
func TestSilencesWatchRestartsWhenWatcherCloses(t *testing.T) {
	_, _, js := natstest.RunWithStreams(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	silences, err := OpenSilences(ctx, js, natsbus.NewSubjects(""))
	if err != nil {
		t.Fatal(err)
	}
	kv := &watchedKV{KeyValue: silences.kv, watchers: make(chan jetstream.KeyWatcher, 4)}
	silences.kv = kv
	health := service.NewHealth()
	var mu sync.Mutex
	var ids []string
	done := make(chan error, 1)
	go func() {
		done <- silences.watch(ctx, func(list []alerting.Silence) {
			mu.Lock()
			defer mu.Unlock()
			ids = ids[:0]
			for _, s := range list {
				ids = append(ids, s.ID)
			}
		}, health.Reporter("alert/silences"), zaptest.NewLogger(t))
	}()
	watcher := func() jetstream.KeyWatcher {
		select {
		case w := <-kv.watchers:
			return w
		case <-time.After(10 * time.Second):
			t.Fatal("no silences watch started within 10s")
			return nil
		}
	}
	healthy := func() error {
		parts, ok := health.Snapshot()
		if parts["alert/silences"] != "ok" || !ok {
			return fmt.Errorf("health %v", parts)
		}
		return nil
	}
	first := watcher()
	natstest.WaitFor(t, 5*time.Second, healthy)

	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	watcher()
	sil, err := silences.Add(ctx, alerting.Silence{Model: "m", Rule: alerting.RuleDatasetDrift,
		StartsAt: time.Now(), EndsAt: time.Now().Add(time.Hour), Comment: "after the restart"})
	if err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(ids, sil.ID) {
			return errors.New("silence added after the restart not seen")
		}
		return nil
	})
	natstest.WaitFor(t, 5*time.Second, healthy)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("watch returned %v after its ctx ended", err)
	}
}
