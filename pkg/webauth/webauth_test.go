package webauth_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/lookout-ml/lookout/pkg/webauth"
)

const token = "t0ken-Secret-42"

// app answers 200 "ok <method> <path>" on every path, as Lookout's mux
// would for its pages, API, metrics and health.
var app = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, "ok "+r.Method+" "+r.URL.Path)
})

// server runs the middleware with token (empty: open) in front of app on a
// real listener; logs go to the returned observer.
func server(t *testing.T, tok string, now func() time.Time) (*httptest.Server, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	srv := httptest.NewServer(webauth.New(webauth.Options{Token: tok, Log: zap.New(core), Now: now}, app))
	t.Cleanup(srv.Close)
	return srv, logs
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, method, u string, header http.Header, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func checkHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": webauth.ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s %s: header %s = %q, want %q", resp.Request.Method, resp.Request.URL.Path, k, got, v)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); strings.Contains(csp, "http") || strings.Contains(csp, "*") {
		t.Errorf("CSP names an external origin: %q", csp)
	}
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func TestTokenRequired(t *testing.T) {
	srv, logs := server(t, token, nil)
	for _, tc := range []struct {
		name   string
		path   string
		header http.Header
		status int
	}{
		// API, metrics and ingest clients get a Bearer challenge ...
		{"metrics without token", "/metrics", nil, http.StatusUnauthorized},
		{"api without token", "/api/v1/models", nil, http.StatusUnauthorized},
		// ... even when they say they accept HTML.
		{"api from a browser", "/api/v1/alerts", http.Header{"Accept": {"text/html"}}, http.StatusUnauthorized},
		{"page without Accept html", "/", nil, http.StatusUnauthorized},
		// A wrong token is no token.
		{"wrong bearer", "/metrics", bearer("nope"), http.StatusUnauthorized},
		{"wrong scheme", "/metrics", http.Header{"Authorization": {"Basic " + token}}, http.StatusUnauthorized},
		// The right one opens every path.
		{"bearer metrics", "/metrics", bearer(token), http.StatusOK},
		{"bearer page", "/models/churn", bearer(token), http.StatusOK},
		{"bearer api", "/api/v1/models", bearer(token), http.StatusOK},
		// Health probes carry no token.
		{"healthz open", "/healthz", nil, http.StatusOK},
		// The icon too (the login form asks for it), and only the icon.
		{"favicon open", "/favicon.ico", nil, http.StatusOK},
		{"assets closed", "/assets/favicon.svg", nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, srv.URL+tc.path, tc.header, "")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if tc.status == http.StatusUnauthorized {
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Fatalf("WWW-Authenticate %q", got)
				}
				if strings.Contains(body, "ok ") {
					t.Fatalf("app answered behind a 401: %q", body)
				}
			} else if body != "ok GET "+tc.path {
				t.Fatalf("body %q", body)
			}
			checkHeaders(t, resp)
		})
	}
	rejected := logs.FilterMessage("http: bearer token rejected").All()
	if len(rejected) == 0 {
		t.Fatal("no log line for a rejected bearer token")
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if strings.Contains(f.String, token) || strings.Contains(f.String, "nope") {
				t.Fatalf("log line carries a token: %+v", e)
			}
		}
	}
}

func TestLoginFormSetsCookie(t *testing.T) {
	srv, logs := server(t, token, nil)
	page := http.Header{"Accept": {"text/html,application/xhtml+xml"}}

	// A browser asking for a page goes to the form, which remembers the page.
	resp, _ := do(t, http.MethodGet, srv.URL+"/models/churn?x=1", page, "")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("page without login: status %d, want 303", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Path != webauth.LoginPath || loc.Query().Get("next") != "/models/churn?x=1" {
		t.Fatalf("redirect to %q", resp.Header.Get("Location"))
	}
	resp, body := do(t, http.MethodGet, srv.URL+loc.String(), page, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<form method="post" action="/login">`) ||
		!strings.Contains(body, `value="/models/churn?x=1"`) {
		t.Fatalf("login form: %d %s", resp.StatusCode, body)
	}
	checkHeaders(t, resp)

	form := func(tok string) string {
		return url.Values{"token": {tok}, "next": {"/models/churn?x=1"}}.Encode()
	}
	post := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {srv.URL}}

	// A wrong token: the form again, 401, no cookie, a log line with the
	// remote address and without the token.
	resp, body = do(t, http.MethodPost, srv.URL+webauth.LoginPath, post, form("guess-"+token))
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 || !strings.Contains(body, "Wrong token") {
		t.Fatalf("wrong token: %d, cookies %v, %s", resp.StatusCode, resp.Cookies(), body)
	}
	failed := logs.FilterMessage("http: failed login").All()
	if len(failed) != 1 || !strings.HasPrefix(failed[0].ContextMap()["remote"].(string), "127.0.0.1:") {
		t.Fatalf("failed login log: %+v", failed)
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if strings.Contains(f.String, token) {
				t.Fatalf("log line carries the token: %+v", e)
			}
		}
	}

	// The right one: a cookie (not the token) and back to the page.
	resp, _ = do(t, http.MethodPost, srv.URL+webauth.LoginPath, post, form(token))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/models/churn?x=1" {
		t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == webauth.CookieName {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("no session cookie in %v", resp.Header["Set-Cookie"])
	}
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Secure || cookie.Path != "/" {
		t.Fatalf("cookie attributes: %+v", cookie)
	}
	if strings.Contains(cookie.Value, token) {
		t.Fatalf("cookie carries the token: %q", cookie.Value)
	}

	withCookie := http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}}
	for _, path := range []string{"/models/churn", "/metrics", "/api/v1/models"} {
		resp, body = do(t, http.MethodGet, srv.URL+path, withCookie, "")
		if resp.StatusCode != http.StatusOK || body != "ok GET "+path {
			t.Fatalf("%s with cookie: %d %q", path, resp.StatusCode, body)
		}
	}
	// A forged or altered cookie is no cookie.
	exp, _, _ := strings.Cut(cookie.Value, ".")
	for _, v := range []string{token, exp + ".00", exp + "1." + strings.Repeat("a", 64), "garbage"} {
		resp, _ = do(t, http.MethodGet, srv.URL+"/metrics", http.Header{"Cookie": {cookie.Name + "=" + v}}, "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("cookie %q: status %d, want 401", v, resp.StatusCode)
		}
	}
}

func TestLoginRedirectStaysOnSite(t *testing.T) {
	srv, _ := server(t, token, nil)
	for _, next := range []string{"//evil.example/x", `/\evil.example`, "https://evil.example/", "javascript:alert(1)", ""} {
		body := url.Values{"token": {token}, "next": {next}}.Encode()
		resp, _ := do(t, http.MethodPost, srv.URL+webauth.LoginPath, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, body)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("next %q: %d to %q, want /", next, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

func TestSessionExpires(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	srv, _ := server(t, token, clock)
	resp, _ := do(t, http.MethodPost, srv.URL+webauth.LoginPath, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		url.Values{"token": {token}}.Encode())
	if len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	c := http.Header{"Cookie": {webauth.CookieName + "=" + resp.Cookies()[0].Value}}
	if resp, _ := do(t, http.MethodGet, srv.URL+"/metrics", c, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("fresh session: %d", resp.StatusCode)
	}
	now = now.Add(webauth.SessionTTL + time.Second)
	if resp, _ := do(t, http.MethodGet, srv.URL+"/metrics", c, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("expired session: %d, want 401", resp.StatusCode)
	}
}

func TestSameOriginOnWrites(t *testing.T) {
	srv, _ := server(t, token, nil)
	resp, _ := do(t, http.MethodPost, srv.URL+webauth.LoginPath, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		url.Values{"token": {token}}.Encode())
	cookie := webauth.CookieName + "=" + resp.Cookies()[0].Value
	host := strings.TrimPrefix(srv.URL, "http://")

	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		method string
		path   string
		header http.Header
		status int
	}{
		// A page elsewhere posting with the user's cookie.
		{"cookie, cross-origin Origin", http.MethodPost, "/api/v1/silences", h("Cookie", cookie, "Origin", "https://evil.example"), http.StatusForbidden},
		{"cookie, cross-site fetch", http.MethodDelete, "/api/v1/silences/1", h("Cookie", cookie, "Sec-Fetch-Site", "cross-site"), http.StatusForbidden},
		{"cookie, foreign Referer", http.MethodPut, "/api/v1/silences/1", h("Cookie", cookie, "Referer", "https://evil.example/page"), http.StatusForbidden},
		// A cookie write that says nothing about where it comes from.
		{"cookie, no origin at all", http.MethodPatch, "/api/v1/silences/1", h("Cookie", cookie), http.StatusForbidden},
		// Lookout's own page.
		{"cookie, same Origin", http.MethodPost, "/api/v1/silences", h("Cookie", cookie, "Origin", srv.URL), http.StatusOK},
		{"cookie, same-origin fetch", http.MethodPost, "/api/v1/silences", h("Cookie", cookie, "Sec-Fetch-Site", "same-origin"), http.StatusOK},
		{"cookie, own Referer", http.MethodPost, "/api/v1/silences", h("Cookie", cookie, "Referer", "http://"+host+"/models/churn"), http.StatusOK},
		// Reads are not checked.
		{"cookie, cross-origin GET", http.MethodGet, "/api/v1/models", h("Cookie", cookie, "Origin", "https://evil.example"), http.StatusOK},
		// Machines posting to /v1/ with the bearer token.
		{"bearer ingest", http.MethodPost, "/v1/predictions/churn", bearer(token), http.StatusOK},
		{"bearer write elsewhere, no origin", http.MethodPost, "/api/v1/silences", bearer(token), http.StatusOK},
		{"bearer write elsewhere, cross-origin", http.MethodPost, "/api/v1/silences", h("Authorization", "Bearer "+token, "Origin", "https://evil.example"), http.StatusForbidden},
		// A login posted from another site.
		{"cross-origin login", http.MethodPost, webauth.LoginPath, h("Origin", "https://evil.example", "Content-Type", "application/x-www-form-urlencoded"), http.StatusForbidden},
		// No credentials: 401 before any origin question.
		{"no credentials", http.MethodPost, "/v1/predictions/churn", nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.path == webauth.LoginPath {
				body = url.Values{"token": {token}}.Encode()
			}
			resp, got := do(t, tc.method, srv.URL+tc.path, tc.header, body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, got)
			}
			if tc.status == http.StatusForbidden && (strings.HasPrefix(got, "ok ") || len(resp.Cookies()) > 0) {
				t.Fatalf("refused request reached the app or logged in: %q %v", got, resp.Cookies())
			}
			checkHeaders(t, resp)
		})
	}
}

func TestNoTokenOpenWithHeaders(t *testing.T) {
	srv, _ := server(t, "", nil)
	// Without a token every path is open and still has the headers.
	for _, path := range []string{"/", "/metrics", "/healthz", "/api/v1/models"} {
		resp, body := do(t, http.MethodGet, srv.URL+path, nil, "")
		if resp.StatusCode != http.StatusOK || body != "ok GET "+path {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
		}
		checkHeaders(t, resp)
	}
	// Machines post without Origin; a browser page elsewhere cannot.
	if resp, _ := do(t, http.MethodPost, srv.URL+"/v1/predictions/churn", nil, "{}"); resp.StatusCode != http.StatusOK {
		t.Fatalf("machine post: %d", resp.StatusCode)
	}
	if resp, _ := do(t, http.MethodPost, srv.URL+"/v1/predictions/churn", http.Header{"Origin": {"https://evil.example"}}, "{}"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin post without token: %d, want 403", resp.StatusCode)
	}
}

func TestConfigTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("token", "  "+token+"\n")
	empty := write("empty", " \n\t")

	for _, tc := range []struct {
		name    string
		cfg     webauth.Config
		secret  string
		wantErr string // a substring; "" means valid
	}{
		{"nothing set: open", webauth.Config{}, "", ""},
		{"token", webauth.Config{Token: token}, token, ""},
		// The file's content, without the newline an editor adds.
		{"token_file trimmed", webauth.Config{TokenFile: good}, token, ""},
		{"both set", webauth.Config{Token: token, TokenFile: good}, "", "token_file: set only one of token and token_file"},
		// An empty file must not silently mean "no token".
		{"empty file", webauth.Config{TokenFile: empty}, "", "token_file: " + empty + " is empty"},
		{"missing file", webauth.Config{TokenFile: filepath.Join(dir, "absent")}, "", "token_file: open"},
		{"token with spaces", webauth.Config{Token: " x"}, "", "token: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				got, err := tc.cfg.Secret()
				if err != nil || got != tc.secret {
					t.Fatalf("Secret() = %q, %v; want %q", got, err, tc.secret)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), strings.SplitN(tc.wantErr, " ", 2)[0]) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), token) {
				t.Fatalf("error carries the token: %v", err)
			}
		})
	}

	// The token read from the file is the one the middleware wants.
	secret, err := webauth.Config{TokenFile: good}.Secret()
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := server(t, secret, nil)
	if resp, _ := do(t, http.MethodGet, srv.URL+"/metrics", bearer(token), ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("token from file: %d", resp.StatusCode)
	}
}

// TestSelfVerifiedPathsSkipTheToken: a webhook that brings its own secret
// (W&B sends one bearer token, its automation's) reaches its handler
// without the listener's token, with a cross-origin check still on
// browsers; every other path still needs the token.
func TestSelfVerifiedPathsSkipTheToken(t *testing.T) {
	srv := httptest.NewServer(webauth.New(webauth.Options{Token: token, SelfVerified: []string{"/v1/hooks/"}}, app))
	t.Cleanup(srv.Close)
	if resp, body := do(t, http.MethodPost, srv.URL+"/v1/hooks/wandb", bearer("the-automations-secret"), "{}"); resp.StatusCode != http.StatusOK || body != "ok POST /v1/hooks/wandb" {
		t.Errorf("hook: %d %q", resp.StatusCode, body)
	}
	if resp, _ := do(t, http.MethodPost, srv.URL+"/v1/predictions/churn", bearer("the-automations-secret"), "{}"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("predictions with the hook's secret: %d, want 401", resp.StatusCode)
	}
	if resp, _ := do(t, http.MethodGet, srv.URL+"/v1/hooksx", nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a path that only starts like the prefix: %d, want 401", resp.StatusCode)
	}
}
