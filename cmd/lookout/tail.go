package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
		stop, errs, err := tailStream(ctx, nc, js, rest[0], time.Now().Add(-since), msgs)
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

// tailStream reads subject from the stream that keeps it, from start on,
// and then live, sending each message to msgs. History comes from direct
// gets (natsbus.ReadHistory) and the live part from a subscription made
// before the history is read, so that a reader whose role allows no
// consumers can tail too; a message that arrives live while the history
// is read is printed once. The stream's existence is checked every 2 s: a
// stream deleted under tail ends it with an error on errs instead of a
// silent hang. stop ends tail's readers and waits for them.
func tailStream(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, subject string, start time.Time, msgs chan<- *nats.Msg) (stop func(), errs <-chan error, err error) {
	name, err := js.StreamNameBySubject(ctx, subject)
	if err != nil {
		return nil, nil, fmt.Errorf("--since: no stream keeps %s: %w", subject, err)
	}
	live := make(chan *nats.Msg, 4096)
	sub, err := nc.ChanSubscribe(subject, live)
	if err != nil {
		return nil, nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, nil, err
	}
	subscribed := time.Now()
	readCtx, cancel := context.WithCancel(ctx)
	out := make(chan error, 1)
	finished := make(chan struct{})
	send := func(m *nats.Msg) bool {
		select {
		case msgs <- m:
			return true
		case <-readCtx.Done():
			return false
		}
	}
	go func() {
		defer close(finished)
		defer func() { _ = sub.Unsubscribe() }()
		// What the history held from the moment the subscription began
		// also arrived live: count it, to skip it there once.
		seen := map[string]int{}
		err := natsbus.ReadHistory(readCtx, nc, name, subject, start, func(m *nats.Msg) error {
			if stored, err := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp")); err == nil && !stored.Before(subscribed.Add(-time.Second)) {
				seen[m.Subject+"\x00"+string(m.Data)]++
			}
			if !send(m) {
				return readCtx.Err()
			}
			return nil
		})
		if err != nil {
			if readCtx.Err() == nil {
				out <- err
			}
			return
		}
		check := time.NewTicker(2 * time.Second)
		defer check.Stop()
		for {
			select {
			case <-readCtx.Done():
				return
			case m := <-live:
				key := m.Subject + "\x00" + string(m.Data)
				if seen[key] > 0 {
					seen[key]--
					continue
				}
				if !send(m) {
					return
				}
			case <-check.C:
				if _, err := js.Stream(readCtx, name); errors.Is(err, jetstream.ErrStreamNotFound) {
					out <- fmt.Errorf("stream %s was deleted", name)
					return
				}
			}
		}
	}()
	return func() { cancel(); <-finished }, out, nil
}
