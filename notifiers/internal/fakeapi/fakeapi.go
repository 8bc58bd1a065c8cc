// Package fakeapi is a local stand-in for a notification service's HTTP
// API, shared by the notifier tests: each test gives it a function that
// answers like the real service (paths, authentication, error bodies), and
// can queue scripted answers (a 429 with Retry-After, a 500) ahead of it.
// It is imported only from _test files.
package fakeapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/sdktest"
)

// Request is one request the server got.
type Request struct {
	Method string
	// Path is the decoded path, EscapedPath the path as sent.
	Path, EscapedPath string
	Query             url.Values
	Header            http.Header
	Body              []byte
}

// JSON decodes the body into v.
func (r Request) JSON(v any) error { return json.Unmarshal(r.Body, v) }

// Answer is one response.
type Answer struct {
	Status int
	Header map[string]string
	Body   string
}

// JSON is an answer with a JSON body.
func JSON(status int, body string) Answer {
	return Answer{Status: status, Header: map[string]string{"Content-Type": "application/json"}, Body: body}
}

// Server records requests and answers them.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234.
	URL string

	api    func(Request) Answer
	mu     sync.Mutex
	reqs   []Request
	queued []Answer
}

// New starts a server answering with api; it is closed when t ends.
func New(t testing.TB, api func(Request) Answer) *Server {
	t.Helper()
	s := &Server{api: api}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Queue makes the next requests get answers, in order, instead of api's.
func (s *Server) Queue(answers ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queued = append(s.queued, answers...)
}

// Requests returns the requests so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Last returns the latest request, failing t when there is none.
func (s *Server) Last(t testing.TB) Request {
	t.Helper()
	reqs := s.Requests()
	if len(reqs) == 0 {
		t.Fatal("the service got no request")
	}
	return reqs[len(reqs)-1]
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	req := Request{Method: r.Method, Path: r.URL.Path, EscapedPath: r.URL.EscapedPath(), Query: r.URL.Query(),
		Header: r.Header.Clone(), Body: body}
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	var a Answer
	if len(s.queued) > 0 {
		a, s.queued = s.queued[0], s.queued[1:]
		s.mu.Unlock()
	} else {
		s.mu.Unlock()
		a = s.api(req)
	}
	for k, v := range a.Header {
		w.Header().Set(k, v)
	}
	if a.Status == 0 {
		a.Status = http.StatusOK
	}
	w.WriteHeader(a.Status)
	_, _ = io.WriteString(w, a.Body)
}

// Failure is one scripted failure answer and what Notify must make of it.
type Failure struct {
	Name      string
	Answer    Answer
	Permanent bool
	// Quote is text of the service's answer the error must carry.
	Quote string
	// RetryAfter, when set, is the delay the error must ask for through
	// sdk.RetryAfterOf.
	RetryAfter time.Duration
}

// CheckFailures sends ev through n once per failure, queued on s, and
// checks the error's class, quote and retry-after, and that no secret field
// of cfg appears in it.
func CheckFailures(t *testing.T, n sdk.Notifier, s *Server, cfg sdk.Config, ev sdk.Event, failures []Failure) {
	t.Helper()
	for _, f := range failures {
		t.Run(f.Name, func(t *testing.T) {
			s.Queue(f.Answer)
			err := sdktest.Notify(context.Background(), n, cfg, ev)
			if err == nil {
				t.Fatal("Notify = nil, want an error")
			}
			if sdk.IsPermanent(err) != f.Permanent {
				t.Errorf("Notify = %v: permanent %v, want %v", err, sdk.IsPermanent(err), f.Permanent)
			}
			if !strings.Contains(err.Error(), f.Quote) {
				t.Errorf("Notify = %v, want it to quote %q", err, f.Quote)
			}
			checkRetryAfter(t, err, f.RetryAfter)
			for _, fl := range n.Schema().Fields {
				if v := cfg[fl.Key]; fl.Type == sdk.FieldSecret && v != "" && strings.Contains(err.Error(), v) {
					t.Errorf("Notify error holds secret %s: %v", fl.Key, err)
				}
			}
		})
	}
}

// Alert returns a realistic firing event as the daemon sends it, with an
// ID holding "/", a space and non-ASCII characters.
func Alert() sdk.Event {
	return sdk.Event{ID: "web01/cpu_monitor.cpu_percent/1796096833639265060/1 é", Kind: sdk.KindFiring,
		Channel: "ops", Host: "web01", Owner: "alice", MetricPath: "cpu_monitor.cpu_percent",
		Level: sdk.LevelCritical, PreviousLevel: sdk.LevelWarning, Value: 97.2, Threshold: 95, Comparison: ">=",
		Since: time.Unix(1796096833, 0), Time: time.Unix(1796096900, 0), EpisodeStart: time.Unix(1796096700, 0),
		NotificationCount: 1, URL: "https://hbd.example.com/hosts/web01",
		Text: "web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples <&>"}
}

// Recovery returns the event that resolves [Alert].
func Recovery() sdk.Event {
	ev := Alert()
	ev.ID = "web01/cpu_monitor.cpu_percent/1796096833639265060/2 é"
	ev.Kind, ev.Level, ev.PreviousLevel, ev.Value = sdk.KindResolved, sdk.LevelOK, sdk.LevelCritical, 41
	ev.Time = time.Unix(1796097200, 0)
	ev.Text = "web01 cpu_monitor.cpu_percent is OK again (41) after 8m20s"
	return ev
}

// Test returns a test event as the daemon sends it for "test channel".
func Test() sdk.Event {
	ev := Alert()
	ev.ID, ev.Kind, ev.Test = "test/5f0c1a", sdk.KindTest, true
	return ev
}

// OverPlugin serves n over the real go-plugin gRPC plumbing (as the daemon
// reaches a plugin), delivers [Alert] and then [Recovery] through it with
// cfg, and returns the requests s got for them.
func OverPlugin(t *testing.T, n sdk.Notifier, s *Server, cfg sdk.Config) []Request {
	t.Helper()
	h := sdktest.Start(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := len(s.Requests())
	for _, ev := range []sdk.Event{Alert(), Recovery()} {
		if err := h.Client.Notify(ctx, cfg, ev); err != nil {
			t.Fatalf("Notify %s over gRPC: %v", ev.Kind, err)
		}
	}
	return s.Requests()[before:]
}
