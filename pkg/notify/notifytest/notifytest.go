// Package notifytest runs real receivers for notification tests: an HTTP
// server that takes webhook or Slack posts (and can refuse for a while),
// and an SMTP server (github.com/emersion/go-smtp) that keeps the mail it
// receives.
package notifytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Request is one POST an HTTPReceiver accepted.
type Request struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

// HTTPReceiver records POSTs. While Refuse is above zero it answers
// Status (503 when zero) and counts Refuse down; with RetryAfter above
// zero, the refusal carries Retry-After in seconds.
type HTTPReceiver struct {
	*httptest.Server
	Refuse     atomic.Int64
	Refused    atomic.Int64
	Status     atomic.Int64
	RetryAfter atomic.Int64

	mu       sync.Mutex
	requests []Request
	notify   chan struct{}
	// refuseWhen, when set, answers refuseStatus to every matching body.
	refuseWhen   func(body []byte) bool
	refuseStatus int
}

// RefuseWhen makes r answer status to every POST whose body match
// reports, and take the others as usual.
func (r *HTTPReceiver) RefuseWhen(status int, match func(body []byte) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuseWhen, r.refuseStatus = match, status
}

// RunHTTP starts an HTTPReceiver, closed when the test ends.
func RunHTTP(tb testing.TB) *HTTPReceiver {
	tb.Helper()
	r := &HTTPReceiver{notify: make(chan struct{}, 1)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil || req.Method != http.MethodPost {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		match, status := r.refuseWhen, r.refuseStatus
		r.mu.Unlock()
		if match != nil && match(body) {
			r.Refused.Add(1)
			w.WriteHeader(status)
			return
		}
		if r.Refuse.Add(-1) >= 0 {
			r.Refused.Add(1)
			status := int(r.Status.Load())
			if status == 0 {
				status = http.StatusServiceUnavailable
			}
			if ra := r.RetryAfter.Load(); ra > 0 {
				w.Header().Set("Retry-After", strconv.FormatInt(ra, 10))
			}
			w.WriteHeader(status)
			return
		}
		r.Refuse.Store(0)
		r.mu.Lock()
		r.requests = append(r.requests, Request{Header: req.Header.Clone(), Body: body, At: time.Now()})
		r.mu.Unlock()
		select {
		case r.notify <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusOK)
	}))
	tb.Cleanup(r.Close)
	return r
}

// Requests returns the accepted requests so far.
func (r *HTTPReceiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// Received is signalled (without blocking) after each accepted request.
func (r *HTTPReceiver) Received() <-chan struct{} { return r.notify }

// Mail is one message an SMTPServer received.
type Mail struct {
	From string
	To   []string
	// User is the authenticated username ("" without AUTH).
	User string
	// TLS reports whether the session had switched to TLS.
	TLS  bool
	Data []byte
}

// SMTPServer is a real SMTP server keeping what it receives.
type SMTPServer struct {
	Addr string
	// CertPool trusts the server's certificate (with TLS on).
	CertPool *x509.CertPool

	mu   sync.Mutex
	mail []Mail
}

// SMTPOptions configure RunSMTP.
type SMTPOptions struct {
	// TLS offers STARTTLS with a self-signed certificate for 127.0.0.1.
	TLS bool
	// Username and Password, when set, are required (AUTH PLAIN).
	Username, Password string
}

// RunSMTP starts an SMTP server on 127.0.0.1, closed when the test ends.
func RunSMTP(tb testing.TB, opts SMTPOptions) *SMTPServer {
	tb.Helper()
	s := &SMTPServer{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: s, conn: c, opts: opts}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	if opts.TLS {
		cert, pool := selfSigned(tb)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		s.CertPool = pool
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return s
}

// Mail returns the messages received so far.
func (s *SMTPServer) Mail() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mail...)
}

type session struct {
	srv  *SMTPServer
	conn *smtp.Conn
	opts SMTPOptions
	user string
	cur  Mail
}

var _ smtp.AuthSession = (*session)(nil)

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != s.opts.Username || password != s.opts.Password {
			// 535, as real servers answer a wrong password.
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "invalid username or password"}
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.opts.Username != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.cur = Mail{From: from, User: s.user, TLS: isTLS}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = b
	s.srv.mu.Lock()
	s.srv.mail = append(s.srv.mail, s.cur)
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.cur = Mail{} }
func (s *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "lookout test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}
