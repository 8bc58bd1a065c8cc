package ws_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/ws"
	"github.com/hbdmon/hbd/sdk/level"
)

// visible is the stub access table: user -> hosts they may see.
var visible = map[string][]string{
	"alice": {"hostA"},
	"bob":   {"hostA", "hostB"},
	"root":  {"hostA", "hostB"}, // an administrator
}

// stubAuth authenticates the user named in X-Test-User, if known.
func stubAuth(r *http.Request) (access.Principal, bool) {
	u := r.Header.Get("X-Test-User")
	if _, ok := visible[u]; !ok {
		return access.Principal{}, false
	}
	return access.Principal{User: u, Admin: u == "root"}, true
}

// policy is the access policy of the same table: each user a monitor of
// the hosts they may see, root an administrator.
var policy = func() *access.Policy {
	cfg := &config.Config{Users: map[string]config.User{}, Watchhosts: map[string]config.WatchHost{}}
	for user, hosts := range visible {
		cfg.Users[user] = config.User{Admin: user == "root"}
		for _, h := range hosts {
			wh := cfg.Watchhosts[h]
			wh.Monitors = append(wh.Monitors, user)
			cfg.Watchhosts[h] = wh
		}
	}
	return access.NewPolicy(func() *config.Config { return cfg }, access.NewHosts(cfg))
}()

func newHub(t *testing.T, opts ws.Options) (*ws.Hub, string) {
	t.Helper()
	if opts.Authenticate == nil {
		opts.Authenticate = stubAuth
	}
	if opts.Policy == nil {
		opts.Policy = policy
	}
	h := ws.New(opts)
	srv := httptest.NewServer(h.PortHandler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.Close()
	})
	return h, "ws" + strings.TrimPrefix(srv.URL, "http") + ws.Path
}

func dial(t *testing.T, url, user string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	if hdr == nil {
		hdr = http.Header{}
	}
	if user != "" {
		hdr.Set("X-Test-User", user)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr})
	if c != nil {
		c.SetReadLimit(1 << 22)
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

func mustDial(t *testing.T, h *ws.Hub, url, user string) *websocket.Conn {
	t.Helper()
	before := h.Clients()
	c, _, err := dial(t, url, user, nil)
	if err != nil {
		t.Fatalf("dial as %s: %v", user, err)
	}
	testutil.Eventually(t, "client registered", 5*time.Second, func() bool { return h.Clients() > before })
	return c
}

type frame struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

func read(t *testing.T, c *websocket.Conn, timeout time.Duration) (frame, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		return frame{}, err
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	return f, nil
}

func mustRead(t *testing.T, c *websocket.Conn) frame {
	t.Helper()
	f, err := read(t, c, 5*time.Second)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return f
}

func dataOf(t *testing.T, f frame) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(f.Data, &m); err != nil {
		t.Fatalf("data of %s: %v", f.Type, err)
	}
	return m
}

func TestUpgradeWithoutSessionIs401BeforeUpgrading(t *testing.T) {
	_, url := newHub(t, ws.Options{})
	for _, user := range []string{"", "mallory"} {
		_, resp, err := dial(t, url, user, nil)
		if err == nil {
			t.Fatalf("user %q: upgrade accepted", user)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("user %q: want 401, got %v (%v)", user, resp, err)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("401 content type %q", ct)
		}
	}
}

func TestOriginMustShareTheRequestHostName(t *testing.T) {
	h, url := newHub(t, ws.Options{OriginPatterns: []string{"dash.example.org"}})
	cases := []struct {
		origin string
		ok     bool
	}{
		{"http://127.0.0.1:50004", true}, // the page on hbd_port, feed on ws_port
		{"https://127.0.0.1", true},
		{"http://dash.example.org", true}, // configured pattern
		{"http://evil.example", false},
		{"http://127.0.0.1.evil.example:50004", false},
		{"null", false},
	}
	for _, tc := range cases {
		c, resp, err := dial(t, url, "bob", http.Header{"Origin": {tc.origin}})
		if tc.ok {
			if err != nil {
				t.Errorf("origin %s refused: %v", tc.origin, err)
				continue
			}
			c.Close(websocket.StatusNormalClosure, "")
			continue
		}
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %s: want 403, got %v %v", tc.origin, resp, err)
		}
	}
	testutil.Eventually(t, "clients gone", 5*time.Second, func() bool { return h.Clients() == 0 })

	// Without an Origin, only a token header vouches for the caller.
	if _, resp, err := dial(t, url, "bob", http.Header{"Cookie": {"hbd_session=x"}}); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cookie without Origin: %v %v", resp, err)
	}
	// Any Authorization that is not a bearer token leaves the cookie to
	// authenticate: it must not skip the Origin check (issue 10).
	if _, resp, err := dial(t, url, "bob", http.Header{"Cookie": {"hbd_session=x"}, "Authorization": {"Basic Ym9iOng="}}); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cookie and Basic authorization without Origin: %v %v", resp, err)
	}
	for _, hdr := range []http.Header{
		{"Cookie": {"hbd_session=x"}, "X-Auth-Token": {"x"}},
		{"Cookie": {"hbd_session=x"}, "Authorization": {"Bearer x"}},
	} {
		c, _, err := dial(t, url, "bob", hdr)
		if err != nil {
			t.Fatalf("token header %v without Origin refused: %v", hdr, err)
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
}

func TestClientReceivesOnlyHostsItMaySee(t *testing.T) {
	h, url := newHub(t, ws.Options{})
	alice := mustDial(t, h, url, "alice")
	bob := mustDial(t, h, url, "bob")
	root := mustDial(t, h, url, "root")

	h.PublishHost(ws.Host{Name: "hostB", State: "DOWN"})
	h.PublishPlugin("hostB", "cpu_monitor", 1, map[string]any{"cpu_percent": 99.0})
	h.PublishAlert(ws.Alert{Hostname: "hostB", Level: level.Critical})
	h.PublishMessage("hostB", map[string]any{"host": "hostB", "msg": "secret"})
	h.PublishMessage("", map[string]any{"host": "", "msg": "login of carol from 192.0.2.7"})
	h.PublishHost(ws.Host{Name: "hostA", State: "UP"})

	// Order is kept, so alice's first frame proves all of B's, and the
	// daemon-wide message, were skipped.
	if f := mustRead(t, alice); f.Type != ws.TypeHost || dataOf(t, f)["name"] != "hostA" {
		t.Fatalf("alice first frame: %s %s", f.Type, f.Data)
	}
	if f, err := read(t, alice, 200*time.Millisecond); err == nil {
		t.Fatalf("alice got an extra frame: %s %s", f.Type, f.Data)
	}

	frames := func(c *websocket.Conn, n int) string {
		var types []string
		for i := 0; i < n; i++ {
			types = append(types, mustRead(t, c).Type)
		}
		return strings.Join(types, ",")
	}
	// Daemon-wide journal lines (logins, channel changes) are for admins,
	// as in GET /api/0/messages.
	if got := frames(bob, 5); got != "host,plugin,alert,message,host" {
		t.Fatalf("bob frames: %s", got)
	}
	if f, err := read(t, bob, 200*time.Millisecond); err == nil {
		t.Fatalf("bob got an extra frame: %s %s", f.Type, f.Data)
	}
	if got := frames(root, 6); got != "host,plugin,alert,message,message,host" {
		t.Fatalf("admin frames: %s", got)
	}
}

func TestMessageShapesFollowTheReference(t *testing.T) {
	h, url := newHub(t, ws.Options{})
	c := mustDial(t, h, url, "bob")

	since, seen, offset := 1711234000.5, 1711234567.25, -12.5
	h.PublishHost(ws.HostFrom(heartbeat.HostStatus{
		Name: "hostA", State: heartbeat.StateDegraded, Since: since, LastSeen: seen, ClockOffsetMS: &offset,
		Connections: []heartbeat.ConnectionStatus{{Family: heartbeat.IPv4, State: heartbeat.StateUp}},
	}, true))
	f := mustRead(t, c)
	d := dataOf(t, f)
	conns, _ := d["connections"].([]any)
	// The reference's name and state, then the fields of GET /api/0/hosts.
	if f.Type != "host" || d["name"] != "hostA" || d["state"] != "DEGRADED" || d["since"] != since ||
		d["last_seen"] != seen || d["clock_offset_ms"] != offset || d["watched"] != true || d["dyn"] != false ||
		d["reason"] != "" || len(conns) != 1 || conns[0].(map[string]any)["family"] != "ipv4" {
		t.Fatalf("host: %s %s", f.Type, f.Data)
	}
	// A host still awaited is UNKNOWN, never heard: last_seen null.
	h.PublishHost(ws.HostFrom(heartbeat.HostStatus{Name: "hostA"}, true))
	if d := dataOf(t, mustRead(t, c)); d["state"] != "UNKNOWN" || d["last_seen"] != nil || d["connections"] == nil {
		t.Fatalf("awaited host: %v", d)
	}

	h.PublishPlugin("hostA", "disk_monitor", 1711234567.123, map[string]any{"/": map[string]any{"percent": 65.0}})
	f = mustRead(t, c)
	want := `{"host":"hostA","plugin":"disk_monitor","data":{"/":{"percent":65}},"timestamp":1711234567.123}`
	if f.Type != "plugin" || string(f.Data) != want {
		t.Fatalf("plugin: %s %s", f.Type, f.Data)
	}

	at := time.Unix(1711234567, 0)
	h.AlertEvent(alert.Event{Host: "hostA", MetricPath: "cpu_monitor.cpu_percent", Level: level.Warning,
		PreviousLevel: level.OK, Value: 91.5, Kind: alert.KindChange, Since: at, Time: at, Text: "hostA cpu 91.5"})
	f = mustRead(t, c)
	want = `{"hostname":"hostA","metric_path":"cpu_monitor.cpu_percent","level":"WARNING","previous_level":"OK",` +
		`"last_value":91.5,"detail":"","kind":"change","since":1711234567,"time":1711234567,"notification_count":0,` +
		`"text":"hostA cpu 91.5","episode_start":0}`
	if f.Type != "alert" || string(f.Data) != want {
		t.Fatalf("alert: %s %s", f.Type, f.Data)
	}
}

func TestStoreSamplesArePublishedNested(t *testing.T) {
	h, url := newHub(t, ws.Options{})
	st := testutil.Store(t, 10)
	st.Subscribe(h.OnSamples)
	c := mustDial(t, h, url, "alice")

	err := st.AppendSamples(context.Background(), "hostA", []store.PluginSample{{
		Plugin: "disk_monitor",
		Sample: store.Sample{Timestamp: 42, Paths: []string{"/.percent", "/home.percent"}, Values: []float64{65, 12.5}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f := mustRead(t, c)
	want := `{"host":"hostA","plugin":"disk_monitor","data":{"/":{"percent":65},"/home":{"percent":12.5}},"timestamp":42}`
	if f.Type != "plugin" || string(f.Data) != want {
		t.Fatalf("plugin: %s %s", f.Type, f.Data)
	}
}

func TestTypesParameterLimitsTheFeed(t *testing.T) {
	h, url := newHub(t, ws.Options{})
	c, _, err := dial(t, url+"?types=host,message", "bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "client", 5*time.Second, func() bool { return h.Clients() == 1 })
	h.PublishPlugin("hostA", "cpu_monitor", 1, map[string]any{"cpu_percent": 1.0})
	h.PublishAlert(ws.Alert{Hostname: "hostA"})
	h.PublishHost(ws.Host{Name: "hostA", State: "UP"})
	if f := mustRead(t, c); f.Type != "host" {
		t.Fatalf("got %s", f.Type)
	}
	if _, resp, err := dial(t, url+"?types=bogus", "bob", nil); err == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad types: %v %v", resp, err)
	}
}

func TestSnapshotOnConnectIsFiltered(t *testing.T) {
	h, url := newHub(t, ws.Options{Snapshot: func() []ws.Host {
		return []ws.Host{
			{Name: "hostA", State: "UP", Reason: "snapshot"},
			{Name: "hostB", State: "DOWN"},
		}
	}})
	c := mustDial(t, h, url, "alice")
	f := mustRead(t, c)
	if d := dataOf(t, f); f.Type != "host" || d["name"] != "hostA" || d["reason"] != "snapshot" {
		t.Fatalf("snapshot: %s %s", f.Type, f.Data)
	}
	h.PublishHost(ws.Host{Name: "hostA", State: "DOWN"})
	if d := dataOf(t, mustRead(t, c)); d["state"] != "DOWN" {
		t.Fatalf("after snapshot: %v", d)
	}
}

func TestSlowClientIsDroppedWithoutBlockingPublishers(t *testing.T) {
	h, url := newHub(t, ws.Options{SendQueue: 4})
	slow := mustDial(t, h, url, "bob") // never reads
	fast := mustDial(t, h, url, "bob")
	_ = slow

	// Publishing never waits on the slow client: were it to, this loop
	// would stall before the slow client's queue overflowed (proof by
	// completion, not by elapsed time).
	big := strings.Repeat("x", 64<<10)
	for i := 0; h.Dropped() == 0; i++ {
		if i == 4000 { // 256 MB: far beyond any socket buffer
			t.Fatal("slow client never dropped")
		}
		h.PublishMessage("hostA", map[string]any{"i": i, "msg": big})
		// The fast client keeps up: it reads each message before the next.
		if f := mustRead(t, fast); f.Type != "message" {
			t.Fatalf("fast got %s", f.Type)
		}
	}
	testutil.Eventually(t, "slow client removed", 5*time.Second, func() bool { return h.Clients() == 1 })
	h.PublishHost(ws.Host{Name: "hostA", State: "UP"})
	if f := mustRead(t, fast); f.Type != "host" {
		t.Fatalf("fast client after drop: %s", f.Type)
	}
}

func TestMaxClientsAnswers503(t *testing.T) {
	h, url := newHub(t, ws.Options{MaxClients: 1})
	mustDial(t, h, url, "alice")
	_, resp, err := dial(t, url, "bob", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("want 503, got %v %v", resp, err)
	}
}

func TestEndedSessionIsDisconnected(t *testing.T) {
	var revoked atomic.Bool
	h, url := newHub(t, ws.Options{
		Reauth: 20 * time.Millisecond,
		Authenticate: func(r *http.Request) (access.Principal, bool) {
			if revoked.Load() {
				return access.Principal{}, false
			}
			return stubAuth(r)
		},
	})
	c := mustDial(t, h, url, "alice")
	revoked.Store(true)
	_, err := read(t, c, 5*time.Second)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("want policy violation close, got %v", err)
	}
	testutil.Eventually(t, "client removed", 5*time.Second, func() bool { return h.Clients() == 0 })
}

// A logged-out session stops receiving at once (Recheck), and an expiring
// one at its expiry, not at the next periodic re-check (issue 10).
func TestSessionEndClosesTheFeedWithoutWaitingForReauth(t *testing.T) {
	var revoked atomic.Bool
	var expires atomic.Int64 // bob's session end, unix nanoseconds
	auth := func(r *http.Request) (access.Principal, bool) {
		p, ok := stubAuth(r)
		if !ok || (revoked.Load() && p.User == "alice") {
			return access.Principal{}, false
		}
		if p.User == "bob" {
			p.Expires = time.Unix(0, expires.Load())
			if !time.Now().Before(p.Expires) {
				return access.Principal{}, false
			}
		}
		return p, true
	}
	h, url := newHub(t, ws.Options{Reauth: time.Hour, Authenticate: auth})
	alice := mustDial(t, h, url, "alice")
	revoked.Store(true)
	h.Recheck()
	if _, err := read(t, alice, 10*time.Second); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("logged-out client: want policy violation close, got %v", err)
	}

	testutil.Eventually(t, "alice removed", 5*time.Second, func() bool { return h.Clients() == 0 })
	// bob's session ends shortly after he connects.
	expires.Store(time.Now().Add(300 * time.Millisecond).UnixNano())
	bob := mustDial(t, h, url, "bob")
	for {
		f, err := read(t, bob, 10*time.Second)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("expired client: want policy violation close, got %v", err)
			}
			break
		}
		if f.Type != "host" {
			t.Fatalf("unexpected frame %s", f.Type)
		}
	}
}

func TestShutdownClosesClientsAndRefusesNewOnes(t *testing.T) {
	h := ws.New(ws.Options{Authenticate: stubAuth, Policy: policy})
	srv := httptest.NewServer(h.PortHandler())
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + ws.Path
	c := mustDial(t, h, url, "bob")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- h.Shutdown(ctx) }()
	_, err := read(t, c, 5*time.Second)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("want going away, got %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	_, resp, err := dial(t, url, "bob", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after shutdown: %v %v", resp, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("dial hung")
	}
}

// One user cannot take every slot of the feed (issue 10): past MaxPerUser
// their upgrades get 429, others still get in, and a closed connection
// gives its slot back.
func TestOneUserCannotTakeEverySlot(t *testing.T) {
	h, url := newHub(t, ws.Options{MaxClients: 10, MaxPerUser: 2})
	first := mustDial(t, h, url, "alice")
	mustDial(t, h, url, "alice")
	_, resp, err := dial(t, url, "alice", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("alice's third connection: want 429, got %v %v", resp, err)
	}
	mustDial(t, h, url, "bob")
	first.Close(websocket.StatusNormalClosure, "")
	testutil.Eventually(t, "alice's first connection gone", 5*time.Second, func() bool { return h.Clients() == 2 })
	testutil.Eventually(t, "alice may connect again", 5*time.Second, func() bool {
		c, _, err := dial(t, url, "alice", nil)
		if err != nil {
			return false
		}
		c.CloseNow()
		return true
	})
}
