package event

import (
	"encoding/json"
	"strings"
)

// HeaderVerdictTo names, on a message published on lookout.ingest.<model>
// or lookout.feedback.<model>, a core NATS subject that the service that
// handles the message (ingest, feedback) answers with a Verdict once it has
// stored the outcome: the validated copy, or the rejection.
//
// A JetStream acknowledgement only says the input was stored; the verdict
// says whether it was accepted. It is a header rather than a subscription
// to lookout.predictions/lookout.rejected so that a client with the
// publisher role (publish on lookout.ingest.> and lookout.feedback.>,
// receive on _INBOX.>) learns it too. Only subjects under _INBOX. are
// answered: the services publish as an internal user with every
// permission, and must not publish where a client points them.
const HeaderVerdictTo = "Lookout-Verdict-To"

// Verdict is what a service answers on a HeaderVerdictTo subject.
type Verdict struct {
	Accepted bool `json:"accepted"`
	// Duplicate is set for a prediction whose model and id were seen within
	// the duplicate window: stored once, not accepted a second time.
	Duplicate bool      `json:"duplicate,omitempty"`
	Reasons   []*Reason `json:"reasons,omitempty"`
}

// VerdictSubject returns the subject a message's verdict goes to, or ""
// when it asked for none or named a subject outside _INBOX.
func VerdictSubject(to string) string {
	if !strings.HasPrefix(to, "_INBOX.") || len(to) > 256 || strings.ContainsAny(to, " \t\r\n*>") ||
		strings.HasSuffix(to, ".") || strings.Contains(to, "..") {
		return ""
	}
	return to
}

// MarshalVerdict encodes a verdict as JSON.
func MarshalVerdict(v Verdict) []byte {
	b, _ := json.Marshal(v)
	return b
}
