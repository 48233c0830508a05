package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/lookout-ml/lookout/pkg/alerting"
)

// STARTTLS modes of an Email sink.
const (
	StartTLSAuto   = "auto"   // upgrade when the server offers STARTTLS
	StartTLSAlways = "always" // fail when it does not
	StartTLSNever  = "never"
)

// Email sends each notification as a multipart/alternative mail (plain
// text and HTML) over SMTP, upgrading to TLS with STARTTLS when offered
// and authenticating with PLAIN when a username is set.
type Email struct {
	// Addr is the SMTP server, host:port.
	Addr string
	From string
	To   []string
	// Username and Password authenticate (PLAIN); Go refuses to send them
	// unencrypted except to localhost.
	Username, Password string
	// StartTLS is auto (default), always or never.
	StartTLS string
	// TLS configures the STARTTLS handshake (e.g. a CA pool); ServerName
	// defaults to Addr's host.
	TLS *tls.Config
	// Timeout bounds one delivery (default 30s).
	Timeout time.Duration
	// Hostname is sent in EHLO (default "localhost").
	Hostname string
}

var _ Sink = (*Email)(nil)

// Send delivers n to every recipient. An SMTP 5xx reply is permanent
// (ErrPermanent), a 4xx reply or a network error transient.
func (e *Email) Send(ctx context.Context, n *alerting.Notification) error {
	secrets := redactor{e.Password, e.Username}
	msg, err := e.message(n, time.Now())
	if err != nil {
		return permanent(fmt.Errorf("email: compose: %w", err))
	}
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", e.Addr)
	if err != nil {
		return secrets.wrap("email: dial", err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	host, _, _ := net.SplitHostPort(e.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return smtpError(secrets, "email: greeting", err)
	}
	defer c.Close()
	hostname := e.Hostname
	if hostname == "" {
		hostname = "localhost"
	}
	if err := c.Hello(hostname); err != nil {
		return smtpError(secrets, "email: ehlo", err)
	}
	if offered, _ := c.Extension("STARTTLS"); offered && e.StartTLS != StartTLSNever {
		cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if e.TLS != nil {
			cfg = e.TLS.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName = host
			}
		}
		if err := c.StartTLS(cfg); err != nil {
			return smtpError(secrets, "email: starttls", err)
		}
	} else if e.StartTLS == StartTLSAlways {
		return fmt.Errorf("email: server does not offer STARTTLS")
	}
	if e.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.Username, e.Password, host)); err != nil {
			return smtpError(secrets, "email: auth", err)
		}
	}
	if err := c.Mail(e.From); err != nil {
		return smtpError(secrets, "email: mail from", err)
	}
	for _, to := range e.To {
		if err := c.Rcpt(to); err != nil {
			return smtpError(secrets, "email: rcpt to", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpError(secrets, "email: data", err)
	}
	if _, err := w.Write(msg); err != nil {
		return smtpError(secrets, "email: data", err)
	}
	if err := w.Close(); err != nil {
		return smtpError(secrets, "email: data", err)
	}
	// The server took the mail once DATA ended; a failing QUIT must not
	// make the caller send it again.
	_ = c.Quit()
	return nil
}

var htmlBody = template.Must(template.New("mail").Parse(`<!DOCTYPE html>
<html><body style="font-family: sans-serif">
<h2>{{.Title}}</h2>
{{range .Alerts}}<div style="border-left: 6px solid {{.Color}}; padding: 4px 12px; margin: 12px 0">
<h3 style="margin: 4px 0">{{.State}} {{.Model}}: {{.Rule}}</h3>
<p>{{.Summary}}</p>
<table>{{range .Fields}}<tr><th align="left">{{index . 0}}</th><td>{{index . 1}}</td></tr>{{end}}</table>
</div>{{end}}
</body></html>
`))

type htmlAlert struct {
	Color, State, Model, Rule, Summary string
	Fields                             [][2]string
}

// message renders the whole mail, headers included, with CRLF lines.
func (e *Email) message(n *alerting.Notification, now time.Time) ([]byte, error) {
	var plain strings.Builder
	plain.WriteString(title(n) + "\n")
	view := struct {
		Title  string
		Alerts []htmlAlert
	}{Title: title(n)}
	for _, a := range n.Alerts {
		state, color := "FIRING", ColorFiring
		if !a.Firing() {
			state, color = "RESOLVED", ColorResolved
		}
		fmt.Fprintf(&plain, "\n%s %s: %s\n%s\n", state, a.Model, a.Rule, a.Summary)
		for _, f := range fields(&a) {
			fmt.Fprintf(&plain, "  %-12s %s\n", f[0]+":", f[1])
		}
		view.Alerts = append(view.Alerts, htmlAlert{Color: color, State: state, Model: a.Model, Rule: a.Rule, Summary: a.Summary, Fields: fields(&a)})
	}
	var html bytes.Buffer
	if err := htmlBody.Execute(&html, view); err != nil {
		return nil, err
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct{ contentType, text string }{
		{"text/plain; charset=utf-8", plain.String()},
		{"text/html; charset=utf-8", html.String()},
	} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.contentType},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(strings.ReplaceAll(part.text, "\n", "\r\n"))); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	domain := "lookout"
	if _, d, ok := strings.Cut(e.From, "@"); ok {
		domain = strings.Trim(d, "> ")
	}
	var msg bytes.Buffer
	header := [][2]string{
		{"From", e.From},
		{"To", strings.Join(e.To, ", ")},
		{"Subject", mime.QEncoding.Encode("utf-8", title(n))},
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id[:]) + "@" + domain + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", `multipart/alternative; boundary="` + mw.Boundary() + `"`},
		{"X-Lookout-Notification-Id", n.ID},
	}
	for _, h := range header {
		msg.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}
