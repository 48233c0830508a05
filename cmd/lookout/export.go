package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
	archiveservice "github.com/lookout-ml/lookout/services/archive"
)

func init() {
	register(command{
		name:  "export",
		usage: "--model M [--data DIR] [--from T] [--to T] [--version V] [--role R] [--labelled] OUT.parquet   predictions joined with their labels, for retraining",
		run:   exportCommand,
	})
}

// exportCommand writes a model's archived predictions joined with their
// feedback as one Parquet file.
//
// Labels come from the feedback stream (<PREFIX>_FEEDBACK), read with
// JetStream message gets (direct gets where the stream allows them): no
// consumer is created, so an account that may only read can export. They
// join as the feedback service joins (services/feedback): feedback by id
// applies to that prediction and every prediction of its request, feedback
// by request_id to every prediction of the request; when several apply,
// each of label and helpful is the latest given (in stream order), and
// feedback_ts the time of the latest feedback applied. Feedback that the
// feedback service would reject (no label nor helpful, bad types) is
// skipped. The stream keeps feedback for nats.retention (7 days by
// default): older labels are not in it.
//
// The archive is --data's archive/ folder, or with archive.s3 in --config
// (and no --data given) the bucket's prefix.
//
// Without NATS the export fails, naming the server, unless
// --without-labels says to export the predictions alone (label columns
// all null): a silent export without labels would look like a model
// nobody labelled.
func exportCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		client                  clientFlags
		model, dataDir, version string
		role, fromS, toS        string
		labelled, withoutLabels bool
	)
	client.register(fs)
	fs.StringVar(&model, "model", "", "model `name`")
	fs.StringVar(&dataDir, "data", "./lookout-data", "Lookout's data `folder` (the archive is its archive/ folder)")
	fs.StringVar(&fromS, "from", "", "keep predictions at or after `T` (RFC 3339, a date 2026-11-24, or a duration ago such as 24h)")
	fs.StringVar(&toS, "to", "", "keep predictions before `T` (same forms)")
	fs.StringVar(&version, "version", "", "keep only this model `version`")
	fs.StringVar(&role, "role", "", "keep only this `role` (production, canary, shadow)")
	fs.BoolVar(&labelled, "labelled", false, "keep only predictions with a label")
	fs.BoolVar(&withoutLabels, "without-labels", false, "do not read labels from NATS (label columns are null); without it an unreachable NATS is an error")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: want one OUT.parquet, got %d arguments", errUsage, len(rest))
	}
	if !event.IsValidModel(model) {
		return fmt.Errorf("%w: --model is required: a model name (letters, digits, '-' and '_')", errUsage)
	}
	if labelled && withoutLabels {
		return fmt.Errorf("%w: --labelled with --without-labels keeps nothing", errUsage)
	}
	now := time.Now()
	from, err := parseWhen(fromS, now)
	if err != nil {
		return fmt.Errorf("%w: --from: %v", errUsage, err)
	}
	to, err := parseWhen(toS, now)
	if err != nil {
		return fmt.Errorf("%w: --to: %v", errUsage, err)
	}
	out := rest[0]

	cfg, err := client.load()
	if err != nil {
		return err
	}
	archive := filepath.Join(dataDir, "archive")
	// With archive.s3 the archive is in the bucket, not under --data; an
	// explicit --data still reads that folder (a copy, say).
	if s3 := sectionOf[archiveservice.Config](cfg, archiveservice.Component).S3; s3.Enabled() && !flagSet(fs, "data") {
		configureS3Reads(cfg)
		archive = s3.Location()
	}

	var fb *feedbackIndex
	if !withoutLabels {
		nc, js, err := client.connect("export")
		if err != nil {
			return fmt.Errorf("labels come from NATS: %w (pass --without-labels to export the predictions alone)", err)
		}
		fb, err = readFeedback(ctx, js, subjectsFor(cfg), model, stderr)
		nc.Close()
		if err != nil {
			return err
		}
	}

	opts := parquetarchive.ReadOptions{Model: model, From: from, To: to}
	paths, err := parquetarchive.ExpandPathsContext(ctx, []string{archive})
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	paths = slices.DeleteFunc(paths, opts.SkipPath)
	bar := newBar(stderr, len(paths), "reading archive files")
	var rows []*event.Prediction
	for _, path := range paths {
		err := parquetarchive.ReadFile(ctx, path, opts, func(p *event.Prediction) error {
			if (version == "" || p.GetVersion() == version) && (role == "" || roleOf(p) == role) {
				rows = append(rows, p)
			}
			return nil
		})
		if err != nil {
			return err
		}
		_ = bar.Add(1)
	}
	_ = bar.Finish()
	labels := make([]*parquetarchive.Label, len(rows))
	if fb != nil {
		fb.learn(rows)
		for i, p := range rows {
			labels[i] = fb.labelOf(p)
		}
	}
	if labelled {
		kept, keptLabels := rows[:0], labels[:0]
		for i, p := range rows {
			if labels[i] != nil && labels[i].Value != nil {
				kept, keptLabels = append(kept, p), append(keptLabels, labels[i])
			}
		}
		rows, labels = kept, keptLabels
	}
	if len(rows) == 0 {
		return fmt.Errorf("no predictions of %s in %s match (nothing written)", model, archive)
	}
	nLabelled := 0
	for _, l := range labels {
		if l != nil && l.Value != nil {
			nLabelled++
		}
	}
	if err := writeExport(out, rows, labels); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "exported %d predictions of %s (%d labelled) to %s\n", len(rows), model, nLabelled, out)
	return nil
}

// flagSet reports whether the command line gave flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func roleOf(p *event.Prediction) string {
	if p.GetRole() == "" {
		return "production"
	}
	return p.GetRole()
}

// writeExport writes the file under a temporary name and renames it, so
// that OUT is whole or absent.
func writeExport(out string, rows []*event.Prediction, labels []*parquetarchive.Label) error {
	var buf bytes.Buffer
	if _, err := parquetarchive.EncodeLabelled(&buf, rows, labels); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(out), ".tmp-"+filepath.Base(out))
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// parseWhen reads --from/--to: RFC 3339, a date (UTC midnight), or a
// duration meaning that long before now; "" is no bound.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not RFC 3339, a date or a duration", s)
}

// feedbackIndex holds a model's feedback by id and by request id.
type feedbackIndex struct {
	byID, byReq map[string][]storedFeedback
	// requests maps a request id to the ids of its predictions, learned
	// from the rows exported, so that feedback by id reaches the
	// request's other predictions.
	requests map[string][]string
}

type storedFeedback struct {
	seq uint64
	f   *event.Feedback
}

// readFeedback reads every stored feedback message of model with message
// gets (the next message on the subject from a sequence), up to the last
// sequence when it started.
func readFeedback(ctx context.Context, js jetstream.JetStream, subjects natsbus.Subjects, model string, stderr io.Writer) (*feedbackIndex, error) {
	name := subjects.StreamName(natsbus.StreamFeedback)
	stream, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("feedback stream %s not found: start `lookout run` against this NATS server once (or pass --without-labels)", name)
	}
	if err != nil {
		return nil, fmt.Errorf("feedback stream %s: %w (pass --without-labels to export the predictions alone)", name, err)
	}
	info := stream.CachedInfo()
	subject := subjects.For(natsbus.KindFeedback, model)
	idx := &feedbackIndex{byID: map[string][]storedFeedback{}, byReq: map[string][]storedFeedback{}}
	first, last := info.State.FirstSeq, info.State.LastSeq
	bar := newBar(stderr, int(min(last-min(first, last), 1<<31)), "reading feedback")
	for seq := first; seq > 0 && seq <= last; {
		msg, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read feedback at %d: %w", seq, err)
		}
		if msg.Sequence > last {
			break
		}
		_ = bar.Set(int(msg.Sequence - first))
		seq = msg.Sequence + 1
		f, reasons := event.DecodeFeedback(msg.Data, event.DecodeOptions{
			SubjectModel: model, ContentType: msg.Header.Get("Content-Type"), Received: msg.Time,
		})
		if len(reasons) > 0 {
			continue
		}
		sf := storedFeedback{seq: msg.Sequence, f: f}
		if f.GetId() != "" {
			idx.byID[f.GetId()] = append(idx.byID[f.GetId()], sf)
		} else {
			idx.byReq[f.GetRequestId()] = append(idx.byReq[f.GetRequestId()], sf)
		}
	}
	_ = bar.Finish()
	return idx, nil
}

// learn records which predictions belong to which request.
func (x *feedbackIndex) learn(rows []*event.Prediction) {
	x.requests = map[string][]string{}
	for _, p := range rows {
		if req := p.GetRequestId(); req != "" {
			x.requests[req] = append(x.requests[req], p.GetId())
		}
	}
}

// labelOf folds the feedback that applies to p in stream order: each of
// label and helpful is the latest given; feedback_ts is the latest
// feedback time.
func (x *feedbackIndex) labelOf(p *event.Prediction) *parquetarchive.Label {
	apply := slices.Clone(x.byID[p.GetId()])
	if req := p.GetRequestId(); req != "" {
		apply = append(apply, x.byReq[req]...)
		for _, id := range x.requests[req] {
			if id != p.GetId() {
				apply = append(apply, x.byID[id]...)
			}
		}
	}
	if len(apply) == 0 {
		return nil
	}
	slices.SortFunc(apply, func(a, b storedFeedback) int { return cmp.Compare(a.seq, b.seq) })
	apply = slices.CompactFunc(apply, func(a, b storedFeedback) bool { return a.seq == b.seq })
	var l parquetarchive.Label
	for _, sf := range apply {
		if sf.f.GetLabel() != nil {
			l.Value = sf.f.GetLabel()
		}
		if sf.f.Helpful != nil {
			l.Helpful = sf.f.Helpful
		}
		l.TsUnixNano = max(l.TsUnixNano, sf.f.GetTsUnixNano())
	}
	return &l
}

// newBar returns a progress bar on stderr when it is a terminal, else one
// that draws nothing.
func newBar(stderr io.Writer, n int, what string) *progressbar.ProgressBar {
	if !isTerminal(stderr) {
		return progressbar.DefaultSilent(int64(n), what)
	}
	return progressbar.NewOptions(n, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
}
