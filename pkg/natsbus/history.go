package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// historyBatch is how many messages one direct get asks for: enough to
// keep the round trips few, small enough (with historyBytes) that a reply
// never floods a slow reader.
const (
	historyBatch = 256
	historyBytes = 4 << 20
)

// ReadHistory calls handle, in stream order, with each message of stream
// whose subject matches filter (wildcards allowed) and that was stored at
// or after since, up to the stream's last message when it is reached. The
// message's Subject is the one it was published on; its headers include
// Nats-Sequence and Nats-Time-Stamp.
//
// It uses batched direct gets, the read-only part of the JetStream API:
// no consumer is created, so a user whose role allows only reading (see
// Permissions) can call it. The stream must allow direct gets, as
// Lookout's streams do.
func ReadHistory(ctx context.Context, nc *nats.Conn, stream, filter string, since time.Time, handle func(*nats.Msg) error) error {
	inbox := nc.NewInbox()
	replies := make(chan *nats.Msg, historyBatch)
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return fmt.Errorf("history %s: %w", stream, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	api := "$JS.API.DIRECT.GET." + stream
	request := struct {
		Seq       uint64     `json:"seq,omitempty"`
		NextFor   string     `json:"next_by_subj"`
		Batch     int        `json:"batch"`
		MaxBytes  int        `json:"max_bytes"`
		StartTime *time.Time `json:"start_time,omitempty"`
	}{NextFor: filter, Batch: historyBatch, MaxBytes: historyBytes}
	if since.IsZero() {
		request.Seq = 1
	} else {
		start := since.UTC()
		request.StartTime = &start
	}
	for {
		body, _ := json.Marshal(request)
		if err := nc.PublishRequest(api, inbox, body); err != nil {
			return fmt.Errorf("history %s: %w", stream, err)
		}
		next, more, err := readBatch(ctx, replies, handle)
		if err != nil {
			return fmt.Errorf("history %s: %w", stream, err)
		}
		if !more {
			return nil
		}
		request.Seq, request.StartTime = next, nil
	}
}

// readBatch reads one direct-get batch up to its end-of-batch marker. It
// returns the sequence to ask for next and whether more messages wait.
func readBatch(ctx context.Context, replies <-chan *nats.Msg, handle func(*nats.Msg) error) (next uint64, more bool, err error) {
	// A silent server (a stream without direct gets answers nothing when
	// the request is not understood) must not hang the reader.
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		var m *nats.Msg
		select {
		case <-ctx.Done():
			return 0, false, ctx.Err()
		case <-timeout.C:
			return 0, false, errors.New("no answer to a direct get in 10s (does the stream allow direct gets?)")
		case m = <-replies:
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "204": // end of batch
			pending, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			return next, pending > 0 && next > 0, nil
		case "404": // nothing (more) matches
			return next, false, nil
		default:
			return 0, false, fmt.Errorf("direct get: %s %s", status, m.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("direct get: a message without its sequence")
		}
		next = seq + 1
		msg := &nats.Msg{Subject: m.Header.Get("Nats-Subject"), Data: m.Data, Header: m.Header}
		if err := handle(msg); err != nil {
			return 0, false, err
		}
		if !timeout.Stop() {
			<-timeout.C
		}
		timeout.Reset(10 * time.Second)
	}
}
