package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/agent/internal/ingesttest"
	"github.com/hbdmon/hbd/core/agent/spool"
	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/testutil"
)

const testHost = "web01"

var testKey = []byte("test-key-0123456789abcdef-0123456789")

func newSpool(t *testing.T) *spool.Spool {
	t.Helper()
	s, err := spool.Open(t.TempDir(), spool.Options{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// enqueue spools samples numbered from..to-1 (data.n) in one append, each
// with pad extra fields of about 64 bytes.
func enqueue(t *testing.T, s *spool.Spool, from, to, pad int) {
	t.Helper()
	var recs [][]byte
	for i := from; i < to; i++ {
		data := map[string]any{"n": float64(i)}
		for j := range pad {
			data[fmt.Sprintf("pad_%05d_%s", j, strings.Repeat("x", 48))] = 1.0
		}
		rec, err := json.Marshal(protocol.Sample{Plugin: "cpu_monitor", Timestamp: float64(i), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	if err := s.Append(recs...); err != nil {
		t.Fatal(err)
	}
}

func numbers(d *ingesttest.Daemon) []int {
	var out []int
	for _, s := range d.Samples() {
		out = append(out, int(s.Data["n"].(float64)))
	}
	return out
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestEverySampleArrivesOnceInOrderAcrossAnOutage(t *testing.T) {
	d := ingesttest.New(t, testHost, testKey)
	srv := ingesttest.Serve(t, "127.0.0.1:0", d)
	addr := srv.Listener.Addr().String()
	q := newSpool(t)
	s := New(q, Options{URL: "http://" + addr + "/", Host: testHost, Key: testKey,
		Interval: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond,
		Client: &http.Client{Timeout: 2 * time.Second}})

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	enqueue(t, q, 0, 30, 0)
	testutil.Eventually(t, "the first samples", 10*time.Second, func() bool { return len(d.Samples()) == 30 })

	// The daemon answers 503 for a while...
	d.SetStatus(http.StatusServiceUnavailable)
	enqueue(t, q, 30, 60, 0)
	time.Sleep(200 * time.Millisecond)
	// ...then is gone altogether...
	srv.Close()
	enqueue(t, q, 60, 80, 0)
	time.Sleep(200 * time.Millisecond)
	if got := numbers(d); len(got) != 30 {
		t.Fatalf("samples accepted while the daemon was down: %v", got)
	}
	// ...and comes back on the same address.
	d.SetStatus(0)
	ingesttest.Serve(t, addr, d)
	enqueue(t, q, 80, 100, 0)
	testutil.Eventually(t, "the backlog", 10*time.Second, func() bool { return len(d.Samples()) >= 100 })

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := numbers(d); !slices.Equal(got, seq(0, 100)) {
		t.Fatalf("received %v", got)
	}
}

func TestFlushHonoursResponseCodes(t *testing.T) {
	tests := []struct {
		name      string
		reject    func(b protocol.Batch) int
		wantErr   string
		wantGot   []int
		remaining int // samples still spooled after Flush
	}{
		{
			name:    "invalid sample is isolated and dropped, the rest delivered",
			reject:  containing(3, http.StatusBadRequest),
			wantGot: []int{0, 1, 2, 4, 5, 6, 7, 8, 9},
		},
		{
			name:    "unprocessable sample is isolated and dropped",
			reject:  containing(0, http.StatusUnprocessableEntity),
			wantGot: seq(1, 10),
		},
		{
			name: "too large batch is halved until accepted",
			reject: func(b protocol.Batch) int {
				if len(b.Samples) > 2 {
					return http.StatusRequestEntityTooLarge
				}
				return 0
			},
			wantGot: seq(0, 10),
		},
		{
			name:      "wrong key keeps everything spooled",
			reject:    always(http.StatusUnauthorized),
			wantErr:   "rejected the host key",
			remaining: 10,
		},
		{
			name:      "server error keeps everything spooled",
			reject:    always(http.StatusInternalServerError),
			wantErr:   "answered 500",
			remaining: 10,
		},
		{
			name:      "unknown path is retried, not dropped",
			reject:    always(http.StatusNotFound),
			wantErr:   "answered 404",
			remaining: 10,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ingesttest.New(t, testHost, testKey)
			d.Reject = tt.reject
			srv := ingesttest.Serve(t, "127.0.0.1:0", d)
			q := newSpool(t)
			enqueue(t, q, 0, 10, 0)
			s := New(q, Options{URL: srv.URL, Host: testHost, Key: testKey, Interval: time.Second})

			err := s.Flush(t.Context())
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Flush: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Flush error %v, want %q", err, tt.wantErr)
			}
			if got := numbers(d); !slices.Equal(got, tt.wantGot) {
				t.Fatalf("received %v, want %v", got, tt.wantGot)
			}
			recs, _, err := q.Peek(100, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tt.remaining {
				t.Fatalf("%d samples still spooled, want %d", len(recs), tt.remaining)
			}
		})
	}
}

// containing refuses every batch holding sample n, as hbd refuses a whole
// batch for one invalid sample.
func containing(n int, status int) func(protocol.Batch) int {
	return func(b protocol.Batch) int {
		for _, s := range b.Samples {
			if s.Data["n"] == float64(n) {
				return status
			}
		}
		return 0
	}
}

func always(status int) func(protocol.Batch) int {
	return func(protocol.Batch) int { return status }
}

func TestWrongKeyIsRejectedByTheDaemon(t *testing.T) {
	d := ingesttest.New(t, testHost, []byte("the-daemon-has-another-key-for-web01"))
	srv := ingesttest.Serve(t, "127.0.0.1:0", d)
	q := newSpool(t)
	enqueue(t, q, 0, 3, 0)
	s := New(q, Options{URL: srv.URL, Host: testHost, Key: testKey, Interval: time.Second})
	if err := s.Flush(t.Context()); err == nil || !strings.Contains(err.Error(), "rejected the host key") {
		t.Fatalf("Flush: %v", err)
	}
	if recs, _, _ := q.Peek(10, 1<<20); len(recs) != 3 {
		t.Fatalf("%d samples left in the spool, want 3", len(recs))
	}
}

func TestBatchesStayWithinProtocolBounds(t *testing.T) {
	d := ingesttest.New(t, testHost, testKey)
	srv := ingesttest.Serve(t, "127.0.0.1:0", d)
	q := newSpool(t)
	enqueue(t, q, 0, 1200, 0)      // more samples than one batch may hold
	enqueue(t, q, 1200, 1500, 100) // more bytes than one batch may hold
	s := New(q, Options{URL: srv.URL, Host: testHost, Key: testKey, Interval: time.Second})
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := numbers(d); !slices.Equal(got, seq(0, 1500)) {
		t.Fatalf("received %d samples, not all in order", len(got))
	}
	// The daemon checked each batch against both bounds; full batches are used.
	if b := d.Batches(); len(b) < 3 || b[0] != protocol.MaxBatchSamples {
		t.Fatalf("batches %v", b)
	}
}

// TestClockSkewIsExplained runs the daemon's real ingestion endpoint and a
// sender whose clock is 10 minutes ahead: the daemon's answer (offset and
// fix) is logged at warn, the samples stay spooled, and with the clock set
// right they are delivered.
func TestClockSkewIsExplained(t *testing.T) {
	cfg := testutil.Config(t, "watchhosts:\n  "+testHost+":\n    key: \""+string(testKey)+"\"\n")
	st := testutil.Store(t, 10)
	srv := api.New(api.Deps{
		Config: func() *config.Config { return cfg },
		Store:  st,
		HostKey: func(h string) ([]byte, bool, bool) {
			k, ok := cfg.HostKey(h)
			return k, false, ok
		},
	})
	web := ingesttest.Serve(t, "127.0.0.1:0", srv.Echo)
	q := newSpool(t)
	now := float64(time.Now().Unix())
	rec, _ := json.Marshal(protocol.Sample{Plugin: "cpu_monitor", Timestamp: now, Data: map[string]any{"n": 1.0}})
	if err := q.Append(rec); err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	var mu sync.Mutex
	out := hclog.New(&hclog.LoggerOptions{Output: writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) }), Level: hclog.Info})
	skew := 10 * time.Minute
	s := New(q, Options{URL: web.URL, Host: testHost, Key: testKey, Interval: time.Second, Logger: out,
		Now: func() time.Time { return time.Now().Add(skew) }})
	err := s.Flush(t.Context())
	if !errors.Is(err, ErrClockSkew) {
		t.Fatalf("Flush: %v", err)
	}
	mu.Lock()
	line := logs.String()
	mu.Unlock()
	if !strings.Contains(line, "[WARN]") || !strings.Contains(line, "because of this host's clock") ||
		!strings.Contains(line, "ahead of hbd's clock (allowed ±5m0s); fix the host's clock (NTP)") {
		t.Fatalf("log: %s", line)
	}
	if recs, _, _ := q.Peek(10, 1<<20); len(recs) != 1 {
		t.Fatalf("%d samples left in the spool, want 1", len(recs))
	}
	skew = 0
	if err := s.Flush(t.Context()); err != nil {
		t.Fatalf("Flush with the clock fixed: %v", err)
	}
	if got, _ := st.Latest(testHost, "cpu_monitor", 10); len(got) != 1 {
		t.Fatalf("%d samples stored", len(got))
	}
}

// TestBatchWhoseAnswerWasLostIsStoredOnce: hbd stores a batch but its
// answer never reaches the agent (the connection drops, or the agent stops
// mid-request). The agent must send the batch again, and hbd must store it
// only once: the retry is the identical signed request, which hbd answers
// as a duplicate.
func TestBatchWhoseAnswerWasLostIsStoredOnce(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testLostAnswer(t, nil) })
	// The retry carries the health sample of the first attempt, so it is
	// the identical request even though the agent's health moved on.
	var errs atomic.Int64
	t.Run("with health", func(t *testing.T) {
		testLostAnswer(t, func() Health { return Health{PluginErrors: errs.Add(1)} })
	})
}

func testLostAnswer(t *testing.T, health func() Health) {
	cfg := testutil.Config(t, "watchhosts:\n  "+testHost+":\n    key: \""+string(testKey)+"\"\n")
	st := testutil.Store(t, 10)
	srv := api.New(api.Deps{
		Config: func() *config.Config { return cfg },
		Store:  st,
		HostKey: func(h string) ([]byte, bool, bool) {
			k, ok := cfg.HostKey(h)
			return k, false, ok
		},
	})
	var mu sync.Mutex
	var answers []string
	drop := true
	web := ingesttest.Serve(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		srv.Echo.ServeHTTP(rec, r)
		mu.Lock()
		answers = append(answers, strings.TrimSpace(rec.Body.String()))
		lose := drop
		drop = false
		mu.Unlock()
		if lose {
			panic(http.ErrAbortHandler) // stored, but the answer is lost
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	q := newSpool(t)
	now := time.Now().Unix()
	for i := range 3 {
		rec, _ := json.Marshal(protocol.Sample{Plugin: "cpu_monitor", Timestamp: float64(now - int64(i)), Data: map[string]any{"n": float64(i)}})
		if err := q.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	// The retry comes seconds later: a fresh signature would differ.
	var calls atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(calls.Add(1)) * 2 * time.Second) }
	s := New(q, Options{URL: web.URL, Host: testHost, Key: testKey, Interval: time.Second, Now: clock, Health: health, HealthEvery: -1})
	if err := s.Flush(t.Context()); err == nil {
		t.Fatal("Flush succeeded although the answer was lost")
	}
	if recs, _, _ := q.Peek(10, 1<<20); len(recs) != 3 {
		t.Fatalf("%d samples left in the spool after a lost answer, want 3", len(recs))
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	if recs, _, _ := q.Peek(10, 1<<20); len(recs) != 0 {
		t.Fatalf("%d samples left in the spool after the retry", len(recs))
	}
	if got, _ := st.Latest(testHost, "cpu_monitor", 10); len(got) != 3 {
		t.Fatalf("%d samples stored, want each of the 3 once", len(got))
	}
	mu.Lock()
	defer mu.Unlock()
	want := `"accepted":3`
	if health != nil {
		want = `"accepted":4` // and the health sample
		if got, _ := st.Latest(testHost, protocol.AgentPlugin, 10); len(got) != 1 {
			t.Fatalf("%d health samples stored, want 1", len(got))
		}
	}
	if len(answers) != 2 || !strings.Contains(answers[0], want) || !strings.Contains(answers[1], `"duplicate":true`) {
		t.Fatalf("hbd's answers %q: want the batch stored, then its retry recognised as a duplicate", answers)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A daemon older than the health report (ingesttest answers without
// "agent_health") gets the health sample as an ordinary plugin's, never
// the "agent" object it would refuse; with nothing spooled the health
// goes out alone and says the spool is empty.
func TestHealthReachesAnOldDaemonWithoutTheAgentObject(t *testing.T) {
	d := ingesttest.New(t, testHost, testKey)
	d.Reject = func(b protocol.Batch) int {
		if b.Agent != nil {
			t.Errorf("agent object sent to a daemon that did not announce agent_health: %+v", b.Agent)
			return http.StatusBadRequest
		}
		return 0
	}
	web := ingesttest.Serve(t, "127.0.0.1:0", d)
	q := newSpool(t)
	enqueue(t, q, 1, 6, 0) // timestamps 1..5: the oldest is decades old
	s := New(q, Options{URL: web.URL, Host: testHost, Key: testKey, Interval: time.Second, HealthEvery: -1,
		Health: func() Health { return Health{PluginErrors: 3, LastPluginError: "exec_probe: boom"} }})
	for range 2 {
		if err := s.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var health []protocol.Sample
	var n []int
	for _, smp := range d.Samples() {
		if smp.Plugin == protocol.AgentPlugin {
			health = append(health, smp)
			continue
		}
		n = append(n, int(smp.Data["n"].(float64)))
	}
	if !slices.Equal(n, seq(1, 6)) {
		t.Fatalf("samples %v, want 1..5", n)
	}
	if len(health) != 2 {
		t.Fatalf("%d health samples, want one per flush", len(health))
	}
	first, second := health[0].Data, health[1].Data
	if first[protocol.AgentSpoolBytes].(float64) <= 0 || first[protocol.AgentSpoolBatches].(float64) != 1 ||
		first[protocol.AgentOldestUnsent].(float64) < float64(time.Now().Unix()-10) || first[protocol.AgentLastSend].(float64) != 0 {
		t.Errorf("health sent with the batch of 5: %v", first)
	}
	if second[protocol.AgentSpoolBytes].(float64) != 0 || second[protocol.AgentOldestUnsent].(float64) != 0 ||
		second[protocol.AgentLastSend].(float64) <= 0 || second[protocol.AgentPluginErrors].(float64) != 3 {
		t.Errorf("health sent alone after the drain: %v", second)
	}
}

// A daemon that refuses the health sample (an old daemon at its plugin
// limit answers 400) gets the batch again without it: no sample is
// dropped for it.
func TestRefusedHealthSampleCostsNoSample(t *testing.T) {
	d := ingesttest.New(t, testHost, testKey)
	d.Reject = func(b protocol.Batch) int {
		for _, smp := range b.Samples {
			if smp.Plugin == protocol.AgentPlugin {
				return http.StatusBadRequest
			}
		}
		return 0
	}
	web := ingesttest.Serve(t, "127.0.0.1:0", d)
	q := newSpool(t)
	enqueue(t, q, 0, 7, 0)
	s := New(q, Options{URL: web.URL, Host: testHost, Key: testKey, Interval: time.Second, HealthEvery: -1,
		Health: func() Health { return Health{} }})
	for range 2 {
		if err := s.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := numbers(d); !slices.Equal(got, seq(0, 7)) {
		t.Fatalf("samples %v, want 0..6 and no health sample", got)
	}
}

// sigRecorder passes requests to h and records each one's signature.
type sigRecorder struct {
	h    http.Handler
	mu   sync.Mutex
	sigs []string
}

func (r *sigRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.sigs = append(r.sigs, req.Header.Get(protocol.HeaderSignature))
	r.mu.Unlock()
	r.h.ServeHTTP(w, req)
}

func (r *sigRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sigs)
}

// Several daemons: a batch one daemon cannot take (5xx, its answer lost,
// connection refused) goes at once to the next one as the identical signed
// request; the sender stays with the daemon that took it, wraps around the
// list, returns an error only when every daemon failed, and goes back to
// the first after FailbackAfter.
func TestBatchesFailOverToTheNextDaemon(t *testing.T) {
	d1, d2 := ingesttest.New(t, testHost, testKey), ingesttest.New(t, testHost, testKey)
	var lose atomic.Bool
	r1 := &sigRecorder{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lose.Load() {
			d1.ServeHTTP(httptest.NewRecorder(), r) // stored...
			panic(http.ErrAbortHandler)             // ...but the answer is lost
		}
		d1.ServeHTTP(w, r)
	})}
	r2 := &sigRecorder{h: d2}
	s1, s2 := ingesttest.Serve(t, "127.0.0.1:0", r1), ingesttest.Serve(t, "127.0.0.1:0", r2)
	var now atomic.Int64
	now.Store(time.Now().Unix())
	clock := func() time.Time { return time.Unix(now.Load(), 0) }
	q := newSpool(t)
	var logs strings.Builder
	var logMu sync.Mutex
	s := New(q, Options{URLs: []string{s1.URL, s2.URL + "/"}, Host: testHost, Key: testKey, Interval: time.Second, Now: clock,
		Client: &http.Client{Timeout: 5 * time.Second},
		Logger: hclog.New(&hclog.LoggerOptions{Output: writerFunc(func(p []byte) (int, error) {
			logMu.Lock()
			defer logMu.Unlock()
			return logs.Write(p)
		})})})
	flush := func(from, to int) {
		t.Helper()
		enqueue(t, q, from, to, 0)
		if err := s.Flush(t.Context()); err != nil {
			t.Fatalf("Flush of %d..%d: %v", from, to-1, err)
		}
	}

	flush(0, 5) // to the first daemon
	d1.SetStatus(http.StatusServiceUnavailable)
	flush(5, 10) // 503: to the second, in the same Flush
	d1.SetStatus(0)
	flush(10, 15) // stays with the second
	if got, want := numbers(d1), seq(0, 5); !slices.Equal(got, want) {
		t.Fatalf("first daemon stored %v, want %v", got, want)
	}
	if got, want := numbers(d2), seq(5, 15); !slices.Equal(got, want) {
		t.Fatalf("second daemon stored %v, want %v", got, want)
	}
	if sigs1, sigs2 := r1.all(), r2.all(); len(sigs1) != 2 || sigs1[1] != sigs2[0] {
		t.Fatalf("the batch refused with 503 was not resent as the identical signed request: %q then %q", sigs1, sigs2)
	}

	s2.Close() // connection refused: wraps around to the first
	flush(15, 20)
	if got := numbers(d1); !slices.Equal(got, append(seq(0, 5), seq(15, 20)...)) {
		t.Fatalf("after the second daemon went away the first stored %v", got)
	}

	d1.SetStatus(http.StatusInternalServerError) // every daemon fails
	enqueue(t, q, 20, 25, 0)
	if err := s.Flush(t.Context()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Flush with every daemon failing: %v, want the error of the last one tried", err)
	}
	if recs, _, _ := q.Peek(10, 1<<20); len(recs) != 5 {
		t.Fatalf("%d samples spooled after every daemon failed, want 5", len(recs))
	}

	// The second daemon is back; the first stores the batch but its answer
	// is lost: the identical request goes to the second.
	d1.SetStatus(0)
	lose.Store(true)
	ingesttest.Serve(t, s2.Listener.Addr().String(), r2)
	if err := s.Flush(t.Context()); err != nil {
		t.Fatalf("Flush after a lost answer: %v", err)
	}
	sigs1, sigs2 := r1.all(), r2.all()
	if sigs1[len(sigs1)-1] != sigs2[len(sigs2)-1] || !slices.Equal(numbers(d2)[10:], seq(20, 25)) {
		t.Fatalf("the batch whose answer was lost went to the second daemon as %q (first: %q), stored %v",
			sigs2[len(sigs2)-1], sigs1[len(sigs1)-1], numbers(d2))
	}
	lose.Store(false)

	// Failback: FailbackAfter later, the first daemon is tried again.
	now.Add(int64(FailbackAfter / time.Second))
	flush(25, 30)
	if got := numbers(d1); !slices.Equal(got[len(got)-5:], seq(25, 30)) {
		t.Fatalf("no failback to the first daemon: it stored %v", got)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "failing over to the next") || !strings.Contains(logs.String(), "trying the first daemon again") {
		t.Fatalf("failover and failback not logged:\n%s", logs.String())
	}
}

// A daemon that accepts the connection and never answers: the request
// times out and the same batch goes to the next daemon.
func TestBatchFailsOverFromADaemonThatHangs(t *testing.T) {
	release := make(chan struct{})
	var hung atomic.Int64
	s1 := ingesttest.Serve(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		<-release
	}))
	d2 := ingesttest.New(t, testHost, testKey)
	s2 := ingesttest.Serve(t, "127.0.0.1:0", d2)
	// Registered after the servers, so it runs before they close (a
	// server's Close waits for its handlers).
	t.Cleanup(func() { close(release) })
	q := newSpool(t)
	s := New(q, Options{URLs: []string{s1.URL, s2.URL}, Host: testHost, Key: testKey, Interval: time.Second,
		Client: &http.Client{Timeout: 300 * time.Millisecond}})
	enqueue(t, q, 0, 5, 0)
	if err := s.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if hung.Load() != 1 || !slices.Equal(numbers(d2), seq(0, 5)) {
		t.Fatalf("hung daemon got %d requests, the second stored %v", hung.Load(), numbers(d2))
	}
}
