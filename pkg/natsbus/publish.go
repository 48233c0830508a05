package natsbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrPermanent marks a publish that no retry can make succeed: the
// message is too large, its subject invalid, or no stream captures it. The
// caller dead-letters it (counts it and moves on) instead of retrying.
var ErrPermanent = errors.New("permanent publish error")

// MsgID returns the de-duplication id (Nats-Msg-Id) of an event: ids are
// unique per model, so the same id on two models is two events. A model
// token never holds a colon, so the two parts cannot run together.
func MsgID(model, id string) string { return model + ":" + id }

// CheckPayload returns an ErrPermanent error when msg cannot be published
// on nc: its headers and data exceed the server's max payload.
func CheckPayload(nc *nats.Conn, msg *nats.Msg) error {
	size := len(msg.Data) + len(msg.Subject)
	for k, vs := range msg.Header {
		size += len(k) + 4
		for _, v := range vs {
			size += len(v) + 2
		}
	}
	if limit := nc.MaxPayload(); limit > 0 && int64(size) > limit {
		return fmt.Errorf("%w: message of %d bytes on %s exceeds the server's max payload of %d", ErrPermanent, size, msg.Subject, limit)
	}
	return nil
}

// IsPermanent reports whether a publish error is one that a retry cannot
// fix.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrPermanent) || errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) ||
		errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrInvalidSubject) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 4xx answers of the JetStream API describe the message, not the
		// server's state; 503 (no leader yet) and timeouts are transient.
		return apiErr.Code >= 400 && apiErr.Code < 500
	}
	return false
}

// PublishUntilStored publishes msg to JetStream and, while it is not
// stored, tries again with a growing pause (100 ms up to 5 s), calling
// onRetry with each transient failure. It returns nil once the message is
// stored (or was a duplicate), an error wrapping ErrPermanent when no retry
// can store it, or ctx's error when ctx ends first. Give msg a Nats-Msg-Id,
// so that a try whose acknowledgement was lost does not store it twice.
func PublishUntilStored(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, onRetry func(error)) error {
	if err := CheckPayload(js.Conn(), msg); err != nil {
		return err
	}
	backoff := 100 * time.Millisecond
	for {
		tryCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := js.PublishMsg(tryCtx, msg)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if IsPermanent(err) {
			return fmt.Errorf("%w: %w", ErrPermanent, err)
		}
		onRetry(err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
