package driftreport

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// TestMMDOracle checks the bandwidth, MMD² and centroid distance against
// numpy (testdata/gen_mmd.py, Alibi Detect's recipe).
func TestMMDOracle(t *testing.T) {
	b, err := os.ReadFile("testdata/mmd.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []struct {
			Name             string
			X, Y             [][]float64
			Sigma, MMD2      float64
			CentroidDistance float64 `json:"centroid_distance"`
		}
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) == 0 {
		t.Fatal("no cases")
	}
	close := func(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Max(1e-3, math.Abs(want)) }
	for _, c := range file.Cases {
		ref, cur := NewDataset(SampleOptions{}), NewDataset(SampleOptions{})
		for _, v := range c.X {
			_ = ref.Add(Row{Embeddings: map[string][]float64{"text": v}})
		}
		for _, v := range c.Y {
			_ = cur.Add(Row{Embeddings: map[string][]float64{"text": v}})
		}
		r := Compare(ref, cur, Options{})
		e, ok := r.Embeddings["text"]
		if !ok {
			t.Fatalf("%s: no embedding drift", c.Name)
		}
		if !close(e.Sigma, c.Sigma) || !close(e.MMD2, c.MMD2) || !close(e.CentroidDistance, c.CentroidDistance) {
			t.Errorf("%s: sigma %.15g mmd2 %.15g centroid %.15g; numpy %.15g %.15g %.15g",
				c.Name, e.Sigma, e.MMD2, e.CentroidDistance, c.Sigma, c.MMD2, c.CentroidDistance)
		}
	}
}

func cloud(seed uint64, n, dim int, shift float64) *Dataset {
	rng := rand.New(rand.NewPCG(seed, 11))
	d := NewDataset(SampleOptions{Seed: seed})
	for range n {
		v := make([]float64, dim)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		v[0] += shift
		_ = d.Add(Row{Embeddings: map[string][]float64{"text": v}})
	}
	return d
}

// TestEmbeddingDrift: Gaussian clouds of 32 dimensions, 2,000 vectors a
// side (sampled to 1,000): a window whose cloud moved 0.5 along one axis
// has p < 0.01 and drifted; stable windows have p > 0.05.
func TestEmbeddingDrift(t *testing.T) {
	ref := cloud(1, 2000, 32, 0)
	shifted := Compare(ref, cloud(2, 2000, 32, 0.5), Options{}).Embeddings["text"]
	if shifted.PValue >= 0.01 || !shifted.Drifted || shifted.Rows != DefaultEmbeddingCap || shifted.ReferenceRows != DefaultEmbeddingCap {
		t.Errorf("shifted: %+v, want p < 0.01, drifted, 1000 a side", shifted)
	}
	if math.Abs(shifted.CentroidDistance-0.5) > 0.15 {
		t.Errorf("shifted centroid distance %g, want about 0.5", shifted.CentroidDistance)
	}
	for seed := uint64(3); seed < 6; seed++ {
		stable := Compare(ref, cloud(seed, 2000, 32, 0), Options{}).Embeddings["text"]
		if stable.PValue <= 0.05 || stable.Drifted {
			t.Errorf("stable %d: %+v, want p > 0.05", seed, stable)
		}
	}
}
