package ws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/metrics"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/ws"
)

// anyUser authenticates every upgrade as the user named in X-Test-User:
// many distinct users, so the per-user cap stays out of the way.
func anyUser(r *http.Request) (access.Principal, bool) {
	return access.Principal{User: r.Header.Get("X-Test-User")}, true
}

// counter returns the value of a family of h.Metrics() for the label
// values, -1 when it emits none.
func counter(h *ws.Hub, name string, labels ...string) float64 {
	v := -1.0
	for _, f := range h.Metrics() {
		if f.Name != name {
			continue
		}
		f.Collect(func(x float64, lv ...string) {
			if strings.Join(lv, ",") == strings.Join(labels, ",") {
				v = x
			}
		})
	}
	return v
}

// The issue-12 load test found an undocumented limit of 256 clients: the
// default now admits a fleet's worth.
func TestDefaultLimitAdmitsMoreThan256Clients(t *testing.T) {
	if ws.DefaultMaxClients < 5000 {
		t.Fatalf("DefaultMaxClients %d, want at least 5000", ws.DefaultMaxClients)
	}
	h, url := newHub(t, ws.Options{Authenticate: anyUser})
	for i := 0; i < 300; i++ {
		if _, resp, err := dial(t, url, fmt.Sprintf("user%d", i), nil); err != nil {
			t.Fatalf("client %d refused: %v %v", i, resp, err)
		}
	}
	testutil.Eventually(t, "300 clients registered", 10*time.Second, func() bool { return h.Clients() == 300 })
}

// Options.Limits is asked at every upgrade, so a reloaded ws_max_clients
// or ws_max_clients_per_user applies to the next connection.
func TestLimitsApplyToTheNextUpgrade(t *testing.T) {
	var maxClients, perUser atomic.Int64
	maxClients.Store(2)
	perUser.Store(1)
	h, url := newHub(t, ws.Options{Limits: func() (int, int) { return int(maxClients.Load()), int(perUser.Load()) }})
	mustDial(t, h, url, "alice")
	if _, resp, err := dial(t, url, "alice", nil); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("alice's second connection at a per-user cap of 1: want 429, got %v %v", resp, err)
	}
	mustDial(t, h, url, "bob")
	if _, resp, err := dial(t, url, "root", nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third client at a cap of 2: want 503, got %v %v", resp, err)
	}
	maxClients.Store(3)
	perUser.Store(2)
	mustDial(t, h, url, "alice")
	if n := h.Clients(); n != 3 {
		t.Fatalf("clients %d, want 3", n)
	}
}

// A client that stops reading is dropped once a frame is not taken within
// the write timeout, not after megabytes of kernel buffering: before the
// fix the 2 MB below were all absorbed by the sockets' buffers and the
// stalled client stayed connected. The others keep receiving and the drop
// is counted under write_timeout.
func TestStalledClientIsDroppedOnTheWriteTimeout(t *testing.T) {
	// The queue is far larger than what is published, so only the write
	// timeout can drop the client.
	h, url := newHub(t, ws.Options{SendQueue: 1 << 16, WriteTimeout: 100 * time.Millisecond})
	mustDial(t, h, url, "bob") // stalled: never reads
	fast := mustDial(t, h, url, "bob")
	if v := counter(h, "hbd_ws_dropped_total", "write_timeout"); v != 0 {
		t.Fatalf("write_timeout drops before the test: %v", v)
	}

	big := strings.Repeat("x", 32<<10)
	for i := 0; i < 64; i++ { // 2 MB
		h.PublishMessage("hostA", map[string]any{"i": i, "msg": big})
		if f := mustRead(t, fast); f.Type != ws.TypeMessage {
			t.Fatalf("fast client got %s", f.Type)
		}
	}
	testutil.Eventually(t, "stalled client dropped", 10*time.Second, func() bool { return h.Clients() == 1 })
	if v := counter(h, "hbd_ws_dropped_total", "write_timeout"); v != 1 {
		t.Fatalf("hbd_ws_dropped_total{reason=write_timeout} = %v, want 1", v)
	}
	if v := counter(h, "hbd_ws_dropped_total", "queue_full"); v != 0 {
		t.Fatalf("hbd_ws_dropped_total{reason=queue_full} = %v, want 0", v)
	}
	if h.Dropped() != 1 {
		t.Fatalf("Dropped() = %d, want 1", h.Dropped())
	}
	h.PublishHost(ws.Host{Name: "hostA", State: "UP"})
	if f := mustRead(t, fast); f.Type != ws.TypeHost {
		t.Fatalf("fast client after the drop: %s", f.Type)
	}
}

// versioned reads a host frame's name and version (carried in since) or a
// plugin frame's host and version (its timestamp).
func versioned(t *testing.T, f frame) (string, float64) {
	t.Helper()
	var d struct {
		Name      string  `json:"name"`
		Since     float64 `json:"since"`
		Host      string  `json:"host"`
		Timestamp float64 `json:"timestamp"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatal(err)
	}
	if f.Type == ws.TypeHost {
		return d.Name, d.Since
	}
	return d.Host, d.Timestamp
}

// While a client's writer is blocked (the client is not reading a large
// frame), host states and plugin samples replace their queued older
// version in place; alerts and journal lines are never merged. The client
// then gets the latest of each, in fewer frames than were published, and
// is not dropped though far more than its queue's size was published.
func TestSlowClientGetsTheLatestStateOfEachHost(t *testing.T) {
	// The write timeout is long: the client pauses on purpose.
	h, url := newHub(t, ws.Options{SendQueue: 8, WriteTimeout: time.Minute})
	c := mustDial(t, h, url, "bob")

	// 3 MB cannot fit in the socket buffers: the writer stays blocked on
	// this frame until the client reads, so everything below is queued.
	h.PublishMessage("hostA", map[string]any{"msg": strings.Repeat("x", 3<<20)})
	const versions = 300
	for v := 1; v <= versions; v++ {
		for _, host := range []string{"hostA", "hostB"} {
			h.PublishHost(ws.Host{Name: host, State: "UP", Since: float64(v)})
			h.PublishPlugin(host, "cpu_monitor", float64(v), map[string]any{"cpu_percent": float64(v)})
		}
		if v == versions/2 {
			h.PublishAlert(ws.Alert{Hostname: "hostB", Text: "mid"})
		}
	}

	if f := mustRead(t, c); f.Type != ws.TypeMessage {
		t.Fatalf("first frame %s, want the large message", f.Type)
	}
	// Each merged frame keeps the place of the first one it replaced.
	want := []string{"host hostA 300", "plugin hostA 300", "host hostB 300", "plugin hostB 300", "alert"}
	for i, w := range want {
		f := mustRead(t, c)
		got := f.Type
		if f.Type != ws.TypeAlert {
			host, v := versioned(t, f)
			got = fmt.Sprintf("%s %s %v", f.Type, host, v)
		}
		if got != w {
			t.Fatalf("frame %d: %s, want %s", i, got, w)
		}
	}
	if h.Dropped() != 0 || h.Clients() != 1 {
		t.Fatalf("dropped %d, clients %d", h.Dropped(), h.Clients())
	}
	// (A read that times out closes the connection: this is the last.)
	if f, err := read(t, c, 200*time.Millisecond); err == nil {
		t.Fatalf("extra frame %s %s", f.Type, f.Data)
	}
	// 4 keys × 299 replaced versions.
	if v := counter(h, "hbd_ws_coalesced_total"); v != 4*(versions-1) {
		t.Fatalf("hbd_ws_coalesced_total = %v, want %d", v, 4*(versions-1))
	}
}

// A client reading while a publisher races ahead never gets a host's
// older state after a newer one, and ends with the latest of each.
func TestReaderNeverGetsAnOlderStateAfterANewerOne(t *testing.T) {
	hosts := []string{"hostA", "hostB"}
	// Two hosts, two kinds: a queue of 4 never fills, whatever the pace.
	h, url := newHub(t, ws.Options{SendQueue: 4, WriteTimeout: time.Minute})
	c := mustDial(t, h, url, "bob")

	const versions = 2000
	go func() {
		for v := 1; v <= versions; v++ {
			for _, host := range hosts {
				h.PublishHost(ws.Host{Name: host, Since: float64(v)})
				h.PublishPlugin(host, "cpu_monitor", float64(v), nil)
			}
		}
	}()
	last := map[string]float64{}
	frames := 0
	for done := 0; done < 2*len(hosts); {
		f := mustRead(t, c)
		frames++
		host, v := versioned(t, f)
		key := f.Type + " " + host
		if v <= last[key] {
			t.Fatalf("%s: version %v after %v", key, v, last[key])
		}
		last[key] = v
		if v == versions {
			done++
		}
	}
	if h.Dropped() != 0 {
		t.Fatalf("dropped %d", h.Dropped())
	}
	t.Logf("%d frames for %d published", frames, versions*2*len(hosts))
}

func TestMetricsFamilies(t *testing.T) {
	h := ws.New(ws.Options{Authenticate: stubAuth, Policy: policy})
	defer h.Shutdown(context.Background())
	names := map[string]metrics.Family{}
	for _, f := range h.Metrics() {
		names[f.Name] = f
	}
	for _, reason := range []string{"queue_full", "write_timeout", "ping_timeout"} {
		if v := counter(h, "hbd_ws_dropped_total", reason); v != 0 {
			t.Errorf("hbd_ws_dropped_total{reason=%q} = %v, want 0", reason, v)
		}
	}
	if f := names["hbd_ws_dropped_total"]; !f.Counter || len(f.Labels) != 1 || f.Labels[0] != "reason" {
		t.Errorf("hbd_ws_dropped_total: %+v", f)
	}
	if f := names["hbd_ws_coalesced_total"]; !f.Counter {
		t.Errorf("hbd_ws_coalesced_total: %+v", f)
	}
}

// dialSmallBuffer connects like dial, over a TCP connection whose kernel
// receive buffer is a few KB, so a client that stops reading stalls the
// server's writes after little data.
func dialSmallBuffer(t *testing.T, url, user string) *websocket.Conn {
	t.Helper()
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client, HTTPHeader: http.Header{"X-Test-User": {user}}})
	if err != nil {
		t.Fatalf("dial as %s: %v", user, err)
	}
	c.SetReadLimit(1 << 22)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// Issue 12, item 5, with the daemon's settings (WriteTimeout 1 s, the
// default queue and send buffer): a real client that stops reading, over
// a connection with small socket buffers, is dropped because a frame was
// not taken in time, counted under write_timeout, and its connection is
// closed: when it reads again it gets what the buffers held, then the end,
// not the rest of what was published.
func TestStalledClientIsDroppedAndCountedWithTheDefaults(t *testing.T) {
	h, url := newHub(t, ws.Options{})
	stalled := dialSmallBuffer(t, url, "bob")
	testutil.Eventually(t, "stalled client registered", 5*time.Second, func() bool { return h.Clients() == 1 })
	fast := mustDial(t, h, url, "bob")

	big := strings.Repeat("x", 16<<10)
	const published = 128 // 2 MB, far beyond both sockets' buffers, and under the queue of 256
	for i := 0; i < published; i++ {
		h.PublishMessage("hostA", map[string]any{"i": i, "msg": big})
		if f := mustRead(t, fast); f.Type != ws.TypeMessage {
			t.Fatalf("fast client got %s", f.Type)
		}
	}
	testutil.Eventually(t, "stalled client dropped", 30*time.Second, func() bool { return h.Clients() == 1 })
	if v := counter(h, "hbd_ws_dropped_total", "write_timeout"); v != 1 {
		t.Fatalf("hbd_ws_dropped_total{reason=write_timeout} = %v, want 1", v)
	}
	if v := counter(h, "hbd_ws_dropped_total", "queue_full"); v != 0 {
		t.Fatalf("hbd_ws_dropped_total{reason=queue_full} = %v, want 0", v)
	}

	got := 0
	for {
		if _, err := read(t, stalled, 10*time.Second); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("the stalled client's connection is still open after %d frames", got)
			}
			break
		}
		got++
	}
	if got >= published {
		t.Fatalf("the stalled client got all %d frames after all", got)
	}
	t.Logf("the stalled client got %d of %d frames before its connection ended", got, published)
}
