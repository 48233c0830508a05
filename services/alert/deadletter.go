package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/notify"
)

// A notification that can never be delivered is dead-lettered: counted in
// lookout_notify_dead_letters_total{sink,reason}, logged, and kept in the
// NOTIFY stream (so for its MaxAge, 7 days) on <prefix>.notify.dead.<sink>,
// where an operator reads it back, e.g.
// `nats stream view LOOKOUT_NOTIFY --subject lookout.notify.dead.>`.
// The message is the notification's JSON (without its alerts when they
// would not fit) with the headers below. The sink's consumer then moves on
// to its next notification at once.
const kindDead = "dead"

// Dead-letter reasons, the reason label.
const (
	reasonRejected = "rejected"  // the sink refused it for good (HTTP 4xx, SMTP 5xx, unencodable)
	reasonExpired  = "expired"   // the sink failed for longer than retry.give_up_after
	reasonInvalid  = "invalid"   // the stored message is not a notification
	reasonTooLarge = "too_large" // over the connection's max payload
	reasonPublish  = "publish"   // another publish error that trying again cannot fix
)

// Headers of a dead letter.
const (
	HeaderDeadReason   = "Lookout-Dead-Reason"
	HeaderDeadError    = "Lookout-Dead-Error"
	HeaderDeadAttempts = "Lookout-Dead-Attempts"
	HeaderDeadSize     = "Lookout-Dead-Size"
)

// headerRoom is what a notification's budget leaves of the max payload for
// the message's headers.
const headerRoom = 2 << 10

// Bounds on the texts of one alert in a notification that is too large.
const (
	maxSummary    = 1 << 10
	maxLabel      = 256
	maxInhibited  = 20
	maxErrorText  = 512
	defaultBudget = 1 << 20
)

// deadSubject returns <prefix>.notify.dead.<sink>.
func (s *Service) deadSubject(sink string) string {
	return s.env.Subjects.Prefix + "." + kindNotify + "." + kindDead + "." + sink
}

// budget is the most bytes a notification's JSON may take to be published
// on this connection.
func (s *Service) budget() int {
	limit := s.maxPayload
	if limit <= 0 && s.env.NC != nil {
		limit = s.env.NC.MaxPayload()
	}
	if limit <= 0 {
		return defaultBudget
	}
	return max(int(limit)-headerRoom, 1<<10)
}

// permanentPublish reports whether a publish failed in a way that trying
// the same message again cannot fix.
func permanentPublish(err error) bool {
	if notify.IsPermanent(err) || errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) ||
		errors.Is(err, nats.ErrHeadersNotSupported) {
		return true
	}
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

// publishReason is the dead-letter reason of a permanent publish error.
func publishReason(err error) string {
	var api *jetstream.APIError
	if errors.Is(err, nats.ErrMaxPayload) || (errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum) {
		return reasonTooLarge
	}
	return reasonPublish
}

// bound returns n's JSON, no longer than budget bytes: when it is longer,
// long texts are shortened and then alerts left out (counted in Omitted)
// until it fits. It changes n to what the JSON holds. The error, when n
// cannot be encoded or fit at all, is permanent.
func bound(n *alerting.Notification, budget int) ([]byte, error) {
	data, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("encode notification: %w: %w", notify.ErrPermanent, err)
	}
	if len(data) <= budget {
		return data, nil
	}
	alerts := make([]alerting.Alert, len(n.Alerts))
	for i, a := range n.Alerts {
		alerts[i] = shorten(a, true)
	}
	n.Alerts = alerts
	all, omitted := len(alerts), n.Omitted
	fits := func(k int) ([]byte, bool) {
		n.Alerts, n.Omitted = alerts[:k], omitted+all-k
		b, err := json.Marshal(n)
		return b, err == nil && len(b) <= budget
	}
	if b, ok := fits(all); ok {
		return b, nil
	}
	// The largest number of alerts that fits, by bisection.
	lo, hi := 0, all // fits(lo) is unknown until checked; fits(hi) is false
	best, ok := fits(0)
	if !ok {
		return nil, fmt.Errorf("notification: %w: %w: even without its alerts", notify.ErrPermanent, nats.ErrMaxPayload)
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if b, ok := fits(mid); ok {
			lo, best = mid, b
		} else {
			hi = mid
		}
	}
	n.Alerts, n.Omitted = alerts[:lo], omitted+all-lo
	return best, nil
}

// shorten returns a with long texts cut and, with inhibited, at most
// maxInhibited alerts inside it (the rest counted in its summary).
func shorten(a alerting.Alert, inhibited bool) alerting.Alert {
	a.Summary = cut(a.Summary, maxSummary)
	if len(a.Labels) > 0 {
		labels := make(map[string]string, len(a.Labels))
		for k, v := range a.Labels {
			labels[cut(k, maxLabel)] = cut(v, maxLabel)
		}
		a.Labels = labels
	}
	if !inhibited {
		a.Inhibited = nil
		return a
	}
	in := a.Inhibited
	if len(in) > maxInhibited {
		a.Summary += " (and " + strconv.Itoa(len(in)-maxInhibited) + " more " + in[0].Rule + ")"
		in = in[:maxInhibited]
	}
	if len(in) > 0 {
		a.Inhibited = make([]alerting.Alert, len(in))
		for i, x := range in {
			a.Inhibited[i] = shorten(x, false)
		}
	}
	return a
}

// cut returns s cut to at most n bytes at a rune boundary, with "…" when
// it was cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// deadLetter keeps a notification for sink that will never be delivered:
// data is its JSON (or whatever was stored), kept whole when it fits and
// otherwise replaced by n without its alerts. It retries the publish until
// it is stored or ctx ends, and returns an error only then (the caller
// hands the message back). id makes a repeat a duplicate JetStream drops.
func (s *Service) deadLetter(ctx context.Context, sink, reason, id string, n *alerting.Notification, data []byte, cause error, attempts int) error {
	size := len(data)
	if size > s.budget() {
		data = nil
	}
	if data == nil && n != nil {
		stripped := *n
		stripped.Omitted += len(stripped.Alerts)
		stripped.Alerts = nil
		data, _ = json.Marshal(&stripped)
	}
	msg := nats.NewMsg(s.deadSubject(sink))
	msg.Data = data
	msg.Header.Set("Content-Type", "application/json")
	msg.Header.Set(HeaderDeadReason, reason)
	msg.Header.Set(HeaderDeadError, cut(errorText(cause), maxErrorText))
	msg.Header.Set(HeaderDeadAttempts, strconv.Itoa(attempts))
	msg.Header.Set(HeaderDeadSize, strconv.Itoa(size))
	if id != "" {
		msg.Header.Set(jetstream.MsgIDHeader, "dead-"+id)
	}
	err := s.retry(ctx, "dead-letter notification", func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := s.env.JS.PublishMsg(pctx, msg)
		return err
	})
	if err != nil && ctx.Err() != nil {
		return err
	}
	fields := []zap.Field{zap.String("sink", sink), zap.String("reason", reason), zap.String("id", id),
		zap.Int("attempts", attempts), zap.Int("size", size), zap.Error(cause)}
	if n != nil {
		fields = append(fields, zap.String("model", n.Model), zap.Int("alerts", len(n.Alerts)+n.Omitted))
	}
	if err != nil {
		// Not even the stripped copy could be stored: it is still counted
		// and logged, and the consumer moves on.
		s.log.Error("notification dead-lettered, not kept", append(fields, zap.NamedError("keep", err))...)
	} else {
		s.log.Error("notification dead-lettered", append(fields, zap.String("kept_on", s.deadSubject(sink)))...)
	}
	s.metrics.deadLetters.WithLabelValues(sink, reason).Inc()
	return nil
}

// errorText is err's text on one line (sink errors carry no secrets).
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}
