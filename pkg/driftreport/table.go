package driftreport

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// TableOptions configure WriteTableWith.
type TableOptions struct {
	// Bold sets drifted rows and a drifted verdict in ANSI bold, for a
	// terminal.
	Bold bool
}

// WriteTable prints a report as a table for people: one row per feature
// (feature, kind, method, statistic, score, drifted), drifted rows marked
// with a leading "!", then the prediction, the confidence and the
// dataset's verdict. It returns the writer's error.
func WriteTable(w io.Writer, r Report) error {
	return WriteTableWith(w, r, TableOptions{})
}

// WriteTableWith is WriteTable with options.
func WriteTableWith(w io.Writer, r Report, opts TableOptions) error {
	bold := func(on bool, s string) string {
		if opts.Bold && on {
			return "\x1b[1m" + s + "\x1b[0m"
		}
		return s
	}
	ew := &errWriter{w: w}
	if r.Model != "" {
		fmt.Fprintf(ew, "model %s\n", r.Model)
	}
	fmt.Fprintf(ew, "current %d rows", r.Window.Count)
	if !r.Window.Start.IsZero() || !r.Window.End.IsZero() {
		fmt.Fprintf(ew, " (%s to %s)", r.Window.Start.Format("2006-01-02 15:04:05"), r.Window.End.Format("2006-01-02 15:04:05"))
	}
	fmt.Fprintf(ew, ", reference %d rows", r.Reference.Count)
	if r.Reference.Source != "" {
		fmt.Fprintf(ew, " (%s)", r.Reference.Source)
	}
	if r.Sampled {
		fmt.Fprint(ew, ", sampled")
	}
	fmt.Fprintln(ew)
	fmt.Fprintln(ew)

	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  feature\tkind\tmethod\tstatistic\tscore\tthreshold\tdrifted\t")
	row := func(name string, fd FeatureDrift) {
		mark := " "
		if fd.Drifted {
			mark = "!"
		}
		threshold := num(fd.Threshold)
		if fd.ThresholdSource != "" && fd.ThresholdSource != SourceDefault {
			threshold += " (" + fd.ThresholdSource + ")"
		}
		line := fmt.Sprintf("%s %s\t%s\t%s\t%s\t%s\t%s\t%s\t", mark, name, fd.Kind, fd.Method,
			num(statistic(fd)), num(fd.Score), threshold, yesNo(fd.Drifted))
		fmt.Fprintln(tw, bold(fd.Drifted, line))
	}
	for _, name := range sortedKeys(r.Features) {
		row(name, r.Features[name])
	}
	if r.Prediction != nil {
		row("(prediction)", *r.Prediction)
	}
	tw.Flush()

	for _, name := range r.DataQuality.Appeared {
		fmt.Fprintf(ew, "  %s: only in the current window\n", name)
	}
	for _, name := range r.DataQuality.Vanished {
		fmt.Fprintf(ew, "  %s: only in the reference\n", name)
	}
	for _, name := range sortedKeys(r.DataQuality.Features) {
		q := r.DataQuality.Features[name]
		if q.Skipped != "" && q.Skipped != "not in the reference" && q.Skipped != "not in the current window" {
			fmt.Fprintf(ew, "  %s: not compared: %s\n", name, q.Skipped)
		}
	}
	fmt.Fprintln(ew)

	if c := r.Confidence; c != nil {
		line := fmt.Sprintf("confidence: mean %s (reference %s), p10 %s, below %s %s (reference %s), dropped %s",
			num(c.Mean), num(c.ReferenceMean), num(c.P10), num(c.LowThreshold),
			num(c.LowShare), num(c.ReferenceLowShare), yesNo(c.Dropped))
		if c.Dropped {
			line = "! " + line
		}
		fmt.Fprintln(ew, bold(c.Dropped, line))
	}
	verdict := fmt.Sprintf("dataset drifted: %s (%d of %d features, share %s)",
		yesNo(r.DatasetDrifted), drifted(r), len(r.Features), num(r.DriftShare))
	if r.DatasetDrifted {
		verdict = "! " + verdict
	}
	fmt.Fprintln(ew, bold(r.DatasetDrifted, verdict))
	if m := r.Multivariate; m != nil {
		line := fmt.Sprintf("multivariate (pca reconstruction, %d components): error %s, reference %s, threshold %s, drifted %s",
			m.Components, num(m.Error), num(m.ReferenceMean), num(m.Threshold), yesNo(m.Drifted))
		if m.Drifted {
			line = "! " + line
		}
		fmt.Fprintln(ew, bold(m.Drifted, line))
	}
	for _, name := range sortedKeys(r.Embeddings) {
		e := r.Embeddings[name]
		line := fmt.Sprintf("embedding %s: centroid distance %s, mmd2 %s, p-value %s, drifted %s",
			name, num(e.CentroidDistance), num(e.MMD2), num(e.PValue), yesNo(e.Drifted))
		if e.Drifted {
			line = "! " + line
		}
		fmt.Fprintln(ew, bold(e.Drifted, line))
	}
	if rc := r.RootCause; rc != nil && rc.Summary != "" {
		fmt.Fprintf(ew, "root cause: %s\n", rc.Summary)
	}
	return ew.err
}

// statistic returns the figure behind a feature's method: D for ks, the
// chi-squared statistic, the distance for the others.
func statistic(fd FeatureDrift) float64 {
	switch fd.Method {
	case MethodKS, MethodKSStatistic:
		if fd.KS != nil {
			return fd.KS.Statistic
		}
	case MethodChi2:
		if fd.Chi2 != nil {
			return fd.Chi2.Statistic
		}
	case MethodWasserstein:
		if fd.Wasserstein != nil {
			return *fd.Wasserstein
		}
	case MethodJensenShannon:
		return fd.JensenShannon
	case MethodPSI:
		return fd.PSI
	}
	return 0
}

func drifted(r Report) int {
	n := 0
	for _, fd := range r.Features {
		if fd.Drifted {
			n++
		}
	}
	return n
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// errWriter keeps the first write error and drops later writes.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return len(p), nil
	}
	_, e.err = e.w.Write(p)
	return len(p), nil
}
