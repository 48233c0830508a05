package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/lookout-ml/lookout/pkg/dataset"
	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/versions"
	driftsvc "github.com/lookout-ml/lookout/services/drift"
)

func init() {
	register(command{
		name:  "version",
		usage: "set|list --model M [--version V --run URI [--reference PATH]]   record the training run of a model version",
		run:   versionCommand,
	})
}

func versionCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, "Usage:")
		fmt.Fprintln(stderr, "  lookout version set --model M --version V --run URI [--reference PATH]")
		fmt.Fprintln(stderr, "      record V's training run (wandb://entity/project/run, mlflow://run-id, any URL);")
		fmt.Fprintln(stderr, "      --reference also pins PATH as the model's drift reference")
		fmt.Fprintln(stderr, "  lookout version list [--model M]")
		if len(args) == 0 {
			return fmt.Errorf("%w: want set or list", errUsage)
		}
		return flag.ErrHelp
	}
	sub := args[0]
	fs := flag.NewFlagSet("version "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		client                       clientFlags
		model, version, runURI, path string
	)
	client.register(fs)
	fs.StringVar(&model, "model", "", "model `name`")
	if sub == "set" {
		fs.StringVar(&version, "version", "", "model `version`, as the predictions name it")
		fs.StringVar(&runURI, "run", "", "training run `URI`: wandb://entity/project/run, mlflow://run-id or any URL")
		fs.StringVar(&path, "reference", "", "also pin this `PATH` (Parquet file, archive folder or CSV) as the model's drift reference")
	}
	rest, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, rest)
	}
	switch sub {
	case "set":
		if !event.IsValidModel(model) || version == "" || runURI == "" {
			return fmt.Errorf("%w: --model, --version and --run are required", errUsage)
		}
	case "list":
		if model != "" && !event.IsValidModel(model) {
			return fmt.Errorf("%w: --model %q is not a valid model name", errUsage, model)
		}
	default:
		return fmt.Errorf("%w: unknown subcommand %q (set or list)", errUsage, sub)
	}
	var ref *driftreport.Dataset
	source := ""
	if path != "" {
		// Read the data before connecting: a bad file is the likelier error.
		ref, _, err = dataset.Load(ctx, path, dataset.Options{Sample: driftreport.SampleOptions{Cap: driftreport.DefaultSampleCap}, Model: model})
		if err != nil {
			return err
		}
		source = path
		if abs, err := filepath.Abs(path); err == nil {
			source = abs
		}
	}
	cfg, err := client.load()
	if err != nil {
		return err
	}
	nc, js, err := client.connect("version")
	if err != nil {
		return err
	}
	defer nc.Close()
	subjects := subjectsFor(cfg)
	kv, err := versions.Bind(ctx, js, subjects)
	if err != nil {
		return err
	}
	if sub == "list" {
		recs, err := versions.List(ctx, kv, model)
		if err != nil {
			return err
		}
		for _, r := range recs {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s", r.Model, r.Version, r.Run, r.SetAt.Format(time.RFC3339))
			if r.Reference != "" {
				fmt.Fprintf(stdout, "\treference %s", r.Reference)
			}
			fmt.Fprintln(stdout)
		}
		if len(recs) == 0 {
			fmt.Fprintln(stdout, "no versions recorded")
		}
		return nil
	}
	if ref != nil {
		refs, err := driftsvc.OpenReferences(ctx, js, subjects)
		if err != nil {
			return err
		}
		info, err := refs.SetPinned(ctx, model, source+" (version "+version+")", ref)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pinned the drift reference of %s: %d rows from %s\n", model, info.Rows, source)
	}
	r, err := versions.Put(ctx, kv, versions.Record{Model: model, Version: version, Run: runURI, Reference: source, Source: "cli"})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "recorded %s %s: run %s (%s)\n", r.Model, r.Version, r.Run, r.SetAt.Format(time.RFC3339))
	return nil
}
