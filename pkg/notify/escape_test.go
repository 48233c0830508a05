package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/notify"
	"github.com/lookout-ml/lookout/pkg/notify/notifytest"
)

// hostile is a notification whose every piece of outside text tries to
// speak Slack markup or HTML: a feature named <!channel>, a mention and a
// link in the summary, an ampersand in a label.
func hostile() *alerting.Notification {
	v, th := 0.5, 0.1
	start := time.Date(2026, 11, 24, 10, 5, 0, 0, time.UTC)
	return &alerting.Notification{
		ID: "n-esc", Sink: "s", Model: "churn", Status: alerting.StatusFiring, SentAt: start,
		Alerts: []alerting.Alert{{
			Fingerprint: "f<1>", Status: alerting.StatusFiring, Rule: "feature_drift", Model: "churn", Severity: "warning",
			Labels:  map[string]string{"feature": "<!channel>", "team": "R&D"},
			Summary: "<!channel> drifted: <@U024BE7LH> see <https://evil.example|here> & <script>x</script>",
			Value:   &v, Threshold: &th, StartsAt: start,
		}},
	}
}

// slackStrings is every string of a Slack message, as Slack reads them.
func slackStrings(m notify.SlackMessage) []string {
	out := []string{m.Text}
	for _, a := range m.Attachments {
		out = append(out, a.Color, a.Fallback, a.Title, a.Text, a.Footer)
		for _, f := range a.Fields {
			out = append(out, f.Title, f.Value)
		}
	}
	return out
}

func TestSlackEscapesUserText(t *testing.T) {
	recv := notifytest.RunHTTP(t)
	if err := (&notify.Slack{URL: recv.URL}).Send(context.Background(), hostile()); err != nil {
		t.Fatal(err)
	}
	reqs := recv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests", len(reqs))
	}
	var msg notify.SlackMessage
	if err := json.Unmarshal(reqs[0].Body, &msg); err != nil {
		t.Fatal(err)
	}
	// Nothing Slack would read as markup is left: no < or > at all, and
	// every & starts an entity.
	for _, s := range slackStrings(msg) {
		if strings.ContainsAny(s, "<>") {
			t.Errorf("unescaped markup in %q", s)
		}
		rest := s
		for i := strings.IndexByte(rest, '&'); i >= 0; i = strings.IndexByte(rest, '&') {
			rest = rest[i:]
			if !strings.HasPrefix(rest, "&amp;") && !strings.HasPrefix(rest, "&lt;") && !strings.HasPrefix(rest, "&gt;") {
				t.Errorf("bare & in %q", s)
				break
			}
			rest = rest[1:]
		}
	}
	att := msg.Attachments[0]
	if want := "&lt;!channel&gt; drifted: &lt;@U024BE7LH&gt; see &lt;https://evil.example|here&gt; &amp; &lt;script&gt;x&lt;/script&gt;"; att.Text != want {
		t.Errorf("summary %q, want %q", att.Text, want)
	}
	facts := map[string]string{}
	for _, f := range att.Fields {
		facts[f.Title] = f.Value
	}
	if labels := facts["Labels"]; !strings.Contains(labels, "&lt;!channel&gt;") || !strings.Contains(labels, "R&amp;D") {
		t.Errorf("labels field %q", labels)
	}
	if att.Footer != "lookout · f&lt;1&gt;" {
		t.Errorf("footer %q", att.Footer)
	}
}

func TestEmailPlainTextAndEscapedHTML(t *testing.T) {
	srv := notifytest.RunSMTP(t, notifytest.SMTPOptions{})
	e := &notify.Email{Addr: srv.Addr, From: "lookout@example.com", To: []string{"ops@example.com"}, StartTLS: notify.StartTLSNever}
	if err := e.Send(context.Background(), hostile()); err != nil {
		t.Fatal(err)
	}
	got := srv.Mail()
	if len(got) != 1 {
		t.Fatalf("got %d mails", len(got))
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(got[0].Data)))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
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
	// Plain text shows the text as it is: nothing there is markup.
	plain := parts["text/plain"]
	if !strings.Contains(plain, "<!channel> drifted") || !strings.Contains(plain, "R&D") {
		t.Errorf("plain part:\n%s", plain)
	}
	// HTML escapes every piece of it (html/template): no tag or entity
	// from the alert survives as markup.
	html := parts["text/html"]
	for _, bad := range []string{"<!channel>", "<script>", "<@U024BE7LH>", "R&D"} {
		if strings.Contains(html, bad) {
			t.Errorf("html part has %q unescaped:\n%s", bad, html)
		}
	}
	for _, want := range []string{"&lt;!channel&gt; drifted", "&lt;script&gt;x&lt;/script&gt;", "R&amp;D"} {
		if !strings.Contains(html, want) {
			t.Errorf("html part lacks %q:\n%s", want, html)
		}
	}
}

// TestWebhookBodyIsJSON: the webhook body is encoding/json's; the hostile
// text arrives as the same strings, with nothing escaped away or added.
func TestWebhookBodyIsJSON(t *testing.T) {
	recv := notifytest.RunHTTP(t)
	n := hostile()
	if err := (&notify.Webhook{URL: recv.URL}).Send(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	req := recv.Requests()[0]
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var got alerting.Notification
	if err := json.Unmarshal(req.Body, &got); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, req.Body)
	}
	a, want := got.Alerts[0], n.Alerts[0]
	if a.Summary != want.Summary || a.Labels["feature"] != "<!channel>" || a.Labels["team"] != "R&D" || a.Fingerprint != want.Fingerprint {
		t.Fatalf("decoded %+v, want %+v", a, want)
	}
}
