package event

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

var received = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func decode(t *testing.T, body string, subjectModel string) (*Prediction, []*Reason) {
	t.Helper()
	return DecodePrediction([]byte(body), DecodeOptions{SubjectModel: subjectModel, Received: received})
}

// codes returns field:code for each reason, sorted.
func codes(reasons []*Reason) []string {
	out := make([]string, len(reasons))
	for i, r := range reasons {
		out[i] = r.GetField() + ":" + r.GetCode()
		if r.GetMessage() == "" {
			out[i] += ":<no message>"
		}
	}
	slices.Sort(out)
	return out
}

// TestDecodeRejects covers every rejection rule of the contract.
func TestDecodeRejects(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		subject string
		want    []string // field:code, sorted
	}{
		// Not JSON at all.
		{"not json", `hello`, "churn", []string{":not_json"}},
		// JSON, but not an object.
		{"array", `[1,2]`, "churn", []string{":not_json"}},
		// Truncated object.
		{"truncated", `{"model":"churn","version":"v1"`, "churn", []string{":not_json"}},
		// Invalid UTF-8 is not JSON.
		{"bad utf8", "{\"model\":\"\xff\"}", "churn", []string{":not_json"}},
		// Missing version and prediction: both named.
		{"missing required", `{"model":"churn"}`, "churn", []string{"prediction:missing", "version:missing"}},
		// No model in the body nor the subject.
		{"missing model", `{"version":"v1","prediction":1}`, "", []string{"model:missing"}},
		// A body model that differs from the subject's.
		{"model mismatch", `{"model":"other","version":"v1","prediction":1}`, "churn", []string{"model:model_mismatch"}},
		// A model name that is not a NATS token.
		{"bad model name", `{"model":"a.b","version":"v1","prediction":1}`, "", []string{"model:invalid"}},
		// Wrong types, every one reported.
		{"wrong types", `{"model":"churn","version":{},"prediction":true,"confidence":"high","features":[1],"latency_ms":"3"}`, "churn",
			[]string{"confidence:wrong_type", "features:wrong_type", "latency_ms:wrong_type", "prediction:wrong_type", "version:wrong_type"}},
		// A feature value that is an object.
		{"feature object", `{"version":"v1","prediction":1,"features":{"a":{"b":1}}}`, "churn", []string{"features.a:wrong_type"}},
		// NaN and Infinity as Python writes them.
		{"nan", `{"version":"v1","prediction":NaN,"features":{"x":Infinity,"y":-Infinity}}`, "churn",
			[]string{"features.x:not_finite", "features.y:not_finite", "prediction:not_finite"}},
		// A number too large for a double is infinite.
		{"overflow", `{"version":"v1","prediction":1e400}`, "churn", []string{"prediction:not_finite"}},
		// Confidence outside [0, 1], on both sides.
		{"confidence high", `{"version":"v1","prediction":1,"confidence":1.01}`, "churn", []string{"confidence:out_of_range"}},
		{"confidence low", `{"version":"v1","prediction":1,"confidence":-0.1}`, "churn", []string{"confidence:out_of_range"}},
		// Scores are probabilities.
		{"score range", `{"version":"v1","prediction":"a","scores":{"a":1.5}}`, "churn", []string{"scores.a:out_of_range"}},
		// A role that is not one of the three.
		{"role", `{"version":"v1","prediction":1,"role":"beta"}`, "churn", []string{"role:invalid"}},
		// A timestamp that is not RFC 3339.
		{"ts", `{"version":"v1","prediction":1,"ts":"yesterday"}`, "churn", []string{"ts:invalid"}},
		// Negative latency.
		{"latency", `{"version":"v1","prediction":1,"latency_ms":-1}`, "churn", []string{"latency_ms:out_of_range"}},
		// Null prediction is missing.
		{"null prediction", `{"version":"v1","prediction":null}`, "churn", []string{"prediction:missing"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, reasons := decode(t, tc.body, tc.subject)
			if p != nil {
				t.Fatalf("accepted %v, want rejected", p)
			}
			if got := codes(reasons); !slices.Equal(got, tc.want) {
				t.Fatalf("reasons %v, want %v (%v)", got, tc.want, reasons)
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	body := `{"version":"v1","prediction":1,"tags":{"x":"` + strings.Repeat("a", 2000) + `"}}`
	_, reasons := DecodePrediction([]byte(body), DecodeOptions{SubjectModel: "m", MaxBytes: 1000})
	if got := codes(reasons); !slices.Equal(got, []string{":too_large"}) {
		t.Fatalf("reasons %v", got)
	}
	if _, reasons := DecodePrediction([]byte(body), DecodeOptions{SubjectModel: "m"}); len(reasons) != 0 {
		t.Fatalf("rejected under the default 1 MiB limit: %v", reasons)
	}
}

func TestDecodeNormalises(t *testing.T) {
	p, reasons := decode(t, `{"version":"v1","prediction":0.83,"confidence":0,"features":{"age":42,"plan":"pro","trial":false,"income":null},"latency_ms":0}`, "churn")
	if len(reasons) > 0 {
		t.Fatal(reasons)
	}
	if p.Model != "churn" || p.Role != RoleProduction || p.GetTsUnixNano() != received.UnixNano() {
		t.Fatalf("not normalised: model %q role %q ts %v", p.Model, p.Role, Time(p))
	}
	if p.Confidence == nil || *p.Confidence != 0 || p.LatencyMs == nil || *p.LatencyMs != 0 {
		t.Fatal("zero confidence or latency lost")
	}
	if p.Features["trial"].GetKind() == nil || p.Features["trial"].GetFlag() != false || !p.Features["income"].GetNull() {
		t.Fatalf("features %v", p.Features)
	}
	if p.Prediction.GetNumber() != 0.83 {
		t.Fatalf("prediction %v", p.Prediction)
	}
}

func TestDecodeKeepsGivenTimestampAndIntegerIDs(t *testing.T) {
	p, reasons := decode(t, `{"id":17,"version":3,"prediction":"churn","ts":"2026-11-24T10:00:00.123+01:00"}`, "churn")
	if len(reasons) > 0 {
		t.Fatal(reasons)
	}
	if p.Id != "17" || p.Version != "3" || p.Prediction.GetText() != "churn" {
		t.Fatalf("got %v", p)
	}
	want := time.Date(2026, 11, 24, 9, 0, 0, 123e6, time.UTC)
	if !Time(p).Equal(want) {
		t.Fatalf("ts %v, want %v", Time(p), want)
	}
}

// TestJSONRoundTrip: what ingest republishes decodes to the same event.
func TestJSONRoundTrip(t *testing.T) {
	in := `{"id":"a\"b","request_id":"r1","model":"churn","version":"2026-11-01","role":"canary","ts":"2026-11-24T10:00:00.123Z",` +
		`"features":{"age":42,"income":null,"plan":"pro\n","tiny":1e-9,"trial":false},"prediction":0.83,"confidence":0.91,` +
		`"scores":{"churn":0.83,"stay":0.17},"latency_ms":12.5,"tags":{"region":"eu"}}`
	p, reasons := decode(t, in, "churn")
	if len(reasons) > 0 {
		t.Fatal(reasons)
	}
	out := AppendJSON(nil, p)
	q, reasons := DecodePrediction(out, DecodeOptions{SubjectModel: "churn"})
	if len(reasons) > 0 {
		t.Fatalf("re-decode %s: %v", out, reasons)
	}
	if !proto.Equal(p, q) {
		t.Fatalf("round trip differs:\n%v\n%v", p, q)
	}
	if again := AppendJSON(nil, q); string(again) != string(out) {
		t.Fatalf("encoding not stable:\n%s\n%s", out, again)
	}
}

func TestProtobufInput(t *testing.T) {
	conf := 0.7
	in := &Prediction{Model: "churn", Version: "v1", Prediction: Text("stay"), Confidence: &conf,
		Features: map[string]*Value{"age": Number(3), "ok": Flag(true)}}
	data, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	p, reasons := DecodePrediction(data, DecodeOptions{SubjectModel: "churn", ContentType: "application/protobuf", Received: received})
	if len(reasons) > 0 {
		t.Fatal(reasons)
	}
	if p.Prediction.GetText() != "stay" || p.Role != RoleProduction || p.GetTsUnixNano() != received.UnixNano() {
		t.Fatalf("got %v", p)
	}
	bad := &Prediction{Model: "churn", Version: "v1", Prediction: Number(math.NaN()), Confidence: new(float64)}
	*bad.Confidence = 2
	data, _ = proto.Marshal(bad)
	_, reasons = DecodePrediction(data, DecodeOptions{SubjectModel: "churn", ContentType: "application/protobuf"})
	if got := codes(reasons); !slices.Equal(got, []string{"confidence:out_of_range", "prediction:not_finite"}) {
		t.Fatalf("reasons %v", got)
	}
	_, reasons = DecodePrediction([]byte("\xff\xff\xff"), DecodeOptions{SubjectModel: "churn", ContentType: "application/protobuf"})
	if got := codes(reasons); !slices.Equal(got, []string{":not_protobuf"}) {
		t.Fatalf("reasons %v", got)
	}
}

func TestDeriveIDStable(t *testing.T) {
	a := DeriveID("S", 7, received)
	if a != DeriveID("S", 7, received) || a == DeriveID("S", 8, received) || a == DeriveID("S", 7, received.Add(1)) {
		t.Fatal("DeriveID must be a function of stream, sequence and time only")
	}
	if len(a) != 36 || a[14] != '8' {
		t.Fatalf("not a version-8 UUID: %s", a)
	}
}

func TestRejectionRoundTrip(t *testing.T) {
	for _, original := range [][]byte{[]byte(`{"x":1}`), {0xff, 0x00, 0x01}} {
		r := &Rejection{Model: "m", Subject: "lookout.ingest.m", Original: original, ReceivedUnixNano: received.UnixNano(),
			Reasons: []*Reason{{Field: "x", Code: CodeWrongType, Message: "x: bad"}}}
		back, err := UnmarshalRejection(MarshalRejection(r))
		if err != nil {
			t.Fatal(err)
		}
		// The size and hash of the original are filled in.
		sum := sha256.Sum256(original)
		r.OriginalSize, r.OriginalSha256 = int64(len(original)), hex.EncodeToString(sum[:])
		if !proto.Equal(r, back) {
			t.Fatalf("got %v, want %v", back, r)
		}
	}
}

func BenchmarkDecodePrediction(b *testing.B) {
	body := []byte(`{"id":"bench-000000001","request_id":"r-000000001","version":"2026-11-01","ts":"2026-11-24T10:00:00.123Z",` +
		`"features":{"age":42,"plan":"pro","trial":false,"income":52000.5,"tenure_months":17,"region":"eu-west"},` +
		`"prediction":0.83,"confidence":0.91,"scores":{"churn":0.83,"stay":0.17},"latency_ms":12.5,"tags":{"region":"eu"}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		p, reasons := DecodePrediction(body, DecodeOptions{SubjectModel: "churn"})
		if len(reasons) > 0 {
			b.Fatal(reasons)
		}
		out = AppendJSON(out[:0], p)
	}
}

// TestDecodeNotJSONMessage: a reason's message describes plain text as
// text, and a bare number as a number.
func TestDecodeNotJSONMessage(t *testing.T) {
	for body, want := range map[string]string{"garbage": "got text that is not JSON", "42": "got a number"} {
		_, reasons := DecodePrediction([]byte(body), DecodeOptions{SubjectModel: "m"})
		if len(reasons) != 1 || !strings.Contains(reasons[0].GetMessage(), want) {
			t.Errorf("%s: reasons %v, want one saying %q", body, reasons, want)
		}
	}
}
