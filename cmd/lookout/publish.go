package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
)

func init() {
	register(command{
		name:  "publish",
		usage: "[--feedback] --model M FILE|-   publish predictions (or feedback) from JSON lines or CSV (with a header)",
		run:   publishCommand,
	})
}

func publishCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		client clientFlags
		model  string
		format string
		rate   float64
		fb     bool
		wait   time.Duration
	)
	client.register(fs)
	fs.StringVar(&model, "model", "", "model `name` (the subject's last token); default: each event's own model field")
	fs.StringVar(&format, "format", "", "input `format`: jsonl or csv (default: from the file name, jsonl for stdin)")
	fs.Float64Var(&rate, "rate", 0, "events per second (0: as fast as the server acknowledges)")
	fs.BoolVar(&fb, "feedback", false, "publish feedback (id or request_id, label, helpful, ts) on lookout.feedback.<model> instead of predictions")
	fs.DurationVar(&wait, "wait", 30*time.Second, "how long to wait for ingest's (or feedback's) verdict on each stored event; 0: report JetStream acknowledgements only")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: want one FILE (or - for stdin), got %d arguments", errUsage, len(rest))
	}
	if model != "" && !event.IsValidModel(model) {
		return fmt.Errorf("%w: --model %q is not a valid model name (letters, digits, '-' and '_')", errUsage, model)
	}
	path := rest[0]
	if format == "" {
		format = "jsonl"
		if strings.EqualFold(filepath.Ext(path), ".csv") {
			format = "csv"
		}
	}
	var in io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	var events eventReader
	switch format {
	case "jsonl", "json", "ndjson":
		events = newJSONLReader(in)
	case "csv":
		events, err = newCSVReader(in, fb)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	default:
		return fmt.Errorf("%w: unknown --format %q (jsonl or csv)", errUsage, format)
	}
	cfg, err := client.load()
	if err != nil {
		return err
	}
	nc, js, err := client.connect("publish")
	if err != nil {
		return err
	}
	defer nc.Close()
	kind := natsbus.KindIngest
	if fb {
		kind = natsbus.KindFeedback
	}
	p := &publisher{nc: nc, js: js, subjects: subjectsFor(cfg), kind: kind, model: model, wait: wait}
	sum, err := p.publishAll(ctx, events, rate)
	fmt.Fprintf(stdout, "sent %d, acknowledged %d, failed %d", sum.sent, sum.acked, sum.failed)
	if wait > 0 {
		fmt.Fprintf(stdout, ", accepted %d, rejected %d", sum.accepted, len(sum.rejected)+len(sum.refused))
		if sum.duplicates > 0 {
			fmt.Fprintf(stdout, ", duplicates %d", sum.duplicates)
		}
	}
	fmt.Fprintln(stdout)
	for _, r := range sum.refused {
		fmt.Fprintf(stdout, "refused line %d: %s\n", r.line, r.reason)
	}
	for _, r := range sum.rejected {
		fmt.Fprintf(stdout, "rejected line %d: %s\n", r.line, r.reason)
	}
	if sum.pending > 0 {
		service := "ingest"
		if fb {
			service = "feedback"
		}
		fmt.Fprintf(stdout, "no verdict within %s for %d stored events: they are kept in JetStream and handled once %s runs (see lookout tail %s)\n",
			wait, sum.pending, service, p.subjects.For(natsbus.KindRejected, "*"))
	}
	if err != nil {
		return err
	}
	if sum.failed > 0 {
		return fmt.Errorf("%d events were not acknowledged: %s", sum.failed, sum.firstFailure)
	}
	if len(sum.refused) > 0 {
		return fmt.Errorf("%d lines were not sent: no model (give --model M, or a \"model\" field on each line); first: line %d", len(sum.refused), sum.refused[0].line)
	}
	return nil
}

// eventReader yields one raw event at a time; io.EOF ends the input.
type eventReader interface {
	Next() ([]byte, error)
	// Line is the input line of the event Next returned last.
	Line() int
}

type jsonlReader struct {
	sc   *bufio.Scanner
	line int
}

func newJSONLReader(r io.Reader) *jsonlReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return &jsonlReader{sc: sc}
}

func (r *jsonlReader) Line() int { return r.line }

func (r *jsonlReader) Next() ([]byte, error) {
	for r.sc.Scan() {
		r.line++
		line := bytes.TrimSpace(r.sc.Bytes())
		if len(line) == 0 {
			continue
		}
		return bytes.Clone(line), nil
	}
	if err := r.sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", r.line+1, err)
	}
	return nil, io.EOF
}

// csvReader turns CSV rows into prediction events. The columns id,
// request_id, model, version, role, ts, prediction, confidence and
// latency_ms are those fields; score.<class> and tag.<name> columns fill
// scores and tags; every other column is a feature. A cell is a number when
// it parses as one, true or false a boolean, empty a null, else a string.
//
// For feedback (newCSVReader with feedback set) the columns are id,
// request_id, model, ts, label (a number when it parses as one, else a
// string) and helpful (true or false); other columns are an error.
type csvReader struct {
	r        *csv.Reader
	header   []string
	feedback bool
	line     int
}

func newCSVReader(in io.Reader, feedback bool) (*csvReader, error) {
	r := csv.NewReader(in)
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("csv header: %w", err)
	}
	c := &csvReader{r: r, header: append([]string(nil), header...), feedback: feedback}
	if feedback {
		for _, name := range c.header {
			switch name {
			case "id", "request_id", "model", "ts", "label", "helpful":
			default:
				return nil, fmt.Errorf("feedback csv: unknown column %q (id, request_id, model, ts, label, helpful)", name)
			}
		}
	}
	return c, nil
}

func (c *csvReader) Line() int { return c.line }

func (c *csvReader) Next() ([]byte, error) {
	rec, err := c.r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("csv: %w", err)
	}
	c.line, _ = c.r.FieldPos(0)
	if c.feedback {
		return c.feedbackRow(rec)
	}
	obj := map[string]any{}
	features := map[string]any{}
	scores := map[string]any{}
	tags := map[string]string{}
	for i, name := range c.header {
		cell := rec[i]
		switch {
		case name == "id" || name == "request_id" || name == "model" || name == "version" || name == "role" || name == "ts":
			if cell != "" {
				obj[name] = cell
			}
		case name == "prediction":
			obj[name] = csvCell(cell, true)
		case name == "confidence" || name == "latency_ms":
			if cell != "" {
				obj[name] = csvCell(cell, false)
			}
		case strings.HasPrefix(name, "score."):
			if cell != "" {
				scores[strings.TrimPrefix(name, "score.")] = csvCell(cell, false)
			}
		case strings.HasPrefix(name, "tag."):
			if cell != "" { // an empty cell is no tag, as the drift CSV reader reads it
				tags[strings.TrimPrefix(name, "tag.")] = cell
			}
		default:
			features[name] = csvCell(cell, false)
		}
	}
	if len(features) > 0 {
		obj["features"] = features
	}
	if len(scores) > 0 {
		obj["scores"] = scores
	}
	if len(tags) > 0 {
		obj["tags"] = tags
	}
	return json.Marshal(obj)
}

// feedbackRow turns one CSV row into a feedback event; empty cells are
// left out.
func (c *csvReader) feedbackRow(rec []string) ([]byte, error) {
	obj := map[string]any{}
	for i, name := range c.header {
		cell := rec[i]
		if cell == "" {
			continue
		}
		switch name {
		case "label":
			obj[name] = csvCell(cell, true)
		case "helpful":
			b, err := strconv.ParseBool(cell)
			if err != nil {
				// Sent as text, so that the service rejects it with its
				// reason and line rather than the client guessing.
				obj[name] = cell
				continue
			}
			obj[name] = b
		default:
			obj[name] = cell
		}
	}
	return json.Marshal(obj)
}

// csvCell types one CSV cell. A label keeps booleans as text: a class
// label is a string.
func csvCell(cell string, label bool) any {
	if cell == "" {
		return nil
	}
	if f, err := strconv.ParseFloat(cell, 64); err == nil {
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
	}
	if !label {
		switch strings.ToLower(cell) {
		case "true":
			return true
		case "false":
			return false
		}
	}
	return cell
}

type publishSummary struct {
	sent, acked, failed int
	firstFailure        string
	// From the verdicts (event.HeaderVerdictTo): accepted, duplicates,
	// rejected lines with their reasons, and stored events whose verdict
	// did not come within the wait.
	accepted, duplicates, pending int
	rejected                      []lineNote
	// refused are lines not sent at all: no model to send them to.
	refused []lineNote
}

type lineNote struct {
	line   int
	reason string
}

// publisher publishes events with JetStream acknowledgements, and, when
// wait > 0, collects the verdict of the service that handles them.
//
// Why a verdict header and not a subscription to lookout.predictions and
// lookout.rejected: a user with the publisher role may publish only on
// lookout.ingest.> and lookout.feedback.> and receive replies on _INBOX.>;
// it can read neither subject. So each message carries
// event.HeaderVerdictTo = <inbox>.<line>, and ingest (or the feedback
// service) answers there once the outcome is stored. The line in the
// subject names the input line; a redelivered message answered twice is
// counted once.
type publisher struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	subjects natsbus.Subjects
	kind     string // natsbus.KindIngest or KindFeedback
	model    string
	header   nats.Header // extra headers on every message
	wait     time.Duration
}

// publishAll publishes every event with JetStream acknowledgements,
// keeping a bounded number in flight, then waits up to p.wait for the
// verdicts of those stored.
func (p *publisher) publishAll(ctx context.Context, events eventReader, rate float64) (publishSummary, error) {
	var (
		sum      publishSummary
		mu       sync.Mutex
		wg       sync.WaitGroup
		futures  = make(chan jetstream.PubAckFuture, 4096)
		verdicts = map[int]event.Verdict{}
		gotAll   = make(chan struct{}, 1)
		inbox    string
	)
	if p.kind == "" {
		p.kind = natsbus.KindIngest
	}
	if p.wait > 0 {
		inbox = p.nc.NewInbox()
		sub, err := p.nc.Subscribe(inbox+".*", func(m *nats.Msg) {
			line, err := strconv.Atoi(m.Subject[len(inbox)+1:])
			if err != nil {
				return
			}
			var v event.Verdict
			if json.Unmarshal(m.Data, &v) != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if _, dup := verdicts[line]; dup {
				return
			}
			verdicts[line] = v
			select {
			case gotAll <- struct{}{}:
			default:
			}
		})
		if err != nil {
			return sum, fmt.Errorf("subscribe to verdicts: %w", err)
		}
		defer sub.Unsubscribe()
		if err := p.nc.Flush(); err != nil {
			return sum, fmt.Errorf("subscribe to verdicts: %w", err)
		}
	}
	stored := map[int]bool{}
	lines := make(chan int, cap(futures))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for f := range futures {
			line := <-lines
			select {
			case <-f.Ok():
				mu.Lock()
				sum.acked++
				stored[line] = true
				mu.Unlock()
			case err := <-f.Err():
				mu.Lock()
				sum.failed++
				if sum.firstFailure == "" {
					sum.firstFailure = err.Error()
				}
				mu.Unlock()
			}
		}
	}()
	var tick *time.Ticker
	if rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
	}
	var readErr error
	for ctx.Err() == nil {
		data, err := events.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
		line := events.Line()
		model := p.model
		if model == "" {
			model = modelOf(data)
			if model == "" {
				mu.Lock()
				sum.refused = append(sum.refused, lineNote{line: line, reason: `no model: give --model M, or a "model" field`})
				mu.Unlock()
				continue
			}
		}
		if tick != nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
		msg := nats.NewMsg(p.subjects.For(p.kind, model))
		msg.Data = data
		for k, v := range p.header {
			msg.Header[k] = v
		}
		if inbox != "" {
			msg.Header.Set(event.HeaderVerdictTo, inbox+"."+strconv.Itoa(line))
		}
		f, err := p.js.PublishMsgAsync(msg)
		mu.Lock()
		sum.sent++
		if err != nil {
			sum.failed++
			if sum.firstFailure == "" {
				sum.firstFailure = err.Error()
			}
		}
		mu.Unlock()
		if err == nil {
			futures <- f
			lines <- line
		}
	}
	close(futures)
	wg.Wait()
	if readErr == nil {
		readErr = ctx.Err()
	}
	if inbox != "" {
		deadline := time.NewTimer(p.wait)
		defer deadline.Stop()
		for {
			mu.Lock()
			missing := 0
			for line := range stored {
				if _, ok := verdicts[line]; !ok {
					missing++
				}
			}
			mu.Unlock()
			if missing == 0 {
				break
			}
			select {
			case <-gotAll:
				continue
			case <-deadline.C:
			case <-ctx.Done():
			}
			break
		}
		mu.Lock()
		defer mu.Unlock()
		for line := range stored {
			v, ok := verdicts[line]
			switch {
			case !ok:
				sum.pending++
			case v.Duplicate:
				sum.duplicates++
			case v.Accepted:
				sum.accepted++
			default:
				sum.rejected = append(sum.rejected, lineNote{line: line, reason: reasonsText(v.Reasons)})
			}
		}
		slices.SortFunc(sum.rejected, func(a, b lineNote) int { return a.line - b.line })
	}
	return sum, readErr
}

// reasonsText joins a verdict's reasons as "field: message (code); ...".
func reasonsText(reasons []*event.Reason) string {
	parts := make([]string, 0, len(reasons))
	for _, r := range reasons {
		s := r.GetMessage() + " (" + r.GetCode() + ")"
		if r.GetField() != "" {
			s = r.GetField() + ": " + s
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "rejected"
	}
	return strings.Join(parts, "; ")
}

// modelOf reads the model field of a JSON event. An event without a
// valid one is refused by the caller ("" here), naming its line: there is
// no subject to send it to.
func modelOf(data []byte) string {
	var head struct {
		Model string `json:"model"`
	}
	if json.Unmarshal(data, &head) == nil && event.IsValidModel(head.Model) {
		return head.Model
	}
	return ""
}
