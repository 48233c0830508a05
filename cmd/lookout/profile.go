package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles starts the profiles a developer asks for through the
// environment, for measuring speed (BENCHMARKS.md): LOOKOUT_CPUPROFILE
// names a file for a CPU profile of the whole process, LOOKOUT_MEMPROFILE
// one for an allocation profile written at exit. Neither is a flag or an
// endpoint, so nothing is exposed by default. The returned function writes
// and closes them.
func startProfiles(stderr io.Writer) func() {
	var stops []func()
	if path := os.Getenv("LOOKOUT_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "lookout: cpu profile: %v\n", err)
		} else {
			stops = append(stops, func() { pprof.StopCPUProfile(); _ = f.Close() })
		}
	}
	if path := os.Getenv("LOOKOUT_MEMPROFILE"); path != "" {
		runtime.MemProfileRate = 64 << 10
		stops = append(stops, func() {
			f, err := os.Create(path)
			if err != nil {
				fmt.Fprintf(stderr, "lookout: memory profile: %v\n", err)
				return
			}
			defer f.Close()
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				fmt.Fprintf(stderr, "lookout: memory profile: %v\n", err)
			}
		})
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
	}
}
