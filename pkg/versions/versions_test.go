package versions

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// TestKeysAndCache: versions with any characters get distinct valid keys,
// Bind fails until Ensure made the bucket, and the cache follows puts.
func TestKeysAndCache(t *testing.T) {
	keys := map[string]bool{}
	for _, v := range []string{"v1", "1.2.0", "a=b", "a b", ".x", "x.", "2026-11-01", "a..b", "a/b"} {
		k := Key("churn", v)
		if keys[k] {
			t.Errorf("key %q twice", k)
		}
		keys[k] = true
	}
	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subjects := natsbus.NewSubjects("")
	if _, err := Bind(ctx, js, subjects); err == nil {
		t.Fatal("Bind before Ensure: no error")
	}
	kv, err := Ensure(ctx, js, subjects, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := NewCache()
	if err := c.Watch(ctx, kv, nil); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a b", "1.2.0", ".x", "a/b"} {
		if _, err := Put(ctx, kv, Record{Model: "churn", Version: v, Run: "mlflow://" + v}); err != nil {
			t.Fatalf("put %q: %v", v, err)
		}
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		for _, v := range []string{"a b", "1.2.0", ".x", "a/b"} {
			if got := c.Run("churn", v); got != "mlflow://"+v {
				return fmt.Errorf("run of %q = %q", v, got)
			}
		}
		return nil
	})
	recs, err := List(ctx, kv, "churn")
	if err != nil || len(recs) != 4 || recs[0].SetAt.IsZero() {
		t.Fatalf("list: %v %v", recs, err)
	}
}
