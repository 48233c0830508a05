package dashboard

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookout-ml/lookout/pkg/driftreport"
)

// DefaultTopFeatures bounds lookout_drift_score's series per model: past
// this many features, only the ones furthest past their threshold are
// exported, so a model with a thousand features cannot blow up Prometheus.
const DefaultTopFeatures = 20

// gauges are the latest figures per model, from the reports on the
// streams (so any `lookout run` exports the whole deployment).
type gauges struct {
	top         int
	score       *prometheus.GaugeVec
	share       *prometheus.GaugeVec
	confidence  *prometheus.GaugeVec
	accuracy    *prometheus.GaugeVec
	estimated   *prometheus.GaugeVec
	canaryScore *prometheus.GaugeVec
}

func newGauges(reg prometheus.Registerer, top int) *gauges {
	if top <= 0 {
		top = DefaultTopFeatures
	}
	g := &gauges{
		top: top,
		score: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_drift_score",
			Help: "Latest drift score per feature (the report's score for its method: a p-value for ks and chi2); the top features by severity only."},
			[]string{"model", "feature", "method"}),
		share: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_drift_share",
			Help: "Share of the model's features that drifted in the latest drift report."}, []string{"model"}),
		confidence: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_confidence_mean",
			Help: "Mean confidence of the latest drift window."}, []string{"model"}),
		accuracy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_accuracy",
			Help: "Realised accuracy of the latest performance window (from labels)."}, []string{"model"}),
		estimated: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_estimated_accuracy",
			Help: "Accuracy estimated from confidence (CBPE) in the latest drift window."}, []string{"model"}),
		canaryScore: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_canary_score",
			Help: "Score of the latest canary report (0-100)."}, []string{"model", "canary_version"}),
	}
	if reg != nil {
		reg.MustRegister(g.score, g.share, g.confidence, g.accuracy, g.estimated, g.canaryScore)
	}
	return g
}

func (g *gauges) drift(r *driftreport.Report) {
	g.share.WithLabelValues(r.Model).Set(r.DriftShare)
	if r.Confidence != nil {
		g.confidence.WithLabelValues(r.Model).Set(r.Confidence.Mean)
	}
	if r.EstimatedPerformance != nil {
		g.estimated.WithLabelValues(r.Model).Set(r.EstimatedPerformance.Accuracy)
	}
	type ranked struct {
		name string
		sev  float64
	}
	list := make([]ranked, 0, len(r.Features))
	for name, f := range r.Features {
		list = append(list, ranked{name, Severity(f)})
	}
	slices.SortFunc(list, func(a, b ranked) int {
		if a.sev != b.sev {
			if a.sev > b.sev {
				return -1
			}
			return 1
		}
		if a.name < b.name {
			return -1
		}
		return 1
	})
	if len(list) > g.top {
		list = list[:g.top]
	}
	// The set of top features changes between windows: drop the model's
	// old series first.
	g.score.DeletePartialMatch(prometheus.Labels{"model": r.Model})
	for _, f := range list {
		fd := r.Features[f.name]
		g.score.WithLabelValues(r.Model, f.name, fd.Method).Set(fd.Score)
	}
}

func (g *gauges) canary(model string, p CanaryPoint) {
	g.canaryScore.DeletePartialMatch(prometheus.Labels{"model": model})
	g.canaryScore.WithLabelValues(model, p.Canary).Set(p.Score)
}

func (g *gauges) perf(model string, p PerfPoint) {
	if p.Accuracy != nil {
		g.accuracy.WithLabelValues(model).Set(*p.Accuracy)
	}
}
