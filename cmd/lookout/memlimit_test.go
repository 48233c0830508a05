package main

import (
	"context"
	"runtime/debug"
	"testing"
)

// boundMemory sets a soft limit of at least memoryFloor, and leaves a
// GOMEMLIMIT the user set alone.
func TestBoundMemory(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // set once, then return

	t.Setenv("GOMEMLIMIT", "")
	debug.SetMemoryLimit(1 << 62)
	boundMemory(ctx)
	if got := debug.SetMemoryLimit(-1); got < memoryFloor || got == 1<<62 {
		t.Fatalf("limit %d, want at least %d", got, memoryFloor)
	}

	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetMemoryLimit(1 << 30)
	boundMemory(ctx)
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Fatalf("limit %d changed although GOMEMLIMIT is set", got)
	}
}

// Under its limit boundMemory collects less often than Go's default
// (gcPercent), unless the user set GOGC.
func TestBoundMemoryGCPercent(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	limit := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(limit)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "")
	boundMemory(ctx)
	if got := debug.SetGCPercent(50); got != gcPercent {
		t.Fatalf("GOGC %d, want %d", got, gcPercent)
	}

	t.Setenv("GOGC", "50")
	boundMemory(ctx)
	if got := debug.SetGCPercent(-1); got != 50 {
		t.Fatalf("GOGC %d changed although the user set GOGC=50", got)
	}
}
