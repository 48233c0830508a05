package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/lookout-ml/lookout/pkg/notify"
	"github.com/lookout-ml/lookout/pkg/notify/notifytest"
)

// receiverAccepts is a receiver written from the README alone: split
// X-Lookout-Signature on commas, and accept when one entry is "sha256="
// and the hex HMAC-SHA256 of the raw body under the receiver's secret.
func receiverAccepts(header string, body []byte, secret string) bool {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	for _, sig := range strings.Split(header, ",") {
		if hmac.Equal([]byte(strings.TrimSpace(sig)), []byte(want)) {
			return true
		}
	}
	return false
}

func TestWebhookSecretRotation(t *testing.T) {
	const oldSecret, newSecret = "old-s3cret", "new-s3cret"
	for _, tc := range []struct {
		name           string
		secret, prev   string
		sigs           int
		acceptOld      bool // a receiver still on the old secret
		acceptNew      bool // a receiver already on the new one
		acceptStranger bool // a receiver with some other secret
	}{
		// Before the rotation: one signature, the old secret's (the header
		// is exactly what it always was).
		{"before", oldSecret, "", 1, true, false, false},
		// During: both; receivers on either secret accept.
		{"during", newSecret, oldSecret, 2, true, true, false},
		// After: the old secret no longer verifies.
		{"after", newSecret, "", 1, false, true, false},
		// The same secret twice is signed once.
		{"same twice", newSecret, newSecret, 1, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recv := notifytest.RunHTTP(t)
			w := &notify.Webhook{URL: recv.URL, Secret: tc.secret, PreviousSecret: tc.prev}
			if err := w.Send(context.Background(), sample()); err != nil {
				t.Fatal(err)
			}
			req := recv.Requests()[0]
			header := req.Header.Get(notify.HeaderSignature)
			if n := len(strings.Split(header, ",")); n != tc.sigs {
				t.Fatalf("header %q has %d signatures, want %d", header, n, tc.sigs)
			}
			if !strings.HasPrefix(header, notify.Sign(tc.secret, req.Body)) {
				t.Fatalf("header %q does not start with the current secret's signature", header)
			}
			for _, c := range []struct {
				secret string
				want   bool
			}{{oldSecret, tc.acceptOld}, {newSecret, tc.acceptNew}, {"stranger", tc.acceptStranger}} {
				if got := receiverAccepts(header, req.Body, c.secret); got != c.want {
					t.Errorf("receiver with %q: accepts %v, want %v (header %q)", c.secret, got, c.want, header)
				}
				if got := notify.Verify(header, req.Body, c.secret); got != c.want {
					t.Errorf("Verify with %q: %v, want %v", c.secret, got, c.want)
				}
			}
			// A body changed on the way verifies under no secret.
			tampered := append([]byte(nil), req.Body...)
			tampered[len(tampered)/2] ^= 1
			if notify.Verify(header, tampered, oldSecret, newSecret) {
				t.Fatal("a tampered body verified")
			}
		})
	}
}
