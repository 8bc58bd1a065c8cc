package e2e_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/hbdmon/hbd/core/heartbeat"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/testutil"
)

// The liveness process tests of issue 9: the real hbd, the real hbc and a
// real HTTP receiver (the webhook notifier plugin posting to it). Hosts use
// a 3 s timeout and the agent a 1 s heartbeat interval, so an outage is
// decided within seconds.

// liveEnv is one daemon directory that a test may stop and start again.
type liveEnv struct {
	t        *testing.T
	bin      string
	dir      string
	port     int
	hbPort   int
	d        *testutil.Daemon
	hook     *pht.Receiver
	hbcBin   string
	agentsMu sync.Mutex
	agents   []*exec.Cmd
}

const hostTimeout = "3s"

// startLive writes an hbd.yaml watching the given hosts (each "key"ed with
// testutil.Key and a 3 s timeout) with one webhook channel covering every
// host, plus extra YAML, and starts the daemon.
func startLive(t *testing.T, hosts []string, extra string) *liveEnv {
	return startLiveWith(t, hosts, nil, extra)
}

// startLiveWith is startLive with extra YAML lines under some hosts'
// watchhosts entries (indented by the caller).
func startLiveWith(t *testing.T, hosts []string, hostExtra map[string]string, extra string) *liveEnv {
	t.Helper()
	e := &liveEnv{t: t, bin: testutil.Build(t, "./core/cmd/hbd"), hbcBin: testutil.Build(t, "./core/cmd/hbc"),
		dir: t.TempDir(), port: testutil.FreePort(t), hbPort: testutil.FreePort(t), hook: pht.NewReceiver(t)}
	os.MkdirAll(filepath.Join(e.dir, "data"), 0o755)
	var wh strings.Builder
	for _, h := range hosts {
		timeout := "    timeout: " + hostTimeout + "\n"
		if strings.Contains(hostExtra[h], "timeout:") {
			timeout = ""
		}
		fmt.Fprintf(&wh, "  %s:\n    key: %q\n%s%s", h, testutil.Key, timeout, hostExtra[h])
	}
	cfg := fmt.Sprintf(`hbd_host: 127.0.0.1
hbd_port: %d
ws_port: 0
hb_port: %d
hb_listen6: "%s"
data_dir: ./data
plugins_dir: %s
thresholds:
  cpu_monitor.cpu_percent: {warning: 80, critical: 90}
watchhosts:
%snotification_channels:
  ops: {type: webhook, url: "%s/ops"}
%s`, e.port, e.hbPort, listen6(), pht.Dir(t, pht.Webhook), wh.String(), e.hook.URL, extra)
	if err := os.WriteFile(filepath.Join(e.dir, "hbd.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start()
	t.Cleanup(e.stopAgents)
	return e
}

func listen6() string {
	if testutil.HasIPv6Loopback() {
		return "::1"
	}
	return ""
}

func (e *liveEnv) start() {
	e.t.Helper()
	e.d = testutil.StartDaemon(e.t, e.bin, e.dir, e.port)
}

// stopDaemon ends the daemon with SIGTERM (clean shutdown).
func (e *liveEnv) stopDaemon() {
	e.t.Helper()
	e.d.Signal(syscall.SIGTERM)
	if code := e.d.Wait(20 * time.Second); code != 0 {
		e.t.Fatalf("hbd exit code %d:\n%s", code, e.d.Stderr())
	}
}

// agent starts the real hbc for host with 1 s intervals; ipv6 false leaves
// the IPv6 server address empty.
func (e *liveEnv) agent(host string, ipv6 bool) *exec.Cmd {
	e.t.Helper()
	cfg := fmt.Sprintf(`host: %s
key: %q
server_ipv4: 127.0.0.1:%d
server_ipv6: "%s"
heartbeat_interval: 1s
api_url: http://127.0.0.1:%d
spool_dir: %s
send_interval: 1s
plugins:
  cpu_monitor: {interval: 1s}
  memory_monitor: {enabled: false}
  disk_monitor: {enabled: false}
  network_monitor: {enabled: false}
`, host, testutil.Key, e.hbPort, map[bool]string{true: fmt.Sprintf("[::1]:%d", e.hbPort), false: ""}[ipv6 && testutil.HasIPv6Loopback()],
		e.port, filepath.Join(e.dir, "spool-"+host))
	path := filepath.Join(e.dir, "hbc-"+host+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(e.hbcBin, "-config", path)
	cmd.Dir = e.dir
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.agentsMu.Lock()
	e.agents = append(e.agents, cmd)
	e.agentsMu.Unlock()
	return cmd
}

func killAgent(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
}

func (e *liveEnv) stopAgents() {
	e.agentsMu.Lock()
	defer e.agentsMu.Unlock()
	for _, a := range e.agents {
		if a.ProcessState == nil {
			killAgent(a)
		}
	}
}

// liveHost is the part of a /api/0/hosts entry these tests read.
type liveHost struct {
	Name        string   `json:"name"`
	State       string   `json:"state"`
	LastSeen    *float64 `json:"last_seen"`
	Reason      string   `json:"reason"`
	ClockOffset *float64 `json:"clock_offset_ms"`
	Connections []struct {
		Family string `json:"family"`
		State  string `json:"state"`
	} `json:"connections"`
}

func (e *liveEnv) host(name string) liveHost {
	e.t.Helper()
	var hosts []liveHost
	getJSON(e.t, e.d.BaseURL+"/api/0/hosts", &hosts)
	for _, h := range hosts {
		if h.Name == name {
			return h
		}
	}
	e.t.Fatalf("host %s missing from /api/0/hosts: %+v", name, hosts)
	return liveHost{}
}

func (h liveHost) family(f string) string {
	for _, c := range h.Connections {
		if c.Family == f {
			return c.State
		}
	}
	return ""
}

// waitUp waits until host is UP on every family the agent sends.
func (e *liveEnv) waitUp(host string) {
	e.t.Helper()
	testutil.Eventually(e.t, host+" UP", 20*time.Second, func() bool {
		h := e.host(host)
		return h.State == "UP" && h.family("ipv4") == "UP" && (!testutil.HasIPv6Loopback() || h.family("ipv6") == "UP")
	})
}

// notification is the part of a webhook body these tests read.
type notification struct {
	ID     string `json:"id"`
	Host   string `json:"host"`
	Metric string `json:"metric_path"`
	Level  string `json:"level"`
	Prev   string `json:"previous_level"`
	Text   string `json:"summary"` // the alert in words (the body is "text")
}

// notifications returns the heartbeat notifications the receiver got, in
// order (the agent's own cpu alerts, which a loaded test machine may
// raise, are left out).
func (e *liveEnv) notifications() []notification {
	var out []notification
	for _, r := range e.hook.Requests() {
		var n notification
		if err := json.Unmarshal(r.Body, &n); err != nil {
			e.t.Fatalf("webhook body %s: %v", r.Body, err)
		}
		if strings.HasPrefix(n.Metric, "heartbeat.") {
			out = append(out, n)
		}
	}
	return out
}

// waitNotified waits until the receiver got n heartbeat notifications.
func (e *liveEnv) waitNotified(n int) {
	e.t.Helper()
	testutil.Eventually(e.t, fmt.Sprintf("%d heartbeat notifications", n), 30*time.Second, func() bool { return len(e.notifications()) >= n })
}

// quiet waits for the daemon to have had every chance to send a deferred or
// duplicate notification (the evaluator defers a family alert by a few
// seconds to see whether the whole host goes down), then checks the count.
func (e *liveEnv) quiet(want int) []notification {
	e.t.Helper()
	time.Sleep(6 * time.Second)
	got := e.notifications()
	if len(got) != want {
		e.t.Fatalf("receiver got %d notifications, want %d: %+v", len(got), want, got)
	}
	return got
}

func (e *liveEnv) journal() string {
	var msgs []struct{ Msg string }
	getJSON(e.t, e.d.BaseURL+"/api/0/messages?limit=500", &msgs)
	var lines []string
	for _, m := range msgs {
		lines = append(lines, m.Msg)
	}
	return strings.Join(lines, "\n")
}

// (a) A configured host whose agent never starts is DOWN after its timeout
// and notified exactly once, in words.
func TestNeverHeardHostIsDownAndNotifiedOnce(t *testing.T) {
	t.Parallel()
	e := startLive(t, []string{"ghost"}, "")
	if h := e.host("ghost"); h.State == "UP" || h.LastSeen != nil {
		t.Fatalf("ghost before its timeout: %+v", h)
	}
	e.waitNotified(1)
	got := e.quiet(1)
	n := got[0]
	if n.Host != "ghost" || n.Metric != "heartbeat.host" || n.Level != "CRITICAL" {
		t.Fatalf("notification = %+v", n)
	}
	if !strings.Contains(n.Text, "ghost is DOWN") {
		t.Errorf("notification text %q does not say the host is DOWN", n.Text)
	}
	h := e.host("ghost")
	if h.State != "DOWN" || h.LastSeen != nil {
		t.Errorf("ghost in /api/0/hosts: %+v, want DOWN with last_seen null", h)
	}
	if j := e.journal(); !strings.Contains(j, "ghost is DOWN") {
		t.Errorf("journal does not say ghost is DOWN:\n%s", j)
	}
	if !strings.Contains(e.d.Stderr(), "ghost") {
		t.Errorf("the daemon log never names ghost:\n%s", e.d.Stderr())
	}
}

// (b) The agent dies, then the daemon stops before noticing; after the
// daemon starts again the host is DOWN and notified once after its timeout.
func TestHostThatDiedWhileDaemonWasDownIsNotifiedOnce(t *testing.T) {
	t.Parallel()
	e := startLive(t, []string{"web01"}, "")
	a := e.agent("web01", true)
	e.waitUp("web01")
	killAgent(a)
	e.stopDaemon()
	if n := e.hook.Count(); n != 0 {
		t.Fatalf("notified before the restart: %d", n)
	}
	e.start()
	e.waitNotified(1)
	n := e.quiet(1)[0]
	if n.Host != "web01" || n.Metric != "heartbeat.host" || n.Level != "CRITICAL" {
		t.Fatalf("notification = %+v", n)
	}
	h := e.host("web01")
	if h.State != "DOWN" || h.LastSeen == nil {
		t.Errorf("web01 = %+v, want DOWN with the last_seen from before the restart", h)
	}
}

// (c) A full outage of a two-family host gives exactly one notification,
// and its recovery exactly one.
func TestFullOutageGivesOneMessageAndOneRecovery(t *testing.T) {
	t.Parallel()
	e := startLive(t, []string{"web01"}, "")
	a := e.agent("web01", true)
	e.waitUp("web01")
	killAgent(a)
	e.waitNotified(1)
	down := e.quiet(1)[0]
	if down.Metric != "heartbeat.host" || down.Level != "CRITICAL" || !strings.Contains(down.Text, "web01 is DOWN") {
		t.Fatalf("outage notification = %+v", down)
	}
	e.agent("web01", true)
	e.waitNotified(2)
	up := e.quiet(2)[1]
	if up.Metric != "heartbeat.host" || up.Level != "OK" || up.Prev != "CRITICAL" {
		t.Fatalf("recovery notification = %+v", up)
	}
}

// (d) Losing IPv6 only gives one notification, for the lost family.
func TestLosingIPv6GivesOneDegradedMessage(t *testing.T) {
	if !testutil.HasIPv6Loopback() {
		t.Skip("losing IPv6 needs an IPv6 loopback (::1), which this machine lacks")
	}
	t.Parallel()
	e := startLive(t, []string{"web01"}, "")
	a := e.agent("web01", true)
	e.waitUp("web01")
	killAgent(a)
	e.agent("web01", false) // IPv4 only from now on
	testutil.Eventually(t, "web01 DEGRADED", 30*time.Second, func() bool { return e.host("web01").State == "DEGRADED" })
	e.waitNotified(1)
	n := e.quiet(1)[0]
	if n.Metric != "heartbeat.ipv6" || n.Level != "CRITICAL" {
		t.Fatalf("notification = %+v, want heartbeat.ipv6 CRITICAL", n)
	}
	if h := e.host("web01"); h.family("ipv4") != "UP" || h.family("ipv6") != "DOWN" {
		t.Errorf("web01 connections = %+v", h.Connections)
	}
}

// (e) A webhook channel created without hosts receives the alerts of every
// host its owner can see, and only those.
func TestChannelWithoutHostsCoversEveryHostItsOwnerSees(t *testing.T) {
	t.Parallel()
	h, err := bcrypt.GenerateFromPassword([]byte("password123"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	mine := pht.NewReceiver(t)
	e := startLiveWith(t, []string{"web01", "web02", "web03"}, map[string]string{
		"web01": "    monitors: [alice]\n",
		"web03": "    managers: [alice]\n",
	}, fmt.Sprintf(`users:
  admin: {password_hash: %[1]q, admin: true}
  alice: {password_hash: %[1]q}
channel_destinations: {allow: [127.0.0.0/8]} # local receivers, for users' channels
`, h))
	alice := hijackLogin(t, e.d, "alice")
	alice.must("POST", "/api/0/notification_channels", map[string]any{"name": "alices", "type": "webhook", "url": mine.URL + "/alice", "hosts": []string{}})
	var list []map[string]any
	if err := json.Unmarshal([]byte(alice.must("GET", "/api/0/notification_channels", nil)), &list); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"web01", "web02", "web03"} {
		req := testutil.IngestRequest(t, e.d.BaseURL, host, []byte(testutil.Key),
			testutil.Sample("cpu_monitor", float64(time.Now().UnixNano())/1e9, map[string]any{"cpu_percent": 97.0}))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("ingest %s: %d", host, resp.StatusCode)
		}
	}
	cpuHosts := func() map[string]int {
		got := map[string]int{}
		for _, q := range mine.Requests() {
			var n notification
			json.Unmarshal(q.Body, &n)
			if n.Metric == "cpu_monitor.cpu_percent" {
				got[n.Host]++
			}
		}
		return got
	}
	testutil.Eventually(t, "alice's channel hears of web01 and web03", 30*time.Second, func() bool {
		got := cpuHosts()
		return got["web01"] == 1 && got["web03"] == 1
	})
	// The admin's config channel covers every host: web02's alert was
	// dispatched, so alice's channel had its chance to get it too.
	testutil.Eventually(t, "the config channel hears of web02", 30*time.Second, func() bool {
		ids, _ := cpuEvents(t, e.hook)
		for _, id := range ids {
			if strings.HasPrefix(id, "web02/") {
				return true
			}
		}
		return false
	})
	time.Sleep(2 * time.Second)
	if got := cpuHosts(); got["web02"] != 0 || len(got) != 2 {
		t.Errorf("alice's channel received cpu alerts of %v, want web01 and web03 once each", got)
	}
}

// cpuAlert ingests a cpu sample of 97 % for web01, a CRITICAL change.
func (e *liveEnv) cpuAlert() {
	e.t.Helper()
	req := testutil.IngestRequest(e.t, e.d.BaseURL, "web01", []byte(testutil.Key),
		testutil.Sample("cpu_monitor", float64(time.Now().UnixNano())/1e9, map[string]any{"cpu_percent": 97.0}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("ingest: %d", resp.StatusCode)
	}
}

// cpuEvents returns the cpu alert requests a receiver got, by event id, in
// order of arrival.
func cpuEvents(t *testing.T, r *pht.Receiver) (ids []string, times []time.Time) {
	for _, q := range r.Requests() {
		var n notification
		if err := json.Unmarshal(q.Body, &n); err != nil {
			t.Fatalf("body %s: %v", q.Body, err)
		}
		if n.Metric == "cpu_monitor.cpu_percent" {
			ids, times = append(ids, n.ID), append(times, q.Time)
		}
	}
	return ids, times
}

// killEnv is a daemon whose web01 never times out (no heartbeat alerts)
// with two webhook channels.
func killEnv(t *testing.T) (*liveEnv, map[string]*pht.Receiver) {
	second := pht.NewReceiver(t)
	e := startLiveWith(t, []string{"web01"}, map[string]string{"web01": "    timeout: 1h\n"},
		fmt.Sprintf("  ops2: {type: webhook, url: \"%s/ops2\"}\n", second.URL))
	return e, map[string]*pht.Receiver{"ops": e.hook, "ops2": second}
}

// (f) kill -9 right after a level change, while its delivery waits for a
// retry: after the restart each channel receives that event exactly once
// more (the queued delivery), and the change is not fired again (it was,
// and one receiver got the same event id 3 times).
func TestKillWhileDeliveryIsQueuedDeliversOnce(t *testing.T) {
	t.Parallel()
	e, recv := killEnv(t)
	for _, r := range recv {
		r.Script(http.StatusServiceUnavailable) // the first attempt fails: retried in 2 s
	}
	e.cpuAlert()
	for name, r := range recv {
		testutil.Eventually(t, name+"'s failed first attempt", 30*time.Second, func() bool {
			ids, _ := cpuEvents(t, r)
			return len(ids) == 1
		})
	}
	e.d.Kill()
	e.start()
	for name, r := range recv {
		testutil.Eventually(t, name+"'s delivery after the restart", 30*time.Second, func() bool {
			ids, _ := cpuEvents(t, r)
			return len(ids) >= 2
		})
	}
	time.Sleep(6 * time.Second) // room for a change fired again, or a second resend
	for name, r := range recv {
		ids, _ := cpuEvents(t, r)
		if len(ids) != 2 || ids[0] != ids[1] {
			t.Errorf("%s got %v: want the failed attempt and one delivery of the same event", name, ids)
		}
	}
}

// (f) kill -9 at once after the level change: the change is delivered to
// each channel, and a second time only when its request had reached the
// receiver before the kill (the daemon died in the middle of it).
func TestKillRightAfterLevelChangeDeliversOnce(t *testing.T) {
	t.Parallel()
	e, recv := killEnv(t)
	e.cpuAlert()
	e.d.Kill()
	killed := time.Now()
	e.start()
	for name, r := range recv {
		testutil.Eventually(t, name+" hears of the change", 30*time.Second, func() bool {
			ids, _ := cpuEvents(t, r)
			return len(ids) >= 1
		})
	}
	time.Sleep(6 * time.Second)
	for name, r := range recv {
		ids, times := cpuEvents(t, r)
		switch {
		case len(ids) == 1:
		case len(ids) == 2 && ids[0] == ids[1] && times[0].Before(killed):
			t.Logf("%s: the first request was in flight when the daemon died; resent once", name)
		default:
			t.Errorf("%s got %v at %v (killed at %v): want the event once, twice only if the first was in flight", name, ids, times, killed)
		}
	}
}

// (g) An agent whose clock is 10 minutes ahead: its heartbeats are refused,
// and the host shows up DOWN with the reason and a clock alert.
func TestHostWithClockAheadShowsReasonAndClockAlert(t *testing.T) {
	t.Parallel()
	e := startLive(t, []string{"web01"}, "")
	conn, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", e.hbPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	signer := heartbeat.NewSigner([]byte(testutil.Key))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for seq := uint64(1); ; seq++ {
			p := heartbeat.Packet{Type: heartbeat.TypeHeartbeat, Session: 42, Seq: seq, IntervalMS: 1000,
				SentNanos: time.Now().Add(10 * time.Minute).UnixNano(), Host: []byte("web01")}
			if b, err := signer.AppendHeartbeat(nil, &p); err == nil {
				conn.Write(b)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); <-done }()

	var h liveHost
	testutil.Eventually(t, "web01 DOWN with its clock as the reason", 30*time.Second, func() bool {
		h = e.host("web01")
		return h.State == "DOWN" && strings.Contains(h.Reason, "ahead")
	})
	if !strings.Contains(h.Reason, "clock") || h.ClockOffset == nil || *h.ClockOffset < 9*60*1000 {
		t.Errorf("web01 = %+v, want a clock reason and an offset of about 10 minutes", h)
	}
	var alerts struct {
		Alerts []struct {
			Metric string `json:"metric_path"`
			Level  string `json:"level"`
			Text   string `json:"text"`
		} `json:"alerts"`
	}
	testutil.Eventually(t, "a clock alert", 20*time.Second, func() bool {
		getJSON(t, e.d.BaseURL+"/api/0/hosts/web01/alerts", &alerts)
		for _, a := range alerts.Alerts {
			if a.Metric == "heartbeat.clock_offset_ms" && a.Level == "CRITICAL" {
				return true
			}
		}
		return false
	})
	e.waitNotified(1)
	var texts []string
	for _, n := range e.notifications() {
		texts = append(texts, n.Text)
	}
	if all := strings.Join(texts, "\n"); !strings.Contains(all, "ahead") {
		t.Errorf("no notification says the clock is ahead:\n%s", all)
	}

	// A sample batch signed with the host's clock is refused with the
	// reason and the fix.
	body := []byte(`{"samples":[]}`)
	ts := time.Now().Add(10 * time.Minute).Unix()
	req, _ := http.NewRequest(http.MethodPost, e.d.BaseURL+protocol.IngestPath, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(protocol.HeaderHost, "web01")
	req.Header.Set(protocol.HeaderTimestamp, fmt.Sprint(ts))
	req.Header.Set(protocol.HeaderSignature, protocol.Sign([]byte(testutil.Key), "web01", ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var msg struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&msg)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(msg.Error, "ahead") || !strings.Contains(msg.Error, "clock") {
		t.Errorf("skewed batch: %d %q, want 401 naming the clock offset", resp.StatusCode, msg.Error)
	}
}
