package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/daemon"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/testutil"
)

// inProcess is a daemon built with daemon.New and run in this process.
type inProcess struct {
	d      *daemon.Daemon
	base   string
	log    *testutil.Buffer
	cancel context.CancelFunc
	done   chan struct{}
}

func startInProcess(t testing.TB, cfgPath string) *inProcess {
	t.Helper()
	p := &inProcess{log: &testutil.Buffer{}, done: make(chan struct{})}
	logger := hclog.New(&hclog.LoggerOptions{Name: "hbd", Output: p.log, Level: hclog.Info})
	ctx, cancel := context.WithCancel(context.Background())
	d, err := daemon.New(ctx, cfgPath, daemon.Options{Logger: logger, Environ: []string{}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p.d, p.cancel = d, cancel
	p.base = "http://" + d.HTTPAddr().String()
	go func() { d.Run(ctx); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

func (p *inProcess) stop() {
	p.cancel()
	<-p.done
}

type hostEntry struct {
	Name          string   `json:"name"`
	State         string   `json:"state"`
	LastSeen      *float64 `json:"last_seen"`
	Watched       bool     `json:"watched"`
	ClockOffsetMS *float64 `json:"clock_offset_ms"`
	Reason        string   `json:"reason"`
	Connections   []struct {
		Family   string  `json:"family"`
		State    string  `json:"state"`
		LastSeen float64 `json:"last_seen"`
	} `json:"connections"`
}

func (p *inProcess) host(t *testing.T, name string) hostEntry {
	t.Helper()
	resp, err := http.Get(p.base + "/api/0/hosts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var hosts []hostEntry
	if err := json.NewDecoder(resp.Body).Decode(&hosts); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("%s not in /api/0/hosts: %+v", name, hosts)
	return hostEntry{}
}

func writeLivenessConfig(t *testing.T, dir string, hbPort int, ipv6 bool) string {
	t.Helper()
	listen6 := `""`
	if ipv6 {
		listen6 = `"::1"`
	}
	body := fmt.Sprintf(`hbd_host: 127.0.0.1
hbd_port: %d
ws_port: 0
hb_port: %d
hb_listen4: 127.0.0.1
hb_listen6: %s
data_dir: %s
plugins_dir: %s
watchhosts:
  web01:
    key: "%s"
    timeout: 1s
  silent01:
    key: "%s"
    timeout: 1s
  ahead01:
    key: "%s"
    timeout: 1s
`, testutil.FreePort(t), hbPort, listen6, filepath.Join(dir, "data"), filepath.Join(dir, "plugins"), testutil.Key, testutil.Key, testutil.Key)
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	path := filepath.Join(dir, "hbd.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runAgent runs a real heartbeat client for web01 until the test ends or
// the returned stop is called.
func runAgent(t *testing.T, hbPort int, ipv4, ipv6 bool) (stop func()) {
	t.Helper()
	return runAgentAs(t, "web01", 0, hbPort, ipv4, ipv6)
}

// runAgentAs runs a real heartbeat client for host, its clock shifted by
// skew.
func runAgentAs(t *testing.T, host string, skew time.Duration, hbPort int, ipv4, ipv6 bool) (stop func()) {
	t.Helper()
	cfg := heartbeat.ClientConfig{Host: host, Key: []byte(testutil.Key), Interval: 100 * time.Millisecond,
		Now: func() time.Time { return time.Now().Add(skew) }}
	if ipv4 {
		cfg.Addr4 = net.JoinHostPort("127.0.0.1", strconv.Itoa(hbPort))
	}
	if ipv6 {
		cfg.Addr6 = net.JoinHostPort("::1", strconv.Itoa(hbPort))
	}
	c, err := heartbeat.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// TestSilentHostsAreDownAcrossRestart runs the real daemon in process: a
// configured host that never reports goes DOWN after its timeout (API, log,
// journal); a host heard over IPv4 and IPv6 before a restart that comes
// back on IPv4 only is DEGRADED with IPv6 DOWN, last seen before the
// restart.
func TestSilentHostsAreDownAcrossRestart(t *testing.T) {
	ipv6 := testutil.HasIPv6Loopback()
	dir := t.TempDir()
	hbPort := testutil.FreePort(t)
	cfgPath := writeLivenessConfig(t, dir, hbPort, ipv6)

	a := startInProcess(t, cfgPath)
	if h := a.host(t, "silent01"); h.State != "UNKNOWN" && h.State != "DOWN" {
		t.Fatalf("silent01 at start: %+v", h)
	}
	testutil.Eventually(t, "silent01 DOWN", 10*time.Second, func() bool { return a.host(t, "silent01").State == "DOWN" })
	if h := a.host(t, "silent01"); h.LastSeen != nil || !h.Watched || len(h.Connections) != 0 {
		t.Fatalf("silent01: %+v", h)
	}
	testutil.Eventually(t, "the DOWN log line", 5*time.Second, func() bool {
		return strings.Contains(a.log.String(), "[WARN]  hbd: host DOWN: host=silent01 last_seen=never")
	})
	testutil.Eventually(t, "the journal line", 5*time.Second, func() bool {
		return messageLogged(t, a.base, "silent01 DOWN: never heard from")
	})

	if !ipv6 {
		// The never-heard half above ran; the restart half needs two families.
		t.Skip("the restart half needs an IPv6 loopback (::1), which this machine lacks")
	}
	stopAgent := runAgent(t, hbPort, true, true)
	testutil.Eventually(t, "web01 UP on both families", 10*time.Second, func() bool {
		h := a.host(t, "web01")
		return h.State == "UP" && len(h.Connections) == 2 && h.ClockOffsetMS != nil
	})
	testutil.Eventually(t, "the UP log line", 5*time.Second, func() bool {
		return strings.Contains(a.log.String(), "[INFO]  hbd: host UP: host=web01")
	})
	stopAgent()
	a.stop() // writes the last heartbeat times
	lastBefore := float64(time.Now().UnixNano()) / 1e9

	b := startInProcess(t, cfgPath)
	runAgent(t, hbPort, true, false)
	testutil.Eventually(t, "web01 DEGRADED with IPv6 DOWN", 10*time.Second, func() bool {
		return b.host(t, "web01").State == "DEGRADED"
	})
	h := b.host(t, "web01")
	var v6 *float64
	for _, c := range h.Connections {
		if c.Family == "ipv6" {
			if c.State != "DOWN" {
				t.Errorf("ipv6 %s", c.State)
			}
			v6 = &c.LastSeen
		}
	}
	if v6 == nil || *v6 <= 0 || *v6 > lastBefore {
		t.Fatalf("ipv6 last seen %v, want a time before the restart (%v): %+v", v6, lastBefore, h)
	}
	// The state is visible before the observers (the log among them) ran.
	testutil.Eventually(t, "the restarted daemon's log lines", 5*time.Second, func() bool {
		return strings.Contains(b.log.String(), "heartbeat connection DOWN: host=web01 family=ipv6") &&
			strings.Contains(b.log.String(), `host DEGRADED: host=web01 families="ipv4,ipv6"`)
	})
}

// TestClockAheadIsShownAndAlerted: a host whose clock is 10 minutes ahead
// has its heartbeats and batches refused; the real daemon shows it DOWN
// with the reason and raises heartbeat.clock_offset_ms, and its batches are
// answered with the offset and the fix.
func TestClockAheadIsShownAndAlerted(t *testing.T) {
	dir := t.TempDir()
	hbPort := testutil.FreePort(t)
	a := startInProcess(t, writeLivenessConfig(t, dir, hbPort, false))
	runAgentAs(t, "ahead01", 10*time.Minute, hbPort, true, false)
	testutil.Eventually(t, "ahead01 DOWN with its reason", 10*time.Second, func() bool {
		h := a.host(t, "ahead01")
		return h.State == "DOWN" && h.Reason == "clock 10m0s ahead of hbd"
	})
	if h := a.host(t, "ahead01"); h.ClockOffsetMS == nil || *h.ClockOffsetMS < 599e3 || *h.ClockOffsetMS > 601e3 || h.LastSeen != nil {
		t.Fatalf("ahead01: %+v", h)
	}
	defer func() {
		if t.Failed() {
			resp, _ := http.Get(a.base + "/api/0/alerts")
			b, _ := io.ReadAll(resp.Body)
			t.Logf("alerts: %s\nlog:\n%s", b, a.log.String())
		}
	}()
	testutil.Eventually(t, "the clock alert", 10*time.Second, func() bool {
		resp, err := http.Get(a.base + "/api/0/alerts")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Alerts []struct {
				Hostname   string `json:"hostname"`
				MetricPath string `json:"metric_path"`
				Level      string `json:"level"`
			} `json:"alerts"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		for _, al := range body.Alerts {
			if al.Hostname == "ahead01" && al.MetricPath == "heartbeat.clock_offset_ms" && al.Level == "CRITICAL" {
				return true
			}
		}
		return false
	})
	for _, want := range []string{
		`heartbeat refused: reason="clock 10m0s ahead of hbd (allowed ±5m0s): fix the host's clock (NTP)" host=ahead01 source=127.0.0.1`,
		`host DOWN: host=ahead01 last_seen=never reason="clock 10m0s ahead of hbd"`,
	} {
		testutil.Eventually(t, "log line "+want, 5*time.Second, func() bool { return strings.Contains(a.log.String(), want) })
	}

	// A signed batch 10 minutes ahead is refused with the offset and the fix.
	ts := time.Now().Add(10 * time.Minute).Unix()
	body := []byte(`{"samples":[{"plugin":"p","timestamp":1,"data":{"x":1}}]}`)
	req := testutil.SignedRequest(t, a.base, "ahead01", []byte(testutil.Key), body)
	req.Header.Set(protocol.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(protocol.HeaderSignature, protocol.Sign([]byte(testutil.Key), "ahead01", ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&answer)
	if resp.StatusCode != 401 || !strings.HasPrefix(answer.Error, "clock skew: the batch is ") || !strings.HasSuffix(answer.Error, "ahead of hbd's clock (allowed ±5m0s); fix the host's clock (NTP)") {
		t.Fatalf("batch 10 min ahead: %d %q", resp.StatusCode, answer.Error)
	}
}
