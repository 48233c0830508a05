package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/natsbus"
)

const (
	loadModels   = 50
	loadWindows  = 7 * 24 * 12 // 7 days of 5-minute windows
	loadFeatures = 20
)

// loadIndex fills an index with loadModels models × loadWindows drift
// reports of loadFeatures features, as the streams would.
func loadIndex(tb testing.TB) *Handler {
	tb.Helper()
	h := New(Options{Subjects: natsbus.NewSubjects(""),
		Firing: func(context.Context) ([]alerting.Alert, error) { return nil, nil }})
	h.index.init()
	end := time.Now().UTC().Truncate(5 * time.Minute).Add(-loadWindows * 5 * time.Minute)
	seq := uint64(0)
	for w := range loadWindows {
		end = end.Add(5 * time.Minute)
		features := map[string]any{}
		for f := range loadFeatures {
			features[fmt.Sprintf("feature_%02d", f)] = map[string]any{"kind": "numerical", "method": "ks",
				"score": float64(w%100) / 100, "threshold": 0.05, "psi": 0.1, "jensen_shannon": 0.1,
				"ks": map[string]any{"statistic": 0.1, "p_value": 0.3}, "wasserstein": 0.2}
		}
		b, _ := json.Marshal(map[string]any{"window": map[string]any{"start": end.Add(-5 * time.Minute), "end": end, "count": 3000},
			"features": features, "drift_share": 0.1, "confidence": map[string]any{"mean": 0.8, "p10": 0.5},
			"estimated_performance": map[string]any{"accuracy": 0.9, "reference_accuracy": 0.9}})
		for m := range loadModels {
			seq++
			h.index.addReport(natsbus.KindDrift, fmt.Sprintf("model-%02d", m), seq, b)
		}
	}
	return h
}

// TestIndexHoldsAWeekOf50Models indexes 50 models × 7 days of 5-minute
// drift reports (100,800 reports of 20 features): the index keeps every
// window, in order, in well under 100 MB, and the overview answers at most
// SparkPoints points per model and kind, in under 1 MB.
func TestIndexHoldsAWeekOf50Models(t *testing.T) {
	if testing.Short() {
		t.Skip("indexes 100k reports")
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	h := loadIndex(t)
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("index of %d reports: %.1f MB", loadModels*loadWindows, float64(used)/1e6)
	if used > 100<<20 {
		t.Errorf("index uses %d MB for %d reports, want under 100 MB", used>>20, loadModels*loadWindows)
	}
	if got := len(h.index.Models()); got != loadModels {
		t.Fatalf("models = %d", got)
	}
	s, _ := h.index.Snapshot("model-07", time.Time{})
	if len(s.Drift) != loadWindows || len(s.Features) != loadFeatures {
		t.Fatalf("model-07: %d windows, %d features", len(s.Drift), len(s.Features))
	}
	for i := 1; i < len(s.Drift); i++ {
		if !s.Drift[i].End.After(s.Drift[i-1].End) {
			t.Fatalf("window %d out of order", i)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/overview?since=7d", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("overview: %d %s", rec.Code, rec.Body)
	}
	var o Overview
	if err := json.Unmarshal(rec.Body.Bytes(), &o); err != nil {
		t.Fatal(err)
	}
	if len(o.Sparks) != loadModels {
		t.Fatalf("overview: %d sparks", len(o.Sparks))
	}
	for _, s := range o.Sparks {
		if len(s.T) != SparkPoints || len(s.DriftShare) != SparkPoints || s.T[len(s.T)-1] < s.T[0] {
			t.Fatalf("%s: %d sparkline points, want %d", s.Model, len(s.T), SparkPoints)
		}
	}
	// Small enough to load on every live update.
	if rec.Body.Len() > 1<<20 {
		t.Errorf("overview answer is %d KB, want under 1 MB", rec.Body.Len()>>10)
	}
	t.Logf("overview answer: %d KB", rec.Body.Len()>>10)
}

// BenchmarkOverview50Models answers /api/v1/overview?since=7d over a week
// of 50 models, and /series for one model.
func BenchmarkOverview50Models(b *testing.B) {
	h := loadIndex(b)
	for _, path := range []string{"/api/v1/overview?since=7d", "/api/v1/models/model-07/series?since=7d"} {
		b.Run(path, func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
				b.SetBytes(int64(rec.Body.Len()))
			}
		})
	}
}
