package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tests here start the real binary, as a user would, and talk to it over
// NATS and HTTP.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// lookoutBinary builds bin/lookout once for the whole test run.
func lookoutBinary(tb testing.TB) string {
	tb.Helper()
	if path := os.Getenv("LOOKOUT_BENCH_BINARY"); path != "" {
		// Another build, weighed against this one (BENCHMARKS.md).
		return path
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lookout-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "lookout")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			tb.Logf("%s", out)
		}
	})
	if buildErr != nil {
		tb.Fatalf("build lookout: %v", buildErr)
	}
	return binPath
}

// lookoutProcess is a running `lookout run`.
type lookoutProcess struct {
	cmd      *exec.Cmd
	NATSURL  string
	HTTPAddr string
	DataDir  string
	stderr   *syncBuffer
	done     chan struct{}
	exitErr  error
}

var (
	natsURLLine = regexp.MustCompile(`NATS listening on ((?:nats|tls)://\S+)`)
	httpLine    = regexp.MustCompile(`metrics on http://(\S+)/metrics`)
)

// startLookout runs `lookout run` with an embedded server on free ports and
// a data folder of its own (dataDir, or a new temporary one when empty),
// waits until it serves, and stops it (SIGTERM) when the test ends.
func startLookout(tb testing.TB, dataDir string, args ...string) *lookoutProcess {
	tb.Helper()
	if dataDir == "" {
		dataDir = tb.TempDir()
	}
	all := append([]string{"run", "--listen", "127.0.0.1:-1", "--http", "127.0.0.1:0", "--data", dataDir}, args...)
	cmd := exec.Command(lookoutBinary(tb), all...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p := &lookoutProcess{cmd: cmd, DataDir: dataDir, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		p.exitErr = cmd.Wait()
		close(p.done)
	}()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if m := natsURLLine.FindStringSubmatch(line); m != nil {
				p.NATSURL = m[1]
			}
			if m := httpLine.FindStringSubmatch(line); m != nil {
				p.HTTPAddr = m[1]
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case <-ready:
	case <-p.done:
		tb.Fatalf("lookout run exited early: %v\n%s", p.exitErr, p.stderr.String())
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		tb.Fatalf("lookout run not ready after 60s\n%s", p.stderr.String())
	}
	tb.Cleanup(func() { p.Stop(tb) })
	return p
}

// Stop sends SIGTERM and waits for a clean exit; it reports a non-zero exit
// as a test failure. Stopping a stopped process does nothing.
func (p *lookoutProcess) Stop(tb testing.TB) {
	tb.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.exitErr != nil {
			tb.Errorf("lookout run exited with %v after SIGTERM\n%s", p.exitErr, p.stderr.String())
		}
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		tb.Errorf("lookout run did not stop within 60s of SIGTERM\n%s", p.stderr.String())
	}
}

// Kill ends the process with SIGKILL, as a crash would.
func (p *lookoutProcess) Kill(tb testing.TB) {
	tb.Helper()
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Logs returns what the process wrote to stderr so far.
func (p *lookoutProcess) Logs() string { return p.stderr.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
