package alert

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"time"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/notify"
)

// Validate checks the settings the alert service cannot run with: timings,
// the rejection_rate rule, retries, every rule and every sink. Each error
// starts with the key's path inside the `alert` section; several are
// joined. A zero interval or count is an error (a key left out keeps its
// default, so a zero was written); group_wait may be zero (no wait).
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.GroupWait < 0 {
		add("group_wait: must not be negative, got %v", c.GroupWait)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"group_interval", c.GroupInterval},
		{"repeat_interval", c.RepeatInterval},
		{"evaluation_interval", c.EvaluationInterval},
		{"no_data", c.NoData},
		{"rejection_rate.window", c.RejectionRate.Window},
		{"retry.initial", c.Retry.Initial},
		{"retry.max", c.Retry.Max},
		{"retry.give_up_after", c.Retry.GiveUpAfter},
	} {
		if d.v <= 0 {
			add("%s: must be positive, got %v", d.key, d.v)
		}
	}
	if c.Retry.Initial > 0 && c.Retry.Max > 0 && c.Retry.Max < c.Retry.Initial {
		add("retry.max: must be at least retry.initial (%v), got %v", c.Retry.Initial, c.Retry.Max)
	}
	if t := c.RejectionRate.Threshold; math.IsNaN(t) || t <= 0 || t >= 1 {
		add("rejection_rate.threshold: must be in (0, 1), got %v", t)
	}
	if c.RejectionRate.MinCount < 1 {
		add("rejection_rate.min_count: must be positive, got %d", c.RejectionRate.MinCount)
	}

	// Each user rule is checked as it will run: merged over the default
	// rule of its name, if any.
	effective := c.EffectiveRules()
	for i, u := range c.Rules {
		if u.Name == "" {
			add("rules[%d].name: is required", i)
			continue
		}
		j := slices.IndexFunc(effective, func(r alerting.Rule) bool { return r.Name == u.Name })
		if _, err := alerting.NewEvaluator(effective[j : j+1]); err != nil {
			add("rules[%d]: %v", i, err)
		}
	}
	ruleNames := make([]string, len(effective))
	for i, r := range effective {
		ruleNames[i] = r.Name
	}

	if _, err := c.sinkNames(); err != nil {
		add("sinks: %v", err)
	}
	for i, s := range c.Sinks {
		for _, err := range s.validate(ruleNames) {
			errs = append(errs, fmt.Errorf("sinks[%d].%w", i, err))
		}
	}
	return errors.Join(errs...)
}

// validate checks one sink; each error starts with its key.
func (s SinkConfig) validate(ruleNames []string) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch s.Type {
	case "webhook", "slack":
		if err := checkHTTPURL(s.URL); err != nil {
			add("url: %v", err)
		}
	case "email":
		if s.SMTP == "" {
			add("smtp: is required for an email sink (host:port)")
		} else if host, port, err := net.SplitHostPort(s.SMTP); err != nil || host == "" || port == "" {
			add("smtp: %q is not host:port", s.SMTP)
		}
		if s.From == "" {
			add("from: is required for an email sink")
		}
		if len(s.To) == 0 {
			add("to: is required for an email sink")
		}
		for i, to := range s.To {
			if to == "" {
				add("to[%d]: is empty", i)
			}
		}
		switch s.StartTLS {
		case "", notify.StartTLSAuto, notify.StartTLSAlways, notify.StartTLSNever:
		default:
			add("starttls: %q is not auto, always or never", s.StartTLS)
		}
	default:
		add("type: %q is not webhook, slack or email", s.Type)
	}
	if s.PreviousSecret != "" {
		if s.Type != "webhook" {
			add("previous_secret: only a webhook sink is signed")
		} else if s.Secret == "" {
			// Signing with the old secret alone would undo the rotation.
			add("previous_secret: needs secret (the new one) too")
		}
	}
	for i, r := range s.Rules {
		if !slices.Contains(ruleNames, r) {
			add("rules[%d]: no rule named %q", i, r)
		}
	}
	for i, sev := range s.Severities {
		switch sev {
		case alerting.SeverityInfo, alerting.SeverityWarning, alerting.SeverityCritical:
		default:
			add("severities[%d]: %q is not info, warning or critical", i, sev)
		}
	}
	return errs
}

// checkHTTPURL accepts an absolute http or https URL with a host. The URL
// itself is never in the error: it may carry a token (Slack's does).
func checkHTTPURL(raw string) error {
	if raw == "" {
		return errors.New("is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("does not parse as a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	return nil
}
