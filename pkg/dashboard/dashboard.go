// Package dashboard serves Lookout's pages and their JSON API: an
// overview of every model (`/`), a page per model (`/models/{model}`),
// the API under /api/v1 and a server-sent event stream of what arrives.
// History is the streams': an Index folds the last seven days of reports,
// alerts and rejections from JetStream into small per-model series, and
// full reports are read back from the stream by sequence on demand, so any
// `lookout run` shows the whole deployment.
//
// Every script and style is embedded (assets/); the charts are drawn with
// uPlot (assets/vendor).
package dashboard

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/versions"
	"github.com/lookout-ml/lookout/services/alert"
)

//go:embed assets
var assetsFS embed.FS

//go:embed templates/*.html
var templatesFS embed.FS

// favicon is assets/favicon.svg, served at /favicon.ico.
var favicon, _ = assetsFS.ReadFile("assets/favicon.svg")

var pages = template.Must(template.ParseFS(templatesFS, "templates/*.html"))

// Options configure a Handler.
type Options struct {
	JS       jetstream.JetStream
	Subjects natsbus.Subjects
	Log      *zap.Logger
	// Metrics, if set, gets the lookout_drift_score and other gauges.
	Metrics prometheus.Registerer
	// TopFeatures bounds lookout_drift_score per model (default
	// DefaultTopFeatures).
	TopFeatures int
	// Firing returns the alerts firing now (default: the alert service's
	// state, alert.FiringAlerts).
	Firing func(ctx context.Context) ([]alerting.Alert, error)
	// User names who adds silences from the page (created_by).
	User string
}

// Handler serves the dashboard and its API.
type Handler struct {
	opts  Options
	index *Index
	mux   *http.ServeMux
	// done closes when Run returns, ending the event streams (an HTTP
	// shutdown waits for its open requests).
	done     chan struct{}
	doneOnce sync.Once

	// vers caches the versions bucket's records (versionRecords).
	versMu sync.Mutex
	versAt time.Time
	vers   map[string][]versions.Record
}

// New returns a Handler; Run feeds its index.
func New(opts Options) *Handler {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Firing == nil {
		js, subjects := opts.JS, opts.Subjects
		opts.Firing = func(ctx context.Context) ([]alerting.Alert, error) { return alert.FiringAlerts(ctx, js, subjects) }
	}
	g := newGauges(opts.Metrics, opts.TopFeatures)
	h := &Handler{opts: opts, mux: http.NewServeMux(), done: make(chan struct{})}
	h.index = &Index{JS: opts.JS, Subjects: opts.Subjects, Log: opts.Log,
		OnDrift: g.drift, OnCanary: g.canary, OnPerf: g.perf}
	static, _ := fs.Sub(assetsFS, "assets")
	h.mux.Handle("GET /assets/", http.StripPrefix("/assets/", cacheFor(http.FileServerFS(static))))
	// The icon itself, not a redirect: /favicon.ico is open behind the
	// token (the login form asks for it), /assets/ is not.
	h.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "max-age=86400")
		_, _ = w.Write(favicon)
	})
	h.mux.HandleFunc("GET /{$}", h.page("overview.html"))
	h.mux.HandleFunc("GET /models/{model}", h.page("model.html"))
	h.mux.HandleFunc("GET /api/v1/models", h.apiModels)
	h.mux.HandleFunc("GET /api/v1/overview", h.apiOverview)
	h.mux.HandleFunc("GET /api/v1/models/{model}/reports", h.apiReports)
	h.mux.HandleFunc("GET /api/v1/models/{model}/reports/{seq}", h.apiReport)
	h.mux.HandleFunc("GET /api/v1/models/{model}/series", h.apiSeries)
	h.mux.HandleFunc("GET /api/v1/alerts", h.apiAlerts)
	h.mux.HandleFunc("GET /api/v1/silences", h.apiSilences)
	h.mux.HandleFunc("POST /api/v1/silences", h.apiAddSilence)
	h.mux.HandleFunc("POST /api/v1/silences/{id}/expire", h.apiExpireSilence)
	h.mux.HandleFunc("GET /api/v1/events", h.apiEvents)
	return h
}

// Index returns the handler's index.
func (h *Handler) Index() *Index { return h.index }

// Run reads the streams into the index until ctx ends.
func (h *Handler) Run(ctx context.Context) error {
	defer h.doneOnce.Do(func() { close(h.done) })
	return h.index.Run(ctx)
}

// ServeHTTP serves the pages, the assets and the API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The security headers (a Content-Security-Policy of 'self' only, which
	// these pages keep to) are set by pkg/webauth, in front of every page.
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		data := struct{ Model string }{r.PathValue("model")}
		if err := pages.ExecuteTemplate(w, name, data); err != nil {
			h.opts.Log.Debug("dashboard: write page", zap.Error(err))
		}
	}
}

func cacheFor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		next.ServeHTTP(w, r)
	})
}

// parseSince reads a since parameter (a duration such as 24h or 7d, def
// when empty) into the range of window ends to show for model (every
// model when ""). The range ends now, or at the newest window end when
// that is ahead of the wall clock (a sped-up stream); when the model's
// newest window is older than the range (a backlog of old event time, a
// model gone quiet) it ends there, so its history still shows.
func (h *Handler) parseSince(v string, def time.Duration, model string) (since, until time.Time, err error) {
	d := def
	if v != "" {
		if d, err = parseDuration(v); err != nil || d <= 0 {
			return since, until, fmt.Errorf("since %q: want a duration such as 24h or 7d", v)
		}
	}
	now := time.Now().UTC()
	newest := h.index.Newest(model)
	until = now
	switch {
	case newest.After(now):
		until = newest
	case !newest.IsZero() && newest.Before(now.Add(-d)):
		until = newest
	}
	return until.Add(-d), until, nil
}

// parseDuration is time.ParseDuration with days (7d).
func parseDuration(v string) (time.Duration, error) {
	if n := len(v); n > 1 && v[n-1] == 'd' {
		d, err := time.ParseDuration(v[:n-1] + "h")
		return d * 24, err
	}
	return time.ParseDuration(v)
}
