package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/lookout-ml/lookout/pkg/dataset"
	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
	driftsvc "github.com/lookout-ml/lookout/services/drift"
)

func init() {
	register(command{
		name:  "reference",
		usage: "set|show|clear --model M [PATH]   pin a model's drift reference (Parquet file, archive folder or CSV)",
		run:   referenceCommand,
	})
}

func referenceCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintln(stderr, "Usage:")
		fmt.Fprintln(stderr, "  lookout reference set --model M [--role R] PATH   pin PATH's rows of role R (Parquet file, archive folder or CSV) as M's drift reference")
		fmt.Fprintln(stderr, "  lookout reference show --model M       describe M's pinned reference")
		fmt.Fprintln(stderr, "  lookout reference clear --model M      unpin it: drift goes back to its configured reference")
		fmt.Fprintln(stderr, "\nThe reference is kept in JetStream, so every drift process uses it from its next window.")
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		usage()
		if len(args) == 0 {
			return fmt.Errorf("%w: want set, show or clear", errUsage)
		}
		return flag.ErrHelp
	}
	sub := args[0]
	fs := flag.NewFlagSet("reference "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		client    clientFlags
		model     string
		sampleCap int
		learned   bool
		role      string
	)
	client.register(fs)
	fs.StringVar(&model, "model", "", "model `name`")
	if sub == "set" {
		fs.IntVar(&sampleCap, "sample-cap", driftreport.DefaultSampleCap, "values kept per feature before sampling uniformly")
		// Drift compares the roles in drift.roles, production by default:
		// a reference that mixed in canary or shadow rows would not be
		// the traffic it is compared with.
		fs.StringVar(&role, "role", event.RoleProduction, "keep only PATH's rows of this `role` (production, canary or shadow; a row without one is production); \"all\" keeps every row")
	}
	if sub == "clear" {
		fs.BoolVar(&learned, "learned", false, "also forget the references drift learned for the model (a running drift process learns them again after its restart)")
	}
	rest, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if !event.IsValidModel(model) {
		return fmt.Errorf("%w: --model is required: a model name (letters, digits, '-' and '_')", errUsage)
	}
	var path string
	switch sub {
	case "set":
		if len(rest) != 1 {
			return fmt.Errorf("%w: want one PATH, got %d arguments", errUsage, len(rest))
		}
		path = rest[0]
		if role, err = roleFilter(role); err != nil {
			return err
		}
	case "show", "clear":
		if len(rest) != 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, rest)
		}
	default:
		usage()
		return fmt.Errorf("%w: unknown subcommand %q (set, show or clear)", errUsage, sub)
	}

	var ref *driftreport.Dataset
	var source string
	if sub == "set" {
		// Read the data before connecting: a bad file is the likelier error.
		var info dataset.Info
		ref, info, err = dataset.Load(ctx, path, dataset.Options{Sample: driftreport.SampleOptions{Cap: sampleCap}, Model: model, Role: role})
		if err != nil {
			return err
		}
		source = path
		if abs, err := filepath.Abs(path); err == nil {
			source = abs
		}
		if !info.First.IsZero() {
			source += fmt.Sprintf(" (%s to %s)", info.First.Format(time.RFC3339), info.Last.Format(time.RFC3339))
		}
		if role != "" {
			source += ", role " + role
		}
	}
	cfg, err := client.load()
	if err != nil {
		return err
	}
	nc, js, err := client.connect("reference")
	if err != nil {
		return err
	}
	defer nc.Close()
	refs, err := driftsvc.OpenReferences(ctx, js, subjectsFor(cfg))
	if err != nil {
		return err
	}
	switch sub {
	case "set":
		info, err := refs.SetPinned(ctx, model, source, ref)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pinned the drift reference of %s: %d rows, %d features, from %s\n",
			model, info.Rows, len(ref.Features), info.Source)
	case "show":
		info, err := refs.PinnedInfo(ctx, model)
		if errors.Is(err, driftsvc.ErrNoReference) {
			fmt.Fprintf(stdout, "%s has no pinned reference: drift uses its configured reference (%s)\n", model, cfg.Drift().Reference)
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: pinned %s, %d rows, %d bytes, from %s\n",
			model, info.Set.Format(time.RFC3339), info.Rows, info.Bytes, info.Source)
	case "clear":
		err := refs.ClearPinned(ctx, model)
		switch {
		case errors.Is(err, driftsvc.ErrNoReference):
			fmt.Fprintf(stdout, "%s had no pinned reference\n", model)
		case err != nil:
			return err
		default:
			fmt.Fprintf(stdout, "unpinned the drift reference of %s\n", model)
		}
		if learned {
			n, err := refs.ClearLearned(ctx, model)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "forgot %d learned references of %s\n", n, model)
		}
	}
	return nil
}

// roleFilter reads a --role flag: a role keeps that role's rows, "all"
// (returned as "") every row.
func roleFilter(role string) (string, error) {
	switch role {
	case event.RoleProduction, event.RoleCanary, event.RoleShadow:
		return role, nil
	case "all":
		return "", nil
	}
	return "", fmt.Errorf("%w: --role %q: want production, canary, shadow or all", errUsage, role)
}
