// Package parquetarchive owns the Parquet form of Lookout's prediction archive: the
// schema of a file, an atomic writer of one window's rows, the Hive-style
// layout of files under <data>/archive, and a reader that turns archive
// files and folders back into predictions.
//
// A file's columns are those of CONTRACT.md ("Archive layout"): id,
// request_id, model, version, role, ts (TIMESTAMP(MICROS), UTC),
// prediction_value, prediction_label, confidence, latency_ms, scores (map
// string → double), tags (map string → string) and a features group with
// one optional leaf per feature seen in the file, typed double, string or
// boolean.
//
// A feature whose type changes within one file is kept: its leaf takes the
// type most of its values have, and values of another type go to an extra
// leaf named <name>__<type> (for example age__string). The file's key-value
// metadata "lookout.feature_columns" maps such leaves back to the feature,
// so the reader returns them under the original name.
package parquetarchive

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/format"

	"github.com/lookout-ml/lookout/pkg/event"
	lookoutv1 "github.com/lookout-ml/lookout/proto/lookout/v1"
)

// Column names of an archive file.
const (
	ColID              = "id"
	ColRequestID       = "request_id"
	ColModel           = "model"
	ColVersion         = "version"
	ColRole            = "role"
	ColTS              = "ts"
	ColPredictionValue = "prediction_value"
	ColPredictionLabel = "prediction_label"
	ColConfidence      = "confidence"
	ColLatencyMS       = "latency_ms"
	ColScores          = "scores"
	ColTags            = "tags"
	ColFeatures        = "features"
	// ColEmbeddings is a group with one optional list<double> leaf per
	// embedding name in the file.
	ColEmbeddings = "embeddings"
)

// Key-value metadata written in every archive file's footer.
const (
	// MetaFormat names the layout version ("1").
	MetaFormat = "lookout.archive.format"
	// MetaFeatureColumns is a JSON object mapping feature leaves whose name
	// is not the feature's (the extra leaves of a type conflict) to the
	// feature name.
	MetaFeatureColumns = "lookout.feature_columns"
)

// ValueType is the type of a feature leaf.
type ValueType int

// Feature leaf types, in the order that breaks ties when choosing a
// feature's main type.
const (
	TypeDouble ValueType = iota
	TypeString
	TypeBoolean
)

// String returns the suffix used for the extra leaf of a type conflict.
func (t ValueType) String() string {
	switch t {
	case TypeDouble:
		return "double"
	case TypeString:
		return "string"
	case TypeBoolean:
		return "boolean"
	}
	return fmt.Sprintf("ValueType(%d)", int(t))
}

func (t ValueType) node() parquet.Node {
	switch t {
	case TypeString:
		return parquet.Optional(parquet.String())
	case TypeBoolean:
		return parquet.Optional(parquet.Leaf(parquet.BooleanType))
	}
	return parquet.Optional(parquet.Leaf(parquet.DoubleType))
}

// typeOf returns the leaf type of a feature value; ok is false for null.
func typeOf(v *event.Value) (ValueType, bool) {
	switch v.GetKind().(type) {
	case *lookoutv1.Value_Number:
		return TypeDouble, true
	case *lookoutv1.Value_Text:
		return TypeString, true
	case *lookoutv1.Value_Flag:
		return TypeBoolean, true
	}
	return 0, false
}

// featureLeaf is one leaf of the features group.
type featureLeaf struct {
	leaf    string // column name inside the group
	feature string // the feature it holds
	typ     ValueType
	col     int
}

// columnKind says what an archive column holds.
type columnKind int

const (
	colIgnore columnKind = iota
	colID
	colRequestID
	colModel
	colVersion
	colRole
	colTS
	colPredictionValue
	colPredictionLabel
	colConfidence
	colLatency
	colScoresKey
	colScoresValue
	colTagsKey
	colTagsValue
	colFeature
	// The label columns of an export (EncodeLabelled); never read.
	colLabelValue
	colLabelLabel
	colHelpful
	colFeedbackTS
	colEmbedding
)

// layout is the schema of one file to write, planned from its rows.
type layout struct {
	schema *parquet.Schema
	kinds  []columnKind   // by column index
	leaves []*featureLeaf // by column index; nil outside features
	// byFeature lists each feature's leaves, main type first.
	byFeature map[string][]*featureLeaf
	// aliases maps a conflict leaf to its feature (MetaFeatureColumns).
	aliases map[string]string
}

// planLayout chooses the features group for rows: one leaf per feature,
// typed by the majority of its non-null values (a feature only ever null
// gets a double leaf), plus an extra leaf per other type seen.
func planLayout(rows []*event.Prediction) (*layout, error) { return planLayoutWith(rows, nil) }

// planLayoutWith is planLayout with extra top-level columns, whose kinds
// the caller sets.
func planLayoutWith(rows []*event.Prediction, extra parquet.Group) (*layout, error) {
	counts := map[string]*[3]int{}
	embeddings := parquet.Group{}
	for _, p := range rows {
		for name := range p.GetEmbeddings() {
			if _, ok := embeddings[name]; !ok && name != "" {
				embeddings[name] = parquet.Optional(parquet.List(parquet.Leaf(parquet.DoubleType)))
			}
		}
		for name, v := range p.GetFeatures() {
			c := counts[name]
			if c == nil {
				c = new([3]int)
				counts[name] = c
			}
			if t, ok := typeOf(v); ok {
				c[t]++
			}
		}
	}
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	sort.Strings(names)
	taken := make(map[string]bool, len(names))
	for _, name := range names {
		taken[name] = true
	}
	lay := &layout{byFeature: make(map[string][]*featureLeaf, len(names))}
	features := parquet.Group{}
	for _, name := range names {
		c := counts[name]
		main := TypeDouble
		for t := TypeDouble; t <= TypeBoolean; t++ {
			if c[t] > c[main] {
				main = t
			}
		}
		leaves := []*featureLeaf{{leaf: name, feature: name, typ: main}}
		for t := TypeDouble; t <= TypeBoolean; t++ {
			if t == main || c[t] == 0 {
				continue
			}
			leaf := name + "__" + t.String()
			for taken[leaf] {
				leaf += "_"
			}
			taken[leaf] = true
			leaves = append(leaves, &featureLeaf{leaf: leaf, feature: name, typ: t})
			if lay.aliases == nil {
				lay.aliases = map[string]string{}
			}
			lay.aliases[leaf] = name
		}
		for _, l := range leaves {
			features[l.leaf] = l.typ.node()
		}
		lay.byFeature[name] = leaves
	}
	root := parquet.Group{
		ColID:              parquet.String(),
		ColRequestID:       parquet.Optional(parquet.String()),
		ColModel:           parquet.String(),
		ColVersion:         parquet.String(),
		ColRole:            parquet.String(),
		ColTS:              parquet.Timestamp(parquet.Microsecond),
		ColPredictionValue: parquet.Optional(parquet.Leaf(parquet.DoubleType)),
		ColPredictionLabel: parquet.Optional(parquet.String()),
		ColConfidence:      parquet.Optional(parquet.Leaf(parquet.DoubleType)),
		ColLatencyMS:       parquet.Optional(parquet.Leaf(parquet.DoubleType)),
		ColScores:          parquet.Optional(parquet.Map(parquet.String(), parquet.Leaf(parquet.DoubleType))),
		ColTags:            parquet.Optional(parquet.Map(parquet.String(), parquet.String())),
	}
	for name, node := range extra {
		root[name] = node
	}
	if len(features) > 0 {
		// Parquet has no empty groups: a window without features has no
		// features column at all.
		root[ColFeatures] = features
	}
	if len(embeddings) > 0 {
		root[ColEmbeddings] = embeddings
	}
	lay.schema = parquet.NewSchema("prediction", root)
	kinds, leaves, err := classify(lay.schema, lay.aliases)
	if err != nil {
		return nil, err
	}
	lay.kinds = kinds
	lay.leaves = leaves
	for _, ls := range lay.byFeature {
		for _, l := range ls {
			col, ok := lay.schema.Lookup(ColFeatures, l.leaf)
			if !ok {
				return nil, fmt.Errorf("archive schema: no column for feature %q", l.leaf)
			}
			l.col = col.ColumnIndex
			leaves[l.col] = l
		}
	}
	return lay, nil
}

// classify maps every leaf column of schema to what it holds. Columns it
// does not know are ignored; a known column of the wrong physical type is
// an error.
func classify(schema *parquet.Schema, aliases map[string]string) ([]columnKind, []*featureLeaf, error) {
	paths := schema.Columns()
	kinds := make([]columnKind, len(paths))
	leaves := make([]*featureLeaf, len(paths))
	for _, path := range paths {
		col, ok := schema.Lookup(path...)
		if !ok {
			continue
		}
		kind := kindOf(path)
		if kind == colIgnore {
			continue
		}
		if col.MaxRepetitionLevel > 0 && kind != colScoresKey && kind != colScoresValue && kind != colTagsKey && kind != colTagsValue && kind != colEmbedding {
			return nil, nil, fmt.Errorf("%w: column %s is repeated", ErrSchema, joinPath(path))
		}
		phys := col.Node.Type().Kind()
		want := map[columnKind][]parquet.Kind{
			colID: {parquet.ByteArray}, colRequestID: {parquet.ByteArray}, colModel: {parquet.ByteArray},
			colVersion: {parquet.ByteArray}, colRole: {parquet.ByteArray}, colPredictionLabel: {parquet.ByteArray},
			colScoresKey: {parquet.ByteArray}, colTagsKey: {parquet.ByteArray}, colTagsValue: {parquet.ByteArray},
			colTS:              {parquet.Int64},
			colPredictionValue: numericKinds, colConfidence: numericKinds, colLatency: numericKinds, colScoresValue: numericKinds,
			colFeature:   append(slices.Clone(numericKinds), parquet.ByteArray, parquet.Boolean),
			colEmbedding: numericKinds,
		}[kind]
		if !slices.Contains(want, phys) {
			return nil, nil, fmt.Errorf("%w: column %s has type %s", ErrSchema, joinPath(path), col.Node.Type())
		}
		if kind == colTS {
			if timestampOf(col.Node) == nil {
				return nil, nil, fmt.Errorf("%w: column ts is %s, not a timestamp", ErrSchema, col.Node.Type())
			}
		}
		kinds[col.ColumnIndex] = kind
		if kind == colEmbedding {
			leaves[col.ColumnIndex] = &featureLeaf{leaf: path[1], feature: path[1], typ: TypeDouble, col: col.ColumnIndex}
		}
		if kind == colFeature {
			feature := path[1]
			if name, ok := aliases[feature]; ok {
				feature = name
			}
			typ := TypeDouble
			switch phys {
			case parquet.ByteArray:
				typ = TypeString
			case parquet.Boolean:
				typ = TypeBoolean
			}
			leaves[col.ColumnIndex] = &featureLeaf{leaf: path[1], feature: feature, typ: typ, col: col.ColumnIndex}
		}
	}
	for _, required := range []string{ColID, ColModel, ColVersion, ColTS} {
		if _, ok := schema.Lookup(required); !ok {
			return nil, nil, fmt.Errorf("%w: no %s column", ErrSchema, required)
		}
	}
	_, hasValue := schema.Lookup(ColPredictionValue)
	_, hasLabel := schema.Lookup(ColPredictionLabel)
	if !hasValue && !hasLabel {
		return nil, nil, fmt.Errorf("%w: neither a prediction_value nor a prediction_label column", ErrSchema)
	}
	return kinds, leaves, nil
}

var numericKinds = []parquet.Kind{parquet.Double, parquet.Float, parquet.Int32, parquet.Int64}

func kindOf(path []string) columnKind {
	switch len(path) {
	case 1:
		switch path[0] {
		case ColID:
			return colID
		case ColRequestID:
			return colRequestID
		case ColModel:
			return colModel
		case ColVersion:
			return colVersion
		case ColRole:
			return colRole
		case ColTS:
			return colTS
		case ColPredictionValue:
			return colPredictionValue
		case ColPredictionLabel:
			return colPredictionLabel
		case ColConfidence:
			return colConfidence
		case ColLatencyMS:
			return colLatency
		}
	case 2:
		if path[0] == ColFeatures {
			return colFeature
		}
	case 4:
		if path[0] == ColEmbeddings && path[2] == "list" && path[3] == "element" {
			return colEmbedding
		}
	case 3:
		if path[1] != "key_value" {
			return colIgnore
		}
		switch {
		case path[0] == ColScores && path[2] == "key":
			return colScoresKey
		case path[0] == ColScores && path[2] == "value":
			return colScoresValue
		case path[0] == ColTags && path[2] == "key":
			return colTagsKey
		case path[0] == ColTags && path[2] == "value":
			return colTagsValue
		}
	}
	return colIgnore
}

func joinPath(path []string) string {
	out := ""
	for i, p := range path {
		if i > 0 {
			out += "."
		}
		out += p
	}
	return out
}

func (l *layout) writerOptions() []parquet.WriterOption {
	opts := []parquet.WriterOption{
		l.schema,
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedDefault}),
		parquet.KeyValueMetadata(MetaFormat, "1"),
	}
	if len(l.aliases) > 0 {
		b, _ := json.Marshal(l.aliases)
		opts = append(opts, parquet.KeyValueMetadata(MetaFeatureColumns, string(b)))
	}
	return opts
}

// timestampOf returns the TIMESTAMP annotation of a leaf, or nil.
func timestampOf(node parquet.Node) *format.TimestampType {
	lt := node.Type().LogicalType()
	if lt == nil {
		return nil
	}
	ts, _ := lt.Value.(*format.TimestampType)
	return ts
}
