package stats

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// TestPairedOracle checks McNemarExact and WilcoxonApprox against scipy
// (testdata/gen_mcnemar.py).
func TestPairedOracle(t *testing.T) {
	b, err := os.ReadFile("testdata/mcnemar.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases struct {
		McNemar []struct {
			B, C   int
			PValue float64 `json:"p_value"`
		} `json:"mcnemar"`
		Wilcoxon []struct {
			Name      string
			D         []float64
			Statistic float64
			PValue    float64 `json:"p_value"`
		} `json:"wilcoxon"`
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases.McNemar) == 0 || len(cases.Wilcoxon) == 0 {
		t.Fatal("no cases")
	}
	close := func(got, want float64) bool {
		return math.Abs(got-want) <= 1e-12+1e-9*math.Abs(want)
	}
	for _, c := range cases.McNemar {
		if got := McNemarExact(c.B, c.C); !close(got, c.PValue) {
			t.Errorf("McNemarExact(%d, %d) = %.17g, scipy %.17g", c.B, c.C, got, c.PValue)
		}
	}
	for _, c := range cases.Wilcoxon {
		got := WilcoxonApprox(c.D)
		if !close(got.Statistic, c.Statistic) || !close(got.PValue, c.PValue) {
			t.Errorf("%s: WilcoxonApprox = %v, %.17g; scipy %v, %.17g", c.Name, got.Statistic, got.PValue, c.Statistic, c.PValue)
		}
	}
}
