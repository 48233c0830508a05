// Package webauth guards Lookout's HTTP listener: security headers on
// every answer, a shared token (bearer header or a login cookie) on every
// path but /healthz, and a same-origin check on every state-changing
// request.
package webauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Paths and names the middleware owns.
const (
	// LoginPath serves the login form (GET) and takes the token (POST).
	LoginPath = "/login"
	// HealthPath is always open: probes carry no token.
	HealthPath = "/healthz"
	// FaviconPath is open too: a browser asks for the icon on the login
	// form itself, before it holds a cookie, and an icon is no secret.
	FaviconPath = "/favicon.ico"
	// CookieName is the session cookie set by a successful login.
	CookieName = "lookout_session"
	// SessionTTL is how long a login cookie is valid.
	SessionTTL = 12 * time.Hour
)

// ContentSecurityPolicy allows nothing but Lookout's own origin: no
// external scripts, styles, frames or form targets.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Options configure Handler.
type Options struct {
	// Token protects every path but /healthz and /login; empty: open (the
	// security headers and the same-origin check still apply).
	Token string
	// Log gets a line for each failed login or rejected bearer token, with
	// the remote address and never the token. Nil: no log.
	Log *zap.Logger
	// Now is the clock of session expiry; nil: time.Now.
	Now func() time.Time
	// SelfVerified are path prefixes whose handlers verify the caller
	// with a secret of their own (a webhook from W&B sends its own
	// bearer token): the listener's token is not asked of them, since a
	// caller can send one Authorization header only. Their handlers must
	// refuse every request when their secret is not set.
	SelfVerified []string
}

// Handler is the middleware; make it with New.
type Handler struct {
	next   http.Handler
	token  string
	digest [sha256.Size]byte // sha256 of token, compared in constant time
	log    *zap.Logger
	now    func() time.Time
	origin *http.CrossOriginProtection
	self   []string
}

var _ http.Handler = (*Handler)(nil)

// New returns next wrapped by the middleware.
func New(opts Options, next http.Handler) *Handler {
	h := &Handler{next: next, token: opts.Token, log: opts.Log, now: opts.Now, origin: http.NewCrossOriginProtection(), self: opts.SelfVerified}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.digest = sha256.Sum256([]byte(opts.Token))
	return h
}

// how a request proved it may pass.
type auth int

const (
	authNone   auth = iota // no token configured, or no credentials
	authBearer             // Authorization: Bearer
	authCookie             // login cookie
)

// ServeHTTP sets the security headers, then lets r through, answers the
// login form, redirects a browser to it, or refuses (401, 403).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")

	if r.URL.Path == HealthPath || (r.URL.Path == FaviconPath && (r.Method == http.MethodGet || r.Method == http.MethodHead)) {
		h.next.ServeHTTP(w, r)
		return
	}
	if h.token == "" {
		// Open listener: still no cross-site writes from a browser on this
		// machine (a page elsewhere posting to 127.0.0.1). Machine clients
		// send no Origin or Sec-Fetch-Site and pass.
		if err := h.origin.Check(r); err != nil {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		h.next.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == LoginPath {
		h.login(w, r)
		return
	}
	for _, prefix := range h.self {
		if strings.HasPrefix(r.URL.Path, prefix) {
			h.next.ServeHTTP(w, r)
			return
		}
	}

	how := h.authenticate(r)
	if how == authNone {
		h.refuse(w, r)
		return
	}
	if unsafeMethod(r.Method) && !(how == authBearer && strings.HasPrefix(r.URL.Path, "/v1/")) {
		if !h.sameOrigin(r, how) {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
	}
	h.next.ServeHTTP(w, r)
}

// authenticate returns how r proved it knows the token, or authNone.
func (h *Handler) authenticate(r *http.Request) auth {
	if v := r.Header.Get("Authorization"); v != "" {
		scheme, cred, _ := strings.Cut(v, " ")
		if strings.EqualFold(scheme, "Bearer") && h.matches(strings.TrimSpace(cred)) {
			return authBearer
		}
		h.log.Warn("http: bearer token rejected", zap.String("remote", r.RemoteAddr), zap.String("path", r.URL.Path))
		return authNone
	}
	if c, err := r.Cookie(CookieName); err == nil && h.validSession(c.Value) {
		return authCookie
	}
	return authNone
}

// matches compares a presented token with the configured one in constant
// time; hashing first makes the time independent of the lengths too.
func (h *Handler) matches(presented string) bool {
	d := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(d[:], h.digest[:]) == 1
}

// session returns a session value valid until expiry:
// "<unix expiry>.<hex HMAC-SHA256(token, "lookout-session:" expiry)>". It
// is not the token, cannot be turned back into it, stops working when it
// expires and when the token changes, and needs no state on the server.
func (h *Handler) session(expiry time.Time) string {
	exp := strconv.FormatInt(expiry.Unix(), 10)
	return exp + "." + h.mac(exp)
}

func (h *Handler) mac(exp string) string {
	m := hmac.New(sha256.New, []byte(h.token))
	m.Write([]byte("lookout-session:" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// validSession says whether v is an unexpired session made with the token.
func (h *Handler) validSession(v string) bool {
	exp, sum, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !h.now().Before(time.Unix(unix, 0)) {
		return false
	}
	return hmac.Equal([]byte(sum), []byte(h.mac(exp)))
}

// refuse answers a request without valid credentials: a browser asking for
// a page goes to the login form, anything else gets 401 and a Bearer
// challenge.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request) {
	if isBrowserPage(r) {
		target := LoginPath + "?next=" + url.QueryEscape(r.URL.RequestURI())
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="lookout"`)
	http.Error(w, "unauthorized: send Authorization: Bearer <token>", http.StatusUnauthorized)
}

// isBrowserPage says whether r is a browser navigating to a page (and not
// an API, ingest or metrics client).
func isBrowserPage(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, p := range []string{"/api/", "/v1/", "/metrics"} {
		if strings.HasPrefix(r.URL.Path, p) {
			return false
		}
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// sameOrigin says whether a state-changing request came from Lookout's own
// pages. A browser says where a request comes from (Sec-Fetch-Site,
// Origin); net/http's CrossOriginProtection checks those against Host. A
// request saying nothing passes that check (it is not a browser), but a
// cookie is only ever sent by a browser, so a cookie-authenticated write
// must also prove its origin, at the least by a Referer on this host.
func (h *Handler) sameOrigin(r *http.Request, how auth) bool {
	if err := h.origin.Check(r); err != nil {
		return false
	}
	if how != authCookie || r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Origin") != "" {
		return true
	}
	ref, err := url.Parse(r.Header.Get("Referer"))
	return err == nil && ref.Host != "" && ref.Host == r.Host
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Lookout: sign in</title></head>
<body>
<h1>Lookout</h1>
{{if .Failed}}<p><strong>Wrong token.</strong></p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="next" value="{{.Next}}">
<label>Token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
<button type="submit">Sign in</button>
</form>
</body>
</html>
`))

// login serves the form (GET) and checks the token posted to it (POST):
// right, it sets the session cookie and redirects to the page asked for;
// wrong, it logs the remote address and shows the form again with 401.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.loginForm(w, http.StatusOK, safeNext(r.URL.Query().Get("next")), false)
	case http.MethodPost:
		// A login posted from another site would sign the browser in to a
		// session the attacker chose; same rule as every other write.
		if err := h.origin.Check(r); err != nil {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		next := safeNext(r.PostForm.Get("next"))
		if !h.matches(r.PostForm.Get("token")) {
			h.log.Warn("http: failed login", zap.String("remote", r.RemoteAddr))
			h.loginForm(w, http.StatusUnauthorized, next, true)
			return
		}
		expiry := h.now().Add(SessionTTL)
		http.SetCookie(w, &http.Cookie{
			Name:     CookieName,
			Value:    h.session(expiry),
			Path:     "/",
			Expires:  expiry,
			MaxAge:   int(SessionTTL / time.Second),
			HttpOnly: true,
			Secure:   r.TLS != nil,
			SameSite: http.SameSiteStrictMode,
		})
		http.Redirect(w, r, next, http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (h *Handler) loginForm(w http.ResponseWriter, status int, next string, failed bool) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = loginPage.Execute(w, struct {
		Next   string
		Failed bool
	}{next, failed})
}

// safeNext returns next when it is a path on this site, else "/": a login
// link must not redirect to another host ("//evil", "/\evil", "https:").
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, `/\`) || next == LoginPath {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}
