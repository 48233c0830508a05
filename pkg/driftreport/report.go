// Package driftreport computes the drift report of the public contract: for each
// feature, the prediction and the confidence, how far a current window has
// moved from a reference, and whether the dataset as a whole drifted. It is
// pure: datasets in, a Report out, with no I/O but WriteTable's writer.
package driftreport

import "time"

// Report is the drift report (`lookout drift --json`, and each message on
// lookout.drift.<model>). Its JSON never holds NaN or an infinity.
type Report struct {
	Model string `json:"model"`
	// Version is the model version most of the window's predictions came
	// from (its prediction and confidence are compared with that
	// version's reference); alerts carry it as a label.
	Version string `json:"version,omitempty"`
	// Run is the training run recorded for Version (lookout version set).
	Run        string                  `json:"run,omitempty"`
	Window     Window                  `json:"window"`
	Reference  Reference               `json:"reference"`
	Features   map[string]FeatureDrift `json:"features"`
	Prediction *FeatureDrift           `json:"prediction,omitempty"`
	Confidence *ConfidenceDrift        `json:"confidence,omitempty"`
	// EstimatedPerformance is set for classifiers (a class prediction)
	// that send confidence.
	EstimatedPerformance *EstimatedPerformance `json:"estimated_performance,omitempty"`
	// Multivariate is the PCA reconstruction drift of the features
	// together; nil when either side kept too few whole rows.
	Multivariate *Multivariate `json:"multivariate,omitempty"`
	// RootCause ranks the features and names the tag segments where
	// drifted features drift.
	RootCause *RootCause `json:"root_cause,omitempty"`
	// Sequential holds detectors across the model's windows; the caller
	// sets it (SequentialState.Update).
	Sequential *Sequential `json:"sequential,omitempty"`
	// Embeddings is the drift of each embedding both sides carry.
	Embeddings map[string]EmbeddingDrift `json:"embeddings,omitempty"`
	// DriftShare is the share of compared features that drifted.
	DriftShare float64 `json:"drift_share"`
	// DatasetDrifted is true when DriftShare reaches the threshold.
	DatasetDrifted bool `json:"dataset_drifted"`
	// DataQuality reports nulls, unseen categories, out-of-range values,
	// and features that appeared or vanished.
	DataQuality DataQuality `json:"data_quality"`
	// Sampled is true when either side kept a random sample of its values
	// instead of all of them.
	Sampled bool `json:"sampled"`
}

// Window is the current window: its time span and its number of rows.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Count int       `json:"count"`
}

// Reference describes the reference data set.
type Reference struct {
	Count  int    `json:"count"`
	Source string `json:"source"`
}

// KS is a Kolmogorov-Smirnov test result.
type KS struct {
	Statistic float64 `json:"statistic"`
	PValue    float64 `json:"p_value"`
}

// Chi2 is a chi-squared test result.
type Chi2 struct {
	Statistic float64 `json:"statistic"`
	PValue    float64 `json:"p_value"`
	DOF       int     `json:"dof"`
}

// Methods that decide whether a feature drifted.
const (
	MethodKS            = "ks"
	MethodChi2          = "chi2"
	MethodWasserstein   = "wasserstein"
	MethodJensenShannon = "jensen_shannon"
	MethodPSI           = "psi"
	// MethodKSStatistic judges the KS statistic D itself (not its
	// p-value) against a threshold from the reference's chunks: the
	// default for numbers with a large reference.
	MethodKSStatistic = "ks_statistic"
)

// FeatureDrift is the drift of one feature, or of the prediction.
type FeatureDrift struct {
	// Kind is "numerical" or "categorical".
	Kind string `json:"kind"`
	// KS is set for numerical features.
	KS *KS `json:"ks,omitempty"`
	// Chi2 is set for categorical features when the test is defined.
	Chi2 *Chi2 `json:"chi2,omitempty"`
	// Wasserstein is set for numerical features: the distance in the
	// feature's units (the method "wasserstein" scores it divided by the
	// reference's standard deviation).
	Wasserstein   *float64 `json:"wasserstein,omitempty"`
	PSI           float64  `json:"psi"`
	JensenShannon float64  `json:"jensen_shannon"`
	// Method names the statistic that decided Drifted; Score is its value
	// (a p-value for ks and chi2, where smaller means more drift).
	Method    string  `json:"method"`
	Score     float64 `json:"score"`
	Threshold float64 `json:"threshold"`
	// ThresholdSource says where Threshold came from: SourceDefault,
	// SourceConfig or SourceReferenceChunks; ThresholdNull, for the
	// latter, how it was derived.
	ThresholdSource string         `json:"threshold_source"`
	ThresholdNull   *ThresholdNull `json:"threshold_null,omitempty"`
	Drifted         bool           `json:"drifted"`
	// Histogram holds the bins psi and jensen_shannon compare, with both
	// sides' shares.
	Histogram *Histogram `json:"histogram,omitempty"`
	// Note explains an unusual comparison, such as a feature numerical on
	// one side and categorical on the other.
	Note string `json:"note,omitempty"`
}

// ConfidenceDrift compares the confidence of the current window with the
// reference's.
type ConfidenceDrift struct {
	Mean          float64 `json:"mean"`
	ReferenceMean float64 `json:"reference_mean"`
	// MeanZ is the fall or rise of the mean in standard errors of a
	// window's mean under the reference: (mean − reference mean) /
	// (reference std / sqrt(window values)).
	MeanZ float64 `json:"mean_z"`
	// P10 is the 10th percentile.
	P10          float64 `json:"p10"`
	ReferenceP10 float64 `json:"reference_p10"`
	// LowShare is the share of values below LowThreshold.
	LowShare          float64 `json:"low_share"`
	ReferenceLowShare float64 `json:"reference_low_share"`
	LowThreshold      float64 `json:"low_threshold"`
	// Dropped is true when the mean fell by more than the allowed drop,
	// or the low-confidence share doubled and is not trivial.
	Dropped bool `json:"dropped"`
}

// DataQuality is the report's data-quality part.
type DataQuality struct {
	// Features holds a row for every feature of either side.
	Features map[string]FeatureQuality `json:"features"`
	// Appeared lists features only the current window has.
	Appeared []string `json:"appeared"`
	// Vanished lists features only the reference has.
	Vanished []string `json:"vanished"`
	// Prediction is the prediction column's quality.
	Prediction *FeatureQuality `json:"prediction,omitempty"`
}

// FeatureQuality is the data quality of one feature.
type FeatureQuality struct {
	// NullShare is the share of the window's rows where the feature is
	// null or absent.
	NullShare          float64 `json:"null_share"`
	ReferenceNullShare float64 `json:"reference_null_share"`
	// UnseenCategories counts the current values whose category the
	// reference never has; Unseen lists up to MaxUnseenListed of those
	// categories, most frequent first.
	UnseenCategories int      `json:"unseen_categories,omitempty"`
	Unseen           []string `json:"unseen,omitempty"`
	// OutOfRange counts the current values outside the reference's
	// [min, max]; OutOfRangeShare is their share of the current values.
	OutOfRange      int     `json:"out_of_range,omitempty"`
	OutOfRangeShare float64 `json:"out_of_range_share,omitempty"`
	// MixedTypes is true when the feature holds numbers on one side (or
	// in some rows) and strings on the other.
	MixedTypes bool `json:"mixed_types,omitempty"`
	// TypeMismatches counts the current values of another type than the
	// feature's kind (strings in a numerical feature, numbers in a
	// categorical one); they are left out of the drift figures.
	// TypeMismatchShare is their share of the current non-null values,
	// ReferenceTypeMismatchShare the same share in the reference. The
	// alert rule type_mismatch fires on TypeMismatchShare.
	TypeMismatches             int     `json:"type_mismatches,omitempty"`
	TypeMismatchShare          float64 `json:"type_mismatch_share"`
	ReferenceTypeMismatchShare float64 `json:"reference_type_mismatch_share"`
	// Skipped says why the feature has no drift figures, when it has none.
	Skipped string `json:"skipped,omitempty"`
}

// MaxUnseenListed bounds the unseen categories a report lists by name.
const MaxUnseenListed = 20
