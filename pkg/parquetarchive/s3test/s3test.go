// Package s3test runs an S3-compatible server in the test process, over
// real HTTP (gofakes3 with its in-memory backend), for tests of the S3
// archive.
package s3test

import (
	"net/http/httptest"
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
	hs := httptest.NewServer(faker.Server())
	t.Cleanup(hs.Close)
	if tt, ok := t.(interface{ Setenv(string, string) }); ok {
		tt.Setenv("AWS_ACCESS_KEY_ID", "lookout-test")
		tt.Setenv("AWS_SECRET_ACCESS_KEY", "lookout-test-secret")
	}
	return &Server{URL: hs.URL, Backend: backend, http: hs}
}

// Close stops the server before the test ends (a store that went away).
func (s *Server) Close() { s.http.Close() }
