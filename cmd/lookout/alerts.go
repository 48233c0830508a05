package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/services/alert"
)

func init() {
	register(command{
		name:  "alerts",
		usage: "[--model M] [--json]   list the alerts that fire now",
		run:   alertsCommand,
	})
}

func alertsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("alerts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		client clientFlags
		model  string
		asJSON bool
	)
	client.register(fs)
	fs.StringVar(&model, "model", "", "only this `model`")
	fs.BoolVar(&asJSON, "json", false, "one alert event (JSON) a line")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, rest[0])
	}
	cfg, err := client.load()
	if err != nil {
		return err
	}
	nc, js, err := client.connect("alerts")
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	firing, err := alert.FiringAlerts(ctx, js, subjectsFor(cfg))
	if err != nil {
		return err
	}
	var shown []alerting.Alert
	for _, a := range firing {
		if model == "" || a.Model == model {
			shown = append(shown, a)
		}
	}
	if asJSON {
		for _, a := range shown {
			writeJSONLine(stdout, a)
		}
		return nil
	}
	if len(shown) == 0 {
		fmt.Fprintln(stdout, "no alerts firing")
		return nil
	}
	// One clock: SINCE is the event time the reports name (UTC), with how
	// long ago that was on the wall clock, so a backlog's alert reads as
	// old rather than as fired just now.
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tRULE\tLABELS\tSEVERITY\tSINCE\tSUMMARY")
	for _, a := range shown {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Model, a.Rule, alerting.LabelString(a.Labels), a.Severity,
			alerting.FormatSince(a.StartsAt, now), a.Summary)
	}
	return tw.Flush()
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	b = append(b, '\n')
	_, _ = w.Write(b)
}
