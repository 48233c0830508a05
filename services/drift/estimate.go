package drift

import (
	"math"

	"github.com/lookout-ml/lookout/pkg/cbpe"
	"github.com/lookout-ml/lookout/pkg/driftreport"
)

// noLabelsNote is the estimate's note while drift has no labels: the
// feedback stream is not joined to the reference's predictions, so
// confidence cannot be calibrated and is taken as it is.
const noLabelsNote = "no labelled reference predictions: confidence taken as the probability of being right, not calibrated"

// estimatePerformance is the CBPE estimate of a window of a classifier:
// the same estimator applied to the reference's confidences and to the
// window's. It returns nil for a model that predicts numbers (not a
// class), sends no confidence, or when either side has none. est is the
// estimator fitted on the reference's labelled predictions; nil, the
// uncalibrated one.
func estimatePerformance(ref, cur *driftreport.Dataset, est *cbpe.Estimator) *driftreport.EstimatedPerformance {
	if cur.Prediction == nil || cur.Prediction.Kind() != driftreport.KindCategorical ||
		ref.Confidence == nil || cur.Confidence == nil {
		return nil
	}
	if est == nil {
		est = cbpe.Uncalibrated()
	}
	// The columns hold a uniform sample when capped: the mean over it
	// estimates the mean over the window.
	acc, refAcc := est.Accuracy(cur.Confidence.Numbers), est.Accuracy(ref.Confidence.Numbers)
	if math.IsNaN(acc) || math.IsNaN(refAcc) {
		return nil
	}
	e := &driftreport.EstimatedPerformance{
		Accuracy: acc, ReferenceAccuracy: refAcc, Method: cbpe.Method, Calibrated: est.Calibrated,
	}
	if !est.Calibrated {
		e.Note = calibrationNote(est.Reason)
	}
	return e
}

// calibrationNote says why an estimator is not calibrated.
func calibrationNote(reason string) string {
	switch reason {
	case cbpe.ReasonFew:
		return "too few labelled reference predictions to calibrate confidence"
	case cbpe.ReasonOneClass:
		return "the labelled reference predictions are all right or all wrong: confidence not calibrated"
	case cbpe.ReasonSeparable:
		return "confidence already separates right from wrong on the reference: not calibrated"
	case cbpe.ReasonNoGain:
		return "calibration would not lower the reference's expected calibration error: not calibrated"
	}
	return noLabelsNote
}
