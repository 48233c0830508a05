package event

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	lookoutv1 "github.com/lookout-ml/lookout/proto/lookout/v1"
)

// DecodeOptions says where a message came from and what limits apply.
type DecodeOptions struct {
	// SubjectModel is the model named by the subject; a body naming another
	// model is rejected, a body naming none takes this one.
	SubjectModel string
	// ContentType selects the decoder: JSON unless it is ContentTypeProtobuf.
	ContentType string
	// MaxBytes is the size limit; 0 means DefaultMaxBytes.
	MaxBytes int
	// Received fills in a missing timestamp.
	Received time.Time
}

// DecodePrediction decodes and validates one prediction message. It returns
// the prediction, normalised (role, ts and model filled in, but not id), or
// every reason the message is rejected. It never panics on any input.
func DecodePrediction(data []byte, opts DecodeOptions) (*Prediction, []*Reason) {
	return decodeMessage(data, opts, "Prediction", decodePredictionJSON, validatePrediction)
}

// decodeMessage is what decoding every event shares: the size limit, the
// decoder the content type names (JSON unless it says protobuf), then the
// rules that hold whatever the encoding. typed lists the JSON fields that
// already have a type error, so that they are not also reported missing.
func decodeMessage[T any, PT interface {
	*T
	proto.Message
}](
	data []byte, opts DecodeOptions, name string,
	fromJSON func([]byte) (PT, []*Reason, map[string]bool, bool),
	validate func(PT, DecodeOptions, map[string]bool) []*Reason,
) (PT, []*Reason) {
	maxBytes := opts.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if len(data) > maxBytes {
		return nil, []*Reason{{Code: CodeTooLarge, Message: fmt.Sprintf("message is %d bytes, over the limit of %d", len(data), maxBytes)}}
	}
	var (
		m       PT
		reasons []*Reason
		typed   map[string]bool
	)
	if IsProtobuf(opts.ContentType) {
		m = PT(new(T))
		if err := proto.Unmarshal(data, m); err != nil {
			return nil, []*Reason{{Code: CodeNotProtobuf, Message: "not a protobuf " + name + ": " + err.Error()}}
		}
	} else {
		var ok bool
		m, reasons, typed, ok = fromJSON(data)
		if !ok {
			return nil, reasons
		}
	}
	reasons = append(reasons, validate(m, opts, typed)...)
	if len(reasons) > 0 {
		return nil, reasons
	}
	return m, nil
}

// IsProtobuf reports whether a Content-Type header names binary protobuf.
func IsProtobuf(contentType string) bool {
	ct, _, _ := strings.Cut(contentType, ";")
	ct = strings.TrimSpace(strings.ToLower(ct))
	return ct == ContentTypeProtobuf || ct == "application/x-protobuf"
}

// field names a JSON field, built only when a reason needs it: most
// messages have nothing to report, and ingest should not pay for the names.
type field struct{ parent, name string }

func (f field) String() string {
	if f.parent == "" {
		return f.name
	}
	return f.parent + "." + f.name
}

func top(name string) field { return field{name: name} }

// fieldDecoder collects the reasons found while decoding one message's fields.
type fieldDecoder struct {
	reasons []*Reason
	typed   map[string]bool
}

func (d *fieldDecoder) fail(f field, code, format string, args ...any) {
	name := f.String()
	d.reasons = append(d.reasons, &Reason{Field: name, Code: code, Message: name + ": " + fmt.Sprintf(format, args...)})
	if d.typed == nil {
		d.typed = make(map[string]bool)
	}
	d.typed[name] = true
}

func decodePredictionJSON(data []byte) (*Prediction, []*Reason, map[string]bool, bool) {
	if !utf8.Valid(data) {
		// Checked up front: the scanner and unquote rely on it.
		return nil, []*Reason{{Code: CodeNotJSON, Message: "not JSON: invalid UTF-8"}}, nil, false
	}
	var d fieldDecoder
	p := new(Prediction)
	err := eachMember(data, func(key []byte, raw []byte) {
		switch string(key[1 : len(key)-1]) { // no allocation: compared in place
		case "id":
			p.Id = d.identifier(top("id"), raw)
		case "request_id":
			p.RequestId = d.identifier(top("request_id"), raw)
		case "model":
			p.Model = d.str(top("model"), raw)
		case "version":
			p.Version = d.identifier(top("version"), raw)
		case "role":
			p.Role = d.str(top("role"), raw)
		case "ts":
			p.TsUnixNano = d.timestamp(raw)
		case "features":
			p.Features = d.features(raw)
		case "prediction":
			p.Prediction = d.prediction(raw)
		case "confidence":
			if f, ok := d.number(top("confidence"), raw); ok {
				p.Confidence = &f
			}
		case "latency_ms":
			if f, ok := d.number(top("latency_ms"), raw); ok {
				p.LatencyMs = &f
			}
		case "scores":
			p.Scores = d.scores(raw)
		case "tags":
			p.Tags = d.tags(raw)
		case "embeddings":
			p.Embeddings = d.embeddings(raw)
		}
	})
	if err != nil {
		return nil, []*Reason{{Code: CodeNotJSON, Message: "not JSON: " + err.Error()}}, nil, false
	}
	return p, d.reasons, d.typed, true
}

func isNull(raw []byte) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// str decodes an optional string field.
func (d *fieldDecoder) str(f field, raw []byte) string {
	if isNull(raw) {
		return ""
	}
	if raw[0] != '"' {
		d.fail(f, CodeWrongType, "must be a string, got %s", describe(raw))
		return ""
	}
	return unquote(raw)
}

// identifier decodes a string field that clients often send as an integer
// (ids, versions): an integer is taken as its decimal text.
func (d *fieldDecoder) identifier(f field, raw []byte) string {
	if !isNull(raw) && raw[0] != '"' {
		if _, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return string(raw)
		}
	}
	return d.str(f, raw)
}

// number decodes an optional finite number; ok is false when it is absent
// or wrong.
func (d *fieldDecoder) number(f field, raw []byte) (float64, bool) {
	if isNull(raw) {
		return 0, false
	}
	n, code, msg := parseNumber(raw)
	if code != "" {
		d.fail(f, code, "%s", msg)
		return 0, false
	}
	return n, true
}

func parseNumber(raw []byte) (float64, string, string) {
	switch string(raw) {
	case "NaN", "Infinity", "-Infinity":
		return 0, CodeNotFinite, "must be a finite number, got " + string(raw)
	}
	c := raw[0]
	if c != '-' && (c < '0' || c > '9') {
		return 0, CodeWrongType, "must be a number, got " + describe(raw)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, CodeNotFinite, "must be a finite number, got " + string(raw)
	}
	return f, "", ""
}

// Bounds of a timestamp: what int64 nanoseconds since 1970 can hold.
var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// timestamp decodes an optional RFC 3339 ts into Unix nanoseconds; nil is
// absent. A time outside what int64 nanoseconds can hold is out of range
// rather than wrapped around into another century.
func (d *fieldDecoder) timestamp(raw []byte) *int64 {
	ts := d.str(top("ts"), raw)
	if ts == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	switch {
	case err != nil:
		d.fail(top("ts"), CodeInvalid, "%q is not an RFC 3339 time", ts)
	case t.Before(minTime) || t.After(maxTime):
		d.fail(top("ts"), CodeOutOfRange, "%q is outside %s to %s", ts,
			minTime.Format(time.RFC3339), maxTime.Format(time.RFC3339))
	default:
		n := t.UnixNano()
		return &n
	}
	return nil
}

// value decodes a number, string, boolean or null.
func (d *fieldDecoder) value(f field, raw []byte) *Value {
	switch {
	case isNull(raw):
		return Null()
	case raw[0] == '"':
		return Text(unquote(raw))
	case string(raw) == "true":
		return Flag(true)
	case string(raw) == "false":
		return Flag(false)
	case raw[0] == '{' || raw[0] == '[':
		d.fail(f, CodeWrongType, "must be a number, string, boolean or null, got %s", describe(raw))
		return nil
	}
	n, code, msg := parseNumber(raw)
	if code != "" {
		d.fail(f, code, "%s", msg)
		return nil
	}
	return Number(n)
}

func (d *fieldDecoder) features(raw []byte) map[string]*Value {
	if isNull(raw) {
		return nil
	}
	if raw[0] != '{' {
		d.fail(top("features"), CodeWrongType, "must be an object of name to value, got %s", describe(raw))
		return nil
	}
	out := make(map[string]*Value, 8)
	_ = eachMember(raw, func(key []byte, v []byte) { // raw was scanned already
		name := unquote(key) // an empty name is reported by validatePrediction
		if val := d.value(field{"features", name}, v); val != nil {
			out[name] = val
		}
	})
	return out
}

func (d *fieldDecoder) prediction(raw []byte) *Value {
	if isNull(raw) {
		return nil // reported as missing by validatePrediction
	}
	switch {
	case raw[0] == '"':
		return d.value(top("prediction"), raw)
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'), raw[0] == 'N', raw[0] == 'I':
		return d.value(top("prediction"), raw)
	}
	d.fail(top("prediction"), CodeWrongType, "must be a number or a string, got %s", describe(raw))
	return nil
}

func (d *fieldDecoder) scores(raw []byte) map[string]float64 {
	if isNull(raw) {
		return nil
	}
	if raw[0] != '{' {
		d.fail(top("scores"), CodeWrongType, "must be an object of class to probability, got %s", describe(raw))
		return nil
	}
	out := make(map[string]float64, 4)
	_ = eachMember(raw, func(key []byte, v []byte) {
		class := unquote(key)
		if f, ok := d.number(field{"scores", class}, v); ok {
			out[class] = f
		}
	})
	return out
}

func (d *fieldDecoder) tags(raw []byte) map[string]string {
	if isNull(raw) {
		return nil
	}
	if raw[0] != '{' {
		d.fail(top("tags"), CodeWrongType, "must be an object of name to string, got %s", describe(raw))
		return nil
	}
	out := make(map[string]string, 4)
	_ = eachMember(raw, func(key []byte, v []byte) {
		k := unquote(key)
		// An empty string is a value like any other: protobuf keeps it,
		// and so must the JSON the predictions stream carries.
		if s := d.str(field{"tags", k}, v); isNull(v) || v[0] == '"' {
			out[k] = s
		}
	})
	return out
}

// embeddings decodes the object of name → array of numbers.
func (d *fieldDecoder) embeddings(raw []byte) map[string]*lookoutv1.Embedding {
	if isNull(raw) {
		return nil
	}
	if raw[0] != '{' {
		d.fail(top("embeddings"), CodeWrongType, "must be an object of name to array of numbers, got %s", describe(raw))
		return nil
	}
	out := make(map[string]*lookoutv1.Embedding, 1)
	_ = eachMember(raw, func(key []byte, v []byte) {
		name := unquote(key)
		f := field{"embeddings", name}
		if isNull(v) || v[0] != '[' {
			d.fail(f, CodeWrongType, "must be an array of numbers, got %s", describe(v))
			return
		}
		e := &lookoutv1.Embedding{}
		ok := true
		_ = eachElement(v, func(elem []byte) {
			if !ok {
				return
			}
			if isNull(elem) || (elem[0] != '-' && (elem[0] < '0' || elem[0] > '9') && elem[0] != 'N' && elem[0] != 'I') {
				d.fail(f, CodeWrongType, "must be an array of numbers, got %s in it", describe(elem))
				ok = false
				return
			}
			x, good := d.number(f, elem)
			if !good {
				ok = false
				return
			}
			e.Values = append(e.Values, x)
		})
		if ok {
			out[name] = e
		}
	})
	return out
}

// describe names the JSON type of raw for an error message.
func describe(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 'N', 'I':
		return "NaN or Infinity"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "a number"
	}
	// Not the start of any JSON value: a message of plain text ("garbage")
	// must not be described as a number.
	return "text that is not JSON"
}

// model checks a body's model against the subject's, taking the subject's
// when the body names none.
func (d *fieldDecoder) model(model *string, subjectModel string) {
	switch {
	case *model == "" && subjectModel == "":
		if !d.typed["model"] {
			d.fail(top("model"), CodeMissing, "required (in the body or as the subject's last token)")
		}
	case *model == "":
		*model = subjectModel
	case subjectModel != "" && *model != subjectModel:
		d.fail(top("model"), CodeModelMismatch, "body says %q but the subject says %q", *model, subjectModel)
	}
	if *model != "" && !IsValidModel(*model) {
		d.fail(top("model"), CodeInvalid, "%q is not a valid model name (letters, digits, '-' and '_')", *model)
	}
}

// validatePrediction checks the rules that hold whatever the encoding and
// fills in defaults. Fields in typed already have a reason.
func validatePrediction(p *Prediction, opts DecodeOptions, typed map[string]bool) []*Reason {
	var d fieldDecoder
	d.typed = typed
	d.model(&p.Model, opts.SubjectModel)
	if p.Version == "" && !typed["version"] {
		d.fail(top("version"), CodeMissing, "required")
	}
	switch p.Role {
	case "":
		p.Role = RoleProduction
	case RoleProduction, RoleCanary, RoleShadow:
	default:
		d.fail(top("role"), CodeInvalid, "%q is not one of production, canary, shadow", p.Role)
	}
	if p.TsUnixNano == nil && !typed["ts"] {
		p.TsUnixNano = receivedNano(opts)
	}
	checkValue := func(f field, v *Value) {
		if n := v.GetNumber(); math.IsNaN(n) || math.IsInf(n, 0) {
			d.fail(f, CodeNotFinite, "must be a finite number, got %v", n)
		}
	}
	switch {
	case isNullValue(p.Prediction):
		if !typed["prediction"] {
			d.fail(top("prediction"), CodeMissing, "required (a number or a class label)")
		}
	case isFlag(p.Prediction):
		d.fail(top("prediction"), CodeWrongType, "must be a number or a string, got a boolean")
	default:
		checkValue(top("prediction"), p.Prediction)
	}
	// Names must be non-empty: the archive has no column for an empty one,
	// and readers of the predictions stream would drop the event.
	for name, v := range p.Features {
		if name == "" {
			d.fail(top("features"), CodeInvalid, "a feature name is empty")
			continue
		}
		if isNullValue(v) {
			p.Features[name] = Null()
			continue
		}
		checkValue(field{"features", name}, v)
	}
	if _, ok := p.Scores[""]; ok {
		d.fail(top("scores"), CodeInvalid, "a class name is empty")
	}
	if _, ok := p.Tags[""]; ok {
		d.fail(top("tags"), CodeInvalid, "a tag name is empty")
	}
	for name, e := range p.Embeddings {
		switch {
		case name == "":
			d.fail(top("embeddings"), CodeInvalid, "an embedding name is empty")
		case len(e.GetValues()) == 0:
			d.fail(field{"embeddings", name}, CodeInvalid, "is empty")
		default:
			for _, x := range e.GetValues() {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					d.fail(field{"embeddings", name}, CodeNotFinite, "must hold finite numbers, got %v", x)
					break
				}
			}
		}
	}
	if p.Confidence != nil {
		c := *p.Confidence
		switch {
		case math.IsNaN(c) || math.IsInf(c, 0):
			d.fail(top("confidence"), CodeNotFinite, "must be a finite number, got %v", c)
		case c < 0 || c > 1:
			d.fail(top("confidence"), CodeOutOfRange, "%v is outside [0, 1]", c)
		}
	}
	for class, s := range p.Scores {
		switch {
		case class == "": // reported above
		case math.IsNaN(s) || math.IsInf(s, 0):
			d.fail(field{"scores", class}, CodeNotFinite, "must be a finite number, got %v", s)
		case s < 0 || s > 1:
			d.fail(field{"scores", class}, CodeOutOfRange, "%v is outside [0, 1]", s)
		}
	}
	if p.LatencyMs != nil {
		l := *p.LatencyMs
		switch {
		case math.IsNaN(l) || math.IsInf(l, 0):
			d.fail(top("latency_ms"), CodeNotFinite, "must be a finite number, got %v", l)
		case l < 0:
			d.fail(top("latency_ms"), CodeOutOfRange, "%v is negative", l)
		}
	}
	return d.reasons
}

// receivedNano is the time that fills in an absent ts.
func receivedNano(opts DecodeOptions) *int64 {
	received := opts.Received
	if received.IsZero() {
		received = time.Now()
	}
	n := received.UnixNano()
	return &n
}

// isNullValue reports whether v is absent or null. Protobuf can say null
// as Value_Null{Null: false}; that is null too, since the JSON form has
// only one null.
func isNullValue(v *Value) bool {
	if v == nil || v.GetKind() == nil {
		return true
	}
	_, null := v.GetKind().(*lookoutv1.Value_Null)
	return null
}

func isFlag(v *Value) bool {
	_, ok := v.GetKind().(*lookoutv1.Value_Flag)
	return ok
}
