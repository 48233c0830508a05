package httpingest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/event"
)

// BentoML's reserved columns (bentoml/_internal/monitoring/otlp.py).
const (
	colTimestamp = "timestamp"
	colRequestID = "request_id"
	colMeta      = "bento_meta"
)

// Roles and types of BentoML's monitor schema.
const (
	roleFeature     = "feature"
	rolePrediction  = "prediction"
	roleTarget      = "target"
	typeCategorical = "categorical"
)

// serveLogs takes an OTLP/HTTP logs export (protobuf or JSON, gzip
// allowed), turns each BentoML record into a prediction event and, for a
// `target` column, a feedback event, checks them with the services' own
// decoders, stores them on the input subjects, and answers with an
// ExportResponse in the request's encoding: records with a rejected event
// are counted in partial_success with the first reasons.
func (h *Handler) serveLogs(w http.ResponseWriter, r *http.Request) {
	const endpoint = "otlp"
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	asJSON := ctype == "application/json"
	if !asJSON && ctype != "application/x-protobuf" && ctype != "application/protobuf" {
		h.fail(w, endpoint, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: OTLP/HTTP is application/x-protobuf or application/json", ctype))
		return
	}
	body, status, err := readBody(w, r)
	if err != nil {
		h.fail(w, endpoint, status, err.Error())
		return
	}
	req := plogotlp.NewExportRequest()
	if asJSON {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		h.fail(w, endpoint, http.StatusBadRequest, "not an OTLP logs export request: "+err.Error())
		return
	}
	if n := req.Logs().LogRecordCount(); n > MaxLines {
		h.fail(w, endpoint, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d log records, over the limit of %d", n, MaxLines))
		return
	}
	received := time.Now()
	var (
		out              []outgoing
		accepted, reject int
		messages         []string
	)
	index := 0
	rls := req.Logs().ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		service := ""
		if v, ok := rl.Resource().Attributes().Get("service.name"); ok {
			service = v.AsString()
		}
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				index++
				msgs, problems := h.mapRecord(r.Context(), lrs.At(k), service, index, received)
				out = append(out, msgs...)
				if len(problems) == 0 {
					accepted++
					continue
				}
				reject++
				if len(messages) < 5 {
					messages = append(messages, fmt.Sprintf("record %d: %s", index, strings.Join(problems, "; ")))
				}
			}
		}
	}
	if _, err := h.store(r.Context(), out); err != nil {
		h.opts.Log.Warn("otlp ingest: not stored", zap.Error(err))
		// 503 makes OpenTelemetry exporters retry.
		h.fail(w, endpoint, http.StatusServiceUnavailable, "not stored, send again: "+err.Error())
		return
	}
	h.metrics.events.WithLabelValues(endpoint, "accepted").Add(float64(accepted))
	h.metrics.events.WithLabelValues(endpoint, "rejected").Add(float64(reject))
	resp := plogotlp.NewExportResponse()
	if reject > 0 {
		resp.PartialSuccess().SetRejectedLogRecords(int64(reject))
		msg := strings.Join(messages, "\n")
		if reject > len(messages) {
			msg += fmt.Sprintf("\n(and %d more records)", reject-len(messages))
		}
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	var b []byte
	if asJSON {
		b, err = resp.MarshalJSON()
		w.Header().Set("Content-Type", "application/json")
	} else {
		b, err = resp.MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	if err != nil {
		h.fail(w, endpoint, http.StatusInternalServerError, err.Error())
		return
	}
	h.metrics.requests.WithLabelValues(endpoint, "200").Inc()
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// mapRecord turns one BentoML log record into the messages to store and
// the problems that make it count as rejected. An event that fails
// validation is still stored, on its input subject, so that it lands on
// lookout.rejected.<model> as the same event sent over NATS would; a
// record that cannot be read as BentoML's at all is stored as a rejection
// directly.
func (h *Handler) mapRecord(ctx context.Context, lr plog.LogRecord, service string, index int, received time.Time) ([]outgoing, []string) {
	body, original, err := recordBody(lr.Body())
	monitor := ""
	if _, after, ok := strings.Cut(service, ":"); ok {
		// BentoML names the resource "<bento_name>:<monitor_name>".
		monitor = after
	}
	fail := func(code, msg string) ([]outgoing, []string) {
		model := h.modelOf(monitor)
		reason := []*event.Reason{{Field: "body", Code: code, Message: msg}}
		return []outgoing{{msg: h.rejection(inputPrediction, model, "otlp /v1/logs", original, reason, received)}}, []string{msg}
	}
	if err != nil {
		return fail(event.CodeNotJSON, err.Error())
	}
	var sc bentoSchema
	if meta, ok := body.get(colMeta); ok {
		m, ok := meta.(object)
		if !ok {
			return fail(event.CodeWrongType, "bento_meta must be a dict")
		}
		if name, ok := stringOf(m, "monitor_name"); ok {
			monitor = name
		}
		sc = schemaOf(m)
		if monitor != "" && len(sc.Columns) > 0 {
			if err := h.schemas.put(ctx, monitor, sc); err != nil {
				h.opts.Log.Warn("otlp ingest: schema not kept", zap.String("monitor", monitor), zap.Error(err))
			}
		}
	}
	if monitor == "" {
		return fail(event.CodeMissing, "no monitor name: neither bento_meta.monitor_name nor a resource service.name \"<bento>:<monitor>\"")
	}
	if len(sc.Columns) == 0 {
		known, ok, err := h.schemas.get(ctx, monitor)
		switch {
		case err != nil:
			h.opts.Log.Warn("otlp ingest: schema not read", zap.String("monitor", monitor), zap.Error(err))
			return fail(event.CodeMissing, fmt.Sprintf("the schema of monitor %q cannot be read now: %v", monitor, err))
		case !ok:
			return fail(event.CodeMissing, fmt.Sprintf("no bento_meta, and no schema seen before for monitor %q", monitor))
		}
		if sc.Version == "" {
			sc.Version = known.Version
		}
		sc.Columns = known.Columns
	}
	model := h.modelOf(monitor)
	if !event.IsValidModel(model) {
		return fail(event.CodeInvalid, fmt.Sprintf("monitor %q is not a model name (letters, digits, '-' and '_'): map it to one under otlp.models", monitor))
	}

	ts := recordTime(body, lr, received)
	requestID := ""
	if v, ok := body.get(colRequestID); ok {
		switch v := v.(type) {
		case string:
			requestID = v
		case float64:
			requestID = strconv.FormatFloat(v, 'f', -1, 64)
		}
		if requestID == "None" {
			requestID = ""
		}
	}
	pred := map[string]any{"model": model, "version": sc.Version, "ts": ts.Format(time.RFC3339Nano)}
	if requestID != "" {
		pred["request_id"] = requestID
	}
	// A stable id makes a retried export (the exporter retries on 503)
	// de-duplicated: the record's place in the request, its times and body.
	sum := sha256.New()
	_, _ = sum.Write(binary.BigEndian.AppendUint64(nil, uint64(index)))
	_, _ = sum.Write(binary.BigEndian.AppendUint64(nil, uint64(lr.Timestamp())))
	_, _ = sum.Write(binary.BigEndian.AppendUint64(nil, uint64(lr.ObservedTimestamp())))
	_, _ = sum.Write(original)
	id := "otlp-" + hex.EncodeToString(sum.Sum(nil)[:16])
	pred["id"] = id

	features := map[string]any{}
	embeddings := map[string]any{}
	scores := map[string]any{}
	tags := map[string]any{}
	var (
		prediction, label        any
		hasPrediction, hasTarget bool
	)
	for _, c := range sc.Columns {
		v, ok := body.get(c.Name)
		if !ok {
			continue
		}
		switch c.Role {
		case roleFeature:
			if seq, ok := v.([]any); ok {
				embeddings[c.Name] = seq
			} else {
				features[c.Name] = typed(v, c.Type)
			}
		case rolePrediction:
			if !hasPrediction {
				prediction, hasPrediction = typed(v, c.Type), true
			} else if f, ok := v.(float64); ok {
				scores[c.Name] = f
			} else if s, ok := scalarText(v); ok {
				tags[c.Name] = s
			}
		case roleTarget:
			if !hasTarget {
				label, hasTarget = typed(v, c.Type), true
			}
		default:
			// A custom role: kept as a tag when it is a scalar.
			if s, ok := scalarText(v); ok {
				tags[c.Name] = s
			}
		}
	}
	if !hasPrediction && !hasTarget {
		return fail(event.CodeMissing, fmt.Sprintf("no prediction nor target column in the record (monitor %q)", monitor))
	}
	var (
		msgs     []outgoing
		problems []string
	)
	if hasPrediction {
		pred["prediction"] = prediction
		for k, m := range map[string]map[string]any{"features": features, "embeddings": embeddings, "scores": scores, "tags": tags} {
			if len(m) > 0 {
				pred[k] = m
			}
		}
		msg, problem := h.event(inputPrediction, model, pred, id, received)
		msgs = append(msgs, msg)
		if problem != "" {
			problems = append(problems, "prediction: "+problem)
		}
	}
	if hasTarget && label != nil {
		fb := map[string]any{"model": model, "label": label, "ts": ts.Format(time.RFC3339Nano)}
		if requestID != "" {
			fb["request_id"] = requestID
		}
		msg, problem := h.event(inputFeedback, model, fb, "", received)
		msgs = append(msgs, msg)
		if problem != "" {
			problems = append(problems, "target: "+problem)
		}
	}
	return msgs, problems
}

// event encodes an event built from a record, checks it with the
// service's decoder, and returns its message and, when it is rejected,
// its reasons as text.
func (h *Handler) event(in input, model string, ev map[string]any, id string, received time.Time) (outgoing, string) {
	var reasons []*event.Reason
	data, err := json.Marshal(sanitize(ev, "", &reasons))
	if err != nil {
		reasons = append(reasons, &event.Reason{Code: event.CodeInvalid, Message: err.Error()})
	}
	direct := len(reasons) > 0
	if len(reasons) == 0 {
		opts := event.DecodeOptions{SubjectModel: model, ContentType: event.ContentTypeJSON, Received: received}
		if in == inputPrediction {
			opts.MaxBytes = h.opts.MaxMessageBytes
			_, reasons = event.DecodePrediction(data, opts)
		} else {
			_, reasons = event.DecodeFeedback(data, opts)
		}
	}
	valid := len(reasons) == 0
	var o outgoing
	if direct {
		// JSON cannot carry a NaN to ingest, which would then take the
		// null in its place: the rejection is stored here.
		o = outgoing{msg: h.rejection(in, model, h.opts.Subjects.For(inputKind(in), model), data, reasons, received)}
	} else {
		o = outgoing{msg: h.message(in, model, data, valid, id, reasons, received), valid: valid}
	}
	if valid {
		return o, ""
	}
	texts := make([]string, 0, len(reasons))
	for _, r := range reasons {
		if r.GetField() != "" {
			texts = append(texts, r.GetField()+": "+r.GetMessage())
		} else {
			texts = append(texts, r.GetMessage())
		}
	}
	return o, strings.Join(texts, ", ")
}

// sanitize replaces numbers JSON cannot hold (NaN, ±Inf) by null and
// records a not_finite reason for each, as ingest would for a NaN sent to
// it: the event is rejected with that reason and the rest of its body.
func sanitize(v any, path string, reasons *[]*event.Reason) any {
	switch v := v.(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			*reasons = append(*reasons, &event.Reason{Field: path, Code: event.CodeNotFinite, Message: fmt.Sprintf("must be a finite number, got %v", v)})
			return nil
		}
		return v
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = sanitize(x, joinPath(path, k), reasons)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = sanitize(x, joinPath(path, strconv.Itoa(i)), reasons)
		}
		return out
	case object:
		out := make(map[string]any, len(v))
		for _, m := range v {
			out[m.key] = sanitize(m.val, joinPath(path, m.key), reasons)
		}
		return out
	}
	return v
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// modelOf returns the model of a monitor: its mapping, or its own name.
func (h *Handler) modelOf(monitor string) string {
	if m, ok := h.opts.Config.Models[monitor]; ok {
		return m
	}
	return monitor
}

// typed applies a column's BentoML type: a categorical number is a
// category, so it is sent as text ("3", not 3.0).
func typed(v any, typ string) any {
	if f, ok := v.(float64); ok && typ == typeCategorical {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return v
}

// scalarText returns a scalar as tag text.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

func stringOf(o object, key string) (string, bool) {
	v, ok := o.get(key)
	s, isStr := v.(string)
	return s, ok && isStr
}

// schemaOf reads bento_meta: its version and its schema, in order.
func schemaOf(meta object) bentoSchema {
	var sc bentoSchema
	sc.Bento, _ = stringOf(meta, "bento_name")
	sc.Version, _ = stringOf(meta, "bento_version")
	if s, ok := meta.get("schema"); ok {
		if cols, ok := s.(object); ok {
			for _, m := range cols {
				spec, ok := m.val.(object)
				if !ok {
					continue
				}
				c := column{Name: m.key}
				if name, ok := stringOf(spec, "name"); ok {
					c.Name = name
				}
				c.Role, _ = stringOf(spec, "role")
				c.Type, _ = stringOf(spec, "type")
				sc.Columns = append(sc.Columns, c)
			}
		}
	}
	return sc
}

// recordTime is BentoML's `timestamp` column (epoch seconds), else the
// record's own time, else when it was received.
func recordTime(body object, lr plog.LogRecord, received time.Time) time.Time {
	if v, ok := body.get(colTimestamp); ok {
		if f, ok := v.(float64); ok && !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f) < 9e9 {
			sec, frac := math.Modf(f)
			return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1000).UTC()
		}
	}
	if t := lr.Timestamp(); t != 0 {
		return t.AsTime().UTC()
	}
	if t := lr.ObservedTimestamp(); t != 0 {
		return t.AsTime().UTC()
	}
	return received.UTC()
}

// recordBody returns a record's body as an object, and its bytes for a
// rejection: a kvlist as current OpenTelemetry SDKs send a logged dict,
// or a string holding JSON or the Python str() of the dict, as older ones
// do.
func recordBody(v pcommon.Value) (object, []byte, error) {
	switch v.Type() {
	case pcommon.ValueTypeMap:
		raw, _ := json.Marshal(v.AsRaw())
		return fromMap(v.Map()), raw, nil
	case pcommon.ValueTypeStr:
		s := v.Str()
		if o, err := parseJSONObject(s); err == nil {
			return o, []byte(s), nil
		}
		o, err := parsePyDict(s)
		if err != nil {
			return nil, []byte(s), fmt.Errorf("the body is neither a map nor the str() of a dict: %w", err)
		}
		return o, []byte(s), nil
	}
	return nil, []byte(v.AsString()), fmt.Errorf("the body is a %s, not a map", v.Type())
}

func fromMap(m pcommon.Map) object {
	out := make(object, 0, m.Len())
	m.Range(func(k string, v pcommon.Value) bool {
		out = append(out, member{key: k, val: fromValue(v)})
		return true
	})
	return out
}

func fromValue(v pcommon.Value) any {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeInt:
		return float64(v.Int())
	case pcommon.ValueTypeDouble:
		return v.Double()
	case pcommon.ValueTypeBool:
		return v.Bool()
	case pcommon.ValueTypeMap:
		return fromMap(v.Map())
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		out := make([]any, s.Len())
		for i := range out {
			out[i] = fromValue(s.At(i))
		}
		return out
	case pcommon.ValueTypeBytes:
		return base64.StdEncoding.EncodeToString(v.Bytes().AsRaw())
	}
	return nil
}

// parseJSONObject reads a JSON object keeping its members' order.
func parseJSONObject(s string) (object, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	v, err := jsonValue(dec, 0)
	if err != nil {
		return nil, err
	}
	o, ok := v.(object)
	if !ok || dec.More() {
		return nil, fmt.Errorf("not a JSON object")
	}
	return o, nil
}

func jsonValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxLiteralDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxLiteralDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := object{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				o = append(o, member{key: k.(string), val: v})
			}
			_, err := dec.Token()
			return o, err
		case '[':
			out := []any{}
			for dec.More() {
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			_, err := dec.Token()
			return out, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		return t.Float64()
	default:
		return t, nil // string, bool, nil
	}
}
