package driftreport

import "math"

// Sequential detector settings.
const (
	// PageHinkleyDelta is the drift share's allowed wobble per window and
	// PageHinkleyLambda the accumulated rise that alarms.
	PageHinkleyDelta  = 0.005
	PageHinkleyLambda = 0.5
	// CUSUMK and CUSUMH are the confidence CUSUM's allowance and decision
	// interval, in standard errors of the window's mean (the textbook 0.5
	// and 5: a lasting fall of one standard error alarms within about 10
	// windows, a stable model about once in 900 windows).
	CUSUMK = 0.5
	CUSUMH = 5.0
)

// Sequential is the report's sequential part: detectors that accumulate
// evidence across a model's windows, so that a slow creep that never
// crosses a per-window threshold still alarms.
type Sequential struct {
	// Windows is how many windows the detectors have seen, this one
	// included (1 for `lookout drift`).
	Windows int `json:"windows"`
	// DriftShare is a Page-Hinkley test for a rise of the drift share.
	DriftShare SequentialStat `json:"drift_share"`
	// ConfidenceMean is a one-sided CUSUM for a fall of the confidence
	// mean, standardised on the reference (confidence.mean_z); nil
	// without confidence.
	ConfidenceMean *SequentialStat `json:"confidence_mean,omitempty"`
}

// SequentialStat is one detector's state after this window.
type SequentialStat struct {
	Method    string  `json:"method"`
	Statistic float64 `json:"statistic"`
	Threshold float64 `json:"threshold"`
	Alarm     bool    `json:"alarm"`
}

// SequentialState carries the detectors of one model from window to
// window. The zero value is a fresh start.
type SequentialState struct {
	Windows                int
	shareSum, phSum, phMin float64
	confWindows            int
	cusum                  float64
}

// Update feeds a window's report to the detectors and returns what they
// say after it.
func (s *SequentialState) Update(r *Report) *Sequential {
	s.Windows++
	x := r.DriftShare
	s.shareSum += x
	mean := s.shareSum / float64(s.Windows)
	s.phSum += x - mean - PageHinkleyDelta
	s.phMin = math.Min(s.phMin, s.phSum)
	ph := s.phSum - s.phMin
	out := &Sequential{
		Windows: s.Windows,
		DriftShare: SequentialStat{Method: "page_hinkley", Statistic: finite(ph), Threshold: PageHinkleyLambda,
			Alarm: ph > PageHinkleyLambda},
	}
	if c := r.Confidence; c != nil {
		s.confWindows++
		s.cusum = math.Max(0, s.cusum-c.MeanZ-CUSUMK)
		out.ConfidenceMean = &SequentialStat{Method: "cusum", Statistic: finite(s.cusum), Threshold: CUSUMH, Alarm: s.cusum > CUSUMH}
	}
	return out
}
