package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/lookout-ml/lookout/pkg/dataset"
	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
)

func init() {
	register(command{
		name:  "drift",
		usage: "--reference REF --current CUR [--role R] [--json]   offline drift report (Parquet, archive folders, CSV, JSON lines); exit 0 with or without drift",
		run:   driftCommand,
	})
}

func driftCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("drift", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		refPath, curPath, model, configPath, format, role string
		asJSON                                            bool
		sampleCap                                         int
	)
	fs.StringVar(&refPath, "reference", "", "reference data `path`: a Parquet file, an archive folder, a CSV file with a header, or JSON lines of prediction events")
	fs.StringVar(&curPath, "current", "", "current data `path`, as --reference")
	fs.BoolVar(&asJSON, "json", false, "print the drift report as JSON (the contract's shape) instead of a table")
	fs.StringVar(&model, "model", "", "keep only this `model`'s rows (archive folders and CSV with a model column); also names the report's model")
	fs.StringVar(&configPath, "config", "", "YAML configuration `file`: its drift.rules and drift.confidence apply")
	fs.StringVar(&format, "format", "", "input `format` of both paths: csv, parquet or jsonl (default: from each path)")
	fs.StringVar(&role, "role", event.RoleProduction, "keep only the rows of this `role` (production, canary or shadow; a row without one is production), so that an archive of a canary rollout is one model's rows; \"all\" keeps every row")
	fs.IntVar(&sampleCap, "sample-cap", driftreport.DefaultSampleCap, "values kept per feature before sampling uniformly (bounds memory)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: lookout drift --reference REF --current CUR [--json] [--model M] [--role R]")
		fmt.Fprintln(fs.Output(), "\nCompares CUR with REF, feature by feature, and prints the drift report. In a CSV file,")
		fmt.Fprintln(fs.Output(), "prediction and confidence are those fields; id, request_id, model, version, role, ts and")
		fmt.Fprintln(fs.Output(), "latency_ms are metadata; tag.<name> columns are the rows' tags (for root cause); embeddings")
		fmt.Fprintln(fs.Output(), "come in JSON lines or Parquet only. Every other column is a feature, numerical when most values are")
		fmt.Fprintln(fs.Output(), "numbers (the other values are counted as type mismatches), else categorical (an empty cell")
		fmt.Fprintln(fs.Output(), "is null). A prediction column with any text holds class labels, as prediction_label does.")
		fmt.Fprintln(fs.Output(), "JSON lines are prediction events as published. The exit code is 0 whether or not drift")
		fmt.Fprintln(fs.Output(), "is found; 1 for unreadable input, 2 for a wrong call.")
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q (use --reference and --current)", errUsage, rest)
	}
	if refPath == "" || curPath == "" {
		return fmt.Errorf("%w: both --reference and --current are required", errUsage)
	}
	if model != "" && !event.IsValidModel(model) {
		return fmt.Errorf("%w: --model %q is not a valid model name (letters, digits, '-' and '_')", errUsage, model)
	}
	if role, err = roleFilter(role); err != nil {
		return err
	}
	cfg, err := loadConfig(configPath)
	if err != nil {
		return err
	}
	configureS3Reads(cfg)
	opts := dataset.Options{Sample: driftreport.SampleOptions{Cap: sampleCap}, Model: model, Role: role, Format: format}
	ref, cur, _, curInfo, err := loadPair(ctx, refPath, curPath, opts)
	if err != nil {
		return err
	}
	report := driftreport.Compare(ref, cur, cfg.Drift().Options())
	report.Model = model
	report.Reference.Source = refPath
	report.Window.Start, report.Window.End = curInfo.First, curInfo.Last
	// One window: the sequential detectors see it as a service's first.
	var seq driftreport.SequentialState
	report.Sequential = seq.Update(&report)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	return driftreport.WriteTableWith(stdout, report, driftreport.TableOptions{Bold: isTerminal(stdout)})
}

// loadPair loads the reference and the current data set at the same time.
func loadPair(ctx context.Context, refPath, curPath string, opts dataset.Options) (ref, cur *driftreport.Dataset, refInfo, curInfo dataset.Info, err error) {
	var refErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		ref, refInfo, refErr = dataset.Load(ctx, refPath, opts)
	}()
	cur, curInfo, err = dataset.Load(ctx, curPath, opts)
	<-done
	if refErr != nil {
		return nil, nil, refInfo, curInfo, fmt.Errorf("reference: %w", refErr)
	}
	if err != nil {
		return nil, nil, refInfo, curInfo, fmt.Errorf("current: %w", err)
	}
	return ref, cur, refInfo, curInfo, nil
}
