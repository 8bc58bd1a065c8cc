package sdktest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// Request is one HTTP request a [Receiver] got.
type Request struct {
	Method string
	// Path and Query are the request URL's path and decoded query.
	Path  string
	Query url.Values
	// RawPath is the path as sent, still escaped ("/rooms/a%2Fb/send").
	RawPath string
	// Header holds the request headers.
	Header http.Header
	// Body is the raw request body.
	Body []byte
}

// Form parses Body as an application/x-www-form-urlencoded form.
func (r Request) Form() (url.Values, error) { return url.ParseQuery(string(r.Body)) }

// Receiver is a local HTTP server that records every request and answers
// with a configurable status, standing in for a notification service.
type Receiver struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234.
	URL string

	srv *httptest.Server

	mu     sync.Mutex
	reqs   []Request
	status int
	body   string
}

// NewReceiver starts a Receiver answering 200 with an empty body; it is shut
// down when tb's test ends.
func NewReceiver(tb testing.TB) *Receiver {
	tb.Helper()
	r := &Receiver{status: http.StatusOK}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL
	tb.Cleanup(r.srv.Close)
	return r
}

// Respond sets the status code and body of the answers from now on.
func (r *Receiver) Respond(status int, body string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.body = status, body
}

// Requests returns a copy of the requests received so far, oldest first.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// Last returns the most recent request; ok is false when none arrived.
func (r *Receiver) Last() (req Request, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		return Request{}, false
	}
	return r.reqs[len(r.reqs)-1], true
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 16<<20))
	r.mu.Lock()
	r.reqs = append(r.reqs, Request{
		Method: req.Method, Path: req.URL.Path, Query: req.URL.Query(), RawPath: req.URL.EscapedPath(),
		Header: req.Header.Clone(), Body: body,
	})
	status, answer := r.status, r.body
	r.mu.Unlock()
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}
