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
