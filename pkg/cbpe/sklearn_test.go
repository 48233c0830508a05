package cbpe

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// cases is testdata/sklearn_cases.json, written by testdata/gen.py.
type cases struct {
	Isotonic []struct {
		Name        string    `json:"name"`
		X           []float64 `json:"x"`
		Y           []float64 `json:"y"`
		XThresholds []float64 `json:"x_thresholds"`
		YThresholds []float64 `json:"y_thresholds"`
		Query       []float64 `json:"query"`
		Predict     []float64 `json:"predict"`
	} `json:"isotonic"`
	ECE []struct {
		Conf    []float64 `json:"conf"`
		Correct []float64 `json:"correct"`
		ECE     float64   `json:"ece"`
	} `json:"ece"`
	CBPE []struct {
		RefConf           []float64   `json:"ref_conf"`
		RefCorrect        []float64   `json:"ref_correct"`
		Windows           [][]float64 `json:"windows"`
		AUC               *float64    `json:"auc"`
		ECEBefore         *float64    `json:"ece_before"`
		ECEAfter          *float64    `json:"ece_after"`
		Calibrated        bool        `json:"calibrated"`
		Reason            string      `json:"reason"`
		ReferenceAccuracy float64     `json:"reference_accuracy"`
		WindowAccuracy    []float64   `json:"window_accuracy"`
	} `json:"cbpe"`
}

func loadCases(t *testing.T) cases {
	t.Helper()
	b, err := os.ReadFile("testdata/sklearn_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var c cases
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

const tol = 1e-9

func near(a, b float64) bool { return math.Abs(a-b) <= tol }

func nearAll(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d (%v vs %v)", what, len(got), len(want), got, want)
	}
	for i := range got {
		if !near(got[i], want[i]) {
			t.Fatalf("%s[%d] = %.17g, want %.17g", what, i, got[i], want[i])
		}
	}
}

// TestIsotonicMatchesSklearn proves FitIsotonic leaves the thresholds
// IsotonicRegression(out_of_bounds="clip") leaves (the same merge of
// near-equal x, the same pooling, the same trimmed flat runs) and Predict
// gives its predictions, in range, on thresholds and clipped outside.
func TestIsotonicMatchesSklearn(t *testing.T) {
	for _, c := range loadCases(t).Isotonic {
		t.Run(c.Name, func(t *testing.T) {
			f, err := FitIsotonic(c.X, c.Y)
			if err != nil {
				t.Fatal(err)
			}
			nearAll(t, "x_thresholds", f.X, c.XThresholds)
			nearAll(t, "y_thresholds", f.Y, c.YThresholds)
			got := make([]float64, len(c.Query))
			for i, q := range c.Query {
				got[i] = f.Predict(q)
			}
			nearAll(t, "predict", got, c.Predict)
		})
	}
}

// TestECEMatchesNannyML proves ECE and BinEdges give NannyML's expected
// calibration error, including the fewer bins of a small sample and tied
// confidences across a bin edge.
func TestECEMatchesNannyML(t *testing.T) {
	for i, c := range loadCases(t).ECE {
		got := ECE(c.Conf, c.Correct, BinEdges(len(c.Conf), Bins))
		if !near(got, c.ECE) {
			t.Errorf("case %d (n=%d): ECE = %.17g, want %.17g", i, len(c.Conf), got, c.ECE)
		}
	}
}

// TestCBPEMatchesReference proves the whole estimate: the AUC check as
// roc_auc_score, the out-of-fold ECE before and after calibration, the
// decision and its reason, and the reference and window estimates.
func TestCBPEMatchesReference(t *testing.T) {
	calibrated := 0
	for i, c := range loadCases(t).CBPE {
		e, err := Fit(c.RefConf, c.RefCorrect)
		if err != nil {
			t.Fatal(err)
		}
		opt := func(what string, got float64, want *float64) {
			if want == nil {
				if !math.IsNaN(got) {
					t.Errorf("case %d: %s = %v, want none", i, what, got)
				}
				return
			}
			if !near(got, *want) {
				t.Errorf("case %d: %s = %.17g, want %.17g", i, what, got, *want)
			}
		}
		opt("auc", e.AUC, c.AUC)
		opt("ece_before", e.ECEBefore, c.ECEBefore)
		opt("ece_after", e.ECEAfter, c.ECEAfter)
		if e.Calibrated != c.Calibrated || e.Reason != c.Reason {
			t.Errorf("case %d: calibrated %v (%s), want %v (%s)", i, e.Calibrated, e.Reason, c.Calibrated, c.Reason)
		}
		if e.Calibrated {
			calibrated++
		}
		if got := e.Accuracy(c.RefConf); !near(got, c.ReferenceAccuracy) {
			t.Errorf("case %d: reference accuracy %.17g, want %.17g", i, got, c.ReferenceAccuracy)
		}
		for j, w := range c.Windows {
			if got := e.Accuracy(w); !near(got, c.WindowAccuracy[j]) {
				t.Errorf("case %d window %d: accuracy %.17g, want %.17g", i, j, got, c.WindowAccuracy[j])
			}
		}
	}
	if calibrated == 0 {
		t.Fatal("no case calibrates: the cases prove nothing about calibration")
	}
}
