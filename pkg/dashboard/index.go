package dashboard

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/quality"
)

// History is how far back the index reads the streams at start (the
// streams' default retention).
const History = 7 * 24 * time.Hour

// UnknownModel is the model token ingest gives input whose model it could
// not read; it is no model of its own on the page.
const UnknownModel = "_unknown"

// DriftPoint is one drift report summarised for charts; the full report is
// read back from the stream by Seq.
type DriftPoint struct {
	Seq        uint64    `json:"seq"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Count      int       `json:"count"`
	Version    string    `json:"version,omitempty"`
	DriftShare float64   `json:"drift_share"`
	Drifted    bool      `json:"dataset_drifted"`
	// Rejected counts the model's rejections stored (by stream time, not
	// event time) in the window's minutes.
	Rejected       int      `json:"rejected"`
	ConfMean       *float64 `json:"confidence_mean,omitempty"`
	ConfP10        *float64 `json:"confidence_p10,omitempty"`
	RefConfMean    *float64 `json:"reference_confidence_mean,omitempty"`
	RefConfP10     *float64 `json:"reference_confidence_p10,omitempty"`
	EstAccuracy    *float64 `json:"estimated_accuracy,omitempty"`
	RefEstAccuracy *float64 `json:"reference_estimated_accuracy,omitempty"`
	// Severity holds, per feature of the model's Features list, how far
	// the feature is past its threshold: 1 is the threshold, above drifted
	// (p-values on a log scale); -1 when the window has no figure for it.
	Severity []float32 `json:"severity"`
}

// CanaryPoint is one canary report summarised for charts.
type CanaryPoint struct {
	Seq          uint64    `json:"seq"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	Pairs        int       `json:"pairs"`
	Production   string    `json:"production_version,omitempty"`
	Canary       string    `json:"canary_version,omitempty"`
	Agreement    *float64  `json:"agreement,omitempty"`
	QualityDiff  *float64  `json:"quality_difference,omitempty"`
	LatencyRatio *float64  `json:"latency_ratio,omitempty"`
	Score        float64   `json:"score"`
	Verdict      string    `json:"verdict"`
}

// PerfPoint is one performance report summarised for charts.
type PerfPoint struct {
	Seq         uint64    `json:"seq"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Labelled    int       `json:"labelled"`
	Accuracy    *float64  `json:"accuracy,omitempty"`
	EstAccuracy *float64  `json:"estimated_accuracy,omitempty"`
	MAE         *float64  `json:"mae,omitempty"`
}

// AlertPoint is one alert event.
type AlertPoint struct {
	Seq         uint64            `json:"seq"`
	At          time.Time         `json:"at"`
	Status      string            `json:"status"`
	Rule        string            `json:"rule"`
	Severity    string            `json:"severity"`
	Summary     string            `json:"summary"`
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// VersionSpan says when a model version was first and last seen in
// reports, and in which role.
type VersionSpan struct {
	Version string    `json:"version"`
	Role    string    `json:"role"`
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
	// Run is the training run the newest report of the version named.
	Run string `json:"run,omitempty"`
}

// Series is what the index keeps of one model.
type Series struct {
	Model    string        `json:"model"`
	Features []string      `json:"features"`
	Methods  []string      `json:"methods"`
	Drift    []DriftPoint  `json:"drift"`
	Canary   []CanaryPoint `json:"canary"`
	Perf     []PerfPoint   `json:"performance"`
	Alerts   []AlertPoint  `json:"alerts"`
	Versions []VersionSpan `json:"versions"`

	featureIdx map[string]int
	// rejected counts rejections per minute (Unix minute) of stream time.
	rejected map[int64]int
}

// Update tells live readers what arrived.
type Update struct {
	Kind  string    `json:"kind"`
	Model string    `json:"model"`
	Seq   uint64    `json:"seq"`
	End   time.Time `json:"end,omitzero"`
	At    time.Time `json:"at"`
}

// Index folds the reports, alerts and rejections of the last History
// into small per-model series, fed by ordered consumers from JetStream,
// so pages never scan the streams. Memory is bounded: at most MaxPoints
// points of each kind per model and MaxAlerts alert events.
type Index struct {
	JS        jetstream.JetStream
	Subjects  natsbus.Subjects
	Log       *zap.Logger
	MaxPoints int
	MaxAlerts int
	// OnDrift, if set, is called with each drift report as it is indexed
	// (under no lock): the Prometheus gauges.
	OnDrift  func(r *driftreport.Report)
	OnCanary func(model string, p CanaryPoint)
	OnPerf   func(model string, p PerfPoint)

	mu         sync.RWMutex
	models     map[string]*Series
	newest     time.Time // the newest window end seen
	lastReport time.Time // wall time the last report was indexed
	unknown    int       // rejections of the unknown model in History

	subMu sync.Mutex
	subs  map[chan Update]struct{}
}

// Run reads the streams until ctx ends; it returns an error when a stream
// cannot be read at start.
func (x *Index) Run(ctx context.Context) error {
	x.init()
	from := time.Now().Add(-History)
	readers := []struct {
		role   string
		handle func(jetstream.Msg)
	}{
		{natsbus.StreamReports, x.handleReport},
		{natsbus.StreamAlerts, x.handleAlert},
		{natsbus.StreamRejected, x.handleRejected},
	}
	errs := make(chan error, len(readers))
	for _, r := range readers {
		o := &natsbus.Ordered{JS: x.JS, Stream: x.Subjects.StreamName(r.role), StartTime: from,
			Name: "dashboard-" + r.role, Log: x.Log}
		go func() { errs <- o.Consume(ctx, r.handle) }()
	}
	var first error
	for range readers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// DefaultMaxPoints bounds each kind of point per model: 7 days of
// 5-minute windows are 2,016.
const DefaultMaxPoints = 4096

func (x *Index) init() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.models == nil {
		x.models = map[string]*Series{}
	}
	if x.MaxPoints <= 0 {
		x.MaxPoints = DefaultMaxPoints
	}
	if x.MaxAlerts <= 0 {
		x.MaxAlerts = 1000
	}
}

func (x *Index) series(model string) *Series {
	s := x.models[model]
	if s == nil {
		s = &Series{Model: model, featureIdx: map[string]int{}, rejected: map[int64]int{}}
		x.models[model] = s
	}
	return s
}

func (x *Index) handleReport(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		return
	}
	model := x.Subjects.Model(msg.Subject())
	if model == "" {
		return
	}
	x.addReport(kindOf(x.Subjects, msg.Subject(), model), model, meta.Sequence.Stream, msg.Data())
}

// addReport indexes one report of kind stored at stream sequence seq.
func (x *Index) addReport(kind, model string, seq uint64, data []byte) {
	var end time.Time
	switch kind {
	case natsbus.KindDrift:
		var r driftreport.Report
		if json.Unmarshal(data, &r) != nil {
			return
		}
		end = r.Window.End
		x.mu.Lock()
		s := x.series(model)
		p := DriftPoint{Seq: seq, Start: r.Window.Start, End: r.Window.End, Count: r.Window.Count, Version: r.Version,
			DriftShare: r.DriftShare, Drifted: r.DatasetDrifted, EstAccuracy: nil}
		if c := r.Confidence; c != nil {
			p.ConfMean, p.ConfP10, p.RefConfMean, p.RefConfP10 = &c.Mean, &c.P10, &c.ReferenceMean, &c.ReferenceP10
		}
		if e := r.EstimatedPerformance; e != nil {
			p.EstAccuracy, p.RefEstAccuracy = &e.Accuracy, &e.ReferenceAccuracy
		}
		names := make([]string, 0, len(r.Features))
		for name := range r.Features {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if _, ok := s.featureIdx[name]; !ok {
				s.featureIdx[name] = len(s.Features)
				s.Features = append(s.Features, name)
				s.Methods = append(s.Methods, r.Features[name].Method)
			}
		}
		p.Severity = make([]float32, len(s.Features))
		for i := range p.Severity {
			p.Severity[i] = -1
		}
		for name, f := range r.Features {
			p.Severity[s.featureIdx[name]] = float32(Severity(f))
		}
		s.Drift = insertPoint(s.Drift, p, func(p DriftPoint) time.Time { return p.End }, x.MaxPoints)
		if r.Version != "" {
			s.seeVersion(r.Version, "production", r.Run, r.Window.Start, r.Window.End)
		}
		x.sawReport(end)
		x.mu.Unlock()
		if x.OnDrift != nil {
			x.OnDrift(&r)
		}
	case natsbus.KindCanary:
		var r canaryReport
		if json.Unmarshal(data, &r) != nil {
			return
		}
		end = r.Window.End
		p := CanaryPoint{Seq: seq, Start: r.Window.Start, End: r.Window.End, Pairs: r.Window.Pairs,
			Production: r.Production.Version, Canary: r.Canary.Version, Agreement: r.Agreement,
			Score: r.Score, Verdict: r.Verdict}
		if r.Quality != nil {
			p.QualityDiff = r.Quality.Difference
		}
		if a, b := r.Canary.Latency.P95, r.Production.Latency.P95; a != nil && b != nil && *b > 0 {
			v := *a / *b
			p.LatencyRatio = &v
		}
		x.mu.Lock()
		s := x.series(model)
		s.Canary = insertPoint(s.Canary, p, func(p CanaryPoint) time.Time { return p.End }, x.MaxPoints)
		if p.Canary != "" {
			s.seeVersion(p.Canary, "canary", r.Canary.Run, p.Start, p.End)
		}
		if p.Production != "" {
			s.seeVersion(p.Production, "production", r.Production.Run, p.Start, p.End)
		}
		x.sawReport(end)
		x.mu.Unlock()
		if x.OnCanary != nil {
			x.OnCanary(model, p)
		}
	case natsbus.KindPerformance:
		var r quality.Report
		if json.Unmarshal(data, &r) != nil {
			return
		}
		end = r.Window.End
		p := PerfPoint{Seq: seq, Start: r.Window.Start, End: r.Window.End, Labelled: r.Labelled,
			Accuracy: r.Accuracy, EstAccuracy: r.EstimatedAccuracy, MAE: r.MAE}
		x.mu.Lock()
		s := x.series(model)
		s.Perf = insertPoint(s.Perf, p, func(p PerfPoint) time.Time { return p.End }, x.MaxPoints)
		x.sawReport(end)
		x.mu.Unlock()
		if x.OnPerf != nil {
			x.OnPerf(model, p)
		}
	default:
		return
	}
	x.publish(Update{Kind: kind, Model: model, Seq: seq, End: end, At: time.Now().UTC()})
}

// sawReport is called with x.mu held.
func (x *Index) sawReport(end time.Time) {
	if end.After(x.newest) {
		x.newest = end
	}
	x.lastReport = time.Now().UTC()
}

// rejectedIn counts the rejections stored in the minutes from start to end
// (at most a day of them).
func (s *Series) rejectedIn(start, end time.Time) int {
	if len(s.rejected) == 0 {
		return 0
	}
	n := 0
	last := end.Add(-time.Nanosecond).Unix() / 60
	for m, i := start.Unix()/60, 0; m <= last && i < 1440; m, i = m+1, i+1 {
		n += s.rejected[m]
	}
	return n
}

func (s *Series) seeVersion(version, role, run string, start, end time.Time) {
	for i := range s.Versions {
		v := &s.Versions[i]
		if v.Version == version && v.Role == role {
			if start.Before(v.First) {
				v.First = start
			}
			// The newest report's run wins: a run recorded later (lookout
			// version set after the first windows) replaces none.
			if run != "" && (v.Run == "" || !end.Before(v.Last)) {
				v.Run = run
			}
			if end.After(v.Last) {
				v.Last = end
			}
			return
		}
	}
	s.Versions = append(s.Versions, VersionSpan{Version: version, Role: role, First: start, Last: end, Run: run})
	sort.Slice(s.Versions, func(i, j int) bool { return s.Versions[i].First.Before(s.Versions[j].First) })
}

func (x *Index) handleAlert(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		return
	}
	var a alerting.Alert
	if json.Unmarshal(msg.Data(), &a) != nil || a.Model == "" {
		return
	}
	at := a.StartsAt
	if !a.Firing() && a.EndsAt != nil {
		at = *a.EndsAt
	}
	p := AlertPoint{Seq: meta.Sequence.Stream, At: at, Status: a.Status, Rule: a.Rule, Severity: a.Severity,
		Summary: a.Summary, Fingerprint: a.Fingerprint, Labels: a.Labels}
	x.mu.Lock()
	s := x.series(a.Model)
	s.Alerts = append(s.Alerts, p)
	if len(s.Alerts) > x.MaxAlerts {
		s.Alerts = slices.Delete(s.Alerts, 0, len(s.Alerts)-x.MaxAlerts)
	}
	x.mu.Unlock()
	x.publish(Update{Kind: natsbus.KindAlerts, Model: a.Model, Seq: p.Seq, End: at, At: time.Now().UTC()})
}

func (x *Index) handleRejected(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		return
	}
	model := x.Subjects.Model(msg.Subject())
	if model == "" {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if model == UnknownModel {
		x.unknown++
		return
	}
	s := x.series(model)
	minute := meta.Timestamp.Unix() / 60
	s.rejected[minute]++
	// Forget minutes past History, so the map stays bounded.
	if len(s.rejected) > int(History/time.Minute)+60 {
		cut := minute - int64(History/time.Minute)
		for m := range s.rejected {
			if m < cut {
				delete(s.rejected, m)
			}
		}
	}
}

// insertPoint adds p in order of end time (a replay can deliver windows
// out of order), dropping the oldest past max.
func insertPoint[T any](list []T, p T, end func(T) time.Time, max int) []T {
	i := len(list)
	for i > 0 && end(list[i-1]).After(end(p)) {
		i--
	}
	list = slices.Insert(list, i, p)
	if len(list) > max {
		list = slices.Delete(list, 0, len(list)-max)
	}
	return list
}

// Severity says how far a feature is past its threshold: 1 at the
// threshold, above it drifted. For p-values (ks, chi2), where smaller
// means more drift, it compares their logarithms; it is capped at 10.
func Severity(f driftreport.FeatureDrift) float64 {
	var v float64
	switch {
	case f.Method == driftreport.MethodKS || f.Method == driftreport.MethodChi2:
		if f.Threshold <= 0 || f.Threshold >= 1 {
			return boolSeverity(f.Drifted)
		}
		score := math.Max(f.Score, 1e-300)
		v = math.Log(score) / math.Log(f.Threshold)
	case f.Threshold > 0:
		v = f.Score / f.Threshold
	default:
		return boolSeverity(f.Drifted)
	}
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return math.Min(v, 10)
}

func boolSeverity(drifted bool) float64 {
	if drifted {
		return 2
	}
	return 0
}

func kindOf(s natsbus.Subjects, subject, model string) string {
	rest := subject[len(s.Prefix)+1:]
	return rest[:len(rest)-len(model)-1]
}

// Snapshot returns a copy of one model's series with the points whose
// window ends at or after since, and false when the model is unknown.
func (x *Index) Snapshot(model string, since time.Time) (Series, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	s, ok := x.models[model]
	if !ok {
		return Series{}, false
	}
	out := Series{Model: model, Features: slices.Clone(s.Features), Methods: slices.Clone(s.Methods),
		Versions: slices.Clone(s.Versions)}
	out.Drift = after(s.Drift, since, func(p DriftPoint) time.Time { return p.End })
	// Counted now, not when the report came: at start the rejections are
	// read beside the reports, not before them.
	for i := range out.Drift {
		out.Drift[i].Rejected = s.rejectedIn(out.Drift[i].Start, out.Drift[i].End)
	}
	out.Canary = after(s.Canary, since, func(p CanaryPoint) time.Time { return p.End })
	out.Perf = after(s.Perf, since, func(p PerfPoint) time.Time { return p.End })
	out.Alerts = after(s.Alerts, since, func(p AlertPoint) time.Time { return p.At })
	return out, true
}

func after[T any](list []T, since time.Time, end func(T) time.Time) []T {
	i := sort.Search(len(list), func(i int) bool { return !end(list[i]).Before(since) })
	return slices.Clone(list[i:])
}

// Newest returns the newest window end of model's reports, or of every
// model's when model is "".
func (x *Index) Newest(model string) time.Time {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if model == "" {
		return x.newest
	}
	s, ok := x.models[model]
	if !ok {
		return time.Time{}
	}
	var t time.Time
	if n := len(s.Drift); n > 0 {
		t = maxTime(t, s.Drift[n-1].End)
	}
	if n := len(s.Canary); n > 0 {
		t = maxTime(t, s.Canary[n-1].End)
	}
	if n := len(s.Perf); n > 0 {
		t = maxTime(t, s.Perf[n-1].End)
	}
	return t
}

// Models returns the indexed model names, sorted, without the unknown one.
func (x *Index) Models() []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	names := make([]string, 0, len(x.models))
	for name := range x.models {
		if name != UnknownModel {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Seqs returns the stream sequences of one model's reports of kind whose
// window ends at or after since, oldest window first.
func (x *Index) Seqs(model, kind string, since time.Time) []uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	s, ok := x.models[model]
	if !ok {
		return nil
	}
	var out []uint64
	switch kind {
	case natsbus.KindDrift:
		for _, p := range after(s.Drift, since, func(p DriftPoint) time.Time { return p.End }) {
			out = append(out, p.Seq)
		}
	case natsbus.KindCanary:
		for _, p := range after(s.Canary, since, func(p CanaryPoint) time.Time { return p.End }) {
			out = append(out, p.Seq)
		}
	case natsbus.KindPerformance:
		for _, p := range after(s.Perf, since, func(p PerfPoint) time.Time { return p.End }) {
			out = append(out, p.Seq)
		}
	}
	return out
}

// Clock returns the newest window end seen (the page's "now" on event
// time), the wall time of the last report, and the count of rejections
// of unknown models.
func (x *Index) Clock() (newest, lastReport time.Time, unknown int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.newest, x.lastReport, x.unknown
}

// Subscribe returns a channel of updates and a function that ends the
// subscription. A slow reader misses updates rather than stalling the
// index.
func (x *Index) Subscribe() (<-chan Update, func()) {
	ch := make(chan Update, 64)
	x.subMu.Lock()
	if x.subs == nil {
		x.subs = map[chan Update]struct{}{}
	}
	x.subs[ch] = struct{}{}
	x.subMu.Unlock()
	return ch, func() {
		x.subMu.Lock()
		delete(x.subs, ch)
		x.subMu.Unlock()
	}
}

func (x *Index) publish(u Update) {
	x.subMu.Lock()
	defer x.subMu.Unlock()
	for ch := range x.subs {
		select {
		case ch <- u:
		default:
		}
	}
}

// canaryReport is the part of a canary report the index keeps.
type canaryReport struct {
	Window struct {
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
		Pairs int       `json:"pairs"`
	} `json:"window"`
	Production canarySide `json:"production"`
	Canary     canarySide `json:"canary"`
	Agreement  *float64   `json:"agreement"`
	Quality    *struct {
		Difference *float64 `json:"difference"`
	} `json:"quality"`
	Score   float64 `json:"score"`
	Verdict string  `json:"verdict"`
}

type canarySide struct {
	Version string `json:"version"`
	Run     string `json:"run"`
	Latency struct {
		P95 *float64 `json:"p95"`
	} `json:"latency_ms"`
}
