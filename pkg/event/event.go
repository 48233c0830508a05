// Package event owns Lookout's events: decoding what clients publish,
// validating it against the contract, normalising it, and encoding it again.
//
// The Go types are generated from proto/lookout/v1/event.proto; this package
// maps them to and from the JSON form that users publish (CONTRACT.md).
package event

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	lookoutv1 "github.com/lookout-ml/lookout/proto/lookout/v1"
)

// Prediction, Feedback, Value and Reason are the generated event types.
type (
	Prediction = lookoutv1.Prediction
	Feedback   = lookoutv1.Feedback
	Value      = lookoutv1.Value
	Reason     = lookoutv1.Reason
	Rejection  = lookoutv1.Rejection
)

// Roles a prediction can play.
const (
	RoleProduction = "production"
	RoleCanary     = "canary"
	RoleShadow     = "shadow"
)

// Content types ingest understands, named in the Content-Type header.
const (
	ContentTypeJSON     = "application/json"
	ContentTypeProtobuf = "application/protobuf"
)

// HeaderReplay marks an event republished by `lookout replay`. Ingest
// passes it on; every service sees the event, and the archive does not
// store it again unless the value is ReplayArchive.
const HeaderReplay = "Lookout-Replay"

// Values of HeaderReplay.
const (
	ReplayOnly    = "true"    // analyse again, do not archive again
	ReplayArchive = "archive" // archive too: moving an archive to a new deployment
)

// HeaderInput names what a rejection on lookout.rejected.<model> was: it is
// absent for predictions and InputFeedback for feedback, so that rejection
// rates about predictions leave invalid feedback out.
const HeaderInput = "Lookout-Input"

// InputFeedback is the value of HeaderInput on rejected feedback.
const InputFeedback = "feedback"

// DefaultMaxBytes is the default size limit of one message (1 MiB).
const DefaultMaxBytes = 1 << 20

// Reason codes, stable and machine-readable.
const (
	CodeNotJSON       = "not_json"
	CodeNotProtobuf   = "not_protobuf"
	CodeTooLarge      = "too_large"
	CodeWrongType     = "wrong_type"
	CodeNotFinite     = "not_finite"
	CodeOutOfRange    = "out_of_range"
	CodeMissing       = "missing"
	CodeModelMismatch = "model_mismatch"
	CodeInvalid       = "invalid"
	// CodeUndeliverable: the message could not be handled after repeated
	// deliveries (or its republished form cannot be stored at all).
	CodeUndeliverable = "undeliverable"
)

// Number, Text, Flag and Null build Values.
func Number(f float64) *Value { return &Value{Kind: &lookoutv1.Value_Number{Number: f}} }
func Text(s string) *Value    { return &Value{Kind: &lookoutv1.Value_Text{Text: s}} }
func Flag(b bool) *Value      { return &Value{Kind: &lookoutv1.Value_Flag{Flag: b}} }
func Null() *Value            { return &Value{Kind: &lookoutv1.Value_Null{Null: true}} }

// Time returns the prediction's timestamp in UTC.
func Time(p *Prediction) time.Time { return time.Unix(0, p.GetTsUnixNano()).UTC() }

// IsValidModel reports whether name is a NATS-safe model token: letters,
// digits, '-' and '_'.
func IsValidModel(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// DeriveID returns a stable id for a prediction that came without one,
// computed from where and when the message was stored, so a redelivered
// message gets the same id and JetStream's de-duplication drops the second
// copy. The store time keeps ids unique when a stream is recreated and its
// sequence numbers start again.
func DeriveID(stream string, seq uint64, stored time.Time) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d/%d", stream, seq, stored.UnixNano()))
	b := sum[:16]
	b[6] = (b[6] & 0x0f) | 0x80 // UUID version 8: custom
	b[8] = (b[8] & 0x3f) | 0x80 // RFC 4122 variant
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:16])
	return string(out[:])
}
