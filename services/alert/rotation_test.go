package alert_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/pkg/notify"
	"github.com/lookout-ml/lookout/pkg/notify/notifytest"
	"github.com/lookout-ml/lookout/services/alert"
)

// TestWebhookPreviousSecret: a webhook sink configured with secret and
// previous_secret, mid-rotation, signs each notification with both, so a
// receiver on either secret accepts it and one on neither does not.
func TestWebhookPreviousSecret(t *testing.T) {
	b := newBus(t)
	hook := notifytest.RunHTTP(t)
	cfg := testConfig()
	cfg.Sinks = []alert.SinkConfig{{Type: "webhook", URL: hook.URL + "/hook", Secret: "new-secret", PreviousSecret: "old-secret"}}
	b.start(t, cfg)
	b.publishDrift(t, "churn", 0, true)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if len(hook.Requests()) < 1 {
			return fmt.Errorf("no notification yet")
		}
		return nil
	})
	req := hook.Requests()[0]
	header := req.Header.Get(notify.HeaderSignature)
	if got := strings.Split(header, ", "); len(got) != 2 || got[0] != notify.Sign("new-secret", req.Body) || got[1] != notify.Sign("old-secret", req.Body) {
		t.Fatalf("signature header %q, want the new secret's then the old one's", header)
	}
	for secret, want := range map[string]bool{"new-secret": true, "old-secret": true, "other": false} {
		if notify.Verify(header, req.Body, secret) != want {
			t.Errorf("receiver with %q: accepted %v, want %v", secret, !want, want)
		}
	}
}
