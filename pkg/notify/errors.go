package notify

import (
	"errors"
	"net/http"
	"net/textproto"
	"strconv"
	"time"
)

// ErrPermanent is wrapped by every Send error that sending the same
// notification again cannot fix: the far end refused it for good (HTTP 4xx
// but 408, 425 and 429; SMTP 5xx), or it could not be built. Any other
// error (5xx, 408, 425, 429, SMTP 4xx, connection errors, timeouts) is
// transient and worth a retry.
var ErrPermanent = errors.New("permanent")

// IsPermanent reports whether err is a permanent failure.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// RetryAfter returns the wait the far end asked for before the next try
// (an HTTP Retry-After), or 0 when it asked for none.
func RetryAfter(err error) time.Duration {
	var se *sendError
	if errors.As(err, &se) {
		return se.retryAfter
	}
	return 0
}

// sendError is a failed Send: its text (already free of secrets), whether
// it is permanent, and a requested wait. It wraps nothing, so no secret can
// leak through Unwrap.
type sendError struct {
	text       string
	permanent  bool
	retryAfter time.Duration
}

func (e *sendError) Error() string { return e.text }

// Is makes errors.Is(err, ErrPermanent) true for a permanent failure.
func (e *sendError) Is(target error) bool { return e.permanent && target == ErrPermanent }

// permanent marks err as permanent, keeping its text.
func permanent(err error) error {
	if err == nil {
		return nil
	}
	return &sendError{text: err.Error(), permanent: true}
}

// httpStatusError classifies an HTTP answer outside 2xx.
func httpStatusError(op string, resp *http.Response, now time.Time) error {
	code := resp.StatusCode
	e := &sendError{text: op + ": post: status " + strconv.Itoa(code)}
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests:
		e.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	case code >= 400 && code <= 499:
		e.permanent = true
	case code >= 500:
		e.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return e
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date. A
// value that does not parse, or lies in the past, is no wait.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, 1<<30)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// smtpError classifies an SMTP failure of operation op: a 5xx reply is
// permanent, anything else (4xx, network) transient. Its text is redacted.
func smtpError(secrets redactor, op string, err error) error {
	wrapped := secrets.wrap(op, err)
	var tp *textproto.Error
	if errors.As(err, &tp) && tp.Code >= 500 && tp.Code <= 599 {
		return permanent(wrapped)
	}
	return wrapped
}
