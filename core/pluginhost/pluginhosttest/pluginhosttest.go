// Package pluginhosttest holds the fixtures shared by the tests of the
// plugin host, the dispatcher, the channel API and the end-to-end tests:
// installing real notifier binaries into a plugins dir, starting a host on
// it, and a local webhook receiver whose answers a test scripts. It is
// imported only from _test files.
package pluginhosttest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/pluginhost"
	"github.com/hbdmon/hbd/core/testutil"
)

// Packages of the notifier mains in this repository.
const (
	Webhook  = "./notifiers/webhook/cmd/hbd-notifier-webhook"
	Pushover = "./notifiers/pushover/cmd/hbd-notifier-pushover"
	Email    = "./notifiers/email/cmd/hbd-notifier-email"
)

// BuiltIn returns the packages of every notifier main in this repository,
// notifiers/<name>/cmd/hbd-notifier-<name> (the ones `make build`
// installs), sorted.
func BuiltIn(t testing.TB) []string {
	t.Helper()
	root := testutil.RepoRoot(t)
	mains, err := filepath.Glob(filepath.Join(root, "notifiers", "*", "cmd", "hbd-notifier-*"))
	if err != nil || len(mains) == 0 {
		t.Fatalf("no notifier mains under %s/notifiers: %v", root, err)
	}
	pkgs := make([]string, len(mains))
	for i, m := range mains {
		rel, _ := filepath.Rel(root, m)
		pkgs[i] = "./" + filepath.ToSlash(rel)
	}
	return pkgs
}

// Install builds pkg (once per test binary) and installs it into dir as
// name the way an operator should: write a temporary file, then rename it
// into place. It returns the installed path.
func Install(t testing.TB, dir, pkg, name string) string {
	t.Helper()
	b, err := os.ReadFile(testutil.Build(t, pkg))
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name)
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// Dir returns a fresh plugins dir holding the given notifier packages,
// each installed under the name of its main package's directory.
func Dir(t testing.TB, pkgs ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, pkg := range pkgs {
		Install(t, dir, pkg, filepath.Base(pkg))
	}
	return dir
}

// Logs collects log output safely from many goroutines.
type Logs struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Logger returns a debug-level logger writing to l.
func (l *Logs) Logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "hbd", Output: l, Level: hclog.Debug})
}

// Start starts a host on dir with test-friendly timings (fast debounce,
// restarts and liveness polling), closed at cleanup. opts.Dir and
// opts.Logger are set by Start.
func Start(t testing.TB, dir string, opts pluginhost.Options) (*pluginhost.Host, *Logs) {
	t.Helper()
	logs := &Logs{}
	opts.Dir = dir
	opts.Logger = logs.Logger()
	if opts.Debounce == 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.RestartMin == 0 {
		opts.RestartMin = 100 * time.Millisecond
	}
	if opts.Poll == 0 {
		opts.Poll = 50 * time.Millisecond
	}
	h := pluginhost.New(opts)
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, logs
}

// Request is one request a Receiver got.
type Request struct {
	Time   time.Time
	Path   string
	Header http.Header
	Body   []byte
}

// Receiver is a local HTTP endpoint standing in for a notification
// service. It answers 200 unless scripted otherwise.
type Receiver struct {
	// URL is the receiver's base URL.
	URL string

	mu     sync.Mutex
	reqs   []Request
	script []answer
	status int
	body   string
	delay  time.Duration
	notify chan struct{}
}

// NewReceiver starts a Receiver, shut down at cleanup.
func NewReceiver(t testing.TB) *Receiver {
	r := &Receiver{status: http.StatusOK, notify: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, Request{Time: time.Now(), Path: req.URL.Path, Header: req.Header.Clone(), Body: b})
	status, body, delay := r.status, r.body, r.delay
	var header http.Header
	if len(r.script) > 0 {
		status, header, r.script = r.script[0].status, r.script[0].header, r.script[1:]
	}
	r.mu.Unlock()
	for k, v := range header {
		w.Header()[k] = v
	}
	select {
	case r.notify <- struct{}{}:
	default:
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
			return
		}
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// Respond sets the status and body of every answer from now on (after any
// scripted ones).
func (r *Receiver) Respond(status int, body string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.body = status, body
}

// answer is one scripted answer.
type answer struct {
	status int
	header http.Header
}

// Script makes the next answers use these statuses, in order.
func (r *Receiver) Script(statuses ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range statuses {
		r.script = append(r.script, answer{status: s})
	}
}

// ScriptHeader makes the next answer (after those already scripted) use
// status and carry header, e.g. a 429 with Retry-After.
func (r *Receiver) ScriptHeader(status int, header http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.script = append(r.script, answer{status: status, header: header})
}

// Delay makes every answer wait d first.
func (r *Receiver) Delay(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delay = d
}

// Requests returns the requests so far, oldest first.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// Count returns how many requests arrived.
func (r *Receiver) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// Wait waits until at least n requests arrived, failing the test after d.
func (r *Receiver) Wait(t testing.TB, n int, d time.Duration) []Request {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if reqs := r.Requests(); len(reqs) >= n {
			return reqs
		}
		select {
		case <-r.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline.C:
			t.Fatalf("receiver got %d requests within %s, want %d", r.Count(), d, n)
			return nil
		}
	}
}

// Eventually is testutil.Eventually, kept here for the notifier tests.
var Eventually = testutil.Eventually
