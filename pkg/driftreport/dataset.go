package driftreport

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
)

// DefaultSampleCap is how many values a column keeps before it samples.
const DefaultSampleCap = 100000

// DefaultSeed seeds the reservoir sampling of a dataset whose options name
// no seed, so that the same input gives the same report.
const DefaultSeed = 1

// Kinds of column.
const (
	KindNumerical   = "numerical"
	KindCategorical = "categorical"
)

// Column holds the values of one feature (or of the prediction) in a
// dataset: its numbers and its strings apart, and a count of nulls.
// Booleans are the categories "true" and "false". Its kind is that of most
// of its values (Kind), so that a few stray strings among numbers (or
// numbers among categories) do not change what the feature is: Compare
// leaves the strays out of the statistics and counts them as type
// mismatches.
//
// Past its cap each of the two kinds keeps a uniform random sample of the
// values it was given (reservoir sampling, Algorithm R), so its memory is
// bounded; Seen and StringsSeen still count every value.
type Column struct {
	// Numbers holds the column's numbers.
	Numbers []float64
	// Strings holds the column's strings (categories and booleans).
	Strings []string
	// Nulls counts the null values the column was given.
	Nulls int
	// Seen counts the non-null values the column was given, including
	// those the reservoir dropped.
	Seen int
	// StringsSeen counts the strings among Seen; the rest are numbers.
	StringsSeen int
	// Mixed is true when the column was given both numbers and strings.
	Mixed bool

	cap int
	rng *rand.Rand

	mu     sync.Mutex
	sorted []float64 // cache of sortFinite(Numbers); nil when stale
	// nullCache holds the reference-chunk null distributions computed on
	// this column (as a reference), keyed by its Seen so an Add makes
	// them stale without a lock on the hot path.
	nullCache map[nullKey]nullStats
}

// NewColumn returns an empty column that samples above cap values of each
// kind (cap <= 0 means DefaultSampleCap) with the random source rng (nil
// means one seeded with DefaultSeed).
func NewColumn(cap int, rng *rand.Rand) *Column {
	if cap <= 0 {
		cap = DefaultSampleCap
	}
	if rng == nil {
		rng = rand.New(rand.NewPCG(DefaultSeed, DefaultSeed))
	}
	return &Column{cap: cap, rng: rng}
}

// NumbersSeen counts the numbers the column was given, including those the
// reservoir dropped.
func (c *Column) NumbersSeen() int { return c.Seen - c.StringsSeen }

// Kind returns KindNumerical when most of the column's values are numbers
// (or it has none), else KindCategorical.
func (c *Column) Kind() string {
	if c.categorical() {
		return KindCategorical
	}
	return KindNumerical
}

func (c *Column) categorical() bool {
	return c.StringsSeen > 0 && c.StringsSeen >= c.NumbersSeen()
}

// Sampled reports whether the column dropped values to keep within its cap.
func (c *Column) Sampled() bool { return c.Seen > c.Len() }

// Len returns how many values the column holds, of either kind.
func (c *Column) Len() int { return len(c.Numbers) + len(c.Strings) }

// slot returns where the next value of a reservoir that holds n values and
// was given t goes: an index to append at (== n), an index to replace, or
// -1 to drop it.
func (c *Column) slot(t, n int) int {
	if c.cap <= 0 {
		c.cap = DefaultSampleCap
	}
	if c.rng == nil {
		c.rng = rand.New(rand.NewPCG(DefaultSeed, DefaultSeed))
	}
	c.Seen++
	if t < c.cap {
		return n
	}
	j := c.rng.IntN(t + 1)
	if j < c.cap {
		return j
	}
	return -1
}

// AddNumber adds a number. A NaN or infinite value counts as a null: the
// contract rejects them at ingest.
func (c *Column) AddNumber(v float64) {
	c.AddNumbers([]float64{v})
}

// AddNumbers adds numbers one after the other, as AddNumber does, but
// faster: it drops the sort cache once, not once per value.
func (c *Column) AddNumbers(xs []float64) {
	changed := false
	for _, v := range xs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			c.Nulls++
			continue
		}
		if c.StringsSeen > 0 {
			c.Mixed = true
		}
		i := c.slot(c.NumbersSeen(), len(c.Numbers))
		switch {
		case i < 0:
			continue
		case i == len(c.Numbers):
			c.Numbers = append(c.Numbers, v)
		default:
			c.Numbers[i] = v
		}
		changed = true
	}
	if changed {
		c.invalidate()
	}
}

// AddString adds a category.
func (c *Column) AddString(s string) {
	if c.NumbersSeen() > 0 {
		c.Mixed = true
	}
	i := c.slot(c.StringsSeen, len(c.Strings))
	c.StringsSeen++
	switch {
	case i < 0:
	case i == len(c.Strings):
		c.Strings = append(c.Strings, s)
	default:
		c.Strings[i] = s
	}
}

// AddBool adds a boolean as the category "true" or "false".
func (c *Column) AddBool(b bool) { c.AddString(strconv.FormatBool(b)) }

// AddNull counts a null value.
func (c *Column) AddNull() { c.Nulls++ }

// Add adds a value decoded from JSON or built in Go: nil, a number (any Go
// integer or float type, or json.Number), a string or a bool. It returns an
// error for any other type, and adds nothing then.
func (c *Column) Add(v any) error {
	switch x := v.(type) {
	case nil:
		c.AddNull()
	case float64:
		c.AddNumber(x)
	case float32:
		c.AddNumber(float64(x))
	case int:
		c.AddNumber(float64(x))
	case int8:
		c.AddNumber(float64(x))
	case int16:
		c.AddNumber(float64(x))
	case int32:
		c.AddNumber(float64(x))
	case int64:
		c.AddNumber(float64(x))
	case uint:
		c.AddNumber(float64(x))
	case uint8:
		c.AddNumber(float64(x))
	case uint16:
		c.AddNumber(float64(x))
	case uint32:
		c.AddNumber(float64(x))
	case uint64:
		c.AddNumber(float64(x))
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return fmt.Errorf("column add: %w", err)
		}
		c.AddNumber(f)
	case string:
		c.AddString(x)
	case bool:
		c.AddBool(x)
	case *float64:
		if x == nil {
			c.AddNull()
		} else {
			c.AddNumber(*x)
		}
	case *string:
		if x == nil {
			c.AddNull()
		} else {
			c.AddString(*x)
		}
	default:
		return fmt.Errorf("column add: unsupported type %T", v)
	}
	return nil
}

func (c *Column) invalidate() {
	c.mu.Lock()
	c.sorted = nil
	c.mu.Unlock()
}

// sortedNumbers returns the column's numbers sorted, computing them once
// until the next Add. It is safe for concurrent use by readers.
func (c *Column) sortedNumbers() []float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sorted == nil || len(c.sorted) != len(c.Numbers) {
		c.sorted = sortFinite(c.Numbers)
	}
	return c.sorted
}

// allStrings returns every value the column holds as a category, its
// numbers as their decimal strings.
func (c *Column) allStrings() []string {
	return append(slices.Clip(c.Strings), NumbersAsStrings(c.Numbers)...)
}

// strays counts the column's values not of kind.
func (c *Column) strays(kind string) int {
	if kind == KindCategorical {
		return c.NumbersSeen()
	}
	return c.StringsSeen
}

// NumbersAsStrings formats numbers as the categories a mixed column uses:
// the shortest decimal that reads back as the same number ("42", "0.5").
func NumbersAsStrings(x []float64) []string {
	out := make([]string, len(x))
	for i, v := range x {
		out[i] = formatNumber(v)
	}
	return out
}

func formatNumber(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// SampleOptions configure how a Dataset bounds its memory.
type SampleOptions struct {
	// Cap is how many values each column keeps before it samples;
	// 0 means DefaultSampleCap.
	Cap int
	// Seed seeds the reservoir sampling; 0 means DefaultSeed.
	Seed uint64
	// RowCap is how many whole rows the dataset keeps (Dataset.Sample);
	// 0 means DefaultRowCap.
	RowCap int
	// EmbeddingCap is how many vectors of each embedding the dataset
	// keeps; 0 means DefaultEmbeddingCap.
	EmbeddingCap int
}

// Dataset is one side of a drift comparison: a column per feature, the
// prediction column and the confidence values.
type Dataset struct {
	// Features maps a feature name to its column.
	Features map[string]*Column
	// Prediction holds the predictions: numbers or class labels.
	Prediction *Column
	// Confidence holds the confidence values, nulls left out.
	Confidence *Column
	// Rows counts the rows added with Add. A feature absent from a row
	// counts as null in that row.
	Rows int
	// Sample keeps whole rows (features side by side, and tags) for
	// multivariate drift and root cause; nil leaves those out.
	Sample *RowSample
	// Embeddings holds each embedding's vectors, by name.
	Embeddings map[string]*EmbeddingSample

	cap    int
	embCap int
	seed   uint64
	rng    *rand.Rand
}

// Embedding returns the sample of an embedding, creating it when needed.
func (d *Dataset) Embedding(name string) *EmbeddingSample {
	if d.Embeddings == nil {
		d.Embeddings = make(map[string]*EmbeddingSample)
	}
	e, ok := d.Embeddings[name]
	if !ok {
		e = NewEmbeddingSample(d.embCap, d.seed)
		d.Embeddings[name] = e
	}
	return e
}

// NewDataset returns an empty dataset.
func NewDataset(opts SampleOptions) *Dataset {
	if opts.Cap <= 0 {
		opts.Cap = DefaultSampleCap
	}
	if opts.Seed == 0 {
		opts.Seed = DefaultSeed
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	return &Dataset{
		Features:   make(map[string]*Column),
		Prediction: NewColumn(opts.Cap, rng),
		Confidence: NewColumn(opts.Cap, rng),
		Sample:     NewRowSample(opts.RowCap, opts.Seed),
		cap:        opts.Cap,
		embCap:     opts.EmbeddingCap,
		seed:       opts.Seed,
		rng:        rng,
	}
}

// Column returns the column of a feature, creating it when needed.
func (d *Dataset) Column(name string) *Column {
	if d.Features == nil {
		d.Features = make(map[string]*Column)
	}
	c, ok := d.Features[name]
	if !ok {
		c = NewColumn(d.cap, d.rng)
		d.Features[name] = c
	}
	return c
}

// Row is one prediction as the drift comparison sees it.
type Row struct {
	// Features maps a feature name to a number, string, bool or nil.
	Features map[string]any
	// Prediction is a number or a class label; nil when absent.
	Prediction any
	// Confidence is nil when absent.
	Confidence *float64
	// Tags are the row's tags.
	Tags map[string]string
	// Embeddings are the row's embedding vectors, by name.
	Embeddings map[string][]float64
}

// Add adds one row; it is not safe for concurrent use. It returns an error naming the first value of an
// unsupported type; the row's other values are still added.
func (d *Dataset) Add(r Row) error {
	if d.Prediction == nil {
		d.Prediction = NewColumn(d.cap, d.rng)
	}
	if d.Confidence == nil {
		d.Confidence = NewColumn(d.cap, d.rng)
	}
	d.Rows++
	var row *SampledRow
	if d.Sample != nil {
		row = d.Sample.Next()
	}
	var firstErr error
	for _, name := range sortedKeys(r.Features) {
		if err := d.Column(name).Add(r.Features[name]); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("dataset add: feature %q: %w", name, err)
		}
		if row != nil {
			row.Set(d.Sample.Index(name), r.Features[name])
		}
	}
	if row != nil {
		row.Tags = r.Tags
	}
	for _, name := range sortedKeys(r.Embeddings) {
		d.Embedding(name).Add(r.Embeddings[name])
	}
	if err := d.Prediction.Add(r.Prediction); err != nil && firstErr == nil {
		firstErr = fmt.Errorf("dataset add: prediction: %w", err)
	}
	if r.Confidence != nil {
		d.Confidence.AddNumber(*r.Confidence)
	}
	return firstErr
}

// Sampled reports whether any column of the dataset sampled.
func (d *Dataset) Sampled() bool {
	if d == nil {
		return false
	}
	for _, c := range d.Features {
		if c.Sampled() {
			return true
		}
	}
	return (d.Prediction != nil && d.Prediction.Sampled()) ||
		(d.Confidence != nil && d.Confidence.Sampled())
}

// count returns the dataset's number of rows: Rows when rows were added,
// else the largest column.
func (d *Dataset) count() int {
	if d == nil {
		return 0
	}
	n := d.Rows
	for _, c := range d.Features {
		n = max(n, c.Seen+c.Nulls)
	}
	if d.Prediction != nil {
		n = max(n, d.Prediction.Seen+d.Prediction.Nulls)
	}
	return n
}

// nulls returns a column's nulls, counting rows that lacked the feature.
func (d *Dataset) nulls(c *Column) int {
	return max(c.Nulls, d.count()-c.Seen)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
