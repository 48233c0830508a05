package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHTTPTokenEndToEnd starts a real `lookout run` with http.token_file
// configured: the dashboard and /metrics answer 401 without the token and
// 200 with it, /healthz stays open, every answer has the security headers,
// and the token never appears in the log.
func TestHTTPTokenEndToEnd(t *testing.T) {
	const token = "e2e-Token-7f3a9c"
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "lookout.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("http:\n  token_file: %q\n", tokenFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	lk := startLookout(t, filepath.Join(dir, "data"), "--config", cfg)
	base := "http://" + lk.HTTPAddr

	get := func(path, auth string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(body)
	}

	for _, tc := range []struct {
		path, auth string
		status     int
		body       string // a substring of a 200 answer
	}{
		{"/", "", http.StatusUnauthorized, ""},
		{"/metrics", "", http.StatusUnauthorized, ""},
		{"/api/v1/models", "", http.StatusUnauthorized, ""},
		{"/metrics", "wrong-" + token, http.StatusUnauthorized, ""},
		{"/", token, http.StatusOK, "<title>Lookout</title>"},
		{"/metrics", token, http.StatusOK, "go_goroutines"},
		{"/healthz", "", http.StatusOK, `"status":"ok"`},
	} {
		status, header, body := get(tc.path, tc.auth)
		if status != tc.status {
			t.Errorf("GET %s (token %v): %d, want %d: %.200s", tc.path, tc.auth != "", status, tc.status, body)
			continue
		}
		if tc.status == http.StatusOK && !strings.Contains(body, tc.body) {
			t.Errorf("GET %s: body lacks %q: %.300s", tc.path, tc.body, body)
		}
		if tc.status == http.StatusUnauthorized && header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s: 401 without WWW-Authenticate", tc.path)
		}
		if header.Get("Content-Security-Policy") == "" || header.Get("X-Content-Type-Options") != "nosniff" ||
			header.Get("X-Frame-Options") != "DENY" || header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: security headers missing: %v", tc.path, header)
		}
	}
	if logs := lk.Logs(); strings.Contains(logs, token) {
		t.Fatalf("the token is in the log:\n%s", logs)
	} else if !strings.Contains(logs, "bearer token rejected") {
		t.Fatalf("no log line for the wrong token:\n%s", logs)
	}
}

// TestConfigHTTPSection: the http section is read, its errors carry the
// key path, and a typo inside it is refused.
func TestConfigHTTPSection(t *testing.T) {
	dir := t.TempDir()
	load := func(yaml string) (Config, error) {
		t.Helper()
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return loadConfig(p)
	}
	cfg, err := load("http:\n  token: abc\n")
	if err != nil || cfg.HTTP.Token != "abc" {
		t.Fatalf("token: %+v, %v", cfg.HTTP, err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for yaml, want := range map[string]string{
		fmt.Sprintf("http:\n  token: abc\n  token_file: %q\n", empty): "config: http.token_file: set only one of token and token_file",
		fmt.Sprintf("http:\n  token_file: %q\n", empty):               "config: http.token_file: " + empty + " is empty",
		"http:\n  tokn: abc\n":                                        "field tokn not found",
	} {
		if _, err := load(yaml); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", yaml, err, want)
		}
	}
}
