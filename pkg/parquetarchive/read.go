package parquetarchive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	lookoutv1 "github.com/lookout-ml/lookout/proto/lookout/v1"
)

// ErrSchema means a Parquet file is not shaped like an archive file.
var ErrSchema = errors.New("not an archive schema")

// FileError is an error about one file: not Parquet, truncated, or of the
// wrong schema.
type FileError struct {
	Path string
	Err  error
}

// Error names the file.
func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

// ReadOptions filter what a read returns. The zero value returns every row.
type ReadOptions struct {
	// Model keeps only this model's rows (and skips model=<other> folders).
	Model string
	// From and To keep rows with From <= ts < To; a zero time is no bound.
	// Date folders outside the range are skipped without opening a file.
	From, To time.Time
	// OnFileError, when set, is told about each bad file; returning nil
	// goes on with the next file. Unset, the first bad file ends the read.
	// Errors from fn and from ctx always end it.
	OnFileError func(err *FileError) error
}

// keep reports whether a row passes the filters.
func (o ReadOptions) keep(p *event.Prediction) bool {
	if o.Model != "" && p.GetModel() != o.Model {
		return false
	}
	ts := p.GetTsUnixNano()
	if !o.From.IsZero() && ts < o.From.UnixNano() {
		return false
	}
	if !o.To.IsZero() && ts >= o.To.UnixNano() {
		return false
	}
	return true
}

// SkipPath reports whether the Hive folders in path (model=, date=) rule
// out every row the options keep.
func (o ReadOptions) SkipPath(path string) bool {
	for _, part := range strings.Split(filepath.ToSlash(path), "/") {
		key, value, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		switch key {
		case "model":
			if o.Model != "" && value != o.Model {
				return true
			}
		case "date":
			day, err := time.Parse(time.DateOnly, value)
			if err != nil {
				continue
			}
			if !o.To.IsZero() && !day.Before(o.To) {
				return true
			}
			if !o.From.IsZero() && !day.Add(24*time.Hour).After(o.From) {
				return true
			}
		}
	}
	return false
}

// ExpandPaths turns files and folders into a sorted list of Parquet files:
// a file is kept as given, a folder is walked recursively for *.parquet
// files (temporary files of an unfinished write are left out). A path that
// does not exist is an error. An s3://bucket/prefix path is listed the
// same way (see ConfigureS3); a prefix without Parquet objects is an error.
func ExpandPaths(paths []string) ([]string, error) {
	return ExpandPathsContext(context.Background(), paths)
}

// ExpandPathsContext is ExpandPaths, with ctx bounding the S3 listings.
func ExpandPathsContext(ctx context.Context, paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if IsS3(p) {
			found, err := expandS3(ctx, p)
			if err != nil {
				return nil, err
			}
			out = append(out, found...)
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("archive paths: %w", err)
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if !d.IsDir() && strings.HasSuffix(name, ".parquet") && !strings.HasPrefix(name, TempPrefix) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("archive paths: %w", err)
		}
		slices.Sort(found)
		out = append(out, found...)
	}
	return out, nil
}

// File is an open archive file.
type File struct {
	path   string
	f      Object
	pf     *parquet.File
	kinds  []columnKind
	leaves []*featureLeaf
	tsMul  int64 // nanoseconds per ts unit
}

// Open opens an archive file (a local path or s3://bucket/key) and checks
// its schema. Errors are *FileError.
func Open(path string) (*File, error) { return OpenContext(context.Background(), path) }

// OpenContext is Open; ctx bounds every read of an S3 object.
func OpenContext(ctx context.Context, path string) (*File, error) {
	f, err := OpenObject(ctx, path)
	if err != nil {
		return nil, err
	}
	popts := []parquet.FileOption{parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true)}
	if IsS3(path) {
		// Each read is a GET: read a column chunk in large pieces.
		popts = append(popts, parquet.ReadBufferSize(1<<20))
	}
	pf, err := parquet.OpenFile(f, f.Size(), popts...)
	if err != nil {
		f.Close()
		return nil, &FileError{Path: path, Err: fmt.Errorf("not a readable Parquet file: %w", err)}
	}
	var aliases map[string]string
	if meta, ok := pf.Lookup(MetaFeatureColumns); ok {
		if err := json.Unmarshal([]byte(meta), &aliases); err != nil {
			f.Close()
			return nil, &FileError{Path: path, Err: fmt.Errorf("%w: metadata %s: %v", ErrSchema, MetaFeatureColumns, err)}
		}
	}
	kinds, leaves, err := classify(pf.Schema(), aliases)
	if err != nil {
		f.Close()
		return nil, &FileError{Path: path, Err: err}
	}
	ts, _ := pf.Schema().Lookup(ColTS)
	tsMul := int64(1000)
	switch timestampOf(ts.Node).Unit.Value.(type) {
	case *format.MilliSeconds:
		tsMul = int64(time.Millisecond)
	case *format.NanoSeconds:
		tsMul = 1
	}
	return &File{path: path, f: f, pf: pf, kinds: kinds, leaves: leaves, tsMul: tsMul}, nil
}

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// NumRows returns the number of rows in the file, from its footer.
func (f *File) NumRows() int64 { return f.pf.NumRows() }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// Read calls fn with each row that passes opts' filters, in file order. A
// read error is a *FileError; an error from fn is returned as it is. fn
// owns each prediction it is given.
func (f *File) Read(ctx context.Context, opts ReadOptions, fn func(*event.Prediction) error) error {
	buf := make([]parquet.Row, 256)
	var dec rowDecoder
	for _, rg := range f.pf.RowGroups() {
		rows := rg.Rows()
		for {
			if err := ctx.Err(); err != nil {
				rows.Close()
				return err
			}
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				p := dec.decode(f, row)
				if !opts.keep(p) {
					continue
				}
				if err := fn(p); err != nil {
					rows.Close()
					return err
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rows.Close()
				return &FileError{Path: f.path, Err: fmt.Errorf("read rows: %w", err)}
			}
		}
		if err := rows.Close(); err != nil {
			return &FileError{Path: f.path, Err: err}
		}
	}
	return nil
}

// rowDecoder turns parquet rows into predictions, reusing its scratch
// space.
type rowDecoder struct {
	scoreKeys, tagKeys, tagValues []string
	scoreValues                   []float64
}

func number(v parquet.Value) float64 {
	switch v.Kind() {
	case parquet.Float:
		return float64(v.Float())
	case parquet.Int32:
		return float64(v.Int32())
	case parquet.Int64:
		return float64(v.Int64())
	}
	return v.Double()
}

func (d *rowDecoder) decode(f *File, row parquet.Row) *event.Prediction {
	p := &event.Prediction{}
	d.scoreKeys, d.scoreValues, d.tagKeys, d.tagValues = d.scoreKeys[:0], d.scoreValues[:0], d.tagKeys[:0], d.tagValues[:0]
	for _, v := range row {
		if v.IsNull() {
			continue
		}
		col := v.Column()
		if col < 0 || col >= len(f.kinds) {
			continue
		}
		switch f.kinds[col] {
		case colID:
			p.Id = string(v.ByteArray())
		case colRequestID:
			p.RequestId = string(v.ByteArray())
		case colModel:
			p.Model = string(v.ByteArray())
		case colVersion:
			p.Version = string(v.ByteArray())
		case colRole:
			p.Role = string(v.ByteArray())
		case colTS:
			p.TsUnixNano = proto.Int64(v.Int64() * f.tsMul)
		case colPredictionValue:
			p.Prediction = event.Number(number(v))
		case colPredictionLabel:
			p.Prediction = event.Text(string(v.ByteArray()))
		case colConfidence:
			c := number(v)
			p.Confidence = &c
		case colLatency:
			l := number(v)
			p.LatencyMs = &l
		case colScoresKey:
			d.scoreKeys = append(d.scoreKeys, string(v.ByteArray()))
		case colScoresValue:
			d.scoreValues = append(d.scoreValues, number(v))
		case colTagsKey:
			d.tagKeys = append(d.tagKeys, string(v.ByteArray()))
		case colTagsValue:
			d.tagValues = append(d.tagValues, string(v.ByteArray()))
		case colEmbedding:
			name := f.leaves[col].feature
			if p.Embeddings == nil {
				p.Embeddings = make(map[string]*lookoutv1.Embedding)
			}
			e := p.Embeddings[name]
			if e == nil {
				e = &lookoutv1.Embedding{}
				p.Embeddings[name] = e
			}
			e.Values = append(e.Values, number(v))
		case colFeature:
			leaf := f.leaves[col]
			var val *event.Value
			switch leaf.typ {
			case TypeString:
				val = event.Text(string(v.ByteArray()))
			case TypeBoolean:
				val = event.Flag(v.Boolean())
			default:
				val = event.Number(number(v))
			}
			if p.Features == nil {
				p.Features = make(map[string]*event.Value)
			}
			p.Features[leaf.feature] = val
		}
	}
	if len(d.scoreKeys) > 0 && len(d.scoreKeys) == len(d.scoreValues) {
		p.Scores = make(map[string]float64, len(d.scoreKeys))
		for i, k := range d.scoreKeys {
			p.Scores[k] = d.scoreValues[i]
		}
	}
	if len(d.tagKeys) > 0 && len(d.tagKeys) == len(d.tagValues) {
		p.Tags = make(map[string]string, len(d.tagKeys))
		for i, k := range d.tagKeys {
			p.Tags[k] = d.tagValues[i]
		}
	}
	if p.Role == "" {
		p.Role = event.RoleProduction
	}
	return p
}

// ReadFile opens one file, reads it with opts and closes it.
func ReadFile(ctx context.Context, path string, opts ReadOptions, fn func(*event.Prediction) error) error {
	f, err := OpenContext(ctx, path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Read(ctx, opts, fn)
}

// ReadFiles reads files and folders (see ExpandPaths) in order, calling fn
// with each row that passes opts' filters. Files that the Hive folders of
// their path rule out are not opened. A bad file is a *FileError, given
// to opts.OnFileError when set; a path that does not exist, ctx's error
// and fn's errors end the read.
func ReadFiles(ctx context.Context, paths []string, opts ReadOptions, fn func(*event.Prediction) error) error {
	files, err := ExpandPathsContext(ctx, paths)
	if err != nil {
		return err
	}
	for _, path := range files {
		if opts.SkipPath(path) {
			continue
		}
		err := ReadFile(ctx, path, opts, fn)
		var fe *FileError
		if errors.As(err, &fe) && opts.OnFileError != nil {
			err = opts.OnFileError(fe)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
