package httpingest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// schemaRole is the role of the key-value bucket of BentoML schemas.
const schemaRole = "OTLP_SCHEMAS"

// column is one column of a BentoML monitor's schema.
type column struct {
	Name string `json:"name"`
	Role string `json:"role"`
	Type string `json:"type"`
}

// bentoSchema is what bento_meta says about a monitor, kept for the
// records that come without it (meta_sample_rate below 1).
type bentoSchema struct {
	Bento   string   `json:"bento_name"`
	Version string   `json:"bento_version"`
	Columns []column `json:"columns"`
}

// schemaStore keeps the last schema of each monitor in memory and in a
// key-value bucket, so a restarted Lookout still knows it.
type schemaStore struct {
	kv jetstream.KeyValue
	mu sync.Mutex
	// last holds each monitor's schema and its JSON, to write only changes.
	last map[string]string
}

func openSchemaStore(ctx context.Context, js jetstream.JetStream, subjects natsbus.Subjects) (*schemaStore, error) {
	name := subjects.StreamName(schemaRole)
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: name, Description: "lookout otlp: the last BentoML schema of each monitor",
		History: 1, Storage: jetstream.FileStorage, Replicas: natsbus.Replicas(ctx, js, subjects),
	})
	if err != nil {
		return nil, fmt.Errorf("schema bucket %s: %w", name, err)
	}
	return &schemaStore{kv: kv, last: make(map[string]string)}, nil
}

// key is a monitor name as a key: monitor names are any text.
func schemaKey(monitor string) string { return "m" + hex.EncodeToString([]byte(monitor)) }

// put records monitor's schema; the bucket is written only when it changed.
func (s *schemaStore) put(ctx context.Context, monitor string, sc bentoSchema) error {
	b, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	s.mu.Lock()
	same := s.last[monitor] == string(b)
	s.last[monitor] = string(b)
	s.mu.Unlock()
	if same {
		return nil
	}
	if _, err := s.kv.Put(ctx, schemaKey(monitor), b); err != nil {
		return fmt.Errorf("schema of %q: %w", monitor, err)
	}
	return nil
}

// get returns monitor's last schema, from memory or the bucket; ok is
// false when none was ever seen.
func (s *schemaStore) get(ctx context.Context, monitor string) (bentoSchema, bool, error) {
	s.mu.Lock()
	b, ok := s.last[monitor]
	s.mu.Unlock()
	var sc bentoSchema
	if ok {
		return sc, true, json.Unmarshal([]byte(b), &sc)
	}
	entry, err := s.kv.Get(ctx, schemaKey(monitor))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return sc, false, nil
	}
	if err != nil {
		return sc, false, fmt.Errorf("schema of %q: %w", monitor, err)
	}
	if err := json.Unmarshal(entry.Value(), &sc); err != nil {
		return sc, false, fmt.Errorf("schema of %q: %w", monitor, err)
	}
	s.mu.Lock()
	s.last[monitor] = string(entry.Value())
	s.mu.Unlock()
	return sc, true, nil
}
