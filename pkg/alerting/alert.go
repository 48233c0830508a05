// Package alerting is the pure part of Lookout's alerts: rules evaluated
// over reports, the firing/resolved state machine, silences, inhibition and
// the grouping decisions of the notification pipeline. Nothing here talks to
// NATS; services/alert is the shell that feeds it and publishes its output.
package alerting

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Status of an alert event.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Severities a rule may carry.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Window is the time span a report covers.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Source says which message an alert event came from.
type Source struct {
	Subject string  `json:"subject"`
	Window  *Window `json:"window,omitempty"`
}

// Alert is one alert event, as published on lookout.alerts.<model> (the
// contract's "Alert event").
type Alert struct {
	Fingerprint string            `json:"fingerprint"`
	Status      string            `json:"status"`
	Rule        string            `json:"rule"`
	Model       string            `json:"model"`
	Severity    string            `json:"severity"`
	Labels      map[string]string `json:"labels"`
	Summary     string            `json:"summary"`
	Value       *float64          `json:"value"`
	Threshold   *float64          `json:"threshold"`
	StartsAt    time.Time         `json:"starts_at"`
	EndsAt      *time.Time        `json:"ends_at"`
	Source      Source            `json:"source"`
	// Run is the training run of the alert's version (labels.version; for
	// a canary alert the canary's), and ProductionRun the production's, as
	// the report that fired or last updated it named them (lookout version
	// set). Not part of the fingerprint: recording a run does not make a
	// new alert.
	Run           string `json:"run,omitempty"`
	ProductionRun string `json:"production_run,omitempty"`
	// Inhibited lists alerts shown inside this one instead of on their own
	// (the feature_drift alerts of a firing dataset_drift). Only in
	// notifications, never on the alerts subject.
	Inhibited []Alert `json:"inhibited,omitempty"`
}

// Firing reports whether the alert's status is firing.
func (a *Alert) Firing() bool { return a.Status == StatusFiring }

// Fingerprint returns the stable identity of an alert: a hash of its rule,
// model and labels (in key order), as 16 hex digits.
func Fingerprint(rule, model string, labels map[string]string) string {
	h := sha256.New()
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write([]byte(model))
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		h.Write([]byte{0})
		h.Write([]byte(k))
		h.Write([]byte{'='})
		h.Write([]byte(labels[k]))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// LabelString renders labels as k=v pairs in key order, comma-separated.
func LabelString(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(labels[k])
	}
	return b.String()
}
