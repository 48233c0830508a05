package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
)

func init() {
	register(command{
		name:  "tail",
		usage: "[--since 1h] SUBJECT   print events from a subject (wildcards allowed), one JSON object a line",
		run:   tailCommand,
	})
}

func tailCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		client clientFlags
		count  int
		since  time.Duration
	)
	client.register(fs)
	fs.IntVar(&count, "n", 0, "stop after `N` events (0: until interrupted)")
	fs.DurationVar(&since, "since", 0, "first print what the stream kept from this long ago (e.g. 1h), then go on live")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: want one SUBJECT, e.g. lookout.rejected.churn", errUsage)
	}
	nc, js, err := client.connect("tail")
	if err != nil {
		return err
	}
	defer nc.Close()
	msgs := make(chan *nats.Msg, 1024)
	// readErr carries why the stream reader stopped: a stream deleted
	// under it ends tail with an error instead of a silent hang.
	var readErr <-chan error
	if since > 0 {
		stop, errs, err := tailStream(ctx, js, rest[0], time.Now().Add(-since), msgs, newLogger(stderr, zapcore.WarnLevel))
		if err != nil {
			return err
		}
		defer stop()
		readErr = errs
	} else {
		sub, err := nc.ChanSubscribe(rest[0], msgs)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", rest[0], err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		if err := nc.Flush(); err != nil {
			return err
		}
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	for seen := 0; count == 0 || seen < count; seen++ {
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			if err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			return nil
		case msg := <-msgs:
			out.Write(tailLine(msg))
			out.WriteByte('\n')
			if len(msgs) == 0 {
				out.Flush()
			}
		}
	}
	return nil
}

// tailLine renders one message as a single JSON line: JSON as it is
// (compacted), protobuf predictions in their JSON form, anything else
// wrapped with its subject.
func tailLine(msg *nats.Msg) []byte {
	if event.IsProtobuf(msg.Header.Get("Content-Type")) {
		var p event.Prediction
		if proto.Unmarshal(msg.Data, &p) == nil {
			return event.AppendJSON(nil, &p)
		}
	}
	var compact json.RawMessage
	if json.Unmarshal(msg.Data, &compact) == nil {
		if b, err := json.Marshal(compact); err == nil {
			return b
		}
	}
	b, _ := json.Marshal(struct {
		Subject string `json:"subject"`
		Data    string `json:"data"`
	}{msg.Subject, string(msg.Data)})
	return b
}

// tailStream reads subject from the stream that keeps it, from start on and
// then live, with an ordered reader (natsbus.Ordered), and sends each
// message to msgs. The reader's error, if it stops before stop is called,
// arrives on errs. stop ends the reader and waits for it.
func tailStream(ctx context.Context, js jetstream.JetStream, subject string, start time.Time, msgs chan<- *nats.Msg, log *zap.Logger) (stop func(), errs <-chan error, err error) {
	name, err := js.StreamNameBySubject(ctx, subject)
	if err != nil {
		return nil, nil, fmt.Errorf("--since: no stream keeps %s: %w", subject, err)
	}
	reader := &natsbus.Ordered{JS: js, Stream: name, Filter: []string{subject}, StartTime: start, Name: "tail", Log: log}
	readCtx, cancel := context.WithCancel(ctx)
	out := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		out <- reader.Consume(readCtx, func(m jetstream.Msg) {
			select {
			case msgs <- &nats.Msg{Subject: m.Subject(), Data: m.Data(), Header: m.Headers()}:
			case <-readCtx.Done():
			}
		})
	}()
	return func() { cancel(); <-finished }, out, nil
}
