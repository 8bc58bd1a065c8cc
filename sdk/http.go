package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
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
//
// The client enforces the destination policy of the call its request's
// context belongs to (see [Destinations]): every connection it opens,
// redirects included, is checked after name resolution and refused with a
// [*DestinationError] when the policy forbids the address. Connections are
// pooled per policy, so a connection opened for one channel is never
// reused for a channel under a stricter policy. Through a proxy the target
// name is resolved and checked before the request is handed to the proxy
// (the proxy's own later resolution is not seen).
func HTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: &policyTransport{timeout: timeout, byPolicy: map[string]*http.Transport{}},
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("stopped after 3 redirects")
			}
			return nil
		},
	}
}

// maxPolicyTransports bounds the connection pools of one client; the
// daemon sends few distinct policies (restricted or not, per config).
const maxPolicyTransports = 8

// policyTransport keeps one http.Transport per destination policy.
type policyTransport struct {
	timeout time.Duration

	mu       sync.Mutex
	byPolicy map[string]*http.Transport
	order    []string
}

func (t *policyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p := DestinationsFrom(req.Context())
	key := ""
	if p != nil {
		key = p.Encode()
	}
	return t.transport(key, p).RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of every pool.
func (t *policyTransport) CloseIdleConnections() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tr := range t.byPolicy {
		tr.CloseIdleConnections()
	}
}

func (t *policyTransport) transport(key string, p *Destinations) *http.Transport {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr, ok := t.byPolicy[key]; ok {
		return tr
	}
	if len(t.order) >= maxPolicyTransports {
		old := t.order[0]
		t.order = t.order[1:]
		t.byPolicy[old].CloseIdleConnections()
		delete(t.byPolicy, old)
	}
	tr := newTransport(t.timeout, p)
	t.byPolicy[key] = tr
	t.order = append(t.order, key)
	return tr
}

// newTransport returns a transport whose connections obey p.
func newTransport(timeout time.Duration, p *Destinations) *http.Transport {
	step := min(5*time.Second, timeout)
	checked := Dialer(step)
	plain := &net.Dialer{Timeout: step, KeepAlive: 30 * time.Second}
	var proxies sync.Map // proxy addresses (host:port) the environment names
	return &http.Transport{
		Proxy: func(req *http.Request) (*url.URL, error) {
			u, err := http.ProxyFromEnvironment(req)
			if err != nil || u == nil {
				return u, err
			}
			// The proxy connects to the target, not this process: check
			// what the target's name resolves to now.
			if err := p.checkHost(req.Context(), req.URL.Hostname(), portOf(req.URL.Scheme, req.URL.Port())); err != nil {
				return nil, err
			}
			proxies.Store(proxyAddr(u), true)
			return u, nil
		},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if _, ok := proxies.Load(addr); ok {
				return plain.DialContext(ctx, network, addr) // set by the operator's environment
			}
			return checked.DialContext(WithDestinations(ctx, p), network, addr)
		},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   step,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
}

// proxyAddr returns the host:port the transport dials for proxy u.
func proxyAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}[u.Scheme]
	}
	return net.JoinHostPort(u.Hostname(), port)
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
// other, classified by [IsPermanent]. A 429 Too Many Requests or 503
// Service Unavailable answer with a Retry-After header (seconds or an HTTP
// date, see [ParseRetryAfter]) gives the status error wrapped with
// [RetryAfter], so the daemon waits as long as the service asked;
// errors.As still finds the [*HTTPStatusError]. It reads at most 4 KiB of
// the body to quote the service's explanation; the caller still closes
// resp.Body. The error holds nothing from the request (URL, headers, form),
// so no secret sent to the service can end up in it.
func HTTPError(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	err := &HTTPStatusError{StatusCode: resp.StatusCode, Body: oneLine(string(raw), 200)}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return RetryAfter(err, d)
		}
	}
	return err
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
