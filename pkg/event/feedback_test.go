package event

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

func decodeFeedback(t *testing.T, body, subjectModel string) (*Feedback, []*Reason) {
	t.Helper()
	return DecodeFeedback([]byte(body), DecodeOptions{SubjectModel: subjectModel, Received: received})
}

// TestDecodeFeedbackRejects covers every rejection rule of the contract's
// feedback event.
func TestDecodeFeedbackRejects(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		subject string
		max     int
		want    []string // field:code, sorted
	}{
		// Not JSON at all.
		{"not json", `hello`, "churn", 0, []string{":not_json"}},
		// JSON, but not an object.
		{"array", `[{"id":"a","label":1}]`, "churn", 0, []string{":not_json"}},
		// Truncated object.
		{"truncated", `{"id":"a","label":1`, "churn", 0, []string{":not_json"}},
		// Invalid UTF-8 is not JSON.
		{"bad utf8", "{\"id\":\"\xff\",\"label\":1}", "churn", 0, []string{":not_json"}},
		// Over the size limit.
		{"too large", `{"id":"a","label":"` + strings.Repeat("x", 100) + `"}`, "churn", 64, []string{":too_large"}},
		// No id: feedback about nothing.
		{"missing id", `{"label":"churn"}`, "churn", 0, []string{"id:missing"}},
		// Neither label nor helpful.
		{"no label nor helpful", `{"id":"a"}`, "churn", 0, []string{"label:missing"}},
		// Both explicitly null count as absent.
		{"null label and helpful", `{"id":"a","label":null,"helpful":null}`, "churn", 0, []string{"label:missing"}},
		// No model in the body nor the subject.
		{"missing model", `{"id":"a","label":1}`, "", 0, []string{"model:missing"}},
		// A body model that differs from the subject's.
		{"model mismatch", `{"id":"a","model":"other","label":1}`, "churn", 0, []string{"model:model_mismatch"}},
		// A model name that is not a NATS token.
		{"bad model name", `{"id":"a","model":"a.b","label":1}`, "", 0, []string{"model:invalid"}},
		// A label that is a boolean: number or string only.
		{"boolean label", `{"id":"a","label":true}`, "churn", 0, []string{"label:wrong_type"}},
		// A label that is an object; the type error is the only reason.
		{"object label", `{"id":"a","label":{"x":1}}`, "churn", 0, []string{"label:wrong_type"}},
		// helpful must be a boolean.
		{"string helpful", `{"id":"a","helpful":"yes"}`, "churn", 0, []string{"helpful:wrong_type"}},
		// Non-finite labels.
		{"nan label", `{"id":"a","label":NaN}`, "churn", 0, []string{"label:not_finite"}},
		{"huge label", `{"id":"a","label":1e999}`, "churn", 0, []string{"label:not_finite"}},
		// A ts that is not RFC 3339.
		{"bad ts", `{"id":"a","label":1,"ts":"yesterday"}`, "churn", 0, []string{"ts:invalid"}},
		// id of a wrong type.
		{"object id", `{"id":{},"label":1}`, "churn", 0, []string{"id:wrong_type"}},
		// request_id follows the id's rules; a wrong one does not count as
		// the identifier being missing.
		{"object request_id", `{"request_id":{},"label":1}`, "churn", 0, []string{"request_id:wrong_type"}},
		{"empty id and request_id", `{"id":"","request_id":"","label":1}`, "churn", 0, []string{"id:missing"}},
		{"null request_id", `{"request_id":null,"label":1}`, "churn", 0, []string{"id:missing"}},
		// Several faults are all reported.
		{"several", `{"model":"other","helpful":1}`, "churn", 0, []string{"helpful:wrong_type", "id:missing", "model:model_mismatch"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, reasons := DecodeFeedback([]byte(c.body), DecodeOptions{SubjectModel: c.subject, Received: received, MaxBytes: c.max})
			if f != nil {
				t.Fatalf("accepted: %v", f)
			}
			if got := codes(reasons); !slices.Equal(got, c.want) {
				t.Fatalf("reasons %v, want %v", got, c.want)
			}
		})
	}
}

// TestDecodeFeedbackAccepts checks what accepted feedback decodes to.
func TestDecodeFeedbackAccepts(t *testing.T) {
	ts := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		body    string
		subject string
		check   func(*Feedback) bool
	}{
		// The contract's example, in full.
		{"full", `{"id":"p1","model":"churn","label":"churn","helpful":true,"ts":"2026-11-20T08:00:00Z"}`, "churn", func(f *Feedback) bool {
			return f.Id == "p1" && f.Model == "churn" && f.Label.GetText() == "churn" && f.GetHelpful() && FeedbackTime(f).Equal(ts)
		}},
		// A numeric label alone; model from the subject, ts the received time.
		{"number label", `{"id":"p1","label":0.25}`, "churn", func(f *Feedback) bool {
			return f.Model == "churn" && f.Label.GetNumber() == 0.25 && f.Helpful == nil && FeedbackTime(f).Equal(received)
		}},
		// helpful alone, false: present but false.
		{"helpful false", `{"id":"p1","helpful":false}`, "churn", func(f *Feedback) bool {
			return f.Helpful != nil && !*f.Helpful && f.Label == nil
		}},
		// An integer id is taken as its text; unknown fields are ignored.
		{"integer id", `{"id":42,"label":0,"extra":[1,2]}`, "churn", func(f *Feedback) bool {
			return f.Id == "42" && f.Label.GetKind() != nil && f.Label.GetNumber() == 0
		}},
		// The contract's request form: request_id instead of id.
		{"request_id", `{"request_id":"r-1","model":"churn","label":"churn"}`, "churn", func(f *Feedback) bool {
			return f.Id == "" && f.RequestId == "r-1" && f.Label.GetText() == "churn"
		}},
		// An integer request_id is taken as its text, as an id is.
		{"integer request_id", `{"request_id":7,"label":1}`, "churn", func(f *Feedback) bool {
			return f.RequestId == "7"
		}},
		// Both: kept as given.
		{"id and request_id", `{"id":"p1","request_id":"r-1","label":1}`, "churn", func(f *Feedback) bool {
			return f.Id == "p1" && f.RequestId == "r-1"
		}},
		// No subject model, the body names it.
		{"body model", `{"id":"p1","model":"fraud","label":"ok"}`, "", func(f *Feedback) bool {
			return f.Model == "fraud"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, reasons := decodeFeedback(t, c.body, c.subject)
			if len(reasons) > 0 {
				t.Fatalf("rejected: %v", codes(reasons))
			}
			if !c.check(f) {
				t.Fatalf("decoded %v", f)
			}
		})
	}
}

// TestDecodeFeedbackProtobuf: the binary form is validated by the same
// rules.
func TestDecodeFeedbackProtobuf(t *testing.T) {
	opts := DecodeOptions{SubjectModel: "churn", ContentType: ContentTypeProtobuf, Received: received}
	good, _ := proto.Marshal(&Feedback{Id: "p1", Label: Text("churn")})
	if f, reasons := DecodeFeedback(good, opts); len(reasons) > 0 || f.Model != "churn" || f.Label.GetText() != "churn" {
		t.Fatalf("good protobuf: %v %v", f, codes(reasons))
	}
	bad, _ := proto.Marshal(&Feedback{Id: "p1", Label: Flag(true)})
	if _, reasons := DecodeFeedback(bad, opts); !slices.Equal(codes(reasons), []string{"label:wrong_type"}) {
		t.Fatalf("boolean label: %v", codes(reasons))
	}
	byReq, _ := proto.Marshal(&Feedback{RequestId: "r-1", Label: Text("churn")})
	if f, reasons := DecodeFeedback(byReq, opts); len(reasons) > 0 || f.RequestId != "r-1" {
		t.Fatalf("protobuf by request_id: %v %v", f, codes(reasons))
	}
	neither, _ := proto.Marshal(&Feedback{Label: Text("churn")})
	if _, reasons := DecodeFeedback(neither, opts); !slices.Equal(codes(reasons), []string{"id:missing"}) {
		t.Fatalf("protobuf without id or request_id: %v", codes(reasons))
	}
	if _, reasons := DecodeFeedback([]byte{0xff, 0xff}, opts); !slices.Equal(codes(reasons), []string{":not_protobuf"}) {
		t.Fatalf("garbage: %v", codes(reasons))
	}
}

// TestAppendFeedbackJSONRoundTrip: the encoder's output decodes to the
// same feedback.
func TestAppendFeedbackJSONRoundTrip(t *testing.T) {
	for _, in := range []*Feedback{
		{Id: "p\"1", Model: "churn", Label: Number(1.5), Helpful: proto.Bool(false), TsUnixNano: proto.Int64(received.UnixNano())},
		{RequestId: "r-1", Model: "churn", Label: Text("churn"), TsUnixNano: proto.Int64(received.UnixNano())},
		{Id: "p1", RequestId: "r-1", Model: "churn", Helpful: proto.Bool(true), TsUnixNano: proto.Int64(received.UnixNano())},
	} {
		out := AppendFeedbackJSON(nil, in)
		f, reasons := DecodeFeedback(out, DecodeOptions{})
		if len(reasons) > 0 {
			t.Fatalf("%s: %v", out, codes(reasons))
		}
		if !proto.Equal(f, in) {
			t.Fatalf("%s decoded to %v, want %v", out, f, in)
		}
	}
}
