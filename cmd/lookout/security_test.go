package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// lockedUser is one configured user of a locked `lookout run`, and the
// violations the server reported to its connection.
type lockedUser struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	mu         sync.Mutex
	violations []string
}

func (u *lockedUser) refused(t *testing.T, subject string) {
	t.Helper()
	natstest.WaitFor(t, 10*time.Second, func() error {
		u.mu.Lock()
		defer u.mu.Unlock()
		for _, v := range u.violations {
			if strings.Contains(v, "Permissions Violation") && strings.Contains(v, `"`+subject+`"`) {
				return nil
			}
		}
		return fmt.Errorf("no permissions violation for %s; got %q", subject, u.violations)
	})
}

// TestLockedBusRefusesForgeries runs `lookout run` with users, roles and
// TLS with client certificates, and tries the attacks of issue 11 as a
// publisher, a reader and an admin: every forged report, alert,
// notification, lease and consumer change is refused by the server, the
// process keeps running, nothing forged reaches the webhook, while the
// publisher's real predictions are archived and become a real alert. The
// logs of the whole run, and of the CLI, hold no password.
func TestLockedBusRefusesForgeries(t *testing.T) {
	hook := newWebhookReceiver(t)
	dir := t.TempDir()
	tlsFiles := natstest.WriteTLS(t, dir)
	secrets := map[string]string{"app": "app-pw-8731", "grafana": "grafana-pw-2294", "ops": "ops-pw-5512"}
	pwFile := func(user string) string {
		path := filepath.Join(dir, user+".pw")
		if err := os.WriteFile(path, []byte(secrets[user]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cfg := filepath.Join(dir, "lookout.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
nats:
  users:
    - {user: app, password: %q, role: publisher}
    - {user: grafana, password_file: %q, role: reader}
    - {user: ops, password_file: %q, role: admin}
  tls: {cert: %q, key: %q, ca: %q}
archive:
  window: 1h
  max_rows: 100
drift:
  window: 1h
  window_events: 500
alert:
  group_wait: 300ms
  group_interval: 600ms
  sinks:
    - {type: webhook, url: %q, secret: "hook-secret-7781"}
`, secrets["app"], pwFile("grafana"), pwFile("ops"), tlsFiles.ServerCert, tlsFiles.ServerKey, tlsFiles.CA, hook.srv.URL+"/hook")), 0o600); err != nil {
		t.Fatal(err)
	}
	lk := startLookout(t, filepath.Join(dir, "data"), "--config", cfg)
	if !strings.HasPrefix(lk.NATSURL, "tls://") {
		t.Fatalf("NATS URL %s, want tls://", lk.NATSURL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tlsAuth := natsbus.ClientAuth{CA: tlsFiles.CA, Cert: tlsFiles.ClientCert, Key: tlsFiles.ClientKey}
	connect := func(user string) *lockedUser {
		t.Helper()
		u := &lockedUser{}
		auth := tlsAuth
		auth.User, auth.Password = user, secrets[user]
		nc, err := natsbus.Connect(lk.NATSURL, "test "+user, auth, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			u.mu.Lock()
			u.violations = append(u.violations, err.Error())
			u.mu.Unlock()
		}))
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		u.nc = nc
		u.js, _ = jetstream.New(nc)
		return u
	}

	// Anonymous, and a user without a client certificate, are refused.
	if nc, err := natsbus.Connect(lk.NATSURL, "anonymous", tlsAuth); err == nil {
		nc.Close()
		t.Fatal("an anonymous connection was accepted")
	}

	app := connect("app")
	rng := rand.New(rand.NewPCG(11, 11))
	n := 0
	publishWindow := func(shifted bool) {
		t.Helper()
		for range 500 {
			n++
			age := 40 + 8*rng.NormFloat64()
			if shifted {
				age += 25
			}
			conf := 0.8 + 0.1*rng.Float64()
			p := &event.Prediction{
				Id: fmt.Sprintf("locked-%d", n), Version: "v1", Model: "locked",
				Features:   map[string]*event.Value{"age": event.Number(age), "income": event.Number(50000 + 9000*rng.NormFloat64())},
				Prediction: event.Number(rng.Float64()), Confidence: &conf,
			}
			if _, err := app.js.PublishAsync("lookout.ingest.locked", event.AppendJSON(nil, p)); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-app.js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			t.Fatal("the publisher's predictions were not acknowledged")
		}
	}
	publishWindow(false)
	publishWindow(false)
	t.Logf("%s published", time.Now().Format(time.TimeOnly))

	// The publisher's forgeries: a copied drift report, a made-up alert, a
	// notification, a lease, a consumer removal.
	report, _ := json.Marshal(map[string]any{"model": "spoofed", "dataset_drifted": true, "drift_share": 1, "window_start": time.Now().UTC(), "window_end": time.Now().UTC()})
	forged := map[string][]byte{
		"lookout.drift.spoofed":                             report,
		"lookout.alerts.payments":                           []byte(`{"status":"firing","model":"payments","rule":"dataset_drift","summary":"ROLL BACK NOW"}`),
		"lookout.notify.webhook":                            []byte(`{"status":"firing","model":"payments","alerts":[{"summary":"ROLL BACK NOW"}]}`),
		"$KV.LOOKOUT_LEADERS.drift":                         []byte("attacker"),
		"$JS.API.CONSUMER.DELETE.LOOKOUT_PREDICTIONS.drift": nil,
	}
	for _, u := range []*lockedUser{app, connect("grafana"), connect("ops")} {
		for subject, body := range forged {
			if err := u.nc.Publish(subject, body); err != nil {
				t.Fatal(err)
			}
			u.refused(t, subject)
		}
	}
	// A refused API request has no answer: it ends with its context.
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	if err := app.js.DeleteConsumer(short, "LOOKOUT_PREDICTIONS", "drift"); err == nil {
		t.Error("the publisher deleted drift's consumer")
	}

	t.Logf("%s forgeries refused", time.Now().Format(time.TimeOnly))
	// The real predictions: archived, and a real drift becomes a real alert.
	waitForArchive(t, lk.DataDir, 1000)
	t.Logf("%s archived", time.Now().Format(time.TimeOnly))
	publishWindow(true)
	natstest.WaitFor(t, 90*time.Second, func() error {
		for _, n := range hook.notifications() {
			if n.Model == "locked" && n.Status == alerting.StatusFiring {
				return nil
			}
		}
		return fmt.Errorf("no firing notification for the real drift; %d notifications", len(hook.notifications()))
	})
	for _, n := range hook.notifications() {
		if n.Model != "locked" {
			t.Errorf("a forged notification reached the webhook: %+v", n)
		}
	}
	select {
	case <-lk.done:
		t.Fatalf("lookout exited: %v\n%s", lk.exitErr, lk.Logs())
	default:
	}

	t.Logf("%s alert delivered", time.Now().Format(time.TimeOnly))
	// The reader reads the alerts back (history, then live) with the CLI;
	// the admin adds a silence with it.
	cli := func(user string, args ...string) (string, int) {
		t.Helper()
		var out, errOut bytes.Buffer
		all := append(args, "--nats", lk.NATSURL, "--nats-user", user, "--nats-password-file", pwFile(user),
			"--nats-ca", tlsFiles.CA, "--nats-cert", tlsFiles.ClientCert, "--nats-key", tlsFiles.ClientKey)
		code := run(ctx, all, &out, &errOut)
		return out.String() + errOut.String(), code
	}
	if out, code := cli("grafana", "tail", "--since", "1h", "-n", "1", "lookout.alerts.locked"); code != 0 || !strings.Contains(out, `"model":"locked"`) {
		t.Errorf("reader tail --since: exit %d\n%s", code, out)
	}
	if out, code := cli("grafana", "alerts"); code != 0 || !strings.Contains(out, "locked") {
		t.Errorf("reader alerts: exit %d\n%s", code, out)
	}
	if out, code := cli("ops", "silence", "add", "--model", "locked", "--for", "1h", "--comment", "locked down"); code != 0 {
		t.Errorf("admin silence add: exit %d\n%s", code, out)
	}
	if out, code := cli("ops", "silence", "list"); code != 0 || !strings.Contains(out, "locked down") {
		t.Errorf("admin silence list: exit %d\n%s", code, out)
	}
	if out, code := cli("grafana", "silence", "add", "--model", "locked"); code == 0 {
		t.Errorf("a reader added a silence:\n%s", out)
	}
	// A connect error names the server without the password in its URL.
	var errOut bytes.Buffer
	run(ctx, []string{"tail", "--nats", "nats://app:" + secrets["app"] + "@127.0.0.1:1", "x"}, &bytes.Buffer{}, &errOut)
	logs := lk.Logs() + errOut.String()
	for user, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold %s's password", user)
		}
	}
	if strings.Contains(logs, "hook-secret-7781") {
		t.Error("the logs hold the webhook secret")
	}
}
