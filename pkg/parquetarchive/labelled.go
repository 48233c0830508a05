package parquetarchive

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/lookout-ml/lookout/pkg/event"
)

// Columns an export adds to the archive's (CONTRACT.md, lookout export).
const (
	ColLabelValue = "label_value" // double: a numeric label
	ColLabelLabel = "label_label" // string: a class label
	ColHelpful    = "helpful"
	ColFeedbackTS = "feedback_ts" // timestamp of the latest feedback applied
)

// Label is the feedback joined with one prediction.
type Label struct {
	Value      *event.Value // nil: no label (only helpful)
	Helpful    *bool
	TsUnixNano int64
}

func (l *Label) value() *event.Value {
	if l == nil {
		return nil
	}
	return l.Value
}

// EncodeLabelled writes rows with their labels (labels[i] is rows[i]'s,
// nil for none) as one Parquet file: the archive's columns plus
// label_value, label_label, helpful and feedback_ts, all optional.
func EncodeLabelled(w io.Writer, rows []*event.Prediction, labels []*Label) (Stats, error) {
	if len(rows) != len(labels) {
		return Stats{}, fmt.Errorf("export encode: %d rows, %d labels", len(rows), len(labels))
	}
	if len(rows) == 0 {
		return Stats{}, fmt.Errorf("export encode: no rows")
	}
	lay, err := planLayoutWith(rows, parquet.Group{
		ColLabelValue: parquet.Optional(parquet.Leaf(parquet.DoubleType)),
		ColLabelLabel: parquet.Optional(parquet.String()),
		ColHelpful:    parquet.Optional(parquet.Leaf(parquet.BooleanType)),
		ColFeedbackTS: parquet.Optional(parquet.Timestamp(parquet.Microsecond)),
	})
	if err != nil {
		return Stats{}, err
	}
	for name, kind := range map[string]columnKind{ColLabelValue: colLabelValue, ColLabelLabel: colLabelLabel, ColHelpful: colHelpful, ColFeedbackTS: colFeedbackTS} {
		col, ok := lay.schema.Lookup(name)
		if !ok {
			return Stats{}, fmt.Errorf("export schema: no column %s", name)
		}
		lay.kinds[col.ColumnIndex] = kind
	}
	cw := &countingWriter{w: w}
	pw := parquet.NewWriter(cw, lay.writerOptions()...)
	stats := Stats{Rows: len(rows)}
	buf := make([]parquet.Row, 0, 512)
	for start := 0; start < len(rows); start += 512 {
		end := min(start+512, len(rows))
		buf = buf[:0]
		for i := start; i < end; i++ {
			row, conflicts := lay.appendLabelledRow(nil, rows[i], labels[i])
			stats.TypeConflicts += conflicts
			buf = append(buf, row)
		}
		if _, err := pw.WriteRows(buf); err != nil {
			return stats, fmt.Errorf("export encode: %w", err)
		}
	}
	if err := pw.Close(); err != nil {
		return stats, fmt.Errorf("export encode: %w", err)
	}
	stats.Bytes = cw.n
	return stats, nil
}
