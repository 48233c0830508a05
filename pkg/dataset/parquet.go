package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/lookout-ml/lookout/pkg/driftreport"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
)

// loadParquet reads archive files (a file, or every file below a folder).
// Each file is checked by pkg/archive, then read column by column, which
// is several times faster than building a prediction per row. A file with
// a feature of changing type (extra typed leaves) or with both numeric and
// label predictions is read row by row with pkg/archive's reader instead,
// so that a row's value in one leaf is not also counted as a null in the
// other.
func loadParquet(ctx context.Context, path string, d *driftreport.Dataset, opts Options, info *Info) error {
	files, err := parquetarchive.ExpandPathsContext(ctx, []string{path})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	ropts := parquetarchive.ReadOptions{Model: opts.Model}
	for _, file := range files {
		if ropts.SkipPath(file) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		af, err := parquetarchive.OpenContext(ctx, file) // checks the schema; errors name the file
		if err != nil {
			return err
		}
		af.Close()
		ok, err := loadColumns(ctx, file, d, opts, info)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		var add Adder
		err = parquetarchive.ReadFile(ctx, file, ropts, func(p *event.Prediction) error {
			if !opts.keepRole(p.GetRole()) {
				return nil
			}
			add.Add(d, d, p)
			info.see(p.GetTsUnixNano())
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// loadColumns reads one archive file column by column. It returns false,
// having added nothing, when the file needs the row reader.
func loadColumns(ctx context.Context, path string, d *driftreport.Dataset, opts Options, info *Info) (bool, error) {
	f, err := parquetarchive.OpenObject(ctx, path) // local, or ranged GETs of an s3:// object
	if err != nil {
		return false, err
	}
	defer f.Close()
	pf, err := parquet.OpenFile(f, f.Size(), parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true), parquet.ReadBufferSize(1<<20))
	if err != nil {
		return false, fmt.Errorf("%s: not a readable Parquet file: %w", path, err)
	}
	if meta, ok := pf.Lookup(parquetarchive.MetaFeatureColumns); ok && meta != "" && meta != "{}" && meta != "null" {
		return false, nil
	}
	schema := pf.Schema()
	type leaf struct {
		index int
		col   *driftreport.Column // nil for the special columns below
	}
	var features []leaf
	for _, p := range schema.Columns() {
		if len(p) == 2 && p[0] == parquetarchive.ColFeatures {
			lc, _ := schema.Lookup(p...)
			features = append(features, leaf{index: lc.ColumnIndex})
		}
	}
	index := func(name string) int {
		if lc, ok := schema.Lookup(name); ok {
			return lc.ColumnIndex
		}
		return -1
	}
	modelCol, tsCol, roleCol := index(parquetarchive.ColModel), index(parquetarchive.ColTS), index(parquetarchive.ColRole)
	valueCol, labelCol, confCol := index(parquetarchive.ColPredictionValue), index(parquetarchive.ColPredictionLabel), index(parquetarchive.ColConfidence)
	tsMul := int64(1000)
	if tsCol >= 0 {
		lc, _ := schema.Lookup(parquetarchive.ColTS)
		if lt := lc.Node.Type().LogicalType(); lt != nil {
			ts, _ := lt.Value.(*format.TimestampType)
			var unit any
			if ts != nil {
				unit = ts.Unit.Value
			}
			switch unit.(type) {
			case *format.MilliSeconds:
				tsMul = 1e6
			case *format.NanoSeconds:
				tsMul = 1
			}
		}
	}
	paths := schema.Columns()
	groups := pf.RowGroups()

	// Row masks for the model and role filters (nil: keep every row), and whether
	// any row has a label prediction.
	masks := make([][]bool, len(groups))
	for g, rg := range groups {
		if labelCol >= 0 {
			labels := 0
			if err := eachValue(rg.ColumnChunks()[labelCol], func(v parquet.Value) {
				if !v.IsNull() {
					labels++
				}
			}); err != nil {
				return false, fmt.Errorf("%s: %w", path, err)
			}
			if labels > 0 {
				return false, nil
			}
		}
		var mask []bool
		all := true
		filter := func(col int, keep func(string) bool) error {
			i := 0
			return eachValue(rg.ColumnChunks()[col], func(v parquet.Value) {
				k := keep(string(v.ByteArray()))
				if i == len(mask) {
					mask = append(mask, k)
				} else {
					mask[i] = mask[i] && k
				}
				all = all && k
				i++
			})
		}
		if opts.Model != "" && modelCol >= 0 {
			if err := filter(modelCol, func(m string) bool { return m == opts.Model }); err != nil {
				return false, fmt.Errorf("%s: %w", path, err)
			}
		}
		if opts.Role != "" && roleCol >= 0 {
			if err := filter(roleCol, opts.keepRole); err != nil {
				return false, fmt.Errorf("%s: %w", path, err)
			}
		}
		if !all {
			masks[g] = mask
		}
	}

	// Room for every value up front: appending a value at a time to a
	// growing slice costs more than reading it.
	sampleCap := opts.Sample.Cap
	if sampleCap <= 0 {
		sampleCap = driftreport.DefaultSampleCap
	}
	room := int(min(pf.NumRows(), int64(sampleCap)))
	for i := range features {
		c := d.Column(paths[features[i].index][1])
		features[i].col = c
		if c.Len() == 0 && c.Numbers == nil {
			c.Numbers = make([]float64, 0, room)
		}
	}
	if d.Prediction == nil {
		d.Prediction = driftreport.NewColumn(0, nil)
	}
	for g, rg := range groups {
		mask := masks[g]
		kept := func(i int) bool { return mask == nil || mask[i] }
		n := int(rg.NumRows())
		if mask != nil {
			n = 0
			for _, k := range mask {
				if k {
					n++
				}
			}
		}
		d.Rows += n
		chunks := rg.ColumnChunks()
		for _, fl := range features {
			if err := addChunk(fl.col, chunks[fl.index], mask); err != nil {
				return false, fmt.Errorf("%s: %w", path, err)
			}
		}
		if valueCol >= 0 {
			if err := addChunk(d.Prediction, chunks[valueCol], mask); err != nil {
				return false, fmt.Errorf("%s: %w", path, err)
			}
		} else {
			for range n {
				d.Prediction.AddNull()
			}
		}
		if confCol >= 0 {
			i := 0
			if err := eachValue(chunks[confCol], func(v parquet.Value) {
				if kept(i) && !v.IsNull() {
					d.Confidence.AddNumber(number(v))
				}
				i++
			}); err != nil {
				return false, fmt.Errorf("%s: %w", path, err)
			}
		}
		if tsCol >= 0 {
			i := 0
			if err := eachValue(chunks[tsCol], func(v parquet.Value) {
				if kept(i) && !v.IsNull() {
					info.see(v.Int64() * tsMul)
				}
				i++
			}); err != nil {
				return false, fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	return true, nil
}

// addChunk adds the values of a column chunk to a column, leaving out the
// rows that mask (when not nil) drops. Numbers are added in batches.
func addChunk(c *driftreport.Column, chunk parquet.ColumnChunk, mask []bool) error {
	var numbers []float64
	row := 0
	return eachBatch(chunk, func(values []parquet.Value) {
		numbers = numbers[:0]
		for _, v := range values {
			keep := mask == nil || mask[row]
			row++
			if !keep {
				continue
			}
			switch v.Kind() {
			case parquet.Double, parquet.Float, parquet.Int32, parquet.Int64:
				if v.IsNull() {
					c.AddNull()
				} else {
					numbers = append(numbers, number(v))
				}
			default:
				addParquet(c, v)
			}
		}
		c.AddNumbers(numbers)
	})
}

// eachValue calls fn with every value of a column chunk, nulls included.
func eachValue(chunk parquet.ColumnChunk, fn func(parquet.Value)) error {
	return eachBatch(chunk, func(values []parquet.Value) {
		for _, v := range values {
			fn(v)
		}
	})
}

// eachBatch calls fn with the values of a column chunk, a batch at a time.
func eachBatch(chunk parquet.ColumnChunk, fn func([]parquet.Value)) error {
	pages := chunk.Pages()
	defer pages.Close()
	buf := make([]parquet.Value, 1024)
	for {
		page, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read column %d: %w", chunk.Column(), err)
		}
		values := page.Values()
		for {
			n, err := values.ReadValues(buf)
			if n > 0 {
				fn(buf[:n])
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				parquet.Release(page)
				return fmt.Errorf("read column %d: %w", chunk.Column(), err)
			}
		}
		parquet.Release(page)
	}
}

// addParquet adds one Parquet value to a column.
func addParquet(c *driftreport.Column, v parquet.Value) {
	switch {
	case v.IsNull():
		c.AddNull()
	case v.Kind() == parquet.ByteArray:
		c.AddString(string(v.ByteArray()))
	case v.Kind() == parquet.Boolean:
		c.AddBool(v.Boolean())
	default:
		c.AddNumber(number(v))
	}
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
