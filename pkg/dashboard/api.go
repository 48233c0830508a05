package dashboard

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/versions"
	"github.com/lookout-ml/lookout/services/alert"
)

// MaxReports bounds one answer of the reports API (7 days of 5-minute
// windows is 2,016).
const MaxReports = 5000

// ModelSummary is one model in GET /api/v1/models.
type ModelSummary struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Verdict is the latest canary verdict, if the model has a canary.
	Verdict     string        `json:"canary_verdict,omitempty"`
	Drift       *DriftPoint   `json:"drift,omitempty"`
	Canary      *CanaryPoint  `json:"canary,omitempty"`
	Performance *PerfPoint    `json:"performance,omitempty"`
	Alerts      []FiringAlert `json:"alerts"`
	// Versions are the model's versions, oldest first.
	Versions []ModelVersion `json:"versions"`
}

// ModelVersion is one version of a model: when it started (the window
// start of the first report naming it), when it was last seen, in which
// roles, and the training run recorded for it (lookout version set).
type ModelVersion struct {
	Version  string    `json:"version"`
	Run      string    `json:"run,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	Roles    []string  `json:"roles,omitempty"`
	// SetAt is when the run was recorded, for a version in the versions
	// bucket.
	SetAt time.Time `json:"set_at,omitzero"`
}

// modelVersions merges what the reports said of a model's versions with
// the versions bucket's records; the bucket's run wins, being the newest
// word.
func modelVersions(spans []VersionSpan, records []versions.Record) []ModelVersion {
	var out []ModelVersion
	at := map[string]int{}
	for _, sp := range spans {
		i, ok := at[sp.Version]
		if !ok {
			i = len(out)
			at[sp.Version] = i
			out = append(out, ModelVersion{Version: sp.Version, Started: sp.First, LastSeen: sp.Last})
		}
		v := &out[i]
		if sp.First.Before(v.Started) {
			v.Started = sp.First
		}
		if sp.Last.After(v.LastSeen) {
			v.LastSeen = sp.Last
		}
		if sp.Run != "" {
			v.Run = sp.Run
		}
		if !slices.Contains(v.Roles, sp.Role) {
			v.Roles = append(v.Roles, sp.Role)
			slices.Sort(v.Roles)
		}
	}
	for _, r := range records {
		i, ok := at[r.Version]
		if !ok {
			i = len(out)
			at[r.Version] = i
			out = append(out, ModelVersion{Version: r.Version})
		}
		if r.Run != "" {
			out[i].Run = r.Run
		}
		out[i].SetAt = r.SetAt
	}
	// Oldest first; versions no report named yet last, by when recorded.
	slices.SortStableFunc(out, func(a, b ModelVersion) int {
		switch {
		case a.Started.IsZero() != b.Started.IsZero():
			if a.Started.IsZero() {
				return 1
			}
			return -1
		case !a.Started.Equal(b.Started):
			return a.Started.Compare(b.Started)
		}
		return cmp.Or(a.SetAt.Compare(b.SetAt), strings.Compare(a.Version, b.Version))
	})
	if out == nil {
		out = []ModelVersion{}
	}
	return out
}

// versionRefresh is how long the versions bucket's records are reused:
// the pages ask for models on every live update.
const versionRefresh = 10 * time.Second

// versionRecords returns the versions bucket's records by model, read at
// most every versionRefresh; none when the bucket is missing.
func (h *Handler) versionRecords(ctx context.Context) map[string][]versions.Record {
	h.versMu.Lock()
	defer h.versMu.Unlock()
	if h.versAt.IsZero() || time.Since(h.versAt) >= versionRefresh {
		h.versAt = time.Now()
		if h.opts.JS != nil {
			if kv, err := versions.Bind(ctx, h.opts.JS, h.opts.Subjects); err == nil {
				if list, err := versions.List(ctx, kv, ""); err == nil {
					h.vers = map[string][]versions.Record{}
					for _, r := range list {
						h.vers[r.Model] = append(h.vers[r.Model], r)
					}
				} else {
					h.opts.Log.Debug("dashboard: versions", zap.Error(err))
				}
			}
		}
	}
	return h.vers
}

// FiringAlert is an alert firing now, and whether a silence mutes it.
type FiringAlert struct {
	alerting.Alert
	Silenced bool `json:"silenced"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// silences opens the silences bucket (the same store `lookout silence`
// uses).
func (h *Handler) silences(ctx context.Context) (*alert.Silences, error) {
	if h.opts.JS == nil {
		return nil, errors.New("silences: no JetStream")
	}
	return alert.OpenSilences(ctx, h.opts.JS, h.opts.Subjects)
}

// firing returns the alerts firing now, each marked when silenced.
func (h *Handler) firing(ctx context.Context) ([]FiringAlert, error) {
	list, err := h.opts.Firing(ctx)
	if err != nil {
		return nil, err
	}
	var sil []alerting.Silence
	if store, err := h.silences(ctx); err == nil {
		sil, _ = store.List(ctx)
	}
	now := time.Now()
	out := make([]FiringAlert, 0, len(list))
	for _, a := range list {
		out = append(out, FiringAlert{Alert: a, Silenced: alerting.Silenced(sil, &a, now)})
	}
	return out, nil
}

func (h *Handler) models(ctx context.Context) ([]ModelSummary, error) {
	firing, err := h.firing(ctx)
	if err != nil {
		return nil, err
	}
	byModel := map[string][]FiringAlert{}
	for _, a := range firing {
		byModel[a.Model] = append(byModel[a.Model], a)
	}
	names := h.index.Models()
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	for m := range byModel {
		if !seen[m] && m != UnknownModel {
			names = append(names, m)
		}
	}
	records := h.versionRecords(ctx)
	out := make([]ModelSummary, 0, len(names))
	for _, name := range names {
		s, _ := h.index.Snapshot(name, time.Time{})
		m := ModelSummary{Name: name, Alerts: byModel[name], State: "ok", Versions: modelVersions(s.Versions, records[name])}
		if m.Alerts == nil {
			m.Alerts = []FiringAlert{}
		}
		if n := len(s.Drift); n > 0 {
			m.Drift = &s.Drift[n-1]
			if m.Drift.Drifted {
				m.State = "drifting"
			}
		}
		if n := len(s.Canary); n > 0 {
			m.Canary = &s.Canary[n-1]
			m.Verdict = m.Canary.Verdict
		}
		if n := len(s.Perf); n > 0 {
			m.Performance = &s.Perf[n-1]
		}
		for _, a := range m.Alerts {
			if !a.Silenced && a.Severity == "critical" && m.State == "ok" {
				m.State = "degraded"
			}
		}
		if m.State == "ok" {
			for _, a := range m.Alerts {
				if !a.Silenced && a.Rule != "dataset_drift" && a.Rule != "feature_drift" {
					m.State = "degraded"
				}
			}
		}
		out = append(out, m)
	}
	return out, nil
}

func (h *Handler) apiModels(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	out, err := h.models(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// Overview is GET /api/v1/overview: every model's summary and its
// sparklines over the range, for the cards.
type Overview struct {
	Since      time.Time      `json:"since"`
	Until      time.Time      `json:"until"`
	LastReport time.Time      `json:"last_report,omitzero"`
	Unknown    int            `json:"unknown_rejections"`
	Models     []ModelSummary `json:"models"`
	Sparks     []Sparks       `json:"sparks"`
}

// SparkPoints bounds a sparkline: a card has no more pixels than that.
const SparkPoints = 120

// Sparks are one model's sparklines as columns: times in Unix seconds,
// values rounded to four decimals, null where a window has none.
type Sparks struct {
	Model string `json:"model"`
	// Since and Until bound the model's range (Unix seconds).
	Since int64 `json:"since"`
	Until int64 `json:"until"`
	// Drift windows: end, events per minute, rejection share, drift
	// share, confidence mean and estimated accuracy.
	T            []int64    `json:"t"`
	EventsPerMin []float64  `json:"events_per_min"`
	Rejection    []float64  `json:"rejection_share"`
	DriftShare   []float64  `json:"drift_share"`
	Confidence   []*float64 `json:"confidence_mean"`
	EstAccuracy  []*float64 `json:"estimated_accuracy"`
	// Performance windows: end and realised accuracy.
	PerfT    []int64    `json:"perf_t"`
	Accuracy []*float64 `json:"accuracy"`
	// Canary windows: end and score.
	CanaryT []int64   `json:"canary_t"`
	Score   []float64 `json:"canary_score"`
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

func round4p(v *float64) *float64 {
	if v == nil {
		return nil
	}
	r := round4(*v)
	return &r
}

func sparks(s Series) Sparks {
	out := Sparks{Model: s.Model}
	for _, p := range thin(s.Drift, SparkPoints) {
		out.T = append(out.T, p.End.Unix())
		perMin := 0.0
		if mins := p.End.Sub(p.Start).Minutes(); mins > 0 {
			perMin = float64(p.Count) / mins
		}
		out.EventsPerMin = append(out.EventsPerMin, round4(perMin))
		share := 0.0
		if p.Rejected+p.Count > 0 {
			share = float64(p.Rejected) / float64(p.Rejected+p.Count)
		}
		out.Rejection = append(out.Rejection, round4(share))
		out.DriftShare = append(out.DriftShare, round4(p.DriftShare))
		out.Confidence = append(out.Confidence, round4p(p.ConfMean))
		out.EstAccuracy = append(out.EstAccuracy, round4p(p.EstAccuracy))
	}
	for _, p := range thin(s.Perf, SparkPoints) {
		out.PerfT = append(out.PerfT, p.End.Unix())
		out.Accuracy = append(out.Accuracy, round4p(p.Accuracy))
	}
	for _, p := range thin(s.Canary, SparkPoints) {
		out.CanaryT = append(out.CanaryT, p.End.Unix())
		out.Score = append(out.Score, round4(p.Score))
	}
	return out
}

func (h *Handler) apiOverview(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("since")
	since, until, err := h.parseSince(q, 24*time.Hour, "")
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	models, err := h.models(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	_, last, unknown := h.index.Clock()
	o := Overview{Since: since, Until: until, LastReport: last, Unknown: unknown, Models: models}
	for _, m := range models {
		from, to, _ := h.parseSince(q, 24*time.Hour, m.Name)
		s, _ := h.index.Snapshot(m.Name, from)
		sp := sparks(s)
		sp.Since, sp.Until = from.Unix(), to.Unix()
		o.Sparks = append(o.Sparks, sp)
	}
	writeJSON(w, http.StatusOK, o)
}

// thin keeps at most n points, evenly spread, always the last: a
// sparkline has no more pixels than that.
func thin[T any](list []T, n int) []T {
	if len(list) <= n {
		return list
	}
	out := make([]T, 0, n)
	step := float64(len(list)-1) / float64(n-1)
	for i := range n {
		out = append(out, list[int(float64(i)*step+0.5)])
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (h *Handler) apiSeries(w http.ResponseWriter, r *http.Request) {
	since, until, err := h.parseSince(r.URL.Query().Get("since"), 24*time.Hour, r.PathValue("model"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	s, ok := h.index.Snapshot(r.PathValue("model"), since)
	if !ok {
		writeError(w, http.StatusNotFound, errors.New("no such model"))
		return
	}
	_, last, _ := h.index.Clock()
	writeJSON(w, http.StatusOK, struct {
		Series
		Since      time.Time `json:"since"`
		Until      time.Time `json:"until"`
		LastReport time.Time `json:"last_report,omitzero"`
	}{s, since, until, last})
}

// apiReports answers the reports of one model and kind, exactly as
// stored on their subject, oldest window first. The index says which
// sequences; each is read back from the stream (a bounded number of
// direct reads).
func (h *Handler) apiReports(w http.ResponseWriter, r *http.Request) {
	model := r.PathValue("model")
	kind := r.URL.Query().Get("kind")
	if kind == "" {
		kind = natsbus.KindDrift
	}
	if kind != natsbus.KindDrift && kind != natsbus.KindCanary && kind != natsbus.KindPerformance {
		writeError(w, http.StatusBadRequest, fmt.Errorf("kind: want drift, canary or performance, got %q", kind))
		return
	}
	since, _, err := h.parseSince(r.URL.Query().Get("since"), 24*time.Hour, model)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	seqs := h.index.Seqs(model, kind, since)
	if len(seqs) > MaxReports {
		seqs = seqs[len(seqs)-MaxReports:]
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	out := make([]json.RawMessage, len(seqs))
	subject := h.opts.Subjects.For(kind, model)
	// A few reads at a time: each is one round trip to the server.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, 8)
	)
	for i, seq := range seqs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			data, err := h.readReport(ctx, seq, subject)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			out[i] = data
		}()
	}
	wg.Wait()
	if firstErr != nil {
		writeError(w, http.StatusServiceUnavailable, firstErr)
		return
	}
	// A report aged out of the stream since it was indexed is left out.
	kept := out[:0]
	for _, d := range out {
		if d != nil {
			kept = append(kept, d)
		}
	}
	// Written by hand: encoding/json would compact the reports and escape
	// their < > &, and the contract says exactly as on their subjects.
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("["))
	for i, d := range kept {
		if i > 0 {
			_, _ = w.Write([]byte(",\n"))
		}
		_, _ = w.Write(d)
	}
	_, _ = w.Write([]byte("]\n"))
}

var errGone = errors.New("report gone")

// readReport reads one report back by stream sequence; it returns nil
// data when the message is gone (aged out) and an error when its subject
// is not the one expected.
func (h *Handler) readReport(ctx context.Context, seq uint64, subject string) (json.RawMessage, error) {
	stream, err := h.opts.JS.Stream(ctx, h.opts.Subjects.StreamName(natsbus.StreamReports))
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	msg, err := stream.GetMsg(ctx, seq)
	if err != nil {
		return nil, nil
	}
	if msg.Subject != subject {
		return nil, fmt.Errorf("report %d: %w", seq, errGone)
	}
	return json.RawMessage(msg.Data), nil
}

// apiReport answers one report by stream sequence (a heatmap cell's).
func (h *Handler) apiReport(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	kind := r.URL.Query().Get("kind")
	if kind == "" {
		kind = natsbus.KindDrift
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	data, err := h.readReport(ctx, seq, h.opts.Subjects.For(kind, r.PathValue("model")))
	if err != nil || data == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("report %d: %w", seq, errGone))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}

func (h *Handler) apiAlerts(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	out, err := h.firing(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) apiSilences(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	store, err := h.silences(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	list, err := store.List(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	if list == nil {
		list = []alerting.Silence{}
	}
	writeJSON(w, http.StatusOK, list)
}

// SilenceRequest is the body of POST /api/v1/silences: the flags of
// `lookout silence add`.
type SilenceRequest struct {
	Model    string            `json:"model"`
	Rule     string            `json:"rule"`
	Labels   map[string]string `json:"labels"`
	Duration string            `json:"duration"`
	Comment  string            `json:"comment"`
}

func (h *Handler) apiAddSilence(w http.ResponseWriter, r *http.Request) {
	var req SilenceRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("silence: %w", err))
		return
	}
	dur := 2 * time.Hour
	if req.Duration != "" {
		var err error
		if dur, err = parseDuration(req.Duration); err != nil || dur <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("silence: duration %q", req.Duration))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	store, err := h.silences(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	now := time.Now().UTC()
	sil := alerting.Silence{Model: req.Model, Rule: req.Rule, StartsAt: now, EndsAt: now.Add(dur),
		Comment: req.Comment, CreatedBy: h.opts.User}
	if len(req.Labels) > 0 {
		sil.Labels = req.Labels
	}
	sil, err = store.Add(ctx, sil)
	if errors.Is(err, alerting.ErrSilence) {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	h.opts.Log.Info("silence added from the dashboard", zap.String("id", sil.ID), zap.String("model", sil.Model),
		zap.String("rule", sil.Rule), zap.Time("ends_at", sil.EndsAt))
	h.index.publish(Update{Kind: "silence", Model: sil.Model, At: now})
	writeJSON(w, http.StatusCreated, sil)
}

func (h *Handler) apiExpireSilence(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	store, err := h.silences(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	now := time.Now().UTC()
	sil, err := store.Expire(ctx, r.PathValue("id"), now)
	if errors.Is(err, alert.ErrNotFound) {
		writeError(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	h.opts.Log.Info("silence expired from the dashboard", zap.String("id", sil.ID))
	h.index.publish(Update{Kind: "silence", Model: sil.Model, At: now})
	writeJSON(w, http.StatusOK, sil)
}

// apiEvents streams the index's updates as server-sent events, with a
// comment every 15 s so proxies keep the connection open.
func (h *Handler) apiEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, errors.New("streaming unsupported"))
		return
	}
	updates, stop := h.index.Subscribe()
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, last, _ := h.index.Clock()
	fmt.Fprintf(w, "event: hello\ndata: {\"last_report\":%q}\n\n", last.Format(time.RFC3339Nano))
	flusher.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
		case u := <-updates:
			b, _ := json.Marshal(u)
			fmt.Fprintf(w, "event: update\ndata: %s\n\n", b)
		}
		flusher.Flush()
	}
}
