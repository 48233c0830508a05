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
	"time"

	"github.com/lookout-ml/lookout/pkg/alerting"
)

// Webhook headers.
const (
	// HeaderSignature carries "sha256=<hex>", the HMAC-SHA256 of the body
	// keyed with the webhook's secret.
	HeaderSignature = "X-Lookout-Signature"
	// HeaderNotificationID carries the notification's ID.
	HeaderNotificationID = "X-Lookout-Notification-Id"
)

// Webhook posts each notification as JSON (alerting.Notification) to a
// URL; with a secret, it signs the body.
type Webhook struct {
	URL    string
	Secret string
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

// Send posts n. Any status outside 2xx is an error; see ErrPermanent for
// which are permanent.
func (w *Webhook) Send(ctx context.Context, n *alerting.Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return permanent(fmt.Errorf("webhook: encode: %w", err))
	}
	header := http.Header{"Content-Type": {"application/json"}, HeaderNotificationID: {n.ID}}
	if w.Secret != "" {
		header.Set(HeaderSignature, Sign(w.Secret, body))
	}
	return post(ctx, w.Client, "webhook", w.URL, header, body, append(secretsOf(w.URL), w.Secret))
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
