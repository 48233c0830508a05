package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/lookout-ml/lookout/pkg/alerting"
)

// Slack colours of an attachment.
const (
	ColorFiring   = "#d00000"
	ColorResolved = "#2eb886"
)

// Slack posts each notification to a Slack incoming webhook: a headline
// and one attachment per alert, red while firing and green once resolved.
type Slack struct {
	URL    string
	Client *http.Client
}

var _ Sink = (*Slack)(nil)

// SlackMessage is the payload of an incoming webhook.
type SlackMessage struct {
	Text        string            `json:"text"`
	Attachments []SlackAttachment `json:"attachments"`
}

// SlackAttachment is one alert in a SlackMessage.
type SlackAttachment struct {
	Color    string       `json:"color"`
	Fallback string       `json:"fallback"`
	Title    string       `json:"title"`
	Text     string       `json:"text"`
	Fields   []SlackField `json:"fields"`
	Footer   string       `json:"footer"`
	Ts       int64        `json:"ts"`
}

// SlackField is one fact of a SlackAttachment.
type SlackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// slackEscaper escapes the three characters Slack gives a meaning in
// message text (https://api.slack.com/reference/surfaces/formatting#escaping):
// "<!channel>", "<@U123>" or "<https://x|click>" in a feature name, label
// or summary must show as typed and never ping, mention or link.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// SlackEscape returns s with &, < and > escaped as Slack requires.
func SlackEscape(s string) string { return slackEscaper.Replace(s) }

// SlackPayload returns the message for n. Every piece of text is escaped
// (SlackEscape): models, rules, labels and summaries come from reports and
// configuration, not from Lookout.
func SlackPayload(n *alerting.Notification) SlackMessage {
	msg := SlackMessage{Text: SlackEscape(title(n))}
	for _, a := range n.Alerts {
		color, state := ColorFiring, "FIRING"
		if !a.Firing() {
			color, state = ColorResolved, "RESOLVED"
		}
		att := SlackAttachment{
			Color:    color,
			Title:    SlackEscape(fmt.Sprintf("%s %s: %s", state, a.Model, a.Rule)),
			Text:     SlackEscape(a.Summary),
			Fallback: SlackEscape(fmt.Sprintf("%s %s %s: %s", state, a.Model, a.Rule, a.Summary)),
			Footer:   SlackEscape("lookout · " + a.Fingerprint),
			Ts:       a.StartsAt.Unix(),
		}
		for _, f := range fields(&a) {
			att.Fields = append(att.Fields, SlackField{Title: SlackEscape(f[0]), Value: SlackEscape(f[1]), Short: len(f[1]) < 40})
		}
		msg.Attachments = append(msg.Attachments, att)
	}
	return msg
}

// Send posts n. Any status outside 2xx is an error; see ErrPermanent for
// which are permanent.
func (s *Slack) Send(ctx context.Context, n *alerting.Notification) error {
	body, err := json.Marshal(SlackPayload(n))
	if err != nil {
		return permanent(fmt.Errorf("slack: encode: %w", err))
	}
	return post(ctx, s.Client, "slack", s.URL, http.Header{"Content-Type": {"application/json"}}, body, secretsOf(s.URL))
}
