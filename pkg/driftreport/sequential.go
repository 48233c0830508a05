package driftreport

import (
	"encoding/json"
	"math"
)

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
// window. The zero value is a fresh start. It marshals to JSON, so that a
// service can keep it with its checkpoint and resume after a restart.
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

// sequentialJSON is SequentialState's stored form.
type sequentialJSON struct {
	Windows     int     `json:"windows"`
	ShareSum    float64 `json:"share_sum"`
	PHSum       float64 `json:"ph_sum"`
	PHMin       float64 `json:"ph_min"`
	ConfWindows int     `json:"conf_windows,omitempty"`
	CUSUM       float64 `json:"cusum"`
}

// MarshalJSON stores the detectors' state. A figure that is not finite
// (JSON has no NaN) is stored as the finite value reports show for it,
// rather than failing the checkpoint it is part of.
func (s SequentialState) MarshalJSON() ([]byte, error) {
	return json.Marshal(sequentialJSON{
		Windows: s.Windows, ShareSum: finite(s.shareSum), PHSum: finite(s.phSum), PHMin: finite(s.phMin),
		ConfWindows: s.confWindows, CUSUM: finite(s.cusum),
	})
}

// UnmarshalJSON restores what MarshalJSON stored.
func (s *SequentialState) UnmarshalJSON(b []byte) error {
	var j sequentialJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = SequentialState{Windows: j.Windows, shareSum: j.ShareSum, phSum: j.PHSum, phMin: j.PHMin,
		confWindows: j.ConfWindows, cusum: j.CUSUM}
	return nil
}
