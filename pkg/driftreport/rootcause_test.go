package driftreport_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/driftreport"
)

// regional returns n rows with age, income and plan, tagged with a region
// and a device; rows of region eu have age moved by ageShift.
func regional(seed uint64, n int, ageShift float64) *driftreport.Dataset {
	rng := rand.New(rand.NewPCG(seed, 13))
	d := driftreport.NewDataset(driftreport.SampleOptions{Seed: seed})
	regions := []string{"eu", "us", "apac", "latam"}
	for range n {
		region := regions[rng.IntN(len(regions))]
		age := 40 + 10*rng.NormFloat64()
		if region == "eu" {
			age += ageShift
		}
		plan := "basic"
		if rng.Float64() < 0.3 {
			plan = "pro"
		}
		_ = d.Add(driftreport.Row{
			Features: map[string]any{"age": age, "income": 50 + 5*rng.NormFloat64(), "plan": plan},
			Tags:     map[string]string{"region": region, "device": []string{"ios", "android", "web"}[rng.IntN(3)]},
		})
	}
	return d
}

// TestRootCausePlantedSegment: age moves in region=eu only. The root
// cause ranks age first, puts region=eu first among segments with drift
// share 1, says most of the shift is there, and the feature_drift alert's
// summary names it.
func TestRootCausePlantedSegment(t *testing.T) {
	ref := regional(1, 20000, 0)
	r := driftreport.Compare(ref, regional(2, 4000, 6), driftreport.Options{})
	rc := r.RootCause
	if rc == nil || len(rc.Features) != 3 || rc.Features[0] != "age" || !r.Features["age"].Drifted {
		t.Fatalf("root cause %+v, age %+v", rc, r.Features["age"])
	}
	if len(rc.Segments) == 0 || rc.Segments[0].Tag != "region" || rc.Segments[0].Value != "eu" || rc.Segments[0].DriftShare != 1 {
		t.Fatalf("segments %+v, want region=eu first", rc.Segments)
	}
	if s := rc.Segments[0].ShiftShare["age"]; s < 0.9 {
		t.Errorf("region=eu holds %g of age's shift, want > 0.9", s)
	}
	for _, s := range rc.Segments[1:] {
		if s.Tag == "region" && s.DriftShare != 0 {
			t.Errorf("segment %s=%s drifted too: %+v", s.Tag, s.Value, s)
		}
	}
	if len(rc.Segments) > 3*5 {
		t.Errorf("%d segments, want at most 15", len(rc.Segments))
	}
	if !strings.HasPrefix(rc.Summary, "age drifted, mostly in region=eu (") {
		t.Errorf("summary %q", rc.Summary)
	}
	bounded := driftreport.Compare(ref, regional(2, 4000, 6), driftreport.Options{RootCauseTags: 1, RootCauseSegments: 2})
	if n := len(bounded.RootCause.Segments); n != 2 {
		t.Errorf("bounded to 1 tag, 2 segments: got %d", n)
	}
	var summary string
	rep := r
	rep.Model = "churn"
	for _, a := range firedAlerts(t, rep) {
		if a.Rule == alerting.RuleFeatureDrift && a.Labels["feature"] == "age" {
			summary = a.Summary
		}
	}
	if !strings.Contains(summary, "mostly in region=eu") {
		t.Errorf("feature_drift summary %q does not name region=eu", summary)
	}
}

// TestEmbeddingDriftAlert: embedding_drift fires on a moved cloud.
func TestEmbeddingDriftAlert(t *testing.T) {
	cloud := func(seed uint64, shift float64) *driftreport.Dataset {
		rng := rand.New(rand.NewPCG(seed, 3))
		d := driftreport.NewDataset(driftreport.SampleOptions{Seed: seed})
		for range 300 {
			v := make([]float64, 8)
			for i := range v {
				v[i] = rng.NormFloat64() + shift
			}
			_ = d.Add(driftreport.Row{Embeddings: map[string][]float64{"text": v}})
		}
		return d
	}
	got := fired(t, driftreport.Compare(cloud(1, 0), cloud(2, 1), driftreport.Options{}))
	if !got[alerting.RuleEmbeddingDrift] {
		t.Errorf("fired %v, want embedding_drift", got)
	}
}
