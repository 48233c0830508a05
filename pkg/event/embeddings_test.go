package event

import (
	"strings"
	"testing"
)

// TestEmbeddings: the contract's embeddings decode, survive the
// predictions stream's JSON, and bad ones are rejected with a reason each.
func TestEmbeddings(t *testing.T) {
	p, reasons := DecodePrediction([]byte(`{"model":"m","version":"1","prediction":1,"embeddings":{"text":[0.12,-0.4,3e2],"img":[1]}}`), DecodeOptions{})
	if len(reasons) > 0 {
		t.Fatal(reasons)
	}
	if got := p.GetEmbeddings()["text"].GetValues(); len(got) != 3 || got[2] != 300 {
		t.Fatalf("text = %v", got)
	}
	out := string(AppendJSON(nil, p))
	if !strings.Contains(out, `"embeddings":{"img":[1],"text":[0.12,-0.4,300]}`) {
		t.Fatalf("encoded %s", out)
	}
	back, reasons := DecodePrediction([]byte(out), DecodeOptions{})
	if len(reasons) > 0 || len(back.GetEmbeddings()["text"].GetValues()) != 3 {
		t.Fatalf("round trip: %v %v", back, reasons)
	}
	for _, c := range []struct{ in, code string }{
		{`{"text":"x"}`, CodeWrongType},
		{`{"text":[1,"a"]}`, CodeWrongType},
		{`{"text":[]}`, CodeInvalid},
		{`{"":[1]}`, CodeInvalid},
		{`{"text":[NaN]}`, CodeNotFinite},
		{`[1,2]`, CodeWrongType},
	} {
		_, reasons := DecodePrediction([]byte(`{"model":"m","version":"1","prediction":1,"embeddings":`+c.in+`}`), DecodeOptions{})
		found := false
		for _, r := range reasons {
			found = found || (r.Code == c.code && strings.HasPrefix(r.Field, "embeddings"))
		}
		if !found {
			t.Errorf("%s: reasons %v, want %s", c.in, reasons, c.code)
		}
	}
}
