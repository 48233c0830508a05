package dataset

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lookout-ml/lookout/pkg/driftreport"
)

// CSV columns with a meaning of their own; every other column is a feature.
// A tag.<name> column is the row's tag <name> (as `lookout publish` reads
// CSV), kept with the row sample for root cause, not a feature.
const (
	tagPrefix     = "tag."
	scorePrefix   = "score."
	colTag        = "tag"
	colPrediction = "prediction"
	// colPredictionValue and colPredictionLabel are the archive's names
	// (a CSV exported from it): a number, and a class label that is a
	// category whatever its text.
	colPredictionValue = "prediction_value"
	colPredictionLabel = "prediction_label"
	colConfidence      = "confidence"
	colModel           = "model"
	colTS              = "ts"
	colRole            = "role"
)

// metadataColumns are read past: they describe a row, they are not
// features.
var metadataColumns = map[string]bool{
	"id": true, "request_id": true, "model": true, "version": true,
	"role": true, "ts": true, "latency_ms": true,
}

// csvColumn is what the first pass learns about a column.
type csvColumn struct {
	name    string
	role    string // "feature", "prediction", "confidence", "model", "tag" or "" (skipped)
	numeric bool   // a feature: most non-empty cells are finite numbers; else every one is
	// numbers and texts count the non-empty cells that are and are not
	// finite numbers.
	numbers, texts int
}

// loadCSV reads a CSV file with a header in two passes: the first decides
// which columns are numerical (csvColumn.decide), the second adds the
// rows. An empty cell is a null.
func loadCSV(path string, d *driftreport.Dataset, opts Options, info *Info) error {
	cols, err := scanCSV(path, opts)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := newCSVReader(f)
	if _, err := r.Read(); err != nil {
		return fmt.Errorf("%s: header: %w", path, err)
	}
	// Features in name order, as driftreport.Dataset.Add takes them.
	order := sortedFeatureIndexes(cols)
	modelCol, tsCol, roleCol := -1, -1, -1
	for i, c := range cols {
		switch c.name {
		case colModel:
			modelCol = i
		case colTS:
			tsCol = i
		case colRole:
			roleCol = i
		}
	}
	feature := make([]*driftreport.Column, len(cols))
	for _, i := range order {
		feature[i] = d.Column(cols[i].name)
	}
	if d.Prediction == nil {
		d.Prediction = driftreport.NewColumn(0, nil)
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if opts.Model != "" && modelCol >= 0 && rec[modelCol] != opts.Model {
			continue
		}
		if roleCol >= 0 && !opts.keepRole(strings.TrimSpace(rec[roleCol])) {
			continue
		}
		d.Rows++
		if tsCol >= 0 {
			if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(rec[tsCol])); err == nil {
				info.see(t.UnixNano())
			}
		}
		var row *driftreport.SampledRow
		if d.Sample != nil {
			row = d.Sample.Next()
		}
		for _, i := range order {
			v := addCell(feature[i], rec[i], cols[i].numeric)
			if row != nil {
				row.Set(d.Sample.Index(cols[i].name), v)
			}
		}
		if row != nil {
			row.Tags = csvTags(cols, rec)
		}
		havePrediction := false
		for i, c := range cols {
			switch c.role {
			case colPrediction:
				// One prediction per row: the first non-empty one of
				// prediction, prediction_value and prediction_label.
				if havePrediction || strings.TrimSpace(rec[i]) == "" {
					continue
				}
				havePrediction = true
				addCell(d.Prediction, rec[i], c.numeric)
			case colConfidence:
				cell := strings.TrimSpace(rec[i])
				if cell == "" {
					continue
				}
				v, err := strconv.ParseFloat(cell, 64)
				if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
					line, _ := r.FieldPos(i)
					return fmt.Errorf("%s: line %d: confidence %q is not a number", path, line, rec[i])
				}
				d.Confidence.AddNumber(v)
			}
		}
		if !havePrediction {
			d.Prediction.AddNull()
		}
	}
}

// csvTags returns a row's tags from its tag.<name> columns; an empty cell
// is no tag. Nil when the row has none.
func csvTags(cols []csvColumn, rec []string) map[string]string {
	var tags map[string]string
	for i, c := range cols {
		if c.role != colTag {
			continue
		}
		if v := strings.TrimSpace(rec[i]); v != "" {
			if tags == nil {
				tags = map[string]string{}
			}
			tags[strings.TrimPrefix(c.name, tagPrefix)] = v
		}
	}
	return tags
}

func newCSVReader(f io.Reader) *csv.Reader {
	r := csv.NewReader(f)
	r.ReuseRecord = true
	return r
}

// scanCSV reads the header and decides each column's role and kind.
func scanCSV(path string, opts Options) ([]csvColumn, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := newCSVReader(f)
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty file: want a CSV header", path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	cols := make([]csvColumn, len(header))
	seen := map[string]bool{}
	modelCol, roleCol := -1, -1
	for i, name := range header {
		name = strings.TrimSpace(name)
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff") // a byte-order mark
		}
		if name == "" {
			return nil, fmt.Errorf("%s: header: column %d has no name", path, i+1)
		}
		if seen[name] {
			return nil, fmt.Errorf("%s: header: column %q appears twice", path, name)
		}
		seen[name] = true
		c := csvColumn{name: name, role: "feature", numeric: true}
		switch {
		case name == colPrediction, name == colPredictionValue:
			c.role = colPrediction
		case name == colPredictionLabel:
			c.role = colPrediction
		case name == colConfidence:
			c.role = colConfidence
		case name == colModel:
			c.role = colModel
			modelCol = i
		case strings.HasPrefix(name, tagPrefix) && len(name) > len(tagPrefix):
			c.role = colTag
		case strings.HasPrefix(name, scorePrefix) && len(name) > len(scorePrefix):
			// A class's score, as `lookout publish` reads CSV: not a
			// feature to compare.
			c.role = ""
		case metadataColumns[name]:
			c.role = ""
			if name == colRole {
				roleCol = i
			}
		}
		cols[i] = c
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			for i := range cols {
				cols[i].decide()
			}
			return cols, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if opts.Model != "" && modelCol >= 0 && rec[modelCol] != opts.Model {
			continue
		}
		if roleCol >= 0 && !opts.keepRole(strings.TrimSpace(rec[roleCol])) {
			continue
		}
		for i := range cols {
			cell := strings.TrimSpace(rec[i])
			if cell == "" {
				continue
			}
			if v, err := strconv.ParseFloat(cell, 64); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				cols[i].texts++
			} else {
				cols[i].numbers++
			}
		}
	}
}

// decide sets whether a column is numerical once every cell was counted. A
// feature is numerical when most of its cells are numbers, the others
// stray texts (see driftreport.Column); text-majority, every cell is a
// category as written ("007" stays "007"). A prediction column is
// numerical only when every cell is a number: any text makes it a column
// of class labels, as a label prediction is in the archive
// (prediction_label), numbers like "1" and "0" included; a
// prediction_label column is labels whatever its cells.
func (c *csvColumn) decide() {
	switch {
	case c.name == colPredictionLabel:
		c.numeric = false
	case c.role == colPrediction:
		c.numeric = c.texts == 0
	default:
		c.numeric = c.numbers > c.texts || c.texts == 0
	}
}

// addCell adds one CSV cell to a column: empty is null, else a number in a
// numerical column and the cell's text in a categorical one.
// addCell adds a cell to a column and returns the value it added (nil
// for a null).
func addCell(c *driftreport.Column, cell string, numeric bool) any {
	s := strings.TrimSpace(cell)
	if s == "" {
		c.AddNull()
		return nil
	}
	if numeric {
		if v, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			c.AddNumber(v)
			return v
		}
		// A stray text in a numerical feature: the column keeps it
		// apart and the report counts it as a type mismatch.
	}
	c.AddString(s)
	return s
}

func sortedFeatureIndexes(cols []csvColumn) []int {
	var idx []int
	for i, c := range cols {
		if c.role == "feature" {
			idx = append(idx, i)
		}
	}
	// Insertion sort by name: headers are short.
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && cols[idx[j]].name < cols[idx[j-1]].name; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	return idx
}
