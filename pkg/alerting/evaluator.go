package alerting

import (
	"fmt"
	"slices"
	"time"
)

// State is what the evaluator remembers about one alert between windows.
// Only alerts that are pending (the condition holds, not yet For windows)
// or firing have a state; the service persists it so a restart neither
// forgets a firing alert nor fires it twice.
type State struct {
	Fingerprint string            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	Model       string            `json:"model"`
	Labels      map[string]string `json:"labels"`
	// Hits counts consecutive windows in which the condition held (capped
	// at the rule's For).
	Hits int `json:"hits"`
	// Misses counts consecutive windows in which it failed while firing.
	Misses int  `json:"misses"`
	Firing bool `json:"firing"`
	// Alert is the firing event, once there is one.
	Alert *Alert `json:"alert,omitempty"`
}

// Result is what one evaluation changed.
type Result struct {
	// Events are the alert events to publish, in order.
	Events []Alert
	// Changed are states to store; Deleted are fingerprints to forget.
	Changed []State
	Deleted []string
}

type ruleModel struct{ rule, model string }

type fingerprintKey struct{ rule, model, key, version, canary string }

// Labels of the versions a canary report compares (the contract's
// canary_rollback labels).
const (
	LabelProductionVersion = "production_version"
	LabelCanaryVersion     = "canary_version"
)

// reportVersions returns the versions a report names: a drift or
// performance report's "version", a canary report's production and canary
// versions.
func reportVersions(r Report) versions {
	var v versions
	v.version, _ = r["version"].(string)
	v.run, _ = r["run"].(string)
	if p, ok := r["production"].(map[string]any); ok {
		v.production, _ = p["version"].(string)
		v.productionRun, _ = p["run"].(string)
	}
	if c, ok := r["canary"].(map[string]any); ok {
		v.canary, _ = c["version"].(string)
		v.run, _ = c["run"].(string)
	}
	return v
}

// versions are a report's versions; run is the run of version (of canary
// in a canary report), productionRun that of production.
type versions struct{ version, production, canary, run, productionRun string }

// labels returns the labels of rule c's alert for wildcard key and the
// report's model versions: an alert is per version (like the contract's
// example), and a canary alert per pair of versions, so that rolling back
// one canary and trying another is another alert.
func (c *compiled) labels(key string, v versions) map[string]string {
	labels := map[string]string{}
	if c.field.Wildcard() {
		labels[c.Label] = key
	}
	if v.version != "" {
		labels["version"] = v.version
	}
	if c.Source == SourceCanary {
		if v.production != "" {
			labels[LabelProductionVersion] = v.production
		}
		if v.canary != "" {
			labels[LabelCanaryVersion] = v.canary
		}
	}
	if len(labels) == 0 {
		return nil
	}
	return labels
}

// fingerprint returns (and caches) the fingerprint of rule c's alert for
// model, wildcard key and versions.
func (e *Evaluator) fingerprint(c *compiled, model, key string, v versions) string {
	k := fingerprintKey{c.Name, model, key, v.version, v.production + "\x00" + v.canary}
	fp, ok := e.prints[k]
	if !ok {
		if len(e.prints) > 1<<20 {
			clear(e.prints)
		}
		fp = Fingerprint(c.Name, model, c.labels(key, v))
		e.prints[k] = fp
	}
	return fp
}

// Evaluator evaluates rules over reports and keeps each alert's state. It
// is not safe for concurrent use.
type Evaluator struct {
	rules    map[string][]*compiled // by source
	byName   map[string]*compiled
	states   map[string]*State
	byRule   map[ruleModel]map[string]*State
	seen     map[string]bool // scratch, reused between evaluations
	prints   map[fingerprintKey]string
	disabled []string
}

// NewEvaluator compiles rules (disabled ones are left out). It fails on
// an invalid rule or two rules with one name.
func NewEvaluator(rules []Rule) (*Evaluator, error) {
	e := &Evaluator{
		rules:  make(map[string][]*compiled),
		byName: make(map[string]*compiled),
		states: make(map[string]*State),
		byRule: make(map[ruleModel]map[string]*State),
		seen:   make(map[string]bool),
		prints: make(map[fingerprintKey]string),
	}
	for _, r := range rules {
		if _, dup := e.byName[r.Name]; dup || slices.Contains(e.disabled, r.Name) {
			return nil, fmt.Errorf("%w %q: defined twice", ErrRule, r.Name)
		}
		if !r.On() {
			e.disabled = append(e.disabled, r.Name)
			continue
		}
		c, err := compile(r)
		if err != nil {
			return nil, err
		}
		e.byName[r.Name] = c
		e.rules[c.Source] = append(e.rules[c.Source], c)
	}
	return e, nil
}

// Rules returns the names of the enabled rules reading source.
func (e *Evaluator) Rules(source string) []string {
	var names []string
	for _, c := range e.rules[source] {
		names = append(names, c.Name)
	}
	return names
}

// Count returns how many enabled rules read source.
func (e *Evaluator) Count(source string) int { return len(e.rules[source]) }

// Restore loads states saved earlier. States of rules that no longer exist
// are dropped and returned as fingerprints to delete.
func (e *Evaluator) Restore(states []State) (deleted []string) {
	for _, s := range states {
		if _, ok := e.byName[s.Rule]; !ok {
			deleted = append(deleted, s.Fingerprint)
			continue
		}
		st := s
		e.put(&st)
	}
	return deleted
}

// Firing returns the firing alerts, ordered by model, rule and labels.
func (e *Evaluator) Firing() []Alert {
	var out []Alert
	for _, s := range e.states {
		if s.Firing && s.Alert != nil {
			out = append(out, *s.Alert)
		}
	}
	SortAlerts(out)
	return out
}

// SortAlerts orders alerts by model, rule and labels.
func SortAlerts(alerts []Alert) {
	slices.SortFunc(alerts, func(a, b Alert) int {
		if a.Model != b.Model {
			return cmpString(a.Model, b.Model)
		}
		if a.Rule != b.Rule {
			return cmpString(a.Rule, b.Rule)
		}
		return cmpString(LabelString(a.Labels), LabelString(b.Labels))
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (e *Evaluator) put(s *State) {
	e.states[s.Fingerprint] = s
	k := ruleModel{s.Rule, s.Model}
	m := e.byRule[k]
	if m == nil {
		m = make(map[string]*State)
		e.byRule[k] = m
	}
	m[s.Fingerprint] = s
}

func (e *Evaluator) drop(s *State, res *Result) {
	delete(e.states, s.Fingerprint)
	k := ruleModel{s.Rule, s.Model}
	delete(e.byRule[k], s.Fingerprint)
	if len(e.byRule[k]) == 0 {
		delete(e.byRule, k)
	}
	res.Deleted = append(res.Deleted, s.Fingerprint)
}

// Evaluate runs every rule of source that applies to model over one
// report (one window), published on subject, at time now. It returns the
// events to publish and the states to persist. A firing alert starts at
// the window's end (now when the report has no window), and a resolved
// one ends there.
func (e *Evaluator) Evaluate(source, model, subject string, r Report, now time.Time) Result {
	var res Result
	w := r.Window()
	version := reportVersions(r)
	at := now.UTC()
	if w != nil && !w.End.IsZero() {
		at = w.End
	}
	for _, c := range e.rules[source] {
		if !c.appliesTo(model) {
			continue
		}
		clear(e.seen)
		c.field.Each(r, func(key string, v any) {
			holds := c.holds(c.compared(r, key, v))
			fp := e.fingerprint(c, model, key, version)
			e.seen[fp] = true
			st := e.states[fp]
			if !holds {
				if st != nil {
					e.miss(c, st, r, key, subject, w, at, &res)
				}
				return
			}
			if st == nil {
				st = &State{Fingerprint: fp, Rule: c.Name, Model: model, Labels: c.labels(key, version)}
				e.put(st)
			}
			changed := st.Misses != 0
			st.Misses = 0
			if st.Hits < c.For {
				st.Hits++
				changed = true
			}
			if st.Firing && st.Alert != nil {
				// The stored firing alert tells the latest window, not the
				// first one: what `lookout alerts` shows and the resolved
				// event repeats. Its StartsAt stays.
				value, threshold := c.numbers(r, key)
				a := *st.Alert
				a.Value, a.Threshold = value, threshold
				a.Summary = c.summarize(r, model, key, st.Labels, value, threshold, w)
				a.Source = Source{Subject: subject, Window: w}
				a.Run, a.ProductionRun = version.run, version.productionRun
				if !sameAlertText(&a, st.Alert) {
					st.Alert = &a
					changed = true
				}
			}
			if !st.Firing && st.Hits >= c.For {
				value, threshold := c.numbers(r, key)
				a := Alert{
					Fingerprint: fp, Status: StatusFiring, Rule: c.Name, Model: model, Severity: c.Severity,
					Labels: st.Labels, Value: value, Threshold: threshold, StartsAt: at,
					Summary: c.summarize(r, model, key, st.Labels, value, threshold, w),
					Source:  Source{Subject: subject, Window: w},
					Run:     version.run, ProductionRun: version.productionRun,
				}
				if a.Labels == nil {
					a.Labels = map[string]string{}
				}
				st.Firing, st.Alert = true, &a
				res.Events = append(res.Events, a)
				changed = true
			}
			if changed {
				res.Changed = append(res.Changed, *st)
			}
		})
		// An alert whose field is absent from this report fails too.
		for fp, st := range e.byRule[ruleModel{c.Name, model}] {
			if !e.seen[fp] {
				e.miss(c, st, r, st.Labels[c.Label], subject, w, at, &res)
			}
		}
	}
	return res
}

func (e *Evaluator) miss(c *compiled, st *State, r Report, key, subject string, w *Window, at time.Time, res *Result) {
	if !st.Firing {
		e.drop(st, res)
		return
	}
	st.Hits = 0
	st.Misses++
	if st.Misses < c.Resolve {
		res.Changed = append(res.Changed, *st)
		return
	}
	a := *st.Alert
	a.Status = StatusResolved
	end := at
	a.EndsAt = &end
	if v, _ := c.numbers(r, key); v != nil {
		a.Value = v
	}
	a.Source = Source{Subject: subject, Window: w}
	res.Events = append(res.Events, a)
	e.drop(st, res)
}

// numbers returns the alert's value and threshold as shown.
func (c *compiled) numbers(r Report, key string) (value, threshold *float64) {
	if v, ok := c.value.Lookup(r, key); ok {
		if c.Value == "" {
			v = c.compared(r, key, v)
		}
		if f, ok := number(v); ok {
			value = &f
		}
	}
	threshold = c.shownThreshold
	if !c.thresholdField.IsZero() {
		if v, ok := c.thresholdField.Lookup(r, key); ok {
			if f, ok := number(v); ok {
				threshold = &f
			}
		}
	}
	return value, threshold
}

// sameAlertText reports whether a and b tell the same value, threshold,
// summary and source window, so an unchanged firing alert is not stored
// again.
func sameAlertText(a, b *Alert) bool {
	eqNum := func(x, y *float64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqWin := func(x, y *Window) bool {
		return (x == nil) == (y == nil) && (x == nil || (x.Start.Equal(y.Start) && x.End.Equal(y.End)))
	}
	return a.Summary == b.Summary && eqNum(a.Value, b.Value) && eqNum(a.Threshold, b.Threshold) &&
		a.Source.Subject == b.Source.Subject && eqWin(a.Source.Window, b.Source.Window) &&
		a.Run == b.Run && a.ProductionRun == b.ProductionRun
}
