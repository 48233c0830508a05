package parquetarchive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
)

// TestEncodeLabelled: an export keeps a numeric label, a class label, a
// false helpful and the feedback time, leaves an unlabelled row null, and
// is still read by the archive reader (the label columns ignored).
func TestEncodeLabelled(t *testing.T) {
	ts := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	rows := []*event.Prediction{
		{Id: "a", Model: "m", Version: "v1", Role: "production", TsUnixNano: proto.Int64(ts.UnixNano()), Prediction: event.Number(0.5), Features: map[string]*event.Value{"x": event.Number(1)}},
		{Id: "b", Model: "m", Version: "v1", Role: "production", TsUnixNano: proto.Int64(ts.UnixNano()), Prediction: event.Number(0.7), Features: map[string]*event.Value{"x": event.Number(2)}},
		{Id: "c", Model: "m", Version: "v1", Role: "production", TsUnixNano: proto.Int64(ts.UnixNano()), Prediction: event.Number(0.9)},
	}
	fbTS := ts.Add(time.Hour)
	labels := []*Label{
		{Value: event.Number(0), Helpful: proto.Bool(false), TsUnixNano: fbTS.UnixNano()},
		{Value: event.Text("churn"), TsUnixNano: fbTS.UnixNano()},
		nil,
	}
	var buf bytes.Buffer
	if _, err := EncodeLabelled(&buf, rows, labels); err != nil {
		t.Fatal(err)
	}
	type out struct {
		ID         string     `parquet:"id"`
		LabelValue *float64   `parquet:"label_value"`
		LabelLabel *string    `parquet:"label_label"`
		Helpful    *bool      `parquet:"helpful"`
		FeedbackTS *time.Time `parquet:"feedback_ts,timestamp(microsecond)"`
	}
	got, err := parquet.Read[out](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].LabelValue == nil || *got[0].LabelValue != 0 || got[0].LabelLabel != nil ||
		got[0].Helpful == nil || *got[0].Helpful || got[0].FeedbackTS == nil || !got[0].FeedbackTS.Equal(fbTS) {
		t.Fatalf("row a: %+v", got[0])
	}
	if got[1].LabelValue != nil || got[1].LabelLabel == nil || *got[1].LabelLabel != "churn" || got[1].Helpful != nil {
		t.Fatalf("row b: %+v", got[1])
	}
	if got[2].LabelValue != nil || got[2].LabelLabel != nil || got[2].Helpful != nil || got[2].FeedbackTS != nil {
		t.Fatalf("row c: %+v", got[2])
	}
	path := filepath.Join(t.TempDir(), "e.parquet")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := ReadFile(context.Background(), path, ReadOptions{}, func(p *event.Prediction) error { n++; return nil }); err != nil || n != 3 {
		t.Fatalf("archive reader: %d rows, %v", n, err)
	}
}
