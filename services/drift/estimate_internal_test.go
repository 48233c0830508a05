package drift

import (
	"testing"

	"github.com/lookout-ml/lookout/pkg/cbpe"
	"github.com/lookout-ml/lookout/pkg/driftreport"
)

func outputs(class bool, conf ...float64) *driftreport.Dataset {
	d := &driftreport.Dataset{Prediction: driftreport.NewColumn(0, nil), Rows: len(conf)}
	for range conf {
		if class {
			d.Prediction.AddString("a")
		} else {
			d.Prediction.AddNumber(0.3)
		}
	}
	if conf != nil {
		d.Confidence = driftreport.NewColumn(0, nil)
		d.Confidence.AddNumbers(conf)
	}
	return d
}

// TestEstimatePerformance proves when a report has an estimate (a class
// prediction with confidence on both sides) and that a calibrated
// estimator is applied to both sides and reported as calibrated.
func TestEstimatePerformance(t *testing.T) {
	ref := outputs(true, 0.9, 0.7)
	if e := estimatePerformance(ref, outputs(false, 0.6, 0.8), nil); e != nil {
		t.Errorf("a numeric prediction has an estimate: %+v", e)
	}
	if e := estimatePerformance(ref, outputs(true), nil); e != nil {
		t.Errorf("a window without confidence has an estimate: %+v", e)
	}
	e := estimatePerformance(ref, outputs(true, 0.6, 0.8), nil)
	if e == nil || !near(e.Accuracy, 0.7) || !near(e.ReferenceAccuracy, 0.8) || e.Calibrated || e.Note != noLabelsNote {
		t.Fatalf("uncalibrated estimate: %+v", e)
	}
	// Right below 0.75, wrong above: isotonic calibration flattens it.
	f, err := cbpe.FitIsotonic([]float64{0.6, 0.7, 0.8, 0.9}, []float64{1, 1, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	est := &cbpe.Estimator{Calibrated: true, Calibration: f, Reason: cbpe.ReasonLowerECE}
	e = estimatePerformance(ref, outputs(true, 0.6, 0.8), est)
	if e == nil || !e.Calibrated || e.Note != "" || !near(e.Accuracy, 0.5) || !near(e.ReferenceAccuracy, 0.5) {
		t.Fatalf("calibrated estimate: %+v", e)
	}
}

func near(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }
