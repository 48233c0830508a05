// Package dataset loads the data sets that drift compares: CSV files with a
// header, archive Parquet files, archive folders and JSON lines of
// prediction events. It also turns
// prediction events into drift rows, and stores a driftreport.Dataset as bytes
// (Encode, Decode) so that a reference can be kept in JetStream.
package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
	lookoutv1 "github.com/lookout-ml/lookout/proto/lookout/v1"
)

// Formats of input that Load understands.
const (
	FormatCSV     = "csv"
	FormatParquet = "parquet"
	FormatJSONL   = "jsonl"
)

// Options configure Load.
type Options struct {
	// Sample bounds the dataset's memory (see driftreport.SampleOptions).
	Sample driftreport.SampleOptions
	// Model, when set, keeps only that model's rows of an archive (and
	// of a CSV file with a model column).
	Model string
	// Role, when set, keeps only the rows of that role (production,
	// canary or shadow; a row without a role is production), so that an
	// archive of a canary rollout compares one model's rows.
	Role string
	// Format forces "csv", "parquet" or "jsonl"; empty detects it from the
	// path: a folder is an archive, *.csv is CSV, *.parquet (or a file
	// starting with Parquet's magic bytes) is Parquet, *.jsonl, *.ndjson,
	// *.json (or a file whose first character is '{') is JSON lines of
	// prediction events.
	Format string
}

// keepRole reports whether a row of role passes the role filter.
func (o Options) keepRole(role string) bool {
	if role == "" {
		role = event.RoleProduction
	}
	return o.Role == "" || role == o.Role
}

// Info describes what Load read.
type Info struct {
	// Format is "csv" or "parquet".
	Format string
	// Rows counts the rows read (after the model filter).
	Rows int
	// First and Last are the earliest and latest event times (ts) of the
	// rows; zero when the input has no times.
	First, Last time.Time
}

func (in *Info) see(tsUnixNano int64) {
	if tsUnixNano == 0 {
		return
	}
	t := time.Unix(0, tsUnixNano).UTC()
	if in.First.IsZero() || t.Before(in.First) {
		in.First = t
	}
	if in.Last.IsZero() || t.After(in.Last) {
		in.Last = t
	}
}

// ErrNoRows means the input held no rows (after the model filter).
var ErrNoRows = errors.New("no rows")

// Load reads a data set from a CSV file, a Parquet archive file, or a
// folder of archive files (every window below it). Errors name the path:
// a missing or unreadable file, a file that is not CSV or an archive
// Parquet file, or an input without rows (ErrNoRows).
func Load(ctx context.Context, path string, opts Options) (*driftreport.Dataset, Info, error) {
	format, err := detect(path, opts.Format)
	if err != nil {
		return nil, Info{}, err
	}
	info := Info{Format: format}
	d := driftreport.NewDataset(opts.Sample)
	switch format {
	case FormatCSV:
		err = loadCSV(path, d, opts, &info)
	case FormatParquet:
		err = loadParquet(ctx, path, d, opts, &info)
	case FormatJSONL:
		err = loadJSONL(path, d, opts, &info)
	default:
		return nil, info, fmt.Errorf("%s: unknown format %q (csv, parquet or jsonl)", path, format)
	}
	if err != nil {
		return nil, info, err
	}
	info.Rows = d.Rows
	if d.Rows == 0 {
		if opts.Model != "" {
			return nil, info, fmt.Errorf("%s: %w of model %q", path, ErrNoRows, opts.Model)
		}
		return nil, info, fmt.Errorf("%s: %w", path, ErrNoRows)
	}
	return d, info, nil
}

// detect returns the format of path.
func detect(path, forced string) (string, error) {
	if parquetarchive.IsS3(path) {
		// An s3:// path is an archive in object storage: Parquet only.
		if forced != "" && !strings.EqualFold(forced, FormatParquet) {
			return "", fmt.Errorf("%s: s3:// paths hold Parquet archive files, not %s", path, forced)
		}
		return FormatParquet, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", err // *PathError names the path
	}
	if forced != "" {
		return strings.ToLower(forced), nil
	}
	if st.IsDir() {
		return FormatParquet, nil
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return FormatCSV, nil
	case ".parquet", ".parq":
		return FormatParquet, nil
	case ".jsonl", ".ndjson", ".json":
		return FormatJSONL, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	magic := make([]byte, 512)
	n, _ := io.ReadFull(f, magic)
	magic = magic[:n]
	if bytes.HasPrefix(magic, []byte("PAR1")) {
		return FormatParquet, nil
	}
	// A CSV header never starts with '{'; a JSON object always does.
	if bytes.HasPrefix(bytes.TrimLeft(bytes.TrimPrefix(magic, []byte("\ufeff")), " \t\r\n"), []byte("{")) {
		return FormatJSONL, nil
	}
	return FormatCSV, nil
}

// Adder adds prediction events to datasets. It remembers the sorted
// feature names of the last event, so that events with the same features
// (the usual case) are added without sorting, in the same order as
// driftreport.Dataset.Add. The zero value is ready; it is not safe for
// concurrent use.
type Adder struct {
	names []string
	// sample and index cache the row sample's index of each of names.
	sample *driftreport.RowSample
	index  []int
}

// Add adds one prediction: its features to features (which counts the row)
// and its prediction and confidence to outputs (which counts it too when
// it is another dataset). Either may be nil to leave that part out.
func (a *Adder) Add(features, outputs *driftreport.Dataset, p *event.Prediction) {
	if features != nil {
		a.AddRow(features, p.GetFeatures(), p.GetTags())
		AddEmbeddings(features, p.GetEmbeddings())
	}
	if outputs != nil {
		AddOutputs(outputs, p, outputs != features)
	}
}

// AddFeatures adds one row of features to d and counts the row.
func (a *Adder) AddFeatures(d *driftreport.Dataset, fs map[string]*event.Value) {
	a.AddRow(d, fs, nil)
}

// AddRow adds one row of features to d, counts the row, and offers it with
// its tags to d's row sample.
func (a *Adder) AddRow(d *driftreport.Dataset, fs map[string]*event.Value, tags map[string]string) {
	d.Rows++
	if !a.sameNames(fs) {
		a.names = a.names[:0]
		for name := range fs {
			a.names = append(a.names, name)
		}
		slices.Sort(a.names)
		a.sample = nil
	}
	var row *driftreport.SampledRow
	if d.Sample != nil {
		row = d.Sample.Next()
		if row != nil && a.sample != d.Sample {
			a.sample, a.index = d.Sample, a.index[:0]
			for _, name := range a.names {
				a.index = append(a.index, d.Sample.Index(name))
			}
		}
	}
	for i, name := range a.names {
		v := fs[name]
		AddValue(d.Column(name), v)
		if row != nil {
			switch k := v.GetKind().(type) {
			case *lookoutv1.Value_Number:
				row.SetNumber(a.index[i], k.Number)
			case *lookoutv1.Value_Text:
				row.SetString(a.index[i], k.Text)
			case *lookoutv1.Value_Flag:
				row.SetString(a.index[i], strconv.FormatBool(k.Flag))
			}
		}
	}
	if row != nil {
		row.Tags = tags
	}
}

func (a *Adder) sameNames(fs map[string]*event.Value) bool {
	if len(fs) != len(a.names) {
		return false
	}
	for _, n := range a.names {
		if _, ok := fs[n]; !ok {
			return false
		}
	}
	return true
}

// AddEmbeddings adds a prediction's embedding vectors to d.
func AddEmbeddings(d *driftreport.Dataset, es map[string]*lookoutv1.Embedding) {
	for name, e := range es {
		d.Embedding(name).Add(e.GetValues())
	}
}

// AddOutputs adds a prediction's prediction and confidence to d, and
// counts the row when countRow is true.
func AddOutputs(d *driftreport.Dataset, p *event.Prediction, countRow bool) {
	if countRow {
		d.Rows++
	}
	if d.Prediction == nil {
		d.Prediction = driftreport.NewColumn(0, nil)
	}
	if d.Confidence == nil {
		d.Confidence = driftreport.NewColumn(0, nil)
	}
	AddValue(d.Prediction, p.GetPrediction())
	if p.Confidence != nil {
		d.Confidence.AddNumber(*p.Confidence)
	}
}

// AddValue adds an event value to a column: a number, a text, a flag (the
// category "true" or "false"), or a null (nil or the null value).
func AddValue(c *driftreport.Column, v *event.Value) {
	switch k := v.GetKind().(type) {
	case *lookoutv1.Value_Number:
		c.AddNumber(k.Number)
	case *lookoutv1.Value_Text:
		c.AddString(k.Text)
	case *lookoutv1.Value_Flag:
		c.AddBool(k.Flag)
	default:
		c.AddNull()
	}
}

// RowOf converts a prediction into a drift row: numbers become float64,
// texts strings, flags bools and nulls nil.
func RowOf(p *event.Prediction) driftreport.Row {
	r := driftreport.Row{Features: make(map[string]any, len(p.GetFeatures())), Confidence: p.Confidence}
	for name, v := range p.GetFeatures() {
		r.Features[name] = valueOf(v)
	}
	r.Prediction = valueOf(p.GetPrediction())
	return r
}

func valueOf(v *event.Value) any {
	switch k := v.GetKind().(type) {
	case *lookoutv1.Value_Number:
		return k.Number
	case *lookoutv1.Value_Text:
		return k.Text
	case *lookoutv1.Value_Flag:
		return k.Flag
	}
	return nil
}
