package cbpe

import (
	"math"
	"math/rand/v2"
	"testing"
)

// synthetic draws n predictions of a binary classifier whose score is
// sigmoid(margin + 1.5·N(0, 1)): the confidence is the score of the
// predicted class, max(s, 1−s), and a smaller margin means less confident
// predictions. Each is right with probability truth(confidence). It
// returns the confidences, the correctness (1 or 0) and the realised
// accuracy.
func synthetic(r *rand.Rand, n int, margin float64, truth func(float64) float64) (conf, correct []float64, acc float64) {
	conf = make([]float64, n)
	correct = make([]float64, n)
	for i := range conf {
		s := 1 / (1 + math.Exp(-(margin + 1.5*r.NormFloat64())))
		conf[i] = math.Max(s, 1-s)
		if r.Float64() < truth(conf[i]) {
			correct[i] = 1
			acc++
		}
	}
	return conf, correct, acc / float64(n)
}

// margins are the drift windows: the reference's, then windows more and
// less confident than it, down to a strong confidence drop.
var margins = []float64{2, 3, 2.5, 1.5, 1, 0.5}

// referenceRows is the labelled reference; windowRows each window.
const referenceRows = 10000

const windowRows = 5000

// TestCalibratedClassifierTracksAccuracy proves that for a classifier whose
// confidence is its probability of being right, CBPE's estimate is within
// 0.02 of the realised accuracy in every window, whether or not the
// reference's labels led to a calibration, and as confidence drops.
func TestCalibratedClassifierTracksAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 4))
	identity := func(c float64) float64 { return c }
	refConf, refCorrect, _ := synthetic(r, referenceRows, 2, identity)
	fitted, err := Fit(refConf, refCorrect)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*Estimator{Uncalibrated(), fitted} {
		for _, margin := range margins {
			conf, _, acc := synthetic(r, windowRows, margin, identity)
			est := e.Accuracy(conf)
			if math.Abs(est-acc) > 0.02 {
				t.Errorf("calibrated=%v margin %v: estimate %.4f, realised %.4f", e.Calibrated, margin, est, acc)
			}
		}
	}
}

// TestMiscalibratedClassifierAfterCalibration proves that for an
// overconfident classifier, Fit decides to calibrate on labelled reference
// predictions, and the calibrated estimate is within 0.03 of the realised
// accuracy in every window, while the raw confidence misses by more.
func TestMiscalibratedClassifierAfterCalibration(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 5))
	// Right with probability sigmoid(logit(c)/2): a model trained to be
	// sure of itself, twice as confident in log-odds as it should be.
	over := func(c float64) float64 { return 1 / (1 + math.Exp(-math.Log(c/(1-c))/2)) }
	refConf, refCorrect, refAcc := synthetic(r, referenceRows, 2, over)
	e, err := Fit(refConf, refCorrect)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Calibrated {
		t.Fatalf("not calibrated (%s, ECE %.4f → %.4f)", e.Reason, e.ECEBefore, e.ECEAfter)
	}
	if got := e.Accuracy(refConf); math.Abs(got-refAcc) > 0.03 {
		t.Errorf("reference: estimate %.4f, realised %.4f", got, refAcc)
	}
	raw := Uncalibrated()
	for _, margin := range margins {
		conf, _, acc := synthetic(r, windowRows, margin, over)
		est := e.Accuracy(conf)
		if math.Abs(est-acc) > 0.03 {
			t.Errorf("margin %v: calibrated estimate %.4f, realised %.4f", margin, est, acc)
		}
		if rawEst := raw.Accuracy(conf); math.Abs(rawEst-acc) <= 0.03 {
			t.Errorf("margin %v: raw confidence %.4f already within 0.03 of %.4f: the test proves nothing", margin, rawEst, acc)
		}
	}
}

// TestFitWithoutEnoughLabels proves the fallbacks: no labels, too few,
// one class only, and mismatched slices.
func TestFitWithoutEnoughLabels(t *testing.T) {
	for _, c := range []struct {
		name          string
		conf, correct []float64
		reason        string
	}{
		{"none", nil, nil, ReasonNoLabels},
		{"few", []float64{0.9, 0.8, 0.7}, []float64{1, 0, 1}, ReasonFew},
		{"one class", repeat(0.9, 50), repeat(1, 50), ReasonOneClass},
	} {
		e, err := Fit(c.conf, c.correct)
		if err != nil {
			t.Fatal(err)
		}
		if e.Calibrated || e.Reason != c.reason {
			t.Errorf("%s: calibrated %v (%s), want false (%s)", c.name, e.Calibrated, e.Reason, c.reason)
		}
		if got := e.Accuracy([]float64{0.6, 0.8}); !near(got, 0.7) {
			t.Errorf("%s: accuracy %v, want the mean confidence 0.7", c.name, got)
		}
	}
	if _, err := Fit([]float64{1}, nil); err == nil {
		t.Error("mismatched lengths: no error")
	}
	if got := Uncalibrated().Accuracy(nil); !math.IsNaN(got) {
		t.Errorf("no predictions: %v, want NaN", got)
	}
}

func repeat(v float64, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}
