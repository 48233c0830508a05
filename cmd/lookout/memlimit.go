package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// memoryFloor is the soft memory limit below which a `lookout run` keeps
// its heap while its live data is small. Go's default (collect when the
// heap doubles) lets a burst of large messages, each garbage a moment
// later, grow the process to several times what it holds; a limit makes the
// collector run before that.
const memoryFloor = 192 << 20

// gcPercent is the GOGC that boundMemory sets under its limit.
const gcPercent = 400

// boundMemory keeps Go's soft memory limit at the larger of memoryFloor
// and three times the live heap, until ctx ends. The floor bounds bursts in
// a small deployment; following the live heap keeps a large one (many
// models, big drift samples) from collecting without pause once its data
// outgrows the floor. A GOMEMLIMIT set by the user wins: then nothing is
// changed.
//
// Under that limit the collector runs when the heap has grown by
// gcPercent of the live heap instead of Go's 100: with a small live heap
// and a stream of short-lived messages, the default collects every few
// megabytes and costs a tenth of the CPU (BENCHMARKS.md), while the limit
// already bounds the memory. A GOGC set by the user wins.
func boundMemory(ctx context.Context) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := func() {
		metrics.Read(sample)
		limit := int64(memoryFloor)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			limit = max(limit, 3*int64(sample[0].Value.Uint64()))
		}
		debug.SetMemoryLimit(limit)
	}
	set()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			set()
		}
	}
}
