// Command driftgen writes the data of the drift benchmark
// (scripts/drift_bench.sh): a reference and a current data set of the same
// numerical features, each as an archive Parquet file, a CSV file and a
// raw little-endian float64 matrix (rows × features, row-major) that
// scripts/drift_bench.py reads with numpy.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
)

func main() {
	rows := flag.Int("rows", 100000, "rows per data set")
	features := flag.Int("features", 20, "numerical features")
	out := flag.String("out", ".", "output `folder`")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	for i, name := range []string{"ref", "cur"} {
		if err := write(filepath.Join(*out, name), *rows, *features, i == 1); err != nil {
			log.Fatal(err)
		}
	}
}

// write makes one data set. In the current one, every fourth feature is
// shifted by 0.2 standard deviations and every fifth is scaled by 1.3.
func write(base string, rows, features int, current bool) error {
	seed := uint64(1)
	if current {
		seed = 2
	}
	rng := rand.New(rand.NewPCG(seed, 42))
	names := make([]string, features)
	for f := range names {
		names[f] = fmt.Sprintf("f%02d", f)
	}
	matrix := make([]float64, rows*features)
	preds := make([]*event.Prediction, rows)
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for r := range rows {
		p := &event.Prediction{
			Id: fmt.Sprintf("%s-%d", filepath.Base(base), r), Model: "bench", Version: "v1", Role: event.RoleProduction,
			TsUnixNano: proto.Int64(start.Add(time.Duration(r) * time.Millisecond).UnixNano()),
			Features:   make(map[string]*event.Value, features),
		}
		for f := range features {
			v := rng.NormFloat64()
			switch {
			case f%3 == 1:
				v = rng.ExpFloat64() // a skewed feature
			case f%3 == 2:
				v = math.Round(10 * rng.Float64()) // a few distinct values, many ties
			}
			if current && f%4 == 0 {
				v += 0.2
			}
			if current && f%5 == 0 {
				v *= 1.3
			}
			matrix[r*features+f] = v
			p.Features[names[f]] = event.Number(v)
		}
		c := 0.5 + 0.5*rng.Float64()
		p.Prediction, p.Confidence = event.Number(rng.Float64()), &c
		preds[r] = p
	}
	_ = os.Remove(base + ".parquet")
	if _, err := parquetarchive.WriteFile(base+".parquet", preds, parquetarchive.WriteOptions{}); err != nil {
		return err
	}
	// CSV
	f, err := os.Create(base + ".csv")
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i, n := range names {
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteString(n)
	}
	w.WriteString(",prediction,confidence\n")
	var buf []byte
	for r := range rows {
		for c := range features {
			if c > 0 {
				w.WriteByte(',')
			}
			buf = strconv.AppendFloat(buf[:0], matrix[r*features+c], 'g', -1, 64)
			w.Write(buf)
		}
		buf = append(buf[:0], ',')
		buf = strconv.AppendFloat(buf, preds[r].Prediction.GetNumber(), 'g', -1, 64)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, *preds[r].Confidence, 'g', -1, 64)
		buf = append(buf, '\n')
		w.Write(buf)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Raw matrix, with a 16-byte header: rows, features (uint64 LE).
	raw := make([]byte, 16+8*len(matrix))
	binary.LittleEndian.PutUint64(raw[0:], uint64(rows))
	binary.LittleEndian.PutUint64(raw[8:], uint64(features))
	for i, v := range matrix {
		binary.LittleEndian.PutUint64(raw[16+8*i:], math.Float64bits(v))
	}
	return os.WriteFile(base+".f64", raw, 0o644)
}
