package event

import (
	"math"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
)

// DecodeFeedback decodes and validates one feedback message (a ground-truth
// label or a "was this helpful?" answer, CONTRACT.md "Feedback event"). It
// returns the feedback, normalised (model and ts filled in), or every
// reason the message is rejected: not JSON (or protobuf), wrong types,
// non-finite numbers, neither id nor request_id, neither label nor helpful, a subject
// model that differs from the body's, a message over the size limit. It
// never panics on any input.
func DecodeFeedback(data []byte, opts DecodeOptions) (*Feedback, []*Reason) {
	return decodeMessage(data, opts, "Feedback", decodeFeedbackJSON, validateFeedback)
}

func decodeFeedbackJSON(data []byte) (*Feedback, []*Reason, map[string]bool, bool) {
	if !utf8.Valid(data) {
		return nil, []*Reason{{Code: CodeNotJSON, Message: "not JSON: invalid UTF-8"}}, nil, false
	}
	var d fieldDecoder
	f := new(Feedback)
	err := eachMember(data, func(key []byte, raw []byte) {
		switch string(key[1 : len(key)-1]) {
		case "id":
			f.Id = d.identifier(top("id"), raw)
		case "request_id":
			f.RequestId = d.identifier(top("request_id"), raw)
		case "model":
			f.Model = d.str(top("model"), raw)
		case "label":
			f.Label = d.label(raw)
		case "helpful":
			switch {
			case isNull(raw):
			case string(raw) == "true":
				f.Helpful = proto.Bool(true)
			case string(raw) == "false":
				f.Helpful = proto.Bool(false)
			default:
				d.fail(top("helpful"), CodeWrongType, "must be a boolean, got %s", describe(raw))
			}
		case "ts":
			f.TsUnixNano = d.timestamp(raw)
		}
	})
	if err != nil {
		return nil, []*Reason{{Code: CodeNotJSON, Message: "not JSON: " + err.Error()}}, nil, false
	}
	return f, d.reasons, d.typed, true
}

// label decodes a feedback label: a number or a string; null is absent.
func (d *fieldDecoder) label(raw []byte) *Value {
	if isNull(raw) {
		return nil
	}
	switch c := raw[0]; {
	case c == '"', c == '-', c >= '0' && c <= '9', c == 'N', c == 'I':
		return d.value(top("label"), raw)
	}
	d.fail(top("label"), CodeWrongType, "must be a number or a string, got %s", describe(raw))
	return nil
}

// validateFeedback checks the rules that hold whatever the encoding and
// fills in defaults. Fields in typed already have a reason.
func validateFeedback(f *Feedback, opts DecodeOptions, typed map[string]bool) []*Reason {
	var d fieldDecoder
	d.typed = typed
	d.model(&f.Model, opts.SubjectModel)
	if f.Id == "" && f.RequestId == "" && !typed["id"] && !typed["request_id"] {
		d.fail(top("id"), CodeMissing, "id or request_id is required: the prediction or the request this feedback is about")
	}
	if f.Label != nil && isNullValue(f.Label) {
		f.Label = nil
	}
	switch {
	case f.Label == nil && f.Helpful == nil:
		if !typed["label"] && !typed["helpful"] {
			d.fail(top("label"), CodeMissing, "label or helpful is required")
		}
	case f.Label != nil && isFlag(f.Label):
		d.fail(top("label"), CodeWrongType, "must be a number or a string, got a boolean")
	case f.Label != nil:
		if n := f.Label.GetNumber(); math.IsNaN(n) || math.IsInf(n, 0) {
			d.fail(top("label"), CodeNotFinite, "must be a finite number, got %v", n)
		}
	}
	if f.TsUnixNano == nil && !typed["ts"] {
		f.TsUnixNano = receivedNano(opts)
	}
	return d.reasons
}

// FeedbackTime returns the feedback's timestamp in UTC.
func FeedbackTime(f *Feedback) time.Time { return time.Unix(0, f.GetTsUnixNano()).UTC() }

// AppendFeedbackJSON appends the contract's JSON form of f to b.
func AppendFeedbackJSON(b []byte, f *Feedback) []byte {
	b = append(b, '{')
	if f.GetId() != "" || f.GetRequestId() == "" {
		b = append(b, `"id":`...)
		b = appendString(b, f.GetId())
		b = append(b, ',')
	}
	if f.GetRequestId() != "" {
		b = append(b, `"request_id":`...)
		b = appendString(b, f.GetRequestId())
		b = append(b, ',')
	}
	b = append(b, `"model":`...)
	b = appendString(b, f.GetModel())
	if f.GetLabel().GetKind() != nil && !f.GetLabel().GetNull() {
		b = append(b, `,"label":`...)
		b = AppendValue(b, f.GetLabel())
	}
	if f.Helpful != nil {
		if *f.Helpful {
			b = append(b, `,"helpful":true`...)
		} else {
			b = append(b, `,"helpful":false`...)
		}
	}
	b = append(b, `,"ts":"`...)
	b = FeedbackTime(f).AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}
