package httpingest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/event"
)

// linesAnswer is the answer of /v1/predictions and /v1/feedback
// (CONTRACT.md): accepted counts valid events stored (duplicates of an
// event already stored included, and counted again in duplicates).
type linesAnswer struct {
	Accepted   int            `json:"accepted"`
	Duplicates int            `json:"duplicates,omitempty"`
	Rejected   []rejectedLine `json:"rejected"`
}

type rejectedLine struct {
	Line    int          `json:"line"`
	Reasons []reasonJSON `json:"reasons"`
}

type errorAnswer struct {
	Error string `json:"error"`
}

func (h *Handler) servePredictions(w http.ResponseWriter, r *http.Request) {
	h.serveLines(w, r, inputPrediction, "predictions")
}

func (h *Handler) serveFeedback(w http.ResponseWriter, r *http.Request) {
	h.serveLines(w, r, inputFeedback, "feedback")
}

// serveLines takes one JSON object or JSON lines for the model in the
// path, checks each with the service's own decoder, stores them all on the
// input subject, and answers with the counts and each rejected line's
// reasons.
func (h *Handler) serveLines(w http.ResponseWriter, r *http.Request, in input, endpoint string) {
	model := r.PathValue("model")
	if !event.IsValidModel(model) {
		h.fail(w, endpoint, http.StatusBadRequest, fmt.Sprintf("model %q in the path is not a model name: letters, digits, '-' and '_'", model))
		return
	}
	body, status, err := readBody(w, r)
	if err != nil {
		h.fail(w, endpoint, status, err.Error())
		return
	}
	lines, err := splitLines(body)
	if err != nil {
		h.fail(w, endpoint, http.StatusBadRequest, err.Error())
		return
	}
	if len(lines) > MaxLines {
		h.fail(w, endpoint, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d lines, over the limit of %d", len(lines), MaxLines))
		return
	}
	received := time.Now()
	answer := linesAnswer{Rejected: []rejectedLine{}}
	out := make([]outgoing, 0, len(lines))
	for _, l := range lines {
		var (
			reasons []*event.Reason
			id      string
		)
		opts := event.DecodeOptions{SubjectModel: model, ContentType: event.ContentTypeJSON, Received: received}
		if in == inputPrediction {
			opts.MaxBytes = h.opts.MaxMessageBytes
			var p *event.Prediction
			if p, reasons = event.DecodePrediction(l.data, opts); len(reasons) == 0 {
				id = p.GetId()
			}
		} else {
			_, reasons = event.DecodeFeedback(l.data, opts)
		}
		valid := len(reasons) == 0
		if valid {
			answer.Accepted++
		} else {
			answer.Rejected = append(answer.Rejected, rejectedLine{Line: l.number, Reasons: reasonsJSON(reasons)})
		}
		out = append(out, outgoing{msg: h.message(in, model, l.data, valid, id, reasons, received), valid: valid})
	}
	dups, err := h.store(r.Context(), out)
	if err != nil {
		h.opts.Log.Warn("http ingest: not stored", zap.String("endpoint", endpoint), zap.String("model", model), zap.Error(err))
		h.fail(w, endpoint, http.StatusServiceUnavailable, "not stored, send again: "+err.Error())
		return
	}
	answer.Duplicates = dups
	h.metrics.events.WithLabelValues(endpoint, "accepted").Add(float64(answer.Accepted))
	h.metrics.events.WithLabelValues(endpoint, "rejected").Add(float64(len(answer.Rejected)))
	h.writeJSON(w, endpoint, http.StatusOK, answer)
}

// line is one event of a request and its 1-based line number.
type line struct {
	number int
	data   []byte
}

// splitLines reads a body as one JSON object (which may span lines) or as
// JSON lines; blank lines are skipped but counted, so numbers match the
// client's file. A body that is neither an object nor holds a single line
// that parses as JSON is an error: nothing of it is published.
func splitLines(body []byte) ([]line, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, errors.New("empty body: send one JSON object or JSON lines")
	}
	if trimmed[0] == '{' && json.Valid(trimmed) {
		return []line{{number: 1 + bytes.Count(body[:bytes.IndexByte(body, '{')], []byte("\n")), data: trimmed}}, nil
	}
	var (
		lines []line
		anyOK bool
	)
	for i, raw := range bytes.Split(body, []byte("\n")) {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		if !anyOK && json.Valid(raw) {
			anyOK = true
		}
		lines = append(lines, line{number: i + 1, data: raw})
	}
	if !anyOK {
		return nil, errors.New("not JSON: send one JSON object or JSON lines")
	}
	return lines, nil
}

// readBody reads the request body, undoing gzip, up to MaxBodyBytes. The
// status says what to answer when it fails.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	var src io.Reader = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, tooLargeOr(err, http.StatusBadRequest), fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		src = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("content encoding %q: only gzip is understood", enc)
	}
	// One byte over the limit tells a full body from a larger one, also
	// once gzip is undone.
	body, err := io.ReadAll(io.LimitReader(src, MaxBodyBytes+1))
	if err != nil {
		return nil, tooLargeOr(err, http.StatusBadRequest), fmt.Errorf("read body: %w", err)
	}
	if len(body) > MaxBodyBytes {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body over the limit of %d bytes", MaxBodyBytes)
	}
	return body, 0, nil
}

func tooLargeOr(err error, status int) int {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return status
}

func (h *Handler) fail(w http.ResponseWriter, endpoint string, status int, msg string) {
	h.writeJSON(w, endpoint, status, errorAnswer{Error: msg})
}

func (h *Handler) writeJSON(w http.ResponseWriter, endpoint string, status int, v any) {
	h.metrics.requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
