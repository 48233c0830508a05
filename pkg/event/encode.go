package event

import (
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	lookoutv1 "github.com/lookout-ml/lookout/proto/lookout/v1"
)

// AppendJSON appends the contract's JSON form of p to b. Map keys come out
// sorted, so equal predictions encode to equal bytes.
func AppendJSON(b []byte, p *Prediction) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, p.GetId())
	if p.GetRequestId() != "" {
		b = append(b, `,"request_id":`...)
		b = appendString(b, p.GetRequestId())
	}
	b = append(b, `,"model":`...)
	b = appendString(b, p.GetModel())
	b = append(b, `,"version":`...)
	b = appendString(b, p.GetVersion())
	b = append(b, `,"role":`...)
	b = appendString(b, p.GetRole())
	b = append(b, `,"ts":"`...)
	b = time.Unix(0, p.GetTsUnixNano()).UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if len(p.GetFeatures()) > 0 {
		b = append(b, `,"features":{`...)
		for i, name := range sortedKeys(p.GetFeatures()) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, name)
			b = append(b, ':')
			b = AppendValue(b, p.Features[name])
		}
		b = append(b, '}')
	}
	b = append(b, `,"prediction":`...)
	b = AppendValue(b, p.GetPrediction())
	if p.Confidence != nil {
		b = append(b, `,"confidence":`...)
		b = appendFloat(b, *p.Confidence)
	}
	if len(p.GetScores()) > 0 {
		b = append(b, `,"scores":{`...)
		for i, class := range sortedKeys(p.GetScores()) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, class)
			b = append(b, ':')
			b = appendFloat(b, p.Scores[class])
		}
		b = append(b, '}')
	}
	if p.LatencyMs != nil {
		b = append(b, `,"latency_ms":`...)
		b = appendFloat(b, *p.LatencyMs)
	}
	if len(p.GetTags()) > 0 {
		b = append(b, `,"tags":{`...)
		for i, k := range sortedKeys(p.GetTags()) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, p.Tags[k])
		}
		b = append(b, '}')
	}
	if len(p.GetEmbeddings()) > 0 {
		b = append(b, `,"embeddings":{`...)
		for i, name := range sortedKeys(p.GetEmbeddings()) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, name)
			b = append(b, ':', '[')
			for j, x := range p.Embeddings[name].GetValues() {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendFloat(b, x)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// AppendValue appends v as a JSON number, string, boolean or null.
func AppendValue(b []byte, v *Value) []byte {
	switch k := v.GetKind().(type) {
	case *lookoutv1.Value_Number:
		return appendFloat(b, k.Number)
	case *lookoutv1.Value_Text:
		return appendString(b, k.Text)
	case *lookoutv1.Value_Flag:
		return strconv.AppendBool(b, k.Flag)
	}
	return append(b, "null"...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendFloat writes f the way encoding/json does; a non-finite f (which
// validation keeps out) becomes null rather than invalid JSON.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, f, format, -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
