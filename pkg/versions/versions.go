// Package versions records which training run produced each model version:
// a JetStream key-value bucket <PREFIX>_VERSIONS, one key per model and
// version, whose value is a Record in JSON. `lookout run` creates the
// bucket (Ensure); `lookout version set` and the W&B webhook write it;
// drift and canary read it through a Cache (a KV watch) and put each
// version's run in their reports.
package versions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// Record is one version's entry.
type Record struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	// Run names the training run: wandb://entity/project/run,
	// mlflow://run-id, or any URL.
	Run string `json:"run"`
	// Reference is the drift reference set with the version, if any (the
	// object's name in the references store).
	Reference string    `json:"reference,omitempty"`
	SetAt     time.Time `json:"set_at"`
	// Source says who recorded it: cli, wandb.
	Source string `json:"source,omitempty"`
}

// Bucket returns the bucket's name under the subjects' prefix.
func Bucket(subjects natsbus.Subjects) string { return subjects.StreamName("VERSIONS") }

// Key returns the key of a model's version. Models are NATS tokens; a
// version may hold any character, so those a key cannot hold are written
// =XX (hex), and the key splits unambiguously at its first dot.
func Key(model, version string) string {
	var b strings.Builder
	b.WriteString(model)
	b.WriteByte('.')
	for i := 0; i < len(version); i++ {
		c := version[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		case c == '.' && i > 0 && i < len(version)-1 && version[i-1] != '.':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

// Ensure creates the bucket, or updates it; `lookout run` calls it at
// start beside the streams.
func Ensure(ctx context.Context, js jetstream.JetStream, subjects natsbus.Subjects, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket(subjects),
		Description: "lookout: the training run of each model version",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("versions bucket: %w", err)
	}
	return kv, nil
}

// Bind opens the existing bucket. Clients never create it: an outside
// user may not, and a missing bucket means Lookout never ran here.
func Bind(ctx context.Context, js jetstream.JetStream, subjects natsbus.Subjects) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, Bucket(subjects))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("versions bucket %s not found: start `lookout run` against this NATS server once (it creates the bucket)", Bucket(subjects))
	}
	if err != nil {
		return nil, fmt.Errorf("versions bucket %s: %w", Bucket(subjects), err)
	}
	return kv, nil
}

// Put stores a record, stamping SetAt when it is zero.
func Put(ctx context.Context, kv jetstream.KeyValue, r Record) (Record, error) {
	if r.SetAt.IsZero() {
		r.SetAt = time.Now().UTC()
	}
	data, err := json.Marshal(r)
	if err != nil {
		return r, err
	}
	if _, err := kv.Put(ctx, Key(r.Model, r.Version), data); err != nil {
		return r, fmt.Errorf("versions: put %s %s: %w", r.Model, r.Version, err)
	}
	return r, nil
}

// List returns a model's records (every model's when model is empty),
// by version.
func List(ctx context.Context, kv jetstream.KeyValue, model string) ([]Record, error) {
	filter := ">"
	if model != "" {
		filter = model + ".>"
	}
	lister, err := kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("versions: list: %w", err)
	}
	var out []Record
	for key := range lister.Keys() {
		e, err := kv.Get(ctx, key)
		if err != nil {
			continue // deleted meanwhile
		}
		var r Record
		if json.Unmarshal(e.Value(), &r) == nil {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Record) int {
		return strings.Compare(a.Model+"\x00"+a.Version, b.Model+"\x00"+b.Version)
	})
	return out, nil
}

// Cache keeps every record in memory, kept current by a KV watch, so that
// a report looks its versions' runs up without a round trip.
type Cache struct {
	mu   sync.RWMutex
	runs map[string]string // Key(model, version) → run
}

// NewCache returns an empty cache; Watch fills it.
func NewCache() *Cache { return &Cache{runs: map[string]string{}} }

// Run returns the run recorded for a model's version, or "".
func (c *Cache) Run(model, version string) string {
	if c == nil {
		return ""
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.runs[Key(model, version)]
}

// Watch follows the bucket until ctx is done. The watcher's first pass is
// every current value, then each change as it happens; the client
// re-subscribes by itself after a reconnect.
func (c *Cache) Watch(ctx context.Context, kv jetstream.KeyValue, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("versions: watch: %w", err)
	}
	go func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue // the end of the initial values
				}
				c.mu.Lock()
				if e.Operation() != jetstream.KeyValuePut {
					delete(c.runs, e.Key())
				} else {
					var r Record
					if err := json.Unmarshal(e.Value(), &r); err != nil {
						log.Warn("versions: bad record", zap.String("key", e.Key()), zap.Error(err))
					} else {
						c.runs[e.Key()] = r.Run
					}
				}
				c.mu.Unlock()
			}
		}
	}()
	return nil
}
