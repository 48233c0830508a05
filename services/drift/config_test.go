package drift

import (
	"strings"
	"testing"
	"time"

	"github.com/lookout-ml/lookout/pkg/driftreport"
)

func TestConfigDefaultsAndRules(t *testing.T) {
	cfg, err := Config{Window: time.Minute, WindowEvents: 50}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	// Defaults fill the gaps; the reference needs at most window_events.
	if cfg.Reference != ReferenceFirstWindow || cfg.SampleCap != driftreport.DefaultSampleCap || cfg.ReferenceMinEvents != 50 ||
		cfg.AckWait != 2*time.Minute || cfg.MaxAckPending != -1 || len(cfg.Roles) != 1 ||
		cfg.AllowedLateness != time.Minute || cfg.IdleTimeout != time.Minute {
		t.Errorf("defaults: %+v", cfg)
	}
	cases := []struct {
		cfg  Config
		want string
	}{
		// an unknown reference mode
		{Config{Reference: "sometimes"}, `reference "sometimes"`},
		// an unknown method for one feature
		{Config{Rules: Rules{Features: map[string]Rule{"age": {Method: "eyeball"}}}}, "rules.features.age"},
		// an unknown method for the prediction
		{Config{Rules: Rules{Prediction: &Rule{Method: "t-test"}}}, "rules.prediction"},
	}
	for _, c := range cases {
		if _, err := c.cfg.withDefaults(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.want)
		}
	}
	o := Config{
		Rules:      Rules{PValue: 0.01, Features: map[string]Rule{"age": {Method: "psi", Threshold: 0.2}}, Prediction: &Rule{Method: "ks"}},
		Confidence: ConfidenceRules{Low: 0.3, MeanDrop: 0.1},
	}.Options()
	if o.PValue != 0.01 || o.Features["age"] != (driftreport.Rule{Method: "psi", Threshold: 0.2}) || o.Prediction.Method != "ks" ||
		o.LowConfidence != 0.3 || o.ConfidenceMeanDrop != 0.1 {
		t.Errorf("options: %+v", o)
	}
}
