package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/lookout-ml/lookout/pkg/alerting"
)

// Webhook headers.
const (
	// HeaderSignature carries "sha256=<hex>", the HMAC-SHA256 of the body
	// keyed with the webhook's secret. During a rotation it carries one
	// signature per secret, comma-separated, the current secret's first:
	// "sha256=<hex>, sha256=<hex>". A receiver accepts the body when any
	// of them verifies under a secret it knows (Verify).
	HeaderSignature = "X-Lookout-Signature"
	// HeaderNotificationID carries the notification's ID.
	HeaderNotificationID = "X-Lookout-Notification-Id"
)

// Webhook posts each notification as JSON (alerting.Notification) to a
// URL; with a secret, it signs the body.
type Webhook struct {
	URL    string
	Secret string
	// PreviousSecret, while a secret is rotated, signs each body a second
	// time, so that a receiver still verifying with the old secret keeps
	// accepting until it is switched to the new one.
	PreviousSecret string
	// Client defaults to a client with a 30s timeout.
	Client *http.Client
}

var _ Sink = (*Webhook)(nil)

// Sign returns the signature header value of body under secret:
// "sha256=" and the hex HMAC-SHA256.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Signatures returns the signature header value of body under each
// non-empty secret, in order, comma-separated; "" when there is none.
func Signatures(body []byte, secrets ...string) string {
	var sigs []string
	for i, s := range secrets {
		if s != "" && !containsBefore(secrets, i) {
			sigs = append(sigs, Sign(s, body))
		}
	}
	return strings.Join(sigs, ", ")
}

// containsBefore says whether secrets[i] is also one of secrets[:i].
func containsBefore(secrets []string, i int) bool {
	for _, s := range secrets[:i] {
		if s == secrets[i] {
			return true
		}
	}
	return false
}

// Verify says whether header (an X-Lookout-Signature value) holds a valid
// signature of body under any of secrets, as a receiver checks it. The
// comparison is in constant time.
func Verify(header string, body []byte, secrets ...string) bool {
	ok := false
	for _, sig := range strings.Split(header, ",") {
		sig = strings.TrimSpace(sig)
		for _, s := range secrets {
			if s != "" && hmac.Equal([]byte(sig), []byte(Sign(s, body))) {
				ok = true
			}
		}
	}
	return ok
}

// Send posts n. Any status outside 2xx is an error; see ErrPermanent for
// which are permanent.
func (w *Webhook) Send(ctx context.Context, n *alerting.Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return permanent(fmt.Errorf("webhook: encode: %w", err))
	}
	header := http.Header{"Content-Type": {"application/json"}, HeaderNotificationID: {n.ID}}
	if sigs := Signatures(body, w.Secret, w.PreviousSecret); sigs != "" {
		header.Set(HeaderSignature, sigs)
	}
	return post(ctx, w.Client, "webhook", w.URL, header, body, append(secretsOf(w.URL), w.Secret, w.PreviousSecret))
}

// post sends body to u and drains the answer; errors are redacted.
func post(ctx context.Context, client *http.Client, op, u string, header http.Header, body []byte, secrets redactor) error {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		// A URL that cannot make a request never will.
		return permanent(secrets.wrap(op+": request", err))
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "lookout")
	resp, err := client.Do(req)
	if err != nil {
		return secrets.wrap(op+": post", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return httpStatusError(op, resp, time.Now())
	}
	return nil
}
