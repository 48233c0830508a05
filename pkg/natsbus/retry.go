package natsbus

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/nats-io/nats.go/jetstream"
)

// SetupTimeout is how long Retry keeps trying: in a cluster, creating a
// replicated stream, bucket or consumer waits for its peers to agree,
// which takes seconds on a loaded machine and fails while a node is down
// or a leader is being elected.
const SetupTimeout = 2 * time.Minute

// Retry calls try, each time with a context of its own that ends after
// 15 s, until it succeeds, fails for good, ctx ends or SetupTimeout has
// passed. A failure is for good when JetStream answered it with a client
// error (a 4xx API code: a bad configuration, say); timeouts, "no
// responders" and 5xx answers (no leader yet, a peer missing) are tried
// again with backoff. It returns try's last error.
func Retry(ctx context.Context, log *zap.Logger, what string, try func(ctx context.Context) error) error {
	deadline := time.Now().Add(SetupTimeout)
	backoff := 200 * time.Millisecond
	for {
		tryCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := try(tryCtx)
		cancel()
		if err == nil || ctx.Err() != nil || !Transient(err) || time.Now().After(deadline) {
			return err
		}
		if log != nil {
			log.Warn("not ready yet; retrying", zap.String("what", what), zap.Error(err))
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// Transient says whether a JetStream error may go away by itself: it was
// not answered with a client (4xx) API error.
func Transient(err error) bool {
	var jsErr jetstream.JetStreamError
	if errors.As(err, &jsErr) && jsErr.APIError() != nil {
		code := jsErr.APIError().Code
		return code >= 500 || code == 0
	}
	return true
}
