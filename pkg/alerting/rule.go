package alerting

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Sources a rule reads. drift, canary and performance are the reports on
// lookout.<source>.<model>; rejections and activity are the reports the
// alert service makes itself from ingest's output (see RateReport and
// ActivityReport).
const (
	SourceDrift       = "drift"
	SourceCanary      = "canary"
	SourcePerformance = "performance"
	SourceRejections  = "rejections"
	SourceActivity    = "activity"
)

// Names of the rules shipped by default (the contract's list).
const (
	RuleDatasetDrift    = "dataset_drift"
	RuleFeatureDrift    = "feature_drift"
	RulePredictionDrift = "prediction_drift"
	RuleConfidenceDrop  = "confidence_drop"
	RuleCanaryRollback  = "canary_rollback"
	RuleRejectionRate   = "rejection_rate"
	RuleNoData          = "no_data"
	// RuleEstimatedAccuracyDrop fires when CBPE's estimated accuracy of a
	// window fell more than 0.05 below the reference's.
	RuleEstimatedAccuracyDrop = "estimated_accuracy_drop"
	// RuleTypeMismatch fires when more than 5% of a feature's values in a
	// window are of another type than most of them (strays the drift
	// statistics leave out).
	RuleTypeMismatch = "type_mismatch"
	// RuleMultivariateDrift fires when the window's PCA reconstruction
	// error (multivariate.error) is above its reference band: a change in
	// how features move together that no single feature may show.
	RuleMultivariateDrift = "multivariate_drift"
	// RuleEmbeddingDrift fires per embedding whose MMD permutation test
	// says drifted (embeddings.<name>.drifted).
	RuleEmbeddingDrift = "embedding_drift"
)

// Rule says when an alert fires: a report field compared with a
// threshold, for one model or all of them. It is also the YAML form of a
// rule under alert.rules.
type Rule struct {
	// Name identifies the rule; a user rule named like a default rule
	// changes that rule's non-empty fields.
	Name string `yaml:"name" json:"name"`
	// Source is the report kind the rule reads: drift, canary,
	// performance, rejections or activity.
	Source string `yaml:"source" json:"source"`
	// Field is the dotted path of the compared value, e.g.
	// "features.*.psi"; a "*" gives one alert per matching key.
	Field string `yaml:"field" json:"field"`
	// Op is one of > >= < <= == !=.
	Op string `yaml:"op" json:"op"`
	// Threshold is a number, a boolean (true is 1) or a string (== and !=
	// only).
	Threshold any `yaml:"threshold" json:"threshold"`
	// Minus is the path of a number subtracted from Field's before the
	// comparison ("estimated_performance.accuracy" under
	// "estimated_performance.reference_accuracy" is the drop), so a rule
	// can compare a difference the report does not carry; a "*" stands for
	// Field's key. Either missing or not a number, the rule does not hold.
	Minus string `yaml:"minus" json:"minus,omitempty"`
	// Value is the path of the number shown as the alert's value (default:
	// Field, less Minus).
	Value string `yaml:"value" json:"value,omitempty"`
	// ThresholdField is the path of the number shown as the alert's
	// threshold (default: Threshold when it is a number).
	ThresholdField string `yaml:"threshold_field" json:"threshold_field,omitempty"`
	// Label names the label holding the wildcard's key (default "key").
	Label string `yaml:"label" json:"label,omitempty"`
	// Model limits the rule to one model; empty or "*" means every model.
	Model string `yaml:"model" json:"model,omitempty"`
	// Severity is info, warning or critical (default warning).
	Severity string `yaml:"severity" json:"severity"`
	// For is how many consecutive windows the condition must hold before
	// the alert fires (default 1).
	For int `yaml:"for" json:"for"`
	// Resolve is how many consecutive windows it must fail before a firing
	// alert resolves (default 2).
	Resolve int `yaml:"resolve" json:"resolve"`
	// Summary is a text/template for the alert's summary. It sees .Rule,
	// .Model, .Key, .Labels, .Value, .Threshold (formatted text), .Window
	// ("10:00-10:05"), .Get "path" (a report field; "*" stands for .Key)
	// and .Drift "path" (a feature drift object told as its statistic,
	// raw and normalised values and threshold, e.g. "wasserstein 0.831
	// (0.62 reference std) >= 0.1").
	Summary string `yaml:"summary" json:"summary,omitempty"`
	// Enabled turns a rule off when false.
	Enabled *bool `yaml:"enabled" json:"enabled,omitempty"`
}

// On reports whether the rule is enabled.
func (r Rule) On() bool { return r.Enabled == nil || *r.Enabled }

// DefaultRules returns the rules shipped by default: every rule of the
// contract, on.
func DefaultRules() []Rule {
	return []Rule{
		{
			Name: RuleDatasetDrift, Source: SourceDrift, Field: "dataset_drifted", Op: "==", Threshold: true,
			Value: "drift_share", Severity: SeverityCritical,
			Summary: `dataset drifted: drift share {{.Value}} in window {{.Window}}`,
		},
		{
			Name: RuleFeatureDrift, Source: SourceDrift, Field: "features.*.drifted", Op: "==", Threshold: true,
			Value: "features.*.score", ThresholdField: "features.*.threshold", Label: "feature", Severity: SeverityWarning,
			Summary: `{{.Key}} drifted: {{.Drift "features.*"}} in window {{.Window}}{{with .Get "root_cause.by_feature.*"}}, {{.}}{{end}}`,
		},
		{
			Name: RulePredictionDrift, Source: SourceDrift, Field: "prediction.drifted", Op: "==", Threshold: true,
			Value: "prediction.score", ThresholdField: "prediction.threshold", Severity: SeverityWarning,
			Summary: `prediction drifted: {{.Drift "prediction"}} in window {{.Window}}`,
		},
		{
			Name: RuleConfidenceDrop, Source: SourceDrift, Field: "confidence.dropped", Op: "==", Threshold: true,
			Value: "confidence.mean", ThresholdField: "confidence.reference_mean", Severity: SeverityWarning,
			Summary: `mean confidence {{.Value}} dropped from {{.Threshold}} in window {{.Window}}`,
		},
		{
			Name: RuleCanaryRollback, Source: SourceCanary, Field: "verdict", Op: "==", Threshold: "rollback",
			Value: "score", Severity: SeverityCritical,
			Summary: `canary {{.Get "canary.version"}} should roll back to production {{.Get "production.version"}} (score {{.Value}}): {{.Get "reasons"}} in window {{.Window}}`,
		},
		{
			Name: RuleRejectionRate, Source: SourceRejections, Field: "rejection_rate", Op: ">", Threshold: 0.05,
			Severity: SeverityWarning,
			Summary:  `{{.Value}} of input rejected ({{.Get "rejected"}} of {{.Get "total"}}) in window {{.Window}}, above {{.Threshold}}`,
		},
		{
			Name: RuleEstimatedAccuracyDrop, Source: SourceDrift, Field: "estimated_performance.reference_accuracy",
			Minus: "estimated_performance.accuracy", Op: ">", Threshold: 0.05, Severity: SeverityWarning,
			Summary: `estimated accuracy (cbpe) {{.Get "estimated_performance.accuracy"}} is {{.Value}} below the reference's {{.Get "estimated_performance.reference_accuracy"}}, more than {{.Threshold}}, in window {{.Window}}`,
		},
		{
			Name: RuleTypeMismatch, Source: SourceDrift, Field: "data_quality.features.*.type_mismatch_share", Op: ">", Threshold: 0.05,
			Label: "feature", Severity: SeverityWarning,
			Summary: `{{.Key}}: {{.Value}} of its values are of another type (left out of the statistics), above {{.Threshold}}, in window {{.Window}}`,
		},
		{
			Name: RuleMultivariateDrift, Source: SourceDrift, Field: "multivariate.drifted", Op: "==", Threshold: true,
			Value: "multivariate.error", ThresholdField: "multivariate.threshold", Severity: SeverityWarning,
			Summary: `features drifted together: pca reconstruction error {{.Value}} > {{.Threshold}} (reference mean {{.Get "multivariate.reference_mean"}}) in window {{.Window}}{{with .Get "root_cause.summary"}}; {{.}}{{end}}`,
		},
		{
			Name: RuleEmbeddingDrift, Source: SourceDrift, Field: "embeddings.*.drifted", Op: "==", Threshold: true,
			Value: "embeddings.*.p_value", ThresholdField: "embeddings.*.threshold", Label: "embedding", Severity: SeverityWarning,
			Summary: `embedding {{.Key}} drifted: mmd2 {{.Get "embeddings.*.mmd2"}}, p-value {{.Value}} < {{.Threshold}}, centroid distance {{.Get "embeddings.*.centroid_distance"}} in window {{.Window}}`,
		},
		{
			Name: RuleNoData, Source: SourceActivity, Field: "silent_seconds", Op: ">", Threshold: 600.0,
			Severity: SeverityCritical, Resolve: 1,
			Summary: `no predictions for {{.Get "silent"}} (last at {{.Get "last_seen"}})`,
		},
	}
}

// MergeRules applies user rules over base: a user rule with the name of a
// base rule replaces that rule's non-empty fields; any other is added.
func MergeRules(base, user []Rule) []Rule {
	out := slices.Clone(base)
	for _, u := range user {
		i := slices.IndexFunc(out, func(r Rule) bool { return r.Name == u.Name })
		if i < 0 {
			out = append(out, u)
			continue
		}
		r := &out[i]
		set := func(dst *string, v string) {
			if v != "" {
				*dst = v
			}
		}
		set(&r.Source, u.Source)
		set(&r.Field, u.Field)
		set(&r.Op, u.Op)
		set(&r.Minus, u.Minus)
		set(&r.Value, u.Value)
		set(&r.ThresholdField, u.ThresholdField)
		set(&r.Label, u.Label)
		set(&r.Model, u.Model)
		set(&r.Severity, u.Severity)
		set(&r.Summary, u.Summary)
		if u.Threshold != nil {
			r.Threshold = u.Threshold
		}
		if u.For != 0 {
			r.For = u.For
		}
		if u.Resolve != 0 {
			r.Resolve = u.Resolve
		}
		if u.Enabled != nil {
			r.Enabled = u.Enabled
		}
	}
	return out
}

// ErrRule marks an invalid rule.
var ErrRule = errors.New("invalid rule")

// compiled is a rule ready to evaluate.
type compiled struct {
	Rule
	field, minus, value, thresholdField Path
	op                                  string
	num                                 float64 // threshold as a number, when numeric
	str                                 string  // threshold as a string, when not
	numeric                             bool
	shownThreshold                      *float64
	summary                             *template.Template
}

func compile(r Rule) (*compiled, error) {
	fail := func(format string, args ...any) (*compiled, error) {
		return nil, fmt.Errorf("%w %q: %s", ErrRule, r.Name, fmt.Sprintf(format, args...))
	}
	if r.Name == "" {
		return fail("no name")
	}
	switch r.Source {
	case SourceDrift, SourceCanary, SourcePerformance, SourceRejections, SourceActivity:
	default:
		return fail("source %q is not drift, canary, performance, rejections or activity", r.Source)
	}
	c := &compiled{Rule: r, op: r.Op}
	var err error
	if c.field, err = ParsePath(r.Field); err != nil {
		return fail("field: %v", err)
	}
	if r.Minus != "" {
		if c.minus, err = ParsePath(r.Minus); err != nil {
			return fail("minus: %v", err)
		}
	}
	if r.Value != "" {
		if c.value, err = ParsePath(r.Value); err != nil {
			return fail("value: %v", err)
		}
	} else {
		c.value = c.field
	}
	if r.ThresholdField != "" {
		if c.thresholdField, err = ParsePath(r.ThresholdField); err != nil {
			return fail("threshold_field: %v", err)
		}
	}
	if (c.value.Wildcard() || c.thresholdField.Wildcard() || c.minus.Wildcard()) && !c.field.Wildcard() {
		return fail("value, threshold_field or minus has * but field has not")
	}
	switch r.Op {
	case ">", ">=", "<", "<=", "==", "!=":
	default:
		return fail("op %q is not one of > >= < <= == !=", r.Op)
	}
	switch t := r.Threshold.(type) {
	case nil:
		return fail("no threshold")
	case string:
		if f, err := strconv.ParseFloat(t, 64); err == nil {
			c.num, c.numeric = f, true
		} else if b, err := strconv.ParseBool(t); err == nil && t != "1" && t != "0" {
			c.num, c.numeric = boolNum(b), true
		} else {
			c.str = t
		}
	default:
		f, ok := number(t)
		if !ok {
			return fail("threshold %v is not a number, boolean or string", t)
		}
		c.num, c.numeric = f, true
		if _, isBool := t.(bool); !isBool {
			c.shownThreshold = &f
		}
	}
	if !c.numeric && !c.minus.IsZero() {
		return fail("minus takes a numeric threshold")
	}
	if !c.numeric && r.Op != "==" && r.Op != "!=" {
		return fail("a string threshold takes == or != only")
	}
	if c.Severity == "" {
		c.Severity = SeverityWarning
	}
	switch c.Severity {
	case SeverityInfo, SeverityWarning, SeverityCritical:
	default:
		return fail("severity %q is not info, warning or critical", c.Severity)
	}
	if c.For < 1 {
		c.For = 1
	}
	if c.Resolve < 1 {
		c.Resolve = 2
	}
	if c.Label == "" {
		c.Label = "key"
	}
	text := r.Summary
	if text == "" {
		text = `{{.Rule}}{{if .Key}} {{.Key}}{{end}}: ` + r.Field + ` {{.Value}} ` + r.Op + ` {{.Threshold}} in window {{.Window}}`
	}
	c.summary, err = template.New(r.Name).Option("missingkey=zero").Parse(text)
	if err != nil {
		return fail("summary: %v", err)
	}
	return c, nil
}

// compared returns the value the rule compares for key: v, Field's value,
// less Minus's when the rule has one (nil unless both are numbers).
func (c *compiled) compared(r Report, key string, v any) any {
	if c.minus.IsZero() {
		return v
	}
	a, ok := number(v)
	if !ok {
		return nil
	}
	m, _ := c.minus.Lookup(r, key)
	b, ok := number(m)
	if !ok {
		return nil
	}
	return a - b
}

func boolNum(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// holds reports whether v meets the rule's condition. A value of the wrong
// kind never does.
func (c *compiled) holds(v any) bool {
	if !c.numeric {
		s, ok := v.(string)
		if !ok {
			return false
		}
		if c.op == "==" {
			return s == c.str
		}
		return s != c.str
	}
	f, ok := number(v)
	if !ok {
		return false
	}
	switch c.op {
	case ">":
		return f > c.num
	case ">=":
		return f >= c.num
	case "<":
		return f < c.num
	case "<=":
		return f <= c.num
	case "==":
		return f == c.num
	default:
		return f != c.num
	}
}

func (c *compiled) appliesTo(model string) bool {
	return c.Model == "" || c.Model == "*" || c.Model == model
}

// summaryData is what a summary template sees.
type summaryData struct {
	Rule, Model, Key, Value, Threshold, Window string
	Labels                                     map[string]string
	report                                     Report
}

// Get returns the report's field at path ("*" standing for Key), numbers
// with 4 significant digits and lists joined with "; ".
func (d summaryData) Get(path string) any {
	p, err := ParsePath(path)
	if err != nil {
		return nil
	}
	v, _ := p.Lookup(d.report, d.Key)
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'g', 4, 64)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, "; ")
	}
	return v
}

// NoteConstantReference is driftreport's note on a feature constant in the
// reference, whose wasserstein score is then the raw distance (the text is
// driftreport.NoteConstantReference; alerting reads reports generically).
const NoteConstantReference = "constant in the reference (std 0): wasserstein not normalised"

// Drift tells the feature drift object at path ("*" standing for Key) as
// the statistic it compared, with its raw value beside the normalised one
// where they differ, the comparison and the threshold: "wasserstein 0.831
// (0.62 reference std) >= 0.1", "ks statistic 0.21, p-value 1e-09 < 0.05".
// A feature constant in the reference is told as such: a data-quality
// case, not a distance in standard deviations.
func (d summaryData) Drift(path string) string {
	p, err := ParsePath(path)
	if err != nil {
		return "n/a"
	}
	v, _ := p.Lookup(d.report, d.Key)
	fd, ok := v.(map[string]any)
	if !ok {
		return "n/a"
	}
	num := func(m map[string]any, k string) string {
		if f, ok := number(m[k]); ok {
			return strconv.FormatFloat(f, 'g', 4, 64)
		}
		return "n/a"
	}
	method, _ := fd["method"].(string)
	drifted, _ := fd["drifted"].(bool)
	note, _ := fd["note"].(string)
	// ks and chi2 score a p-value, where smaller is more drift.
	op := ">="
	if !drifted {
		op = "<"
	}
	var stat string
	switch method {
	case "ks", "chi2":
		op = map[string]string{">=": "<", "<": ">="}[op]
		test, _ := fd[method].(map[string]any)
		stat = method + " statistic " + num(test, "statistic") + ", p-value " + num(fd, "score")
	case "wasserstein":
		stat = "wasserstein " + num(fd, "wasserstein")
		if note == NoteConstantReference {
			stat += " (reference constant: not normalised"
			// Every value off the constant is out of the reference's
			// range: the share of the window that left it.
			if qp, err := ParsePath("data_quality." + path); err == nil {
				q, _ := qp.Lookup(d.report, d.Key)
				if m, ok := q.(map[string]any); ok {
					if f, ok := number(m["out_of_range_share"]); ok && f > 0 {
						stat += ", " + strconv.FormatFloat(100*f, 'g', 3, 64) + "% of values off it"
					}
				}
			}
			stat += ")"
			note = ""
		} else {
			stat += " (" + num(fd, "score") + " reference std)"
		}
	case "ks_statistic":
		stat = "ks statistic " + num(fd, "score")
	case "":
		stat = "score " + num(fd, "score")
	default:
		stat = method + " " + num(fd, "score")
	}
	out := stat + " " + op + " " + num(fd, "threshold")
	if src, _ := fd["threshold_source"].(string); src == "reference_chunks" {
		out += " (threshold from reference chunks)"
	}
	if note != "" {
		out += " (" + note + ")"
	}
	return out
}

func (c *compiled) summarize(r Report, model, key string, labels map[string]string, value, threshold *float64, w *Window) string {
	data := summaryData{
		Rule: c.Name, Model: model, Key: key, Labels: labels,
		Value: formatNumber(value), Threshold: formatNumber(threshold), Window: formatWindow(w), report: r,
	}
	var b strings.Builder
	if err := c.summary.Execute(&b, data); err != nil {
		return fmt.Sprintf("%s %s: %s", c.Name, LabelString(labels), err)
	}
	return b.String()
}

func formatNumber(f *float64) string {
	if f == nil {
		return "n/a"
	}
	return strconv.FormatFloat(*f, 'g', 4, 64)
}

func formatWindow(w *Window) string {
	if w == nil {
		return "n/a"
	}
	layout := "15:04"
	if w.End.Sub(w.Start) < 2*time.Minute || w.Start.Second() != 0 || w.End.Second() != 0 {
		layout = "15:04:05"
	}
	return w.Start.UTC().Format(layout) + "-" + w.End.UTC().Format(layout)
}

// FormatSince tells an alert's event time on one clock: the UTC time the
// reports name, and how long before now (wall time) that was, e.g.
// "2026-11-24 10:05:00 UTC (3h05m ago)". A backlog's alerts thus read as
// old, not as just fired.
func FormatSince(at, now time.Time) string {
	if at.IsZero() {
		return "n/a"
	}
	s := at.UTC().Format("2006-01-02 15:04:05") + " UTC"
	d := now.Sub(at)
	if d < 0 {
		return s + " (in " + formatAge(-d) + ")"
	}
	return s + " (" + formatAge(d) + " ago)"
}

// formatAge renders d coarsely: seconds under a minute, minutes under an
// hour, hours and minutes under two days, days and hours beyond.
func formatAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}
