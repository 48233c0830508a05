// Package s3test runs an S3-compatible server in the test process, over
// real HTTP (gofakes3 with its in-memory backend), for tests of the S3
// archive.
package s3test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Server is a running S3 server.
type Server struct {
	// URL is the endpoint, http://127.0.0.1:<port>.
	URL     string
	Backend *s3mem.Backend
	http    *httptest.Server

	mu    sync.Mutex
	fault func(*http.Request) Fault
}

// Fault is what the server does with a request.
type Fault int

const (
	// Serve answers the request.
	Serve Fault = iota
	// Refuse answers 403 Access Denied without doing anything.
	Refuse
	// ServeThenRefuse does the request (a PUT stores its object) and then
	// answers 403, as a store that took a write whose answer got lost.
	ServeThenRefuse
)

// SetFault sets what the server does with each request (nil: serves all).
func (s *Server) SetFault(f func(*http.Request) Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

func (s *Server) faultOf(r *http.Request) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault == nil {
		return Serve
	}
	return s.fault(r)
}

const accessDenied = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`

func (s *Server) serve(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch s.faultOf(r) {
		case Refuse:
		case ServeThenRefuse:
			next.ServeHTTP(httptest.NewRecorder(), r)
		default:
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(accessDenied))
		}
	})
}

// Run starts a server with the given buckets and stops it when the test
// ends. It sets test credentials in the environment (the server does not
// check them, but the client signs with them).
func Run(t testing.TB, buckets ...string) *Server {
	t.Helper()
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	faker := gofakes3.New(backend)
	srv := &Server{Backend: backend}
	hs := httptest.NewServer(srv.serve(faker.Server()))
	t.Cleanup(hs.Close)
	srv.URL, srv.http = hs.URL, hs
	if tt, ok := t.(interface{ Setenv(string, string) }); ok {
		tt.Setenv("AWS_ACCESS_KEY_ID", "lookout-test")
		tt.Setenv("AWS_SECRET_ACCESS_KEY", "lookout-test-secret")
	}
	return srv
}

// Close stops the server before the test ends (a store that went away).
func (s *Server) Close() { s.http.Close() }
