package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/testutil"
)

func hostsByName(t *testing.T, base string) map[string]map[string]any {
	t.Helper()
	resp, err := http.Get(base + "/api/0/hosts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, h := range list {
		out[h["name"].(string)] = h
	}
	return out
}

func TestHostsShowNeverHeardHostsWithTheirRealState(t *testing.T) {
	cfg := testutil.Config(t, `
watch_dynamic: false
watchhosts:
  web01:
    key: "`+testutil.Key+`"
    timeout: 30s
  db01:
    key: "`+testutil.Key+`"
    timeout: 30s
`)
	st := testutil.Store(t, 10)
	if _, err := st.EnsureHost(context.Background(), "dyn01", true); err != nil {
		t.Fatal(err)
	}
	tr := heartbeat.NewTracker(heartbeat.TrackerConfig{Timeout: func(h string) time.Duration { return cfg.HostTimeout(h) }})
	start := time.Now()
	tr.Expect(heartbeat.Expectation{Host: "web01", From: start})
	tr.Expect(heartbeat.Expectation{Host: "db01", From: start.Add(20 * time.Second)}) // added by a reload
	srv := httptest.NewServer(api.New(api.Deps{Config: func() *config.Config { return cfg }, Store: st, Connections: api.TrackerSource{Tracker: tr}}).Echo)
	t.Cleanup(srv.Close)

	hosts := hostsByName(t, srv.URL)
	if len(hosts) != 3 {
		t.Fatalf("hosts %v: want web01, db01 and dyn01", hosts)
	}
	if h := hosts["web01"]; h["state"] != "UNKNOWN" || h["last_seen"] != nil || h["watched"] != true {
		t.Fatalf("web01 before its timeout: %v", h)
	}

	tr.Sweep(start.Add(31 * time.Second))
	hosts = hostsByName(t, srv.URL)
	web01 := hosts["web01"]
	for k, want := range map[string]any{"state": "DOWN", "last_seen": nil, "watched": true, "clock_offset_ms": nil, "reason": "", "dyn": false} {
		if got, ok := web01[k]; !ok || got != want {
			t.Errorf("web01 %s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	if c, ok := web01["connections"].([]any); !ok || len(c) != 0 {
		t.Errorf("web01 connections %v, want []", web01["connections"])
	}
	// The reference fields are all there.
	for _, k := range []string{"name", "dyn", "owner", "managers", "monitors", "connections"} {
		if _, ok := web01[k]; !ok {
			t.Errorf("web01 lacks %q", k)
		}
	}
	if h := hosts["db01"]; h["state"] != "UNKNOWN" {
		t.Errorf("db01, added 11 s before: %v", h)
	}
	if h := hosts["dyn01"]; h["watched"] != false || h["dyn"] != true || h["state"] != "UNKNOWN" {
		t.Errorf("dyn01 with watch_dynamic off: %v", h)
	}

	// Heard from through a real server and client: UP, last seen, clock
	// offset.
	hb := newHeartbeatServer(t, tr)
	sendHeartbeat(t, hb, "web01", []byte(testutil.Key))
	testutil.Eventually(t, "web01 UP in /api/0/hosts", 5*time.Second, func() bool {
		h := hostsByName(t, srv.URL)["web01"]
		return h["state"] == "UP" && h["last_seen"] != nil && h["clock_offset_ms"] != nil
	})
}

// newHeartbeatServer serves tr on a loopback UDP port.
func newHeartbeatServer(t *testing.T, tr *heartbeat.Tracker) *heartbeat.Server {
	t.Helper()
	srv, err := heartbeat.NewServer(heartbeat.ServerConfig{
		Addr4:   "127.0.0.1:0",
		Keys:    heartbeat.KeysFrom(map[string][]byte{"web01": []byte(testutil.Key)}, nil),
		Tracker: tr,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv
}

// sendHeartbeat runs a real client until its first ack.
func sendHeartbeat(t *testing.T, srv *heartbeat.Server, host string, key []byte) {
	t.Helper()
	c, err := heartbeat.NewClient(heartbeat.ClientConfig{Host: host, Key: key, Interval: 50 * time.Millisecond, Addr4: srv.Addr(heartbeat.IPv4).String()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	testutil.Eventually(t, "an ack", 5*time.Second, func() bool { return c.Status(heartbeat.IPv4).Acked > 0 })
}

func TestIngestClockSkewNamesTheOffsetAndTheFix(t *testing.T) {
	cfg := testutil.Config(t, cfgYAML)
	st := testutil.Store(t, 10)
	logs := &testutil.Buffer{}
	type report struct {
		host    string
		offset  time.Duration
		refused bool
	}
	var mu sync.Mutex
	var reports []report
	s := api.New(api.Deps{
		Config: func() *config.Config { return cfg },
		Store:  st,
		HostKey: func(h string) ([]byte, bool, bool) {
			k, ok := cfg.HostKey(h)
			return k, false, ok
		},
		ClockOffset: func(host string, off time.Duration, refused bool, _ time.Time) {
			mu.Lock()
			reports = append(reports, report{host, off, refused})
			mu.Unlock()
		},
		Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}),
	})
	srv := httptest.NewServer(s.Echo)
	t.Cleanup(srv.Close)
	key := []byte(testutil.Key)
	body := []byte(`{"samples":[{"plugin":"p","timestamp":1,"data":{"x":1}}]}`)
	shifted := func(signKey []byte, shift time.Duration) *http.Request {
		ts := time.Now().Add(shift).Unix()
		req := testutil.SignedRequest(t, srv.URL, "web01", key, body)
		req.Header.Set(protocol.HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(protocol.HeaderSignature, protocol.Sign(signKey, "web01", ts, body))
		return req
	}

	code, m, raw := do(t, shifted(key, 6*time.Minute+12*time.Second))
	// The timestamp has whole seconds: the offset is 6m12s or, across a
	// second boundary, 6m11s.
	re := regexp.MustCompile(`^clock skew: the batch is 6m1[0-2]s ahead of hbd's clock \(allowed ±5m0s\); fix the host's clock \(NTP\)$`)
	if code != 401 || !re.MatchString(m["error"].(string)) {
		t.Fatalf("6m12s ahead: %d %s", code, raw)
	}
	// Whole-second timestamps and a loaded machine: a second either way.
	behind := regexp.MustCompile(`the batch is (9m59s|10m[0-2]s) behind hbd's clock`)
	if code, m, raw = do(t, shifted(key, -10*time.Minute)); code != 401 || !behind.MatchString(m["error"].(string)) {
		t.Fatalf("10 min behind: %d %s", code, raw)
	}
	// A sender that cannot sign learns nothing about the clock.
	if code, m, raw = do(t, shifted([]byte("wrong-key-wrong-key-wrong-key-xx"), 6*time.Minute)); code != 401 || m["error"] != "unknown host or bad signature" {
		t.Fatalf("stale and unsigned: %d %s", code, raw)
	}
	mu.Lock()
	got := append([]report(nil), reports...)
	mu.Unlock()
	if len(got) != 2 || got[0].host != "web01" || !got[0].refused || got[0].offset < 6*time.Minute+10*time.Second || got[0].offset > 6*time.Minute+13*time.Second ||
		got[1].offset > -9*time.Minute {
		t.Fatalf("clock reports %+v: want the two signed ones, refused", got)
	}

	// All three came from 127.0.0.1 within a minute: one log line.
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var refused []string
	for _, l := range lines {
		if strings.Contains(l, "sample batch refused") {
			refused = append(refused, l)
		}
	}
	if len(refused) != 1 || !strings.Contains(refused[0], "[WARN]") || !strings.Contains(refused[0], "source=127.0.0.1") ||
		!strings.Contains(refused[0], "host=web01") || !strings.Contains(refused[0], "clock skew") {
		t.Fatalf("log lines of refused batches:\n%s", strings.Join(refused, "\n"))
	}
}
