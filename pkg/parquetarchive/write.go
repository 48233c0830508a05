package parquetarchive

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"

	"github.com/lookout-ml/lookout/pkg/event"
	lookoutv1 "github.com/lookout-ml/lookout/proto/lookout/v1"
)

// Stats describe what Encode or WriteFile wrote.
type Stats struct {
	Rows int
	// TypeConflicts counts feature values written to the extra leaf of a
	// feature whose type changed within the file.
	TypeConflicts int
	Bytes         int64
}

// Encode writes rows as one Parquet file to w, in the order given. It
// returns an error when rows is empty or the writer fails.
func Encode(w io.Writer, rows []*event.Prediction) (Stats, error) {
	if len(rows) == 0 {
		return Stats{}, fmt.Errorf("archive encode: no rows")
	}
	lay, err := planLayout(rows)
	if err != nil {
		return Stats{}, err
	}
	cw := &countingWriter{w: w}
	pw := parquet.NewWriter(cw, lay.writerOptions()...)
	stats := Stats{Rows: len(rows)}
	const batch = 512
	buf := make([]parquet.Row, 0, batch)
	for start := 0; start < len(rows); start += batch {
		end := min(start+batch, len(rows))
		buf = buf[:0]
		for _, p := range rows[start:end] {
			var row parquet.Row
			if cap(buf) > len(buf) {
				row = buf[:len(buf)+1][len(buf)][:0]
			}
			row, conflicts := lay.appendRow(row, p)
			stats.TypeConflicts += conflicts
			buf = append(buf, row)
		}
		if _, err := pw.WriteRows(buf); err != nil {
			return stats, fmt.Errorf("archive encode: %w", err)
		}
	}
	if err := pw.Close(); err != nil {
		return stats, fmt.Errorf("archive encode: %w", err)
	}
	stats.Bytes = cw.n
	return stats, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// bytesOf returns the bytes of s without copying; the writer only reads
// them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func str(s string, col int) parquet.Value {
	return parquet.ByteArrayValue(bytesOf(s)).Level(0, 0, col)
}

func optional(v parquet.Value, present bool, col int) parquet.Value {
	if !present {
		return parquet.NullValue().Level(0, 0, col)
	}
	return v.Level(0, 1, col)
}

// appendRow appends p's values to row in column order and returns the
// number of feature values that went to a conflict leaf.
func (l *layout) appendRow(row parquet.Row, p *event.Prediction) (parquet.Row, int) {
	return l.appendLabelledRow(row, p, nil)
}

// appendLabelledRow is appendRow with an export's label columns (lab nil:
// no label).
func (l *layout) appendLabelledRow(row parquet.Row, p *event.Prediction, lab *Label) (parquet.Row, int) {
	conflicts := 0
	for col, kind := range l.kinds {
		switch kind {
		case colLabelValue:
			n, ok := lab.value().GetKind().(*lookoutv1.Value_Number)
			var v parquet.Value
			if ok {
				v = parquet.DoubleValue(n.Number)
			}
			row = append(row, optional(v, ok, col))
		case colLabelLabel:
			t, ok := lab.value().GetKind().(*lookoutv1.Value_Text)
			var v parquet.Value
			if ok {
				v = parquet.ByteArrayValue(bytesOf(t.Text))
			}
			row = append(row, optional(v, ok, col))
		case colHelpful:
			ok := lab != nil && lab.Helpful != nil
			var v parquet.Value
			if ok {
				v = parquet.BooleanValue(*lab.Helpful)
			}
			row = append(row, optional(v, ok, col))
		case colFeedbackTS:
			ok := lab != nil
			var v parquet.Value
			if ok {
				v = parquet.Int64Value(floorDiv(lab.TsUnixNano, 1000))
			}
			row = append(row, optional(v, ok, col))
		case colID:
			row = append(row, str(p.GetId(), col))
		case colRequestID:
			row = append(row, optional(parquet.ByteArrayValue(bytesOf(p.GetRequestId())), p.GetRequestId() != "", col))
		case colModel:
			row = append(row, str(p.GetModel(), col))
		case colVersion:
			row = append(row, str(p.GetVersion(), col))
		case colRole:
			row = append(row, str(p.GetRole(), col))
		case colTS:
			row = append(row, parquet.Int64Value(floorDiv(p.GetTsUnixNano(), 1000)).Level(0, 0, col))
		case colPredictionValue:
			n, ok := p.GetPrediction().GetKind().(*lookoutv1.Value_Number)
			var v parquet.Value
			if ok {
				v = parquet.DoubleValue(n.Number)
			}
			row = append(row, optional(v, ok, col))
		case colPredictionLabel:
			t, ok := p.GetPrediction().GetKind().(*lookoutv1.Value_Text)
			var v parquet.Value
			if ok {
				v = parquet.ByteArrayValue(bytesOf(t.Text))
			}
			row = append(row, optional(v, ok, col))
		case colConfidence:
			row = append(row, optional(parquet.DoubleValue(p.GetConfidence()), p.Confidence != nil, col))
		case colLatency:
			row = append(row, optional(parquet.DoubleValue(p.GetLatencyMs()), p.LatencyMs != nil, col))
		case colScoresKey, colScoresValue:
			row = appendMapColumn(row, sortedKeys(p.GetScores()), col, kind == colScoresKey, func(k string) parquet.Value {
				return parquet.DoubleValue(p.Scores[k])
			})
		case colTagsKey, colTagsValue:
			row = appendMapColumn(row, sortedKeys(p.GetTags()), col, kind == colTagsKey, func(k string) parquet.Value {
				return parquet.ByteArrayValue(bytesOf(p.Tags[k]))
			})
		case colEmbedding:
			// An optional list: null (definition level 0) when the
			// prediction has no such embedding, else one value per
			// element (level 2), the first with repetition level 0.
			values := p.GetEmbeddings()[l.leaves[col].feature].GetValues()
			if len(values) == 0 {
				row = append(row, parquet.NullValue().Level(0, 0, col))
				continue
			}
			for i, x := range values {
				rep := 1
				if i == 0 {
					rep = 0
				}
				row = append(row, parquet.DoubleValue(x).Level(rep, 2, col))
			}
		case colFeature:
			leaf := l.leaves[col]
			v := p.GetFeatures()[leaf.feature]
			t, ok := typeOf(v)
			if !ok || t != leaf.typ {
				row = append(row, parquet.NullValue().Level(0, 0, col))
				continue
			}
			if leaf.leaf != leaf.feature {
				conflicts++
			}
			var pv parquet.Value
			switch k := v.GetKind().(type) {
			case *lookoutv1.Value_Number:
				pv = parquet.DoubleValue(k.Number)
			case *lookoutv1.Value_Text:
				pv = parquet.ByteArrayValue(bytesOf(k.Text))
			case *lookoutv1.Value_Flag:
				pv = parquet.BooleanValue(k.Flag)
			}
			row = append(row, pv.Level(0, 1, col))
		}
	}
	return row, conflicts
}

// appendMapColumn appends the key or value column of an optional map: one
// null for an empty map, else one value per entry (definition level 2, the
// first with repetition level 0, the rest 1).
func appendMapColumn(row parquet.Row, keys []string, col int, isKey bool, value func(string) parquet.Value) parquet.Row {
	if len(keys) == 0 {
		return append(row, parquet.NullValue().Level(0, 0, col))
	}
	for i, k := range keys {
		rep := 1
		if i == 0 {
			rep = 0
		}
		var v parquet.Value
		if isKey {
			v = parquet.ByteArrayValue(bytesOf(k))
		} else {
			v = value(k)
		}
		row = append(row, v.Level(rep, 2, col))
	}
	return row
}

func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// WriteOptions tune WriteFile.
type WriteOptions struct {
	// BeforeRename, when set, runs after the temporary file is complete and
	// synced and before it takes its final name; an error stops the write
	// and removes the temporary file. The archive service records the file
	// in its journal here.
	BeforeRename func() error
}

// TempPrefix starts the name of every temporary file WriteFile creates; a
// temporary name never ends in .parquet.
const TempPrefix = ".tmp-"

// WriteFile writes rows to path atomically: to a temporary file in the same
// folder (TempPrefix + the final name + a random suffix), synced, renamed to
// path, and the folder synced. A reader sees the complete file at path or
// nothing. It creates missing folders. It returns an error when path
// already exists, so a file is never replaced.
func WriteFile(path string, rows []*event.Prediction, opts WriteOptions) (Stats, error) {
	dir := filepath.Dir(path)
	if err := mkdirAllSync(dir); err != nil {
		return Stats{}, fmt.Errorf("archive write: %w", err)
	}
	if _, err := os.Lstat(path); err == nil {
		return Stats{}, fmt.Errorf("archive write: %s: %w", path, os.ErrExist)
	}
	tmp, err := os.CreateTemp(dir, TempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return Stats{}, fmt.Errorf("archive write: %w", err)
	}
	tmpName := tmp.Name()
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	bw := bufio.NewWriterSize(tmp, 256<<10)
	stats, err := Encode(bw, rows)
	if err != nil {
		return stats, fmt.Errorf("archive write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return stats, fmt.Errorf("archive write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return stats, fmt.Errorf("archive write %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return stats, fmt.Errorf("archive write %s: %w", path, err)
	}
	if opts.BeforeRename != nil {
		if err := opts.BeforeRename(); err != nil {
			return stats, fmt.Errorf("archive write %s: %w", path, err)
		}
	}
	if err := os.Rename(tmpName, path); err != nil {
		return stats, fmt.Errorf("archive write: %w", err)
	}
	committed = true
	if err := syncDir(dir); err != nil {
		return stats, fmt.Errorf("archive write %s: %w", path, err)
	}
	return stats, nil
}

// mkdirAllSync creates dir and its missing parents, syncing each parent so
// that the new entries survive a power loss.
func mkdirAllSync(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	return syncDir(parent)
}

// syncDir fsyncs a folder, making renames and creations in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// RemoveTemp deletes the temporary files WriteFile left under root (after
// a crash), and returns how many it removed.
func RemoveTemp(root string) (int, error) {
	n := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), TempPrefix) {
			if err := os.Remove(path); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("archive remove temp: %w", err)
	}
	return n, nil
}

// TimeFormat is the format of the times in a file name: UTC, to the
// second, without characters that file systems or shells mind
// (20261124T100000Z).
const TimeFormat = "20060102T150405Z"

// FileName returns the name of an archive file: the first row time
// rounded down and the last one rounded up to the second (TimeFormat), so
// that every row's ts lies within the times of its name (a row at
// 23:59:59.7 is in a file named up to 000000Z of the next day, in its own
// day's folder), and a sequence number that keeps names unique.
func FileName(first, last time.Time, seq uint64) string {
	end := last.UTC().Truncate(time.Second)
	if end.Before(last) {
		end = end.Add(time.Second)
	}
	return first.UTC().Truncate(time.Second).Format(TimeFormat) + "_" + end.Format(TimeFormat) + "_" +
		fmt.Sprintf("%010d", seq) + ".parquet"
}

// Dir returns the folder of one model's files for one UTC date:
// <root>/model=<model>/date=<YYYY-MM-DD>.
func Dir(root, model string, date time.Time) string {
	return filepath.Join(root, "model="+model, "date="+date.UTC().Format(time.DateOnly))
}

// Date returns the UTC date (midnight) of a prediction's timestamp.
func Date(p *event.Prediction) time.Time {
	return event.Time(p).Truncate(24 * time.Hour)
}

// SplitByDate splits rows by the UTC date of their ts, keeping their order
// within each date; the dates come out in order.
func SplitByDate(rows []*event.Prediction) []DateRows {
	var out []DateRows
	index := map[int64]int{}
	for _, p := range rows {
		d := Date(p)
		i, ok := index[d.Unix()]
		if !ok {
			i = len(out)
			index[d.Unix()] = i
			out = append(out, DateRows{Date: d})
		}
		out[i].Rows = append(out[i].Rows, p)
	}
	slices.SortFunc(out, func(a, b DateRows) int { return a.Date.Compare(b.Date) })
	return out
}

// DateRows are the rows of one UTC date.
type DateRows struct {
	Date time.Time
	Rows []*event.Prediction
}

// TimeRange returns the earliest and latest ts of rows.
func TimeRange(rows []*event.Prediction) (first, last time.Time) {
	lo, hi := rows[0].GetTsUnixNano(), rows[0].GetTsUnixNano()
	for _, p := range rows[1:] {
		lo = min(lo, p.GetTsUnixNano())
		hi = max(hi, p.GetTsUnixNano())
	}
	return time.Unix(0, lo).UTC(), time.Unix(0, hi).UTC()
}
