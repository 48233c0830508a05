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
const (
	colPrediction = "prediction"
	colConfidence = "confidence"
	colModel      = "model"
	colTS         = "ts"
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
	role    string // "feature", "prediction", "confidence", "model" or "" (skipped)
	numeric bool   // every non-empty cell is a finite number
}

// loadCSV reads a CSV file with a header in two passes: the first decides
// which columns are numerical (every non-empty cell a finite number), the
// second adds the rows. An empty cell is a null.
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
	modelCol, tsCol := -1, -1
	for i, c := range cols {
		switch c.name {
		case colModel:
			modelCol = i
		case colTS:
			tsCol = i
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
		d.Rows++
		if tsCol >= 0 {
			if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(rec[tsCol])); err == nil {
				info.see(t.UnixNano())
			}
		}
		for _, i := range order {
			addCell(feature[i], rec[i], cols[i].numeric)
		}
		havePrediction := false
		for i, c := range cols {
			switch c.role {
			case colPrediction:
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
	modelCol := -1
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
		case name == colPrediction:
			c.role = colPrediction
		case name == colConfidence:
			c.role = colConfidence
		case name == colModel:
			c.role = colModel
			modelCol = i
		case metadataColumns[name]:
			c.role = ""
		}
		cols[i] = c
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return cols, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if opts.Model != "" && modelCol >= 0 && rec[modelCol] != opts.Model {
			continue
		}
		for i := range cols {
			if !cols[i].numeric {
				continue
			}
			cell := strings.TrimSpace(rec[i])
			if cell == "" {
				continue
			}
			if v, err := strconv.ParseFloat(cell, 64); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				cols[i].numeric = false
			}
		}
	}
}

// addCell adds one CSV cell to a column: empty is null, else a number in a
// numerical column and the cell's text in a categorical one.
func addCell(c *driftreport.Column, cell string, numeric bool) {
	s := strings.TrimSpace(cell)
	if s == "" {
		c.AddNull()
		return
	}
	if numeric {
		v, _ := strconv.ParseFloat(s, 64) // checked by scanCSV
		c.AddNumber(v)
		return
	}
	c.AddString(s)
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
