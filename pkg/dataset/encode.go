package dataset

import (
	"bufio"
	"encoding/gob"
	"fmt"
	"io"

	"github.com/lookout-ml/lookout/pkg/driftreport"
)

// encodingVersion changes when the encoded form does. Version 1 kept a
// categorical column's numbers as strings; version 2 keeps the numbers and
// the strings of a column apart, with StringsSeen.
const encodingVersion = 2

type encodedDataset struct {
	Version    int
	Rows       int
	Features   map[string]encodedColumn
	Prediction *encodedColumn
	Confidence *encodedColumn
	// Sample is the row sample (multivariate drift, root cause); absent
	// in datasets encoded before it existed.
	Sample *encodedRows
	// Embeddings are the embedding samples, by name.
	Embeddings map[string]encodedEmbedding
}

type encodedEmbedding struct {
	Dim        int
	Vectors    [][]float64
	Sum        []float64
	Seen       int
	Mismatched int
}

type encodedRows struct {
	Names []string
	Rows  []driftreport.SampledRow
	Seen  int
}

type encodedColumn struct {
	Categorical bool
	Numbers     []float64
	Strings     []string
	Nulls       int
	Seen        int
	StringsSeen int
	Mixed       bool
}

func encodeColumn(c *driftreport.Column) *encodedColumn {
	if c == nil {
		return nil
	}
	return &encodedColumn{
		Categorical: c.Kind() == driftreport.KindCategorical,
		Numbers:     c.Numbers, Strings: c.Strings,
		Nulls: c.Nulls, Seen: c.Seen, StringsSeen: c.StringsSeen, Mixed: c.Mixed,
	}
}

// Encode writes d in a compact binary form (gob) that Decode reads back,
// sample and counts included.
func Encode(w io.Writer, d *driftreport.Dataset) error {
	e := encodedDataset{
		Version:    encodingVersion,
		Rows:       d.Rows,
		Features:   make(map[string]encodedColumn, len(d.Features)),
		Prediction: encodeColumn(d.Prediction),
		Confidence: encodeColumn(d.Confidence),
	}
	for name, c := range d.Features {
		e.Features[name] = *encodeColumn(c)
	}
	for name, es := range d.Embeddings {
		if e.Embeddings == nil {
			e.Embeddings = make(map[string]encodedEmbedding, len(d.Embeddings))
		}
		e.Embeddings[name] = encodedEmbedding{Dim: es.Dim, Vectors: es.Vectors, Sum: es.Sum, Seen: es.Seen, Mismatched: es.Mismatched}
	}
	if s := d.Sample; s != nil {
		e.Sample = &encodedRows{Names: s.Names, Rows: s.Rows, Seen: s.Seen}
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	if err := gob.NewEncoder(bw).Encode(&e); err != nil {
		return fmt.Errorf("encode dataset: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("encode dataset: %w", err)
	}
	return nil
}

// Decode reads a dataset written by Encode. Its columns sample above
// opts.Cap values, or above the number of values they hold if larger.
func Decode(r io.Reader, opts driftreport.SampleOptions) (*driftreport.Dataset, error) {
	var e encodedDataset
	if err := gob.NewDecoder(bufio.NewReaderSize(r, 256<<10)).Decode(&e); err != nil {
		return nil, fmt.Errorf("decode dataset: %w", err)
	}
	if e.Version != encodingVersion && e.Version != 1 {
		return nil, fmt.Errorf("decode dataset: encoding version %d, want %d", e.Version, encodingVersion)
	}
	d := driftreport.NewDataset(opts)
	d.Rows = e.Rows
	cap := opts.Cap
	if cap <= 0 {
		cap = driftreport.DefaultSampleCap
	}
	restore := func(dst *driftreport.Column, ec *encodedColumn) {
		for _, s := range ec.Strings {
			dst.AddString(s)
		}
		dst.AddNumbers(ec.Numbers)
		dst.Seen = max(ec.Seen, dst.Seen)
		dst.StringsSeen = ec.StringsSeen
		if e.Version == 1 && ec.Categorical {
			// Version 1 turned every value of a categorical column
			// into a string.
			dst.StringsSeen = dst.Seen
		}
		dst.Nulls, dst.Mixed = ec.Nulls, ec.Mixed
	}
	for name, ec := range e.Features {
		c := driftreport.NewColumn(max(cap, len(ec.Numbers), len(ec.Strings)), nil)
		restore(c, &ec)
		d.Features[name] = c
	}
	if e.Prediction != nil {
		d.Prediction = driftreport.NewColumn(max(cap, len(e.Prediction.Numbers), len(e.Prediction.Strings)), nil)
		restore(d.Prediction, e.Prediction)
	}
	if e.Confidence != nil {
		d.Confidence = driftreport.NewColumn(max(cap, len(e.Confidence.Numbers)), nil)
		restore(d.Confidence, e.Confidence)
	}
	if e.Sample != nil {
		rows := driftreport.NewRowSample(max(opts.RowCap, len(e.Sample.Rows)), opts.Seed)
		rows.Merge(&driftreport.RowSample{Names: e.Sample.Names, Rows: e.Sample.Rows, Seen: e.Sample.Seen})
		d.Sample = rows
	}
	for name, ee := range e.Embeddings {
		es := driftreport.NewEmbeddingSample(max(opts.EmbeddingCap, len(ee.Vectors)), opts.Seed)
		es.Merge(&driftreport.EmbeddingSample{Dim: ee.Dim, Vectors: ee.Vectors, Sum: ee.Sum, Seen: ee.Seen, Mismatched: ee.Mismatched})
		if d.Embeddings == nil {
			d.Embeddings = map[string]*driftreport.EmbeddingSample{}
		}
		d.Embeddings[name] = es
	}
	return d, nil
}
