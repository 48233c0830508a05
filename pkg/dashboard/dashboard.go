// Package dashboard serves Lookout's one-page overview: per model, the
// latest drift, canary and quality reports, and the alerts firing now. It
// reads everything from JetStream on each request, so any `lookout run`
// shows the whole deployment, whichever services it runs itself.
package dashboard

import (
	"context"
	"encoding/json"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// Model is one model's row on the page.
type Model struct {
	Name        string
	Drift       *DriftSummary
	Canary      *CanarySummary
	Performance *PerformanceSummary
	Alerts      []alerting.Alert
}

// DriftSummary is the part of the latest drift report the page shows.
type DriftSummary struct {
	Window struct {
		End   time.Time `json:"end"`
		Count int       `json:"count"`
	} `json:"window"`
	Version        string  `json:"version"`
	DriftShare     float64 `json:"drift_share"`
	DatasetDrifted bool    `json:"dataset_drifted"`
	Features       map[string]struct {
		Method  string  `json:"method"`
		Score   float64 `json:"score"`
		Drifted bool    `json:"drifted"`
	} `json:"features"`
	Confidence *struct {
		Mean    float64 `json:"mean"`
		Dropped bool    `json:"dropped"`
	} `json:"confidence"`
}

// Drifted returns the names of the drifted features, sorted.
func (d *DriftSummary) Drifted() []string {
	var out []string
	for name, f := range d.Features {
		if f.Drifted {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// CanarySummary is the part of the latest canary report the page shows.
type CanarySummary struct {
	Window struct {
		End   time.Time `json:"end"`
		Pairs int       `json:"pairs"`
	} `json:"window"`
	Canary struct {
		Version string `json:"version"`
	} `json:"canary"`
	Score   float64  `json:"score"`
	Verdict string   `json:"verdict"`
	Reasons []string `json:"reasons"`
}

// PerformanceSummary is the part of the latest quality report the page
// shows.
type PerformanceSummary struct {
	Window struct {
		End time.Time `json:"end"`
	} `json:"window"`
	Labelled    int      `json:"labelled"`
	Accuracy    *float64 `json:"accuracy"`
	MAE         *float64 `json:"mae"`
	HelpfulRate *float64 `json:"helpful_rate"`
}

// Handler serves the page at "/".
type Handler struct {
	JS       jetstream.JetStream
	Subjects natsbus.Subjects
	Log      *zap.Logger
	// Firing returns the alerts firing now (the alert service's state).
	Firing func(ctx context.Context) ([]alerting.Alert, error)
}

// ServeHTTP renders the page; it answers 503 when JetStream cannot be read.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	models, err := h.Models(ctx)
	if err != nil {
		h.Log.Warn("dashboard: cannot read JetStream", zap.Error(err))
		http.Error(w, "cannot read JetStream: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := page.Execute(w, struct {
		Models []Model
		Now    time.Time
	}{models, time.Now().UTC()}); err != nil {
		h.Log.Debug("dashboard: write", zap.Error(err))
	}
}

// Models gathers every model that has a report or an alert.
func (h *Handler) Models(ctx context.Context) ([]Model, error) {
	byName := map[string]*Model{}
	get := func(name string) *Model {
		m := byName[name]
		if m == nil {
			m = &Model{Name: name}
			byName[name] = m
		}
		return m
	}
	stream, err := h.JS.Stream(ctx, h.Subjects.StreamName(natsbus.StreamReports))
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(h.Subjects.Prefix+".>"))
	if err != nil {
		return nil, err
	}
	for subject := range info.State.Subjects {
		model := h.Subjects.Model(subject)
		if model == "" {
			continue
		}
		msg, err := stream.GetLastMsgForSubject(ctx, subject)
		if err != nil {
			continue // removed since the info: shown next time
		}
		m := get(model)
		switch kind := strings.TrimSuffix(strings.TrimPrefix(subject, h.Subjects.Prefix+"."), "."+model); kind {
		case natsbus.KindDrift:
			m.Drift = decode[DriftSummary](msg.Data)
		case natsbus.KindCanary:
			m.Canary = decode[CanarySummary](msg.Data)
		case natsbus.KindPerformance:
			m.Performance = decode[PerformanceSummary](msg.Data)
		}
	}
	if h.Firing != nil {
		firing, err := h.Firing(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range firing {
			m := get(a.Model)
			m.Alerts = append(m.Alerts, a)
		}
	}
	out := make([]Model, 0, len(byName))
	for _, m := range byName {
		slices.SortFunc(m.Alerts, func(a, b alerting.Alert) int { return strings.Compare(a.Rule+a.Summary, b.Rule+b.Summary) })
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Model) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func decode[T any](data []byte) *T {
	var v T
	if json.Unmarshal(data, &v) != nil {
		return nil
	}
	return &v
}

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"pct": func(f float64) string { return formatFloat(100*f) + "%" },
	"num": func(f *float64) string {
		if f == nil {
			return "–"
		}
		return formatFloat(*f)
	},
	// One clock, as `lookout alerts` shows it: the report's event time in
	// UTC, and how long ago that is in wall time.
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return alerting.FormatSince(t, time.Now())
	},
}).Parse(pageHTML))

// formatFloat writes f with at most three decimals.
func formatFloat(f float64) string {
	return strconv.FormatFloat(math.Round(f*1000)/1000, 'f', -1, 64)
}
