package event

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	lookoutv1 "github.com/lookout-ml/lookout/proto/lookout/v1"
)

// maxRejection is the bound every rejection record must stay under: well
// below NATS's smallest usual max payload (64 KiB is far under 1 MB), so a
// rejection is always publishable.
const maxRejection = 64 << 10

// TestRejectionBoundedForHugeInput: a 1.5 MB invalid message (far over the
// size limit, and JSON-escaped it would be larger still) yields a rejection
// under 64 KiB that keeps the first 4 KiB of the original, its size and its
// SHA-256, and decodes back.
func TestRejectionBoundedForHugeInput(t *testing.T) {
	original := bytes.Repeat([]byte(`"\<`), 500_000) // 1.5 MB; each byte escapes to 2-6
	_, reasons := DecodePrediction(original, DecodeOptions{SubjectModel: "m"})
	if len(reasons) == 0 {
		t.Fatal("a 1.5 MB message was accepted")
	}
	out := MarshalRejection(&Rejection{Model: "m", Subject: "lookout.ingest.m", Reasons: reasons,
		Original: original, ReceivedUnixNano: received.UnixNano()})
	if len(out) >= maxRejection {
		t.Fatalf("rejection is %d bytes, want < %d", len(out), maxRejection)
	}
	var raw map[string]any
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(original)
	if raw["original"] != string(original[:4096]) {
		t.Fatalf("original is not the first 4096 bytes: %.80v", raw["original"])
	}
	if raw["original_size"] != float64(len(original)) || raw["original_sha256"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("original_size %v, original_sha256 %v", raw["original_size"], raw["original_sha256"])
	}
	back, err := UnmarshalRejection(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.GetOriginal(), original[:4096]) || back.GetOriginalSize() != int64(len(original)) ||
		back.GetOriginalSha256() != hex.EncodeToString(sum[:]) || back.GetModel() != "m" {
		t.Fatalf("decoded back to %d bytes, size %d, sha %s", len(back.GetOriginal()), back.GetOriginalSize(), back.GetOriginalSha256())
	}
	// Marshalling what was decoded keeps the full original's size and hash.
	again, err := UnmarshalRejection(MarshalRejection(back))
	if err != nil || !proto.Equal(again, back) {
		t.Fatalf("second round trip: %v, %v", again, err)
	}
}

// TestRejectionBoundedWhateverTheFields: the worst cases for each part of
// a rejection (an original of control characters, binary, a huge subject,
// thousands of reasons with huge messages) still stay under 64 KiB.
func TestRejectionBoundedWhateverTheFields(t *testing.T) {
	huge := strings.Repeat("\x01", 1<<20)
	many := make([]*Reason, 10_000)
	for i := range many {
		many[i] = &Reason{Field: "features." + huge[:1000], Code: CodeInvalid + huge[:1000], Message: huge}
	}
	for name, r := range map[string]*Rejection{
		"control characters": {Model: "m", Original: []byte(huge)},
		"binary":             {Model: "m", Original: bytes.Repeat([]byte{0xff, 0x00}, 1<<20)},
		"subject and model":  {Model: huge, Subject: huge},
		"reasons":            {Model: "m", Reasons: many, Original: []byte(huge)},
	} {
		out := MarshalRejection(r)
		t.Logf("%s: %d bytes", name, len(out))
		if len(out) >= maxRejection {
			t.Errorf("%s: rejection is %d bytes, want < %d", name, len(out), maxRejection)
		}
		var raw map[string]any
		if err := json.Unmarshal(out, &raw); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if r.Original != nil && raw["original_size"] != float64(len(r.Original)) {
			t.Errorf("%s: original_size %v, want %d", name, raw["original_size"], len(r.Original))
		}
		if name == "binary" {
			if b, _ := base64.StdEncoding.DecodeString(raw["original_base64"].(string)); !bytes.Equal(b, r.Original[:4096]) {
				t.Errorf("binary: original_base64 is not the first 4096 bytes")
			}
		}
	}
}

// validationCase is one rule that must hold alike for JSON and protobuf:
// the JSON body and the protobuf message say the same thing.
type validationCase struct {
	name string
	json string
	pb   []byte
	want []string // field:code, sorted
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawString appends a string field without the UTF-8 check proto.Marshal
// makes, to forge what a non-Go client could send.
func rawString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// TestPredictionValidationAlikeForJSONAndProtobuf: everything the readers
// of the predictions stream (archive, drift) would drop is rejected at
// ingest, with the same reasons whichever encoding it came in.
func TestPredictionValidationAlikeForJSONAndProtobuf(t *testing.T) {
	base := func() *Prediction { return &Prediction{Version: "v1", Prediction: Number(1)} }
	with := func(f func(p *Prediction)) []byte {
		p := base()
		f(p)
		return marshal(t, p)
	}
	nullFalse := &Value{Kind: &lookoutv1.Value_Null{Null: false}}
	cases := []validationCase{
		{"empty feature name", `{"version":"v1","prediction":1,"features":{"":1,"a":2}}`,
			with(func(p *Prediction) { p.Features = map[string]*Value{"": Number(1), "a": Number(2)} }),
			[]string{"features:invalid"}},
		{"empty score class", `{"version":"v1","prediction":"a","scores":{"":0.5}}`,
			with(func(p *Prediction) { p.Prediction = Text("a"); p.Scores = map[string]float64{"": 0.5} }),
			[]string{"scores:invalid"}},
		{"empty tag name", `{"version":"v1","prediction":1,"tags":{"":"x"}}`,
			with(func(p *Prediction) { p.Tags = map[string]string{"": "x"} }),
			[]string{"tags:invalid"}},
		{"null prediction", `{"version":"v1","prediction":null}`,
			with(func(p *Prediction) { p.Prediction = nullFalse }),
			[]string{"prediction:missing"}},
		{"confidence over 1", `{"version":"v1","prediction":1,"confidence":1.5}`,
			with(func(p *Prediction) { p.Confidence = proto.Float64(1.5) }),
			[]string{"confidence:out_of_range"}},
		{"invalid model", `{"model":"a.b","version":"v1","prediction":1}`,
			with(func(p *Prediction) { p.Model = "a.b" }),
			[]string{"model:invalid"}},
		{"ts after 2262", `{"version":"v1","prediction":1,"ts":"9999-12-31T23:59:59Z"}`, nil, []string{"ts:out_of_range"}},
		{"ts before 1678", `{"version":"v1","prediction":1,"ts":"0001-01-01T00:00:00Z"}`, nil, []string{"ts:out_of_range"}},
		{"ts just after int64", `{"version":"v1","prediction":1,"ts":"2262-04-12T00:00:00Z"}`, nil, []string{"ts:out_of_range"}},
		{"ts just before int64", `{"version":"v1","prediction":1,"ts":"1677-09-21T00:00:00Z"}`, nil, []string{"ts:out_of_range"}},
		// Invalid UTF-8 is not JSON, nor protobuf (proto3 strings are UTF-8).
		{"invalid utf-8 feature name", "{\"version\":\"v1\",\"prediction\":1,\"features\":{\"\xff\":1}}",
			func() []byte {
				entry := rawString(nil, 1, "\xff")
				entry = protowire.AppendTag(entry, 2, protowire.BytesType)
				entry = protowire.AppendBytes(entry, marshal(t, Number(1)))
				b := rawString(marshal(t, base()), 7, string(entry))
				return b
			}(),
			nil},
		{"invalid utf-8 tag", "{\"version\":\"v1\",\"prediction\":1,\"tags\":{\"a\":\"\xfe\"}}",
			rawString(marshal(t, base()), 12, string(rawString(rawString(nil, 1, "a"), 2, "\xfe"))),
			nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := DecodeOptions{SubjectModel: "", Received: received}
			if !strings.Contains(c.json, `"model"`) {
				opts.SubjectModel = "m"
			}
			p, reasons := DecodePrediction([]byte(c.json), opts)
			want := c.want
			if want == nil {
				want = []string{":not_json"}
			}
			if p != nil || !slices.Equal(codes(reasons), want) {
				t.Errorf("JSON: accepted %v, reasons %v, want %v", p, codes(reasons), want)
			}
			if c.pb == nil {
				return
			}
			opts.ContentType = ContentTypeProtobuf
			p, reasons = DecodePrediction(c.pb, opts)
			if c.want == nil {
				want = []string{":not_protobuf"}
			}
			if p != nil || !slices.Equal(codes(reasons), want) {
				t.Errorf("protobuf: accepted %v, reasons %v, want %v", p, codes(reasons), want)
			}
		})
	}
}

// TestAcceptedProtobufSurvivesTheReaders: what ingest accepts from
// protobuf, once encoded as JSON on the predictions stream, is accepted by
// the decoder archive and drift use, and means the same.
func TestAcceptedProtobufSurvivesTheReaders(t *testing.T) {
	nullFalse := &Value{Kind: &lookoutv1.Value_Null{Null: false}}
	in := &Prediction{Id: "p1", Version: "v1", Prediction: Text("a"),
		Features: map[string]*Value{"a": nullFalse, "b": {}, "c": Number(1e300), "d": Text("")},
		Scores:   map[string]float64{"a": 1}, Tags: map[string]string{"t": ""}}
	p, reasons := DecodePrediction(marshal(t, in), DecodeOptions{SubjectModel: "m", ContentType: ContentTypeProtobuf, Received: received})
	if len(reasons) > 0 {
		t.Fatal(codes(reasons))
	}
	out := AppendJSON(nil, p)
	q, reasons := DecodePrediction(out, DecodeOptions{SubjectModel: "m"})
	if len(reasons) > 0 {
		t.Fatalf("%s: %v", out, codes(reasons))
	}
	if !proto.Equal(p, q) {
		t.Fatalf("protobuf decoded to %v, its JSON to %v", p, q)
	}
}

// TestPredictionTimestamps: the range of int64 nanoseconds is accepted to
// its ends, the epoch is kept as given (JSON and protobuf alike), and only
// an absent ts takes the received time.
func TestPredictionTimestamps(t *testing.T) {
	for _, ts := range []string{"1678-01-01T00:00:00Z", "2262-04-11T00:00:00Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999999Z"} {
		p, reasons := decode(t, `{"version":"v1","prediction":1,"ts":"`+ts+`"}`, "m")
		if len(reasons) > 0 {
			t.Fatalf("%s: %v", ts, codes(reasons))
		}
		if got := Time(p).Format(time.RFC3339Nano); got != ts {
			t.Errorf("ts %s decoded as %s", ts, got)
		}
	}
	if p, _ := decode(t, `{"version":"v1","prediction":1}`, "m"); !Time(p).Equal(received) {
		t.Errorf("absent ts decoded as %s, want the received time", Time(p))
	}
	// Protobuf: an explicit ts_unix_nano of 0 (field 6, varint 0) is the
	// epoch; no field 6 at all is absent.
	pb := marshal(t, &Prediction{Version: "v1", Prediction: Number(1)})
	opts := DecodeOptions{SubjectModel: "m", ContentType: ContentTypeProtobuf, Received: received}
	if p, reasons := DecodePrediction(protowire.AppendVarint(protowire.AppendTag(slices.Clone(pb), 6, protowire.VarintType), 0), opts); len(reasons) > 0 || Time(p).UnixNano() != 0 {
		t.Errorf("protobuf ts 0 decoded as %v (%v), want the epoch", Time(p), codes(reasons))
	}
	if p, reasons := DecodePrediction(pb, opts); len(reasons) > 0 || !Time(p).Equal(received) {
		t.Errorf("protobuf without ts decoded as %v (%v), want the received time", Time(p), codes(reasons))
	}
}

// TestFeedbackValidationAlikeForJSONAndProtobuf: the feedback rules that
// concern encoding hold for both.
func TestFeedbackValidationAlikeForJSONAndProtobuf(t *testing.T) {
	nullFalse := &Value{Kind: &lookoutv1.Value_Null{Null: false}}
	cases := []validationCase{
		{"null label", `{"id":"p1","label":null}`, marshal(t, &Feedback{Id: "p1", Label: nullFalse}), []string{"label:missing"}},
		{"invalid model", `{"id":"p1","model":"a b","label":1}`, marshal(t, &Feedback{Id: "p1", Model: "a b", Label: Number(1)}), []string{"model:invalid"}},
		{"ts after 2262", `{"id":"p1","label":1,"ts":"9999-12-31T23:59:59Z"}`, nil, []string{"ts:out_of_range"}},
		{"ts before 1678", `{"id":"p1","label":1,"ts":"0001-01-01T00:00:00Z"}`, nil, []string{"ts:out_of_range"}},
		{"invalid utf-8 id", "{\"id\":\"\xff\",\"label\":1}", rawString(marshal(t, &Feedback{Label: Number(1)}), 1, "\xff"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := DecodeOptions{Received: received}
			if !strings.Contains(c.json, `"model"`) {
				opts.SubjectModel = "m"
			}
			f, reasons := DecodeFeedback([]byte(c.json), opts)
			want := c.want
			if want == nil {
				want = []string{":not_json"}
			}
			if f != nil || !slices.Equal(codes(reasons), want) {
				t.Errorf("JSON: accepted %v, reasons %v, want %v", f, codes(reasons), want)
			}
			if c.pb == nil {
				return
			}
			opts.ContentType = ContentTypeProtobuf
			f, reasons = DecodeFeedback(c.pb, opts)
			if c.want == nil {
				want = []string{":not_protobuf"}
			}
			if f != nil || !slices.Equal(codes(reasons), want) {
				t.Errorf("protobuf: accepted %v, reasons %v, want %v", f, codes(reasons), want)
			}
		})
	}
}

// TestFeedbackTimestamps: the epoch is kept as given; only an absent ts
// takes the received time.
func TestFeedbackTimestamps(t *testing.T) {
	f, reasons := decodeFeedback(t, `{"id":"p1","label":1,"ts":"1970-01-01T00:00:00Z"}`, "m")
	if len(reasons) > 0 || FeedbackTime(f).UnixNano() != 0 {
		t.Errorf("JSON epoch decoded as %v (%v)", FeedbackTime(f), codes(reasons))
	}
	pb := marshal(t, &Feedback{Id: "p1", Label: Number(1)})
	opts := DecodeOptions{SubjectModel: "m", ContentType: ContentTypeProtobuf, Received: received}
	if f, reasons := DecodeFeedback(protowire.AppendVarint(protowire.AppendTag(slices.Clone(pb), 5, protowire.VarintType), 0), opts); len(reasons) > 0 || FeedbackTime(f).UnixNano() != 0 {
		t.Errorf("protobuf ts 0 decoded as %v (%v), want the epoch", FeedbackTime(f), codes(reasons))
	}
	if f, reasons := DecodeFeedback(pb, opts); len(reasons) > 0 || !FeedbackTime(f).Equal(received) {
		t.Errorf("protobuf without ts decoded as %v (%v), want the received time", FeedbackTime(f), codes(reasons))
	}
}
