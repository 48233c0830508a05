package alert

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// JetStream names the alert service owns, under the subjects' prefix.
const (
	// roleState is the KV bucket of alert and group state.
	roleState = natsbus.BucketAlertState
	// roleSilences is the KV bucket of silences.
	roleSilences = natsbus.BucketSilences
	// roleNotify is the stream of notifications waiting for their sinks.
	roleNotify = "NOTIFY"
	// kindNotify is the subject kind: <prefix>.notify.<sink>.
	kindNotify = "notify"
)

// Keys in the state bucket.
const (
	keyAlert = "alert." // + fingerprint: an alerting.State
	keyGroup = "group." // + model: an alerting.Group
)

// ErrNotFound is returned for a silence ID that does not exist.
var ErrNotFound = errors.New("not found")

// openBucket binds the bucket, creating it when it does not exist yet.
// Binding first lets an admin, who may write silences but not create or
// change buckets, use the CLI.
func openBucket(ctx context.Context, js jetstream.JetStream, subjects natsbus.Subjects, name, description string) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := natsbus.Retry(ctx, nil, "kv "+name, func(ctx context.Context) error {
		var err error
		if kv, err = js.KeyValue(ctx, name); !errors.Is(err, jetstream.ErrBucketNotFound) {
			return err
		}
		replicas, err := natsbus.StreamReplicas(ctx, js, subjects)
		if err != nil {
			return err
		}
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: name, Description: description, History: 1, Storage: jetstream.FileStorage,
			Replicas: replicas,
		})
		return err
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, name) // another process made it first
	}
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", name, err)
	}
	return kv, nil
}

func openState(ctx context.Context, js jetstream.JetStream, subjects natsbus.Subjects) (jetstream.KeyValue, error) {
	return openBucket(ctx, js, subjects, subjects.StreamName(roleState), "alert state: pending and firing alerts, notification groups")
}

// ensureNotifyStream creates the stream notifications wait in until every
// sink has taken them.
func ensureNotifyStream(ctx context.Context, js jetstream.JetStream, subjects natsbus.Subjects) (jetstream.Stream, error) {
	var s jetstream.Stream
	err := natsbus.Retry(ctx, nil, "stream "+subjects.StreamName(roleNotify), func(ctx context.Context) error {
		replicas, err := natsbus.StreamReplicas(ctx, js, subjects)
		if err != nil {
			return err
		}
		s, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        subjects.StreamName(roleNotify),
			Description: "alert notifications, one subject per sink; dead letters on notify.dead.<sink>",
			// One subject per sink, and the dead letters of each sink.
			Subjects:   []string{subjects.Prefix + "." + kindNotify + ".*", subjects.Prefix + "." + kindNotify + "." + kindDead + ".*"},
			Retention:  jetstream.LimitsPolicy,
			MaxAge:     7 * 24 * time.Hour,
			Duplicates: 10 * time.Minute,
			Storage:    jetstream.FileStorage,
			Replicas:   replicas,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("notify stream: %w", err)
	}
	return s, nil
}

// loadPrefix decodes every value of kv whose key starts with prefix.
func loadPrefix[T any](ctx context.Context, kv jetstream.KeyValue, prefix string) (map[string]T, error) {
	w, err := kv.Watch(ctx, prefix+"*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("load %s*: %w", prefix, err)
	}
	defer func() { _ = w.Stop() }()
	out := make(map[string]T)
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e := <-w.Updates():
			if e == nil {
				return out, nil
			}
			var v T
			if err := json.Unmarshal(e.Value(), &v); err != nil {
				return nil, fmt.Errorf("load %s: %w", e.Key(), err)
			}
			out[strings.TrimPrefix(e.Key(), prefix)] = v
		}
	}
}

// FiringAlerts returns the alerts that fire now, as the alert service
// last stored them, ordered by model, rule and labels.
func FiringAlerts(ctx context.Context, js jetstream.JetStream, subjects natsbus.Subjects) ([]alerting.Alert, error) {
	kv, err := js.KeyValue(ctx, subjects.StreamName(roleState))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	states, err := loadPrefix[alerting.State](ctx, kv, keyAlert)
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	var out []alerting.Alert
	for _, s := range states {
		if s.Firing && s.Alert != nil {
			out = append(out, *s.Alert)
		}
	}
	alerting.SortAlerts(out)
	return out, nil
}

// Silences are kept in a JetStream KV bucket, so every alert process
// honours them and they survive restarts.
type Silences struct {
	kv jetstream.KeyValue
}

// OpenSilences opens (creating when needed) the silences bucket.
func OpenSilences(ctx context.Context, js jetstream.JetStream, subjects natsbus.Subjects) (*Silences, error) {
	kv, err := openBucket(ctx, js, subjects, subjects.StreamName(roleSilences), "alert silences")
	if err != nil {
		return nil, fmt.Errorf("silences: %w", err)
	}
	return &Silences{kv: kv}, nil
}

// Add validates s, gives it a new ID and stores it.
func (s *Silences) Add(ctx context.Context, sil alerting.Silence) (alerting.Silence, error) {
	if err := sil.Validate(); err != nil {
		return sil, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	sil.ID = hex.EncodeToString(id[:])
	b, _ := json.Marshal(sil)
	if _, err := s.kv.Create(ctx, sil.ID, b); err != nil {
		return sil, fmt.Errorf("add silence: %w", err)
	}
	return sil, nil
}

// List returns every silence, active, pending or expired, by end time.
func (s *Silences) List(ctx context.Context) ([]alerting.Silence, error) {
	m, err := loadPrefix[alerting.Silence](ctx, s.kv, "")
	if err != nil {
		return nil, fmt.Errorf("list silences: %w", err)
	}
	out := make([]alerting.Silence, 0, len(m))
	for _, sil := range m {
		out = append(out, sil)
	}
	sortSilences(out)
	return out, nil
}

// Expire ends silence id at now (if it has not ended yet). It returns
// ErrNotFound for an unknown ID.
func (s *Silences) Expire(ctx context.Context, id string, now time.Time) (alerting.Silence, error) {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return alerting.Silence{}, fmt.Errorf("expire silence %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return alerting.Silence{}, fmt.Errorf("expire silence %s: %w", id, err)
	}
	var sil alerting.Silence
	if err := json.Unmarshal(e.Value(), &sil); err != nil {
		return sil, fmt.Errorf("expire silence %s: %w", id, err)
	}
	if sil.EndsAt.Before(now) {
		return sil, nil
	}
	sil.EndsAt = now
	if sil.StartsAt.After(now) {
		sil.StartsAt = now
	}
	b, _ := json.Marshal(sil)
	if _, err := s.kv.Update(ctx, id, b, e.Revision()); err != nil {
		return sil, fmt.Errorf("expire silence %s: %w", id, err)
	}
	return sil, nil
}

// watchRetryFor is how long the silences watch is tried again, when it
// cannot be started, before the service fails loudly.
const watchRetryFor = time.Minute

// watch keeps the current silences flowing to update until ctx ends: once
// with all of them, then after every change. When the watcher closes (its
// ordered consumer could not be recreated, say) it starts a new one, which
// sends the whole list again; health reports the watch's state. It returns
// nil when ctx ends, and an error when no watch could be started for
// watchRetryFor, so that the process fails loudly rather than honouring
// stale silences.
func (s *Silences) watch(ctx context.Context, update func([]alerting.Silence), health func(error), log *zap.Logger) error {
	backoff := 100 * time.Millisecond
	var failingSince time.Time
	for {
		err := s.watchOnce(ctx, update, func() {
			failingSince = time.Time{}
			backoff = 100 * time.Millisecond
			health(nil)
		})
		if ctx.Err() != nil {
			return nil
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		}
		health(err)
		if time.Since(failingSince) > watchRetryFor {
			return err
		}
		log.Warn("silences watch stopped; restarting it", zap.Error(err), zap.Duration("in", backoff))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// watchOnce runs one watcher until ctx ends or the watcher closes (then it
// returns why), calling loaded once it sent the initial list.
func (s *Silences) watchOnce(ctx context.Context, update func([]alerting.Silence), loaded func()) error {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch silences: %w", err)
	}
	defer func() { _ = w.Stop() }()
	all := map[string]alerting.Silence{}
	initial := true
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watch silences: watcher closed")
			}
			if e == nil {
				if initial {
					loaded()
				}
				initial = false
			} else if e.Operation() != jetstream.KeyValuePut {
				delete(all, e.Key())
			} else {
				var sil alerting.Silence
				if json.Unmarshal(e.Value(), &sil) == nil {
					all[e.Key()] = sil
				}
			}
			if !initial {
				list := make([]alerting.Silence, 0, len(all))
				for _, sil := range all {
					list = append(list, sil)
				}
				update(list)
			}
		}
	}
}

func sortSilences(list []alerting.Silence) {
	slices.SortFunc(list, func(a, b alerting.Silence) int { return a.EndsAt.Compare(b.EndsAt) })
}
