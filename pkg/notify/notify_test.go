package notify_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/notify"
	"github.com/lookout-ml/lookout/pkg/notify/notifytest"
)

func sample() *alerting.Notification {
	v, th := 0.31, 0.1
	start := time.Date(2026, 11, 24, 10, 5, 0, 0, time.UTC)
	end := start.Add(10 * time.Minute)
	return &alerting.Notification{
		ID: "n1", Sink: "hook", Model: "churn", Status: alerting.StatusFiring, SentAt: start,
		Alerts: []alerting.Alert{
			{
				Fingerprint: "f1", Status: alerting.StatusFiring, Rule: "feature_drift", Model: "churn", Severity: "warning",
				Labels: map[string]string{"feature": "age"}, Summary: "age drifted <b>", Value: &v, Threshold: &th, StartsAt: start,
				Source: alerting.Source{Subject: "lookout.drift.churn", Window: &alerting.Window{Start: start.Add(-5 * time.Minute), End: start}},
			},
			{
				Fingerprint: "f2", Status: alerting.StatusResolved, Rule: "no_data", Model: "churn", Severity: "critical",
				Labels: map[string]string{}, Summary: "no predictions for 12m", StartsAt: start, EndsAt: &end,
			},
		},
	}
}

func TestWebhookSignsBody(t *testing.T) {
	recv := notifytest.RunHTTP(t)
	for _, tc := range []struct {
		name, secret string
	}{
		// With a secret the receiver can check the body's HMAC.
		{"signed", "s3cret"},
		// Without one there is no signature header at all.
		{"unsigned", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(recv.Requests())
			w := &notify.Webhook{URL: recv.URL + "/hook", Secret: tc.secret}
			if err := w.Send(context.Background(), sample()); err != nil {
				t.Fatal(err)
			}
			reqs := recv.Requests()
			if len(reqs) != before+1 {
				t.Fatalf("got %d requests, want %d", len(reqs), before+1)
			}
			req := reqs[len(reqs)-1]
			sig := req.Header.Get(notify.HeaderSignature)
			if tc.secret == "" && sig != "" {
				t.Fatalf("unsigned webhook sent signature %q", sig)
			}
			if tc.secret != "" && sig != notify.Sign(tc.secret, req.Body) {
				t.Fatalf("signature %q does not match body", sig)
			}
			var got alerting.Notification
			if err := json.Unmarshal(req.Body, &got); err != nil {
				t.Fatal(err)
			}
			if got.ID != "n1" || len(got.Alerts) != 2 || got.Alerts[0].Labels["feature"] != "age" || *got.Alerts[0].Value != 0.31 {
				t.Fatalf("body: %+v", got)
			}
			if req.Header.Get(notify.HeaderNotificationID) != "n1" {
				t.Fatalf("notification id header %q", req.Header.Get(notify.HeaderNotificationID))
			}
		})
	}
}

func TestSinkErrorsHideSecrets(t *testing.T) {
	recv := notifytest.RunHTTP(t)
	recv.Refuse.Store(1)
	closed := notifytest.RunHTTP(t)
	closed.Close()
	const token = "T000/B000/XXXXSECRET"
	for _, tc := range []struct {
		name string
		sink notify.Sink
		url  string
	}{
		// A refusing server: the status is reported, not the URL.
		{"status", &notify.Slack{URL: recv.URL + "/services/" + token}, recv.URL},
		// A server that is gone: the dial error must not name it.
		{"dial", &notify.Webhook{URL: closed.URL + "/services/" + token, Secret: "hmac-secret"}, closed.URL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.sink.Send(context.Background(), sample())
			if err == nil {
				t.Fatal("no error")
			}
			for _, secret := range []string{token, strings.TrimPrefix(tc.url, "http://"), "hmac-secret"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q shows %q", err, secret)
				}
			}
		})
	}
}

func TestSlackColours(t *testing.T) {
	recv := notifytest.RunHTTP(t)
	if err := (&notify.Slack{URL: recv.URL}).Send(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	var msg notify.SlackMessage
	if err := json.Unmarshal(recv.Requests()[0].Body, &msg); err != nil {
		t.Fatal(err)
	}
	if len(msg.Attachments) != 2 {
		t.Fatalf("attachments: %d", len(msg.Attachments))
	}
	firing, resolved := msg.Attachments[0], msg.Attachments[1]
	if firing.Color != notify.ColorFiring || resolved.Color != notify.ColorResolved {
		t.Fatalf("colours %s, %s", firing.Color, resolved.Color)
	}
	facts := map[string]string{}
	for _, f := range firing.Fields {
		facts[f.Title] = f.Value
	}
	for title, want := range map[string]string{
		"Model": "churn", "Rule": "feature_drift", "Value": "0.31 (threshold 0.1)", "Window": "2026-11-24 10:00:00 - 10:05:00 UTC",
	} {
		if facts[title] != want {
			t.Errorf("field %s = %q, want %q", title, facts[title], want)
		}
	}
	if !strings.Contains(msg.Text, "churn") {
		t.Errorf("text %q lacks the model", msg.Text)
	}
}

func TestEmailStartTLSAuthMultipart(t *testing.T) {
	srv := notifytest.RunSMTP(t, notifytest.SMTPOptions{TLS: true, Username: "alice", Password: "pw-secret"})
	e := &notify.Email{
		Addr: srv.Addr, From: "lookout@example.com", To: []string{"ops@example.com", "ml@example.com"},
		Username: "alice", Password: "pw-secret", TLS: &tls.Config{RootCAs: srv.CertPool},
	}
	if err := e.Send(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	got := srv.Mail()
	if len(got) != 1 {
		t.Fatalf("got %d mails", len(got))
	}
	m := got[0]
	if !m.TLS || m.User != "alice" || len(m.To) != 2 {
		t.Fatalf("session: tls %v user %q to %v", m.TLS, m.User, m.To)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg.Header.Get("Subject"), "churn") {
		t.Errorf("subject %q", msg.Header.Get("Subject"))
	}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("content type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		body, err := io.ReadAll(quotedprintable.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		parts[ct] = string(body)
	}
	if !strings.Contains(parts["text/plain"], "FIRING churn: feature_drift") || !strings.Contains(parts["text/plain"], "RESOLVED churn: no_data") {
		t.Errorf("plain part:\n%s", parts["text/plain"])
	}
	// The HTML part escapes the summary.
	if !strings.Contains(parts["text/html"], "age drifted &lt;b&gt;") || !strings.Contains(parts["text/html"], notify.ColorResolved) {
		t.Errorf("html part:\n%s", parts["text/html"])
	}
}

func TestEmailFailures(t *testing.T) {
	plain := notifytest.RunSMTP(t, notifytest.SMTPOptions{Username: "alice", Password: "right"})
	for _, tc := range []struct {
		name string
		e    *notify.Email
	}{
		// starttls: always refuses a server that does not offer it.
		{"no starttls", &notify.Email{Addr: plain.Addr, From: "a@x", To: []string{"b@x"}, StartTLS: notify.StartTLSAlways}},
		// A wrong password fails, and the error does not show it.
		{"bad password", &notify.Email{Addr: plain.Addr, From: "a@x", To: []string{"b@x"}, Username: "alice", Password: "wrong-pw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.e.Send(context.Background(), sample())
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "wrong-pw") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
	if n := len(plain.Mail()); n != 0 {
		t.Fatalf("%d mails delivered", n)
	}
}

func TestSinkErrorsPermanentOrTransient(t *testing.T) {
	recv := notifytest.RunHTTP(t)
	closed := notifytest.RunHTTP(t)
	closed.Close()
	for _, tc := range []struct {
		comment    string
		status     int
		retryAfter int64
		url        string
		permanent  bool
		wait       time.Duration
	}{
		{"400: the receiver will never take this body", 400, 0, "", true, 0},
		{"404: nothing lives at this URL", 404, 0, "", true, 0},
		{"410: the hook was removed", 410, 0, "", true, 0},
		{"413: too big for the receiver", 413, 0, "", true, 0},
		{"401: refused credentials", 401, 0, "", true, 0},
		{"408: the receiver timed out, try again", 408, 0, "", false, 0},
		{"425: too early, try again", 425, 0, "", false, 0},
		{"429 with Retry-After: wait as asked", 429, 7, "", false, 7 * time.Second},
		{"500: the receiver broke, try again", 500, 0, "", false, 0},
		{"503 with Retry-After", 503, 3, "", false, 3 * time.Second},
		{"a refused connection is transient", 0, 0, closed.URL, false, 0},
		{"a URL that cannot make a request is permanent", 0, 0, "http://a b/", true, 0},
	} {
		t.Run(tc.comment, func(t *testing.T) {
			recv.Refuse.Store(1)
			recv.Status.Store(int64(tc.status))
			recv.RetryAfter.Store(tc.retryAfter)
			u := tc.url
			if u == "" {
				u = recv.URL + "/hook"
			}
			for _, sink := range []notify.Sink{&notify.Webhook{URL: u}, &notify.Slack{URL: u}} {
				recv.Refuse.Store(1)
				err := sink.Send(context.Background(), sample())
				if err == nil {
					t.Fatalf("%T: no error", sink)
				}
				if got := notify.IsPermanent(err); got != tc.permanent {
					t.Fatalf("%T: %v: permanent %v, want %v", sink, err, got, tc.permanent)
				}
				if got := notify.RetryAfter(err); got != tc.wait {
					t.Fatalf("%T: retry after %v, want %v", sink, got, tc.wait)
				}
			}
		})
	}
}

func TestEmailErrorsPermanentOrTransient(t *testing.T) {
	srv := notifytest.RunSMTP(t, notifytest.SMTPOptions{Username: "alice", Password: "right"})
	// A wrong password is answered 535: permanent.
	err := (&notify.Email{Addr: srv.Addr, From: "a@x", To: []string{"b@x"}, Username: "alice", Password: "wrong"}).Send(context.Background(), sample())
	if err == nil || !notify.IsPermanent(err) {
		t.Fatalf("bad password: %v, permanent %v", err, notify.IsPermanent(err))
	}
	// A server that is not there: transient.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = (&notify.Email{Addr: addr, From: "a@x", To: []string{"b@x"}, Timeout: 2 * time.Second}).Send(context.Background(), sample())
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("no server: %v, permanent %v", err, notify.IsPermanent(err))
	}
}
