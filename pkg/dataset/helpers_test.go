package dataset

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/parquetarchive"
)

// writeBenchFile writes an archive file of rows predictions with the given
// number of normal features.
func writeBenchFile(tb testing.TB, rows, features int) string {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	preds := make([]*event.Prediction, rows)
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for r := range preds {
		p := &event.Prediction{
			Id: fmt.Sprint(r), Model: "m", Version: "v1", Role: event.RoleProduction,
			TsUnixNano: proto.Int64(start.Add(time.Duration(r) * time.Millisecond).UnixNano()),
			Features:   map[string]*event.Value{}, Prediction: event.Number(rng.Float64()),
		}
		for f := range features {
			p.Features[fmt.Sprintf("f%02d", f)] = event.Number(rng.NormFloat64())
		}
		preds[r] = p
	}
	path := filepath.Join(tb.TempDir(), "bench.parquet")
	if _, err := parquetarchive.WriteFile(path, preds, parquetarchive.WriteOptions{}); err != nil {
		tb.Fatal(err)
	}
	return path
}
