package event

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Bounds of a rejection record. JSON escaping makes a byte at most six, so
// the worst case (4 KiB of control characters, reasons and subject at their
// limits) stays near 36 KiB: well under NATS's max payload, so that a
// rejection is always published, whatever the size of what it rejects.
const (
	// MaxRejectedOriginal is how much of the original a rejection keeps.
	MaxRejectedOriginal = 4 << 10
	maxRejectedSubject  = 256
	maxRejectedModel    = 128
	maxReasonField      = 128
	maxReasonCode       = 32
	maxReasonMessage    = 256
	// maxReasons and maxReasonsJSON bound the reasons by count and by their
	// escaped size; the rest are counted in reasons_omitted.
	maxReasons     = 32
	maxReasonsJSON = 8 << 10
)

// rejectionJSON is the JSON form of a rejection on lookout.rejected.<model>.
// The original's prefix is kept as text when it is valid UTF-8 and in
// base64 otherwise (binary protobuf), so `lookout tail` stays readable.
type rejectionJSON struct {
	Model          string       `json:"model"`
	Subject        string       `json:"subject"`
	ReceivedAt     time.Time    `json:"received_at"`
	Reasons        []reasonJSON `json:"reasons"`
	ReasonsOmitted int64        `json:"reasons_omitted,omitempty"`
	Original       *string      `json:"original,omitempty"`
	OriginalBase64 string       `json:"original_base64,omitempty"`
	OriginalSize   *int64       `json:"original_size,omitempty"`
	OriginalSHA256 string       `json:"original_sha256,omitempty"`
}

type reasonJSON struct {
	Field   string `json:"field,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// MarshalRejection returns the JSON form of r, bounded whatever r holds:
// the first MaxRejectedOriginal bytes of the original with the whole
// original's size and SHA-256, and reasons, subject and model cut to fixed
// limits. When r already carries the size and hash (a rejection decoded
// again), r.Original is taken to be a prefix and they are kept.
func MarshalRejection(r *Rejection) []byte {
	original := r.GetOriginal()
	size, sum := r.GetOriginalSize(), r.GetOriginalSha256()
	if sum == "" {
		h := sha256.Sum256(original)
		size, sum = int64(len(original)), hex.EncodeToString(h[:])
	}
	out := rejectionJSON{
		Model:          truncate(r.GetModel(), maxRejectedModel),
		Subject:        truncate(r.GetSubject(), maxRejectedSubject),
		ReceivedAt:     time.Unix(0, r.GetReceivedUnixNano()).UTC(),
		Reasons:        make([]reasonJSON, 0, min(len(r.GetReasons()), maxReasons)),
		ReasonsOmitted: r.GetReasonsOmitted(),
		OriginalSize:   &size,
		OriginalSHA256: sum,
	}
	budget := maxReasonsJSON
	for i, reason := range r.GetReasons() {
		rj := reasonJSON{
			Field:   truncate(reason.GetField(), maxReasonField),
			Code:    truncate(reason.GetCode(), maxReasonCode),
			Message: truncate(reason.GetMessage(), maxReasonMessage),
		}
		b, _ := json.Marshal(rj) // cannot fail: plain strings
		if len(out.Reasons) == maxReasons || len(b)+1 > budget {
			out.ReasonsOmitted += int64(len(r.GetReasons()) - i)
			break
		}
		budget -= len(b) + 1
		out.Reasons = append(out.Reasons, rj)
	}
	if text, ok := textPrefix(original, MaxRejectedOriginal); ok {
		out.Original = &text
	} else {
		out.OriginalBase64 = base64.StdEncoding.EncodeToString(original[:min(len(original), MaxRejectedOriginal)])
	}
	b, _ := json.Marshal(out) // cannot fail: plain strings and slices
	return b
}

// textPrefix returns at most n bytes of b as text when they are valid
// UTF-8, cut back to a character boundary if n falls inside one.
func textPrefix(b []byte, n int) (string, bool) {
	if len(b) <= n {
		return string(b), utf8.Valid(b)
	}
	prefix := b[:n]
	// A character cut by n is dropped (at most 3 bytes), so that text stays
	// text rather than turning into base64.
	for cut := 0; cut < utf8.UTFMax && cut < len(prefix); cut++ {
		head := prefix[:len(prefix)-cut]
		if utf8.Valid(head) && (cut == 0 || utf8.RuneStart(prefix[len(head)])) {
			return string(head), true
		}
	}
	return "", false
}

// truncate cuts s to at most n bytes, at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// UnmarshalRejection decodes the JSON form of a rejection. A record from
// before rejections were bounded has no size nor hash: its original was
// kept whole, so they are computed from it.
func UnmarshalRejection(b []byte) (*Rejection, error) {
	var in rejectionJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, err
	}
	r := &Rejection{Model: in.Model, Subject: in.Subject, ReceivedUnixNano: in.ReceivedAt.UnixNano(),
		ReasonsOmitted: in.ReasonsOmitted, OriginalSha256: in.OriginalSHA256}
	for _, reason := range in.Reasons {
		r.Reasons = append(r.Reasons, &Reason{Field: reason.Field, Code: reason.Code, Message: reason.Message})
	}
	if in.Original != nil {
		r.Original = []byte(*in.Original)
	} else if in.OriginalBase64 != "" {
		orig, err := base64.StdEncoding.DecodeString(in.OriginalBase64)
		if err != nil {
			return nil, err
		}
		r.Original = orig
	}
	if in.OriginalSize != nil && in.OriginalSHA256 != "" {
		r.OriginalSize = *in.OriginalSize
	} else {
		h := sha256.Sum256(r.Original)
		r.OriginalSize, r.OriginalSha256 = int64(len(r.Original)), hex.EncodeToString(h[:])
	}
	return r, nil
}
