package natsbus_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
)

// lockedServer is an embedded server with one user of each role, and the
// internal user's connection that made Lookout's streams and buckets.
type lockedServer struct {
	ns       *server.Server
	internal *nats.Conn
	js       jetstream.JetStream
	subjects natsbus.Subjects
	nkeySeed string // the nkey user's seed file (an admin)
	readerPW string // the reader's password file
}

func startLocked(t *testing.T, tlsFiles natsbus.TLS) *lockedServer {
	t.Helper()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "reader.pw")
	if err := os.WriteFile(pwFile, []byte("reader-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(dir, "ops.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	internal := natsbus.NewInternalCredentials()
	subjects := natsbus.NewSubjects("")
	ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{
		Listen: "127.0.0.1:-1", DataDir: dir, Subjects: subjects, Internal: internal, TLS: tlsFiles,
		Users: []natsbus.User{
			{User: "app", Password: "app-secret", Role: natsbus.RolePublisher},
			{User: "grafana", PasswordFile: pwFile, Role: natsbus.RoleReader},
			{User: "ops", Password: "ops-secret", Role: natsbus.RoleAdmin},
			{Nkey: pub, Role: natsbus.RoleAdmin},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := natsbus.ConnectInProcess(ns, "internal", internal)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := natsbus.EnsureStreams(ctx, js, subjects, natsbus.DefaultStreamOptions()); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"LEADERS", natsbus.BucketSilences, natsbus.BucketAlertState} {
		if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: subjects.StreamName(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: subjects.StreamName(natsbus.BucketReferences)}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, subjects.StreamName(natsbus.StreamPredictions), jetstream.ConsumerConfig{Durable: "archive"}); err != nil {
		t.Fatal(err)
	}
	return &lockedServer{ns: ns, internal: nc, js: js, subjects: subjects, nkeySeed: seedFile, readerPW: pwFile}
}

// client connects as one user and collects the permission violations the
// server reports to it.
type client struct {
	nc *nats.Conn
	js jetstream.JetStream
	mu sync.Mutex
	// violations are the server's permission errors, in order.
	violations []string
}

func (l *lockedServer) connect(t *testing.T, auth natsbus.ClientAuth) *client {
	t.Helper()
	c := &client{}
	nc, err := natsbus.Connect(l.ns.ClientURL(), "test", auth, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		c.mu.Lock()
		c.violations = append(c.violations, err.Error())
		c.mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	c.js, _ = jetstream.New(nc)
	return c
}

// refused waits for the server to report a permission violation on
// subject to c.
func (c *client) refused(t *testing.T, subject string) {
	t.Helper()
	natstest.WaitFor(t, 5*time.Second, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, v := range c.violations {
			if strings.Contains(v, `"`+subject+`"`) {
				return nil
			}
		}
		return errors.New("no permissions violation on " + subject + "; got " + strings.Join(c.violations, "; "))
	})
}

func TestAnonymousIsRefusedWhenUsersAreConfigured(t *testing.T) {
	l := startLocked(t, natsbus.TLS{})
	if nc, err := nats.Connect(l.ns.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("anonymous connection accepted")
	}
	if nc, err := nats.Connect(l.ns.ClientURL(), nats.UserInfo("app", "wrong")); err == nil {
		nc.Close()
		t.Fatal("wrong password accepted")
	}
}

func TestPublisherMayOnlyPublishPredictionsAndFeedback(t *testing.T) {
	l := startLocked(t, natsbus.TLS{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	app := l.connect(t, natsbus.ClientAuth{User: "app", Password: "app-secret"})
	// JetStream acknowledgements come back to the publisher.
	if _, err := app.js.Publish(ctx, "lookout.ingest.churn", []byte(`{}`)); err != nil {
		t.Fatalf("publish on ingest: %v", err)
	}
	if _, err := app.js.Publish(ctx, "lookout.feedback.churn", []byte(`{}`)); err != nil {
		t.Fatalf("publish on feedback: %v", err)
	}
	forged := []string{"lookout.drift.spoofed", "lookout.alerts.payments", "lookout.notify.webhook", "lookout.predictions.churn",
		"$KV.LOOKOUT_LEADERS.drift", "$KV.LOOKOUT_SILENCES.x", "$JS.API.CONSUMER.DELETE.LOOKOUT_PREDICTIONS.archive"}
	for _, subject := range forged {
		if err := app.nc.Publish(subject, []byte(`{"status":"firing"}`)); err != nil {
			t.Fatal(err)
		}
		app.refused(t, subject)
	}
	if _, err := app.nc.SubscribeSync("lookout.alerts.>"); err != nil {
		t.Fatal(err)
	}
	app.refused(t, "lookout.alerts.>")
	l.mustBeUntouched(t, ctx)
}

// mustBeUntouched checks that no forged write reached the streams, the
// buckets or the archive's consumer.
func (l *lockedServer) mustBeUntouched(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, role := range []string{natsbus.StreamReports, natsbus.StreamAlerts, natsbus.StreamPredictions} {
		s, err := l.js.Stream(ctx, l.subjects.StreamName(role))
		if err != nil {
			t.Fatal(err)
		}
		if n := s.CachedInfo().State.Msgs; n != 0 {
			t.Errorf("stream %s holds %d forged messages", role, n)
		}
	}
	leaders, _ := l.js.KeyValue(ctx, "LOOKOUT_LEADERS")
	if _, err := leaders.Get(ctx, "drift"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("leaders bucket written: %v", err)
	}
	if _, err := l.js.Consumer(ctx, l.subjects.StreamName(natsbus.StreamPredictions), "archive"); err != nil {
		t.Errorf("archive consumer: %v", err)
	}
}

func TestReaderReadsHistoryAndLiveButWritesNothing(t *testing.T) {
	l := startLocked(t, natsbus.TLS{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 300 { // more than one direct-get batch
		if _, err := l.js.Publish(ctx, "lookout.drift.churn", []byte(`{"n":`+string(rune('0'+i%10))+`}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.js.Publish(ctx, "lookout.canary.churn", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	reader := l.connect(t, natsbus.ClientAuth{User: "grafana", PasswordFile: l.readerPW})
	var got int
	err := natsbus.ReadHistory(ctx, reader.nc, l.subjects.StreamName(natsbus.StreamReports), "lookout.drift.>", time.Now().Add(-time.Hour), func(m *nats.Msg) error {
		if m.Subject != "lookout.drift.churn" {
			t.Errorf("history gave %s", m.Subject)
		}
		got++
		return nil
	})
	if err != nil || got != 300 {
		t.Fatalf("history: %d messages, %v; want 300", got, err)
	}
	live, err := reader.nc.SubscribeSync("lookout.alerts.>")
	if err != nil {
		t.Fatal(err)
	}
	_ = reader.nc.Flush()
	if _, err := l.js.Publish(ctx, "lookout.alerts.churn", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := live.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("reader did not receive a live alert: %v", err)
	}
	for _, subject := range []string{"lookout.alerts.churn", "lookout.ingest.churn", "$KV.LOOKOUT_SILENCES.x",
		"$JS.API.CONSUMER.CREATE.LOOKOUT_PREDICTIONS.archive", "$JS.API.STREAM.DELETE.LOOKOUT_REPORTS",
		"$JS.API.CONSUMER.MSG.NEXT.LOOKOUT_PREDICTIONS.archive"} {
		_ = reader.nc.Publish(subject, []byte(`{}`))
		reader.refused(t, subject)
	}
	s, _ := l.js.Stream(ctx, l.subjects.StreamName(natsbus.StreamAlerts))
	if n := s.CachedInfo().State.Msgs; n != 1 {
		t.Errorf("alerts stream holds %d messages, want only the internal one", n)
	}
}

func TestAdminManagesSilencesAndReferencesOnly(t *testing.T) {
	l := startLocked(t, natsbus.TLS{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, auth := range []natsbus.ClientAuth{{User: "ops", Password: "ops-secret"}, {NkeySeedFile: l.nkeySeed}} {
		admin := l.connect(t, auth)
		kv, err := admin.js.KeyValue(ctx, l.subjects.StreamName(natsbus.BucketSilences))
		if err != nil {
			t.Fatalf("bind silences: %v", err)
		}
		if _, err := kv.Put(ctx, "s1", []byte(`{}`)); err != nil {
			t.Fatalf("put a silence: %v", err)
		}
		keys, err := kv.Keys(ctx)
		if err != nil || len(keys) != 1 {
			t.Fatalf("list silences: %v %v", keys, err)
		}
		obs, err := admin.js.ObjectStore(ctx, l.subjects.StreamName(natsbus.BucketReferences))
		if err != nil {
			t.Fatalf("bind references: %v", err)
		}
		if _, err := obs.PutBytes(ctx, "churn", []byte("reference")); err != nil {
			t.Fatalf("put a reference: %v", err)
		}
		if b, err := obs.GetBytes(ctx, "churn"); err != nil || string(b) != "reference" {
			t.Fatalf("get a reference: %q %v", b, err)
		}
		if err := obs.Delete(ctx, "churn"); err != nil {
			t.Fatalf("delete a reference: %v", err)
		}
		for _, subject := range []string{"$KV.LOOKOUT_LEADERS.drift", "lookout.alerts.x", "lookout.drift.x",
			"$JS.API.CONSUMER.DELETE.LOOKOUT_PREDICTIONS.archive", "$JS.API.STREAM.DELETE.LOOKOUT_ALERTS"} {
			_ = admin.nc.Publish(subject, []byte(`{}`))
			admin.refused(t, subject)
		}
	}
	l.mustBeUntouched(t, ctx)
}

func TestTLSWithClientCertificates(t *testing.T) {
	files := natstest.WriteTLS(t, t.TempDir())
	l := startLocked(t, natsbus.TLS{Cert: files.ServerCert, Key: files.ServerKey, CA: files.CA})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if !strings.HasPrefix(l.ns.ClientURL(), "tls://") {
		t.Fatalf("client URL %s", l.ns.ClientURL())
	}
	app := l.connect(t, natsbus.ClientAuth{User: "app", Password: "app-secret", CA: files.CA, Cert: files.ClientCert, Key: files.ClientKey})
	if _, err := app.js.Publish(ctx, "lookout.ingest.churn", []byte(`{}`)); err != nil {
		t.Fatalf("publish over TLS: %v", err)
	}
	if _, err := natsbus.Connect(l.ns.ClientURL(), "no cert", natsbus.ClientAuth{User: "app", Password: "app-secret", CA: files.CA}); err == nil {
		t.Error("a client without a certificate was accepted")
	}
	if _, err := natsbus.Connect(l.ns.ClientURL(), "no ca", natsbus.ClientAuth{User: "app", Password: "app-secret"}); err == nil {
		t.Error("a client that cannot verify the server connected")
	}
}

func TestConnectErrorsRedactThePassword(t *testing.T) {
	_, err := natsbus.Connect("nats://app:hunter2@127.0.0.1:1,nats://tok3n@127.0.0.1:2", "x", natsbus.ClientAuth{}, nats.Timeout(time.Second))
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "tok3n") {
		t.Fatalf("error %v", err)
	}
	if got := natsbus.RedactURL("nats://app:hunter2@h:4222"); got != "nats://app:xxxxx@h:4222" {
		t.Errorf("redacted %s", got)
	}
}

func TestValidateUsers(t *testing.T) {
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	for _, c := range []struct {
		users []natsbus.User
		want  string
	}{
		{[]natsbus.User{{User: "a", Password: "p", Role: "publisher"}, {Nkey: pub, Role: "admin"}}, ""},
		{[]natsbus.User{{User: "a", Role: "reader"}}, "users[0]: want exactly one of password, password_file and nkey"},
		{[]natsbus.User{{User: "a", Password: "p", PasswordFile: "f", Role: "reader"}}, "users[0]: want exactly one"},
		{[]natsbus.User{{User: "a", Password: "p", Role: "root"}}, `users[0].role: "root" is not one of publisher, reader, admin`},
		{[]natsbus.User{{Password: "p", Role: "reader"}}, "users[0].user: required"},
		{[]natsbus.User{{Nkey: "SUAB", Role: "reader"}}, "users[0].nkey: not a user's public nkey"},
		{[]natsbus.User{{User: "a", Password: "p", Role: "reader"}, {User: "a", Password: "q", Role: "admin"}}, `users[1]: user "a" listed twice`},
	} {
		err := natsbus.ValidateUsers(c.users, "users")
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.users, err, c.want)
		}
	}
}
