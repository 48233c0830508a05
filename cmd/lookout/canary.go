package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	judge "github.com/lookout-ml/lookout/pkg/canaryjudge"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
)

func init() {
	register(command{
		name:  "canary",
		usage: "status --model M   print the latest canary verdict and figures as a table",
		run:   canaryCommand,
	})
}

func canaryCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "status" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stderr, "Usage: lookout canary status --model M [--nats URL] [--json]")
			return flag.ErrHelp
		}
		return fmt.Errorf("%w: want 'lookout canary status --model M'", errUsage)
	}
	fs := flag.NewFlagSet("canary status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		client clientFlags
		model  string
		asJSON bool
	)
	client.register(fs)
	fs.StringVar(&model, "model", "", "the `model` whose latest canary report to print")
	fs.BoolVar(&asJSON, "json", false, "print the report's JSON instead of a table")
	rest, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(rest) > 0 || model == "" {
		return fmt.Errorf("%w: want --model M and no other argument", errUsage)
	}
	if !event.IsValidModel(model) {
		return fmt.Errorf("%w: %q is not a model name (letters, digits, '-', '_')", errUsage, model)
	}
	cfg, err := client.load()
	if err != nil {
		return err
	}
	nc, js, err := client.connect("canary status")
	if err != nil {
		return err
	}
	defer nc.Close()
	subjects := subjectsFor(cfg)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, subjects.StreamName(natsbus.StreamReports))
	if err != nil {
		return fmt.Errorf("reports stream: %w", err)
	}
	subject := subjects.For(natsbus.KindCanary, model)
	msg, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("no canary report for model %s yet (nothing on %s)", model, subject)
	}
	if err != nil {
		return fmt.Errorf("last report on %s: %w", subject, err)
	}
	if asJSON {
		_, err := fmt.Fprintf(stdout, "%s\n", msg.Data)
		return err
	}
	var r judge.Report
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return fmt.Errorf("report on %s: %w", subject, err)
	}
	return printCanaryReport(stdout, &r)
}

// printCanaryReport writes r as aligned tables: the verdict, the two
// models side by side, the comparison figures and the checks.
func printCanaryReport(w io.Writer, r *judge.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }
	row("model", r.Model)
	row("window", fmt.Sprintf("%s .. %s", r.Window.Start.Format(time.RFC3339), r.Window.End.Format(time.RFC3339)))
	row("pairs", strconv.Itoa(r.Window.Pairs))
	row("verdict", strings.ToUpper(r.Verdict))
	row("score", canaryNum(r.Score))
	for i, reason := range r.Reasons {
		label := ""
		if i == 0 {
			label = "reasons"
		}
		row(label, reason)
	}
	row("")
	row("", "PRODUCTION", "CANARY")
	row("version", r.Production.Version, r.Canary.Version)
	row("predictions", strconv.Itoa(r.Production.Predictions), strconv.Itoa(r.Canary.Predictions))
	row("unmatched", strconv.Itoa(r.Unmatched.Production), strconv.Itoa(r.Unmatched.Canary))
	lat := func(l *judge.Latency, q func(*judge.Latency) float64) string {
		if l == nil {
			return "-"
		}
		return canaryNum(q(l))
	}
	for _, q := range []struct {
		name string
		f    func(*judge.Latency) float64
	}{{"p50", func(l *judge.Latency) float64 { return l.P50 }}, {"p95", func(l *judge.Latency) float64 { return l.P95 }}, {"p99", func(l *judge.Latency) float64 { return l.P99 }}} {
		row("latency "+q.name+" ms", lat(r.Production.LatencyMS, q.f), lat(r.Canary.LatencyMS, q.f))
	}
	row("confidence mean", canaryOptNum(r.Production.ConfidenceMean), canaryOptNum(r.Canary.ConfidenceMean))
	rej := func(role string) string {
		x, ok := r.Rejected[role]
		if !ok {
			return "0"
		}
		return fmt.Sprintf("%d (%s)", x.Count, canaryNum(x.Rate))
	}
	row("rejected (rate)", rej("production"), rej("canary"))
	if x, ok := r.Rejected["unknown"]; ok {
		row("rejected, role unknown", strconv.Itoa(x.Count))
	}
	row("")
	row("canary share", canaryNum(r.CanaryShare))
	if r.Agreement != nil {
		row("agreement", canaryNum(*r.Agreement))
	}
	if d := r.ScoreDiff; d != nil {
		row("score diff mean abs", canaryNum(d.MeanAbs))
		row("score diff p95 abs", canaryNum(d.P95Abs))
		row("score correlation", canaryOptNum(d.Correlation))
		if d.KS != nil {
			row("score ks", fmt.Sprintf("%s (p %s)", canaryNum(d.KS.Statistic), canaryNum(d.KS.PValue)))
		}
	}
	if r.ConfidenceDiff != nil {
		row("confidence diff", canaryNum(*r.ConfidenceDiff))
	}
	if r.LatencyRatio != nil {
		row("latency p95 ratio", canaryNum(r.LatencyRatio.P95))
	}
	if len(r.Confusion) > 0 {
		row("")
		row("CONFUSION", "PRODUCTION", "CANARY", "PAIRS")
		prodLabels := make([]string, 0, len(r.Confusion))
		for l := range r.Confusion {
			prodLabels = append(prodLabels, l)
		}
		sort.Strings(prodLabels)
		for _, p := range prodLabels {
			canLabels := make([]string, 0, len(r.Confusion[p]))
			for l := range r.Confusion[p] {
				canLabels = append(canLabels, l)
			}
			sort.Strings(canLabels)
			for _, c := range canLabels {
				row("", p, c, strconv.Itoa(r.Confusion[p][c]))
			}
		}
	}
	row("")
	row("CHECK", "VALUE", "THRESHOLD", "PASSED", "WEIGHT", "GUARDRAIL")
	for _, c := range r.Checks {
		row(c.Name, canaryNum(c.Value), canaryNum(c.Threshold), canaryYesNo(c.Passed), canaryNum(c.Weight), canaryYesNo(c.Guardrail))
	}
	return tw.Flush()
}

func canaryNum(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }

func canaryOptNum(f *float64) string {
	if f == nil {
		return "-"
	}
	return canaryNum(*f)
}

func canaryYesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
