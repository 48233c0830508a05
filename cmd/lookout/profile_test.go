package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// LOOKOUT_CPUPROFILE and LOOKOUT_MEMPROFILE write pprof files (gzip) when
// the command ends; without them nothing is written.
func TestProfilesFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu"), filepath.Join(dir, "mem")
	t.Setenv("LOOKOUT_CPUPROFILE", cpu)
	t.Setenv("LOOKOUT_MEMPROFILE", mem)
	var stderr bytes.Buffer
	stop := startProfiles(&stderr)
	_ = make([]byte, 1<<20)
	stop()
	if stderr.Len() > 0 {
		t.Fatalf("stderr: %s", stderr.String())
	}
	for _, path := range []string{cpu, mem} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
			t.Fatalf("%s is not a gzipped profile (%d bytes)", path, len(data))
		}
	}

	t.Setenv("LOOKOUT_CPUPROFILE", "")
	t.Setenv("LOOKOUT_MEMPROFILE", "")
	startProfiles(io.Discard)()
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("%d files, want the 2 written above", len(entries))
	}
}
