package parquetarchive

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
)

// benchRows returns n predictions shaped like a typical model's: three
// features of each type, a score, tags on some.
func benchRows(n int) []*event.Prediction {
	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	rows := make([]*event.Prediction, n)
	for i := range rows {
		conf := float64(i%100) / 100
		lat := float64(i % 37)
		rows[i] = &event.Prediction{
			Id: fmt.Sprintf("id-%08d", i), Model: "churn", Version: "v1", Role: "production",
			TsUnixNano: proto.Int64(base.Add(time.Duration(i) * time.Millisecond).UnixNano()),
			Features: map[string]*event.Value{
				"age": event.Number(float64(20 + i%60)), "income": event.Number(float64(i%1000) * 37.5), "tenure": event.Number(float64(i % 120)),
				"plan": event.Text([]string{"free", "pro", "team"}[i%3]), "country": event.Text([]string{"fr", "de", "us", "jp"}[i%4]),
				"trial": event.Flag(i%2 == 0),
			},
			Prediction: event.Number(conf), Confidence: &conf, LatencyMs: &lat,
			Scores: map[string]float64{"churn": conf, "stay": 1 - conf},
		}
		if i%5 == 0 {
			rows[i].Tags = map[string]string{"region": "eu"}
		}
	}
	return rows
}

// rawRow is the archive schema as a static struct, for parquet-go's own
// fastest path (pointers keep 0 and false apart from null).
type rawRow struct {
	ID              string             `parquet:"id"`
	RequestID       *string            `parquet:"request_id,optional"`
	Model           string             `parquet:"model"`
	Version         string             `parquet:"version"`
	Role            string             `parquet:"role"`
	TS              time.Time          `parquet:"ts,timestamp(microsecond)"`
	PredictionValue *float64           `parquet:"prediction_value,optional"`
	PredictionLabel *string            `parquet:"prediction_label,optional"`
	Confidence      *float64           `parquet:"confidence,optional"`
	LatencyMS       *float64           `parquet:"latency_ms,optional"`
	Scores          map[string]float64 `parquet:"scores,optional"`
	Tags            map[string]string  `parquet:"tags,optional"`
	Features        struct {
		Age     *float64 `parquet:"age,optional"`
		Country *string  `parquet:"country,optional"`
		Income  *float64 `parquet:"income,optional"`
		Plan    *string  `parquet:"plan,optional"`
		Tenure  *float64 `parquet:"tenure,optional"`
		Trial   *bool    `parquet:"trial,optional"`
	} `parquet:"features"`
}

// RawParquetWrite writes rows with a static-struct GenericWriter: the
// ceiling for what the archive's own writer can do. It converts from
// predictions as part of the work, as any writer must.
func RawParquetWrite(w io.Writer, rows []*event.Prediction) error {
	pw := parquet.NewGenericWriter[rawRow](w, parquet.Compression(&zstd.Codec{Level: zstd.SpeedDefault}))
	buf := make([]rawRow, 0, 512)
	num := func(v *event.Value) *float64 { f := v.GetNumber(); return &f }
	text := func(v *event.Value) *string { s := v.GetText(); return &s }
	for start := 0; start < len(rows); start += 512 {
		buf = buf[:0]
		for _, p := range rows[start:min(start+512, len(rows))] {
			r := rawRow{ID: p.Id, Model: p.Model, Version: p.Version, Role: p.Role, TS: event.Time(p),
				Confidence: p.Confidence, LatencyMS: p.LatencyMs, Scores: p.Scores, Tags: p.Tags}
			v := p.Prediction.GetNumber()
			r.PredictionValue = &v
			f := p.Features
			r.Features.Age, r.Features.Income, r.Features.Tenure = num(f["age"]), num(f["income"]), num(f["tenure"])
			r.Features.Plan, r.Features.Country = text(f["plan"]), text(f["country"])
			trial := f["trial"].GetFlag()
			r.Features.Trial = &trial
			buf = append(buf, r)
		}
		if _, err := pw.Write(buf); err != nil {
			return err
		}
	}
	return pw.Close()
}

const benchN = 100000

// BenchmarkWrite compares parquet-go's static-struct writer with the
// archive's Encode on the same 100,000 rows (one op = all rows).
func BenchmarkWrite(b *testing.B) {
	rows := benchRows(benchN)
	b.Run("raw-parquet-go", func(b *testing.B) {
		for b.Loop() {
			if err := RawParquetWrite(io.Discard, rows); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(benchN*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("archive-encode", func(b *testing.B) {
		for b.Loop() {
			if _, err := Encode(io.Discard, rows); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(benchN*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkRead reads 100,000 rows back into predictions.
func BenchmarkRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.parquet")
	if _, err := WriteFile(path, benchRows(benchN), WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		n := 0
		if err := ReadFile(context.Background(), path, ReadOptions{}, func(*event.Prediction) error { n++; return nil }); err != nil || n != benchN {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(benchN*b.N)/b.Elapsed().Seconds(), "rows/s")
}
