// Package notify delivers alert notifications to people: a generic
// webhook, a Slack incoming webhook and email over SMTP. Each sink sends
// one alerting.Notification and returns an error when the far end did not
// accept it; errors never carry the sink's URL, password or secret.
package notify

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/lookout-ml/lookout/pkg/alerting"
)

// Sink sends notifications to one destination.
type Sink interface {
	// Send delivers n, or returns why it could not; the caller retries.
	Send(ctx context.Context, n *alerting.Notification) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, n *alerting.Notification) error

// Send calls f.
func (f SinkFunc) Send(ctx context.Context, n *alerting.Notification) error { return f(ctx, n) }

var _ Sink = SinkFunc(nil)

// redactor removes secrets from error text.
type redactor []string

// secretsOf returns the parts of a URL that must not be shown: the whole
// URL, its host, path and query.
func secretsOf(raw string) redactor {
	r := redactor{raw}
	if u, err := url.Parse(raw); err == nil {
		r = append(r, u.Host, u.Path, u.RawQuery, u.String())
		if u.User != nil {
			r = append(r, u.User.String())
		}
	}
	return r
}

// wrap returns an error for operation op whose text has every secret
// replaced by "[redacted]" and that does not wrap the original (whose
// text could carry them).
func (r redactor) wrap(op string, err error) error {
	text := err.Error()
	for _, s := range r {
		if len(s) > 1 && s != "/" {
			text = strings.ReplaceAll(text, s, "[redacted]")
		}
	}
	return fmt.Errorf("%s: %s", op, text)
}

// title is a one-line headline of a notification.
func title(n *alerting.Notification) string {
	firing, resolved := len(n.Firing()), len(n.Resolved())
	var parts []string
	if firing > 0 {
		parts = append(parts, fmt.Sprintf("%d firing", firing))
	}
	if resolved > 0 {
		parts = append(parts, fmt.Sprintf("%d resolved", resolved))
	}
	rules := make([]string, 0, len(n.Alerts))
	for _, a := range n.Alerts {
		rules = append(rules, a.Rule)
	}
	if n.Omitted > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", n.Omitted))
	}
	return fmt.Sprintf("[%s] %s: %s (%s)", strings.ToUpper(n.Status), n.Model, strings.Join(rules, ", "), strings.Join(parts, ", "))
}

func number(f *float64) string {
	if f == nil {
		return "n/a"
	}
	return strconv.FormatFloat(*f, 'g', 4, 64)
}

func window(a *alerting.Alert) string {
	w := a.Source.Window
	if w == nil {
		return "n/a"
	}
	return w.Start.UTC().Format("2006-01-02 15:04:05") + " - " + w.End.UTC().Format("15:04:05") + " UTC"
}

// fields are the facts shown for each alert, in order.
func fields(a *alerting.Alert) [][2]string {
	f := [][2]string{
		{"Model", a.Model},
		{"Rule", a.Rule},
		{"Severity", a.Severity},
		{"Value", number(a.Value) + " (threshold " + number(a.Threshold) + ")"},
		{"Window", window(a)},
		{"Since", a.StartsAt.UTC().Format("2006-01-02 15:04:05 UTC")},
	}
	if a.EndsAt != nil {
		f = append(f, [2]string{"Resolved at", a.EndsAt.UTC().Format("2006-01-02 15:04:05 UTC")})
	}
	if len(a.Labels) > 0 {
		f = append(f, [2]string{"Labels", alerting.LabelString(a.Labels)})
	}
	if len(a.Inhibited) > 0 {
		names := make([]string, len(a.Inhibited))
		for i, in := range a.Inhibited {
			names[i] = alerting.LabelString(in.Labels) + " " + number(in.Value)
		}
		f = append(f, [2]string{"Also (" + a.Inhibited[0].Rule + ")", strings.Join(names, "; ")})
	}
	return f
}
