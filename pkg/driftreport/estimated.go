package driftreport

// EstimatedPerformance is a classifier's accuracy estimated from its
// confidence before labels arrive (pkg/cbpe): Accuracy for the window,
// ReferenceAccuracy for the reference, by the same estimator.
type EstimatedPerformance struct {
	Accuracy          float64 `json:"accuracy"`
	ReferenceAccuracy float64 `json:"reference_accuracy"`
	// Method is "cbpe".
	Method string `json:"method"`
	// Calibrated is true when confidence was calibrated on labelled
	// reference predictions; false, confidence is taken as the
	// probability of being right.
	Calibrated bool `json:"calibrated"`
	// Note says why confidence was not calibrated.
	Note string `json:"note,omitempty"`
}
