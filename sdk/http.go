package sdk

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// ErrBadURL is returned by [ParseHTTPURL] for anything but an absolute http
// or https URL with a host.
var ErrBadURL = errors.New("must be an http:// or https:// URL with a host")

// ParseHTTPURL parses raw as an absolute http or https URL. Its error never
// repeats raw, which may carry a token.
func ParseHTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, ErrBadURL
	}
	return u, nil
}

// HTTPClient returns an HTTP client for talking to a notification service:
// the whole exchange is bounded by timeout (10 s when timeout <= 0), connect
// and TLS handshake by at most 5 s each, proxies come from the environment,
// and at most 3 redirects are followed. Create one per notifier and reuse it.
func HTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	step := min(5*time.Second, timeout)
	dialer := &net.Dialer{Timeout: step, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   step,
			ResponseHeaderTimeout: timeout,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   4,
		},
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("stopped after 3 redirects")
			}
			return nil
		},
	}
}

// HTTPStatusError is a non-2xx answer from a notification service.
type HTTPStatusError struct {
	// StatusCode is the HTTP status code, e.g. 503.
	StatusCode int
	// Body is the start of the response body, cut to one line of at most
	// 200 printable characters; it comes from the service, never from the
	// request.
	Body string
}

// Error returns "HTTP 503 Service Unavailable: <body>".
func (e *HTTPStatusError) Error() string {
	msg := fmt.Sprintf("HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Permanent reports whether retrying cannot help: true for 4xx except
// 408 Request Timeout, 425 Too Early and 429 Too Many Requests, and for
// unexpected 1xx and 3xx answers; false for 5xx.
func (e *HTTPStatusError) Permanent() bool {
	switch {
	case e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusTooEarly,
		e.StatusCode == http.StatusTooManyRequests:
		return false
	case e.StatusCode >= 500:
		return false
	default:
		return true
	}
}

// HTTPError returns nil for a 2xx response and an [*HTTPStatusError] for any
// other, classified by [IsPermanent]. It reads at most 4 KiB of the body to
// quote the service's explanation; the caller still closes resp.Body. The
// error holds nothing from the request (URL, headers, form), so no secret
// sent to the service can end up in it.
func HTTPError(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return &HTTPStatusError{StatusCode: resp.StatusCode, Body: oneLine(string(raw), 200)}
}

// oneLine collapses s to a single line of printable characters cut to max
// runes.
func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return s
}

// RequestError rewrites an error from http.Client.Do so that it no longer
// contains the request URL, whose path or query may carry a token: it keeps
// the method, the host and the cause ("Post api.example.com: dial tcp …:
// connection refused"). Timeouts and cancellations still match
// context.DeadlineExceeded / context.Canceled with errors.Is. The result is
// retryable. RequestError(nil) is nil.
func RequestError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	host := "service"
	if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
		host = u.Host
	}
	return &requestError{op: ue.Op, host: host, err: ue.Err}
}

type requestError struct {
	op, host string
	err      error
}

func (e *requestError) Error() string { return e.op + " " + e.host + ": " + e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

// UserAgent is the User-Agent [DoHTTP] sets on requests that have none.
const UserAgent = "hbd-notifier"

// DoHTTP sends req with client and turns the outcome into nil or an error
// built by [RequestError] or [HTTPError]. It drains and closes the response
// body, and sets [UserAgent] unless req has a User-Agent. Use it for
// services whose success answer needs no parsing.
func DoHTTP(client *http.Client, req *http.Request) error {
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", UserAgent)
	}
	resp, err := client.Do(req)
	if err != nil {
		return RequestError(err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	return HTTPError(resp)
}
