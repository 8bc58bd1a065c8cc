package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// startSharedDaemon runs a real daemon on the PostgreSQL database dsn,
// sharing its heartbeats as node (flushing every 50 ms), and returns it
// with its API's base URL and its heartbeat port.
func startSharedDaemon(t *testing.T, dsn, node string, leader func(*Daemon) store.FenceFunc) (*Daemon, string, int) {
	t.Helper()
	dir := t.TempDir()
	hbPort := testutil.FreePort(t)
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	cfg := fmt.Sprintf(`hbd_host: 127.0.0.1
hbd_port: %d
ws_port: 0
hb_port: %d
hb_listen4: 127.0.0.1
hb_listen6: ""
data_dir: %s
plugins_dir: %s
store:
  driver: postgres
  dsn: %q
watchhosts:
  web01:
    key: "%s"
`, testutil.FreePort(t), hbPort, filepath.Join(dir, "data"), filepath.Join(dir, "plugins"), dsn, testutil.Key)
	path := filepath.Join(dir, "hbd.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := New(ctx, path, Options{Logger: hclog.NewNullLogger(), Environ: []string{}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := d.shareHeartbeats(node, leader(d), 50*time.Millisecond); err != nil {
		cancel()
		d.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return d, "http://" + d.HTTPAddr().String(), hbPort
}

// TestDaemonsShareHeartbeatLiveness: two real daemons on one PostgreSQL
// database; the agent sends heartbeats to b (a follower) only. a, the
// leader, shows web01 UP in its API from b's flushed liveness, and writes
// the state change once, fenced; /metrics counts the flushes and merges.
func TestDaemonsShareHeartbeatLiveness(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, baseA, _ := startSharedDaemon(t, dsn, "a", func(d *Daemon) store.FenceFunc {
		g, err := d.Store.TakeLease(context.Background(), "a", time.Hour, time.Second)
		if err != nil || !g.Held {
			t.Fatalf("lease: %+v %v", g, err)
		}
		f := store.Fence{Holder: "a", Epoch: g.Epoch}
		return func() (store.Fence, bool) { return f, true }
	})
	_, baseB, hbB := startSharedDaemon(t, dsn, "b", func(*Daemon) store.FenceFunc {
		return func() (store.Fence, bool) { return store.Fence{}, false }
	})

	c, err := heartbeat.NewClient(heartbeat.ClientConfig{Host: "web01", Key: []byte(testutil.Key), Interval: 100 * time.Millisecond,
		Addr4: "127.0.0.1:" + strconv.Itoa(hbB)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)

	upAt := func(base string) bool {
		resp, err := http.Get(base + "/api/0/hosts")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var hosts []struct {
			Name, State string
		}
		json.NewDecoder(resp.Body).Decode(&hosts)
		for _, h := range hosts {
			if h.Name == "web01" {
				return h.State == "UP"
			}
		}
		return false
	}
	deadline := time.Now().Add(30 * time.Second)
	for !(upAt(baseA) && upAt(baseB)) {
		if time.Now().After(deadline) {
			t.Fatalf("web01 not UP on both daemons (a %v, b %v)", upAt(baseA), upAt(baseB))
		}
		time.Sleep(20 * time.Millisecond)
	}
	var ups int
	for time.Now().Before(deadline) {
		states, err := a.Store.States(context.Background(), "web01", "ipv4", 0)
		if err != nil {
			t.Fatal(err)
		}
		if ups = len(states); ups > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ups != 1 {
		t.Fatalf("%d ipv4 state rows for web01, want the leader's one", ups)
	}
	// The session's first heartbeats (at least one) are refused while b
	// claims it.
	if m := scrape(t, baseB); !strings.Contains(m, `hbd_heartbeat_session_claims_total{result="granted"} 1`) ||
		strings.Contains(m, `hbd_heartbeats_dropped_total{reason="unclaimed"} 0`) {
		t.Fatalf("b's /metrics lacks the claim of the agent's session:\n%s", grepLines(m, "hbd_heartbeat"))
	}
	if m := scrape(t, baseA); strings.Contains(m, "hbd_heartbeat_shared_merged_total 0\n") {
		t.Fatalf("a merged nothing:\n%s", grepLines(m, "hbd_heartbeat_shared"))
	}

	// a takes over (again): it holds DOWN decisions for the longest host
	// timeout from now, even for a host silent for longer than that.
	cancel()
	time.Sleep(time.Second) // web01 is silent since at least this long before the takeover
	a.heartbeatLeaderChanged(true, 2)
	now := time.Now()
	timeout := a.Config().HostTimeout("web01")
	a.Tracker.Sweep(now.Add(timeout - 300*time.Millisecond))
	if h, _ := a.Tracker.Snapshot("web01"); h.State == heartbeat.StateDown {
		t.Fatal("web01 declared DOWN while the new leader holds timeouts")
	}
	a.Tracker.Sweep(now.Add(timeout + time.Second))
	if h, _ := a.Tracker.Snapshot("web01"); h.State != heartbeat.StateDown {
		t.Fatalf("web01 %s after the hold, want DOWN", h.State)
	}
}
