package driftreport

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// multivariateCase is one case of testdata/multivariate.json, made by
// testdata/gen_multivariate.py with scikit-learn.
type multivariateCase struct {
	Name          string         `json:"name"`
	Ref           map[string]any `json:"ref"`
	Cur           map[string]any `json:"cur"`
	Components    int            `json:"components"`
	Error         float64        `json:"error"`
	ReferenceMean float64        `json:"reference_mean"`
}

func columnsDataset(tb testing.TB, cols map[string]any) *Dataset {
	tb.Helper()
	conv := map[string]any{}
	for name, v := range cols {
		xs := v.([]any)
		if _, ok := xs[0].(string); ok {
			s := make([]string, len(xs))
			for i, x := range xs {
				s[i] = x.(string)
			}
			conv[name] = s
		} else {
			f := make([]float64, len(xs))
			for i, x := range xs {
				f[i] = x.(float64)
			}
			conv[name] = f
		}
	}
	return mustDataset(tb, conv)
}

// TestMultivariateOracle checks the PCA reconstruction error against
// scikit-learn's PCA on the same rows.
func TestMultivariateOracle(t *testing.T) {
	b, err := os.ReadFile("testdata/multivariate.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []multivariateCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range file.Cases {
		r := Compare(columnsDataset(t, c.Ref), columnsDataset(t, c.Cur), Options{})
		m := r.Multivariate
		if m == nil {
			t.Fatalf("%s: no multivariate", c.Name)
		}
		close := func(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want)) }
		if m.Components != c.Components || !close(m.Error, c.Error) || !close(m.ReferenceMean, c.ReferenceMean) {
			t.Errorf("%s: components %d error %.15g reference_mean %.15g; scikit-learn %d %.15g %.15g",
				c.Name, m.Components, m.Error, m.ReferenceMean, c.Components, c.Error, c.ReferenceMean)
		}
		if m.Columns != 7 || m.Method != MethodPCAReconstruction {
			t.Errorf("%s: %+v", c.Name, m)
		}
	}
}

// TestMultivariateIgnoresRounding: a reference whose variance lies wholly
// in the kept components (y = 2x exactly) reconstructs to rounding error,
// about 1e-16; a window with the same relation, up to a relative 1e-12,
// is not drift. Before the threshold had a floor it was: the band was
// 1e-16 wide.
func TestMultivariateIgnoresRounding(t *testing.T) {
	const n = 4000
	ref := map[string]any{"x": make([]float64, n), "y": make([]float64, n)}
	cur := map[string]any{"x": make([]float64, n), "y": make([]float64, n)}
	for i := range n {
		x := math.Sin(float64(i)) * 3
		ref["x"].([]float64)[i], ref["y"].([]float64)[i] = x, 2*x
		xc := math.Cos(float64(i)) * 3
		cur["x"].([]float64)[i], cur["y"].([]float64)[i] = xc, 2*xc*(1+1e-12*float64(i%7))
	}
	r := Compare(mustDataset(t, ref), mustDataset(t, cur), Options{})
	if m := r.Multivariate; m != nil && m.Drifted {
		t.Fatalf("rounding called multivariate drift: %+v", m)
	}
}
