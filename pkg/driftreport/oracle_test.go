package driftreport

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// TestOracleThroughCompare runs the oracle cases through Compare, so the
// report carries the contract's figures, not only the stats package.
func TestOracleThroughCompare(t *testing.T) {
	path := "../../../shared/oracle/drift_cases.json"
	if p := os.Getenv("LOOKOUT_ORACLE"); p != "" {
		path = p
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("oracle cases: %v", err)
	}
	var oc struct {
		Tolerance struct {
			Absolute, Relative float64
			PValue             float64 `json:"p_value_absolute"`
		}
		Cases []struct {
			Name               string
			Reference, Current []any
			Expected           struct {
				Kind string
				KS   *KS
				Chi2 *Chi2
				// Pointers: a missing figure is not compared.
				Wasserstein   *float64
				PSI           *float64
				JensenShannon *float64 `json:"jensen_shannon"`
			}
		}
	}
	if err := json.Unmarshal(b, &oc); err != nil {
		t.Fatal(err)
	}
	if len(oc.Cases) == 0 || oc.Tolerance.Absolute <= 0 || oc.Tolerance.PValue <= 0 {
		t.Fatal("oracle cases: empty or without tolerance")
	}
	tol := oc.Tolerance
	near := func(t *testing.T, what string, got, want float64, p bool) {
		t.Helper()
		lim := math.Max(tol.Absolute, tol.Relative*math.Abs(want))
		if p {
			lim = tol.PValue
		}
		if math.Abs(got-want) > lim {
			t.Errorf("%s = %.17g, want %.17g", what, got, want)
		}
	}
	for _, c := range oc.Cases {
		t.Run(c.Name, func(t *testing.T) {
			ref, cur := NewDataset(SampleOptions{}), NewDataset(SampleOptions{})
			for _, v := range c.Reference {
				_ = ref.Add(Row{Features: map[string]any{"f": v}})
			}
			for _, v := range c.Current {
				_ = cur.Add(Row{Features: map[string]any{"f": v}})
			}
			fd, ok := Compare(ref, cur, Options{}).Features["f"]
			if !ok {
				t.Fatal("not compared")
			}
			e := c.Expected
			if fd.Kind != e.Kind {
				t.Fatalf("kind %s, want %s", fd.Kind, e.Kind)
			}
			if e.KS != nil {
				near(t, "ks statistic", fd.KS.Statistic, e.KS.Statistic, false)
				near(t, "ks p", fd.KS.PValue, e.KS.PValue, true)
			}
			if e.Chi2 != nil {
				near(t, "chi2 statistic", fd.Chi2.Statistic, e.Chi2.Statistic, false)
				near(t, "chi2 p", fd.Chi2.PValue, e.Chi2.PValue, true)
				if fd.Chi2.DOF != e.Chi2.DOF {
					t.Errorf("dof %d, want %d", fd.Chi2.DOF, e.Chi2.DOF)
				}
			}
			if e.Wasserstein != nil {
				near(t, "wasserstein", *fd.Wasserstein, *e.Wasserstein, false)
			}
			if e.PSI != nil {
				near(t, "psi", fd.PSI, *e.PSI, false)
			}
			if e.JensenShannon != nil {
				near(t, "jensen_shannon", fd.JensenShannon, *e.JensenShannon, false)
			}
		})
	}
}
