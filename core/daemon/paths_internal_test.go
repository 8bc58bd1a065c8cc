package daemon

import (
	"context"
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

	"github.com/hbdmon/hbd/core/alert/record"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/sdk/level"
)

// gate records the calls it passes on and holds the first of them until
// released, so a test can see what goes on while a consumer is stuck.
type gate struct {
	entered chan struct{} // closed when the first call arrives
	release chan struct{} // closed by open
	once    sync.Once
	opened  sync.Once

	mu       sync.Mutex
	passed   int      // calls that returned
	recorded []string // what each call carried, in call order
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

// open lets every held and later call through.
func (g *gate) open() { g.opened.Do(func() { close(g.release) }) }

func (g *gate) hold(what string) {
	g.mu.Lock()
	g.recorded = append(g.recorded, what)
	g.mu.Unlock()
	g.once.Do(func() { close(g.entered) })
	<-g.release
}

func (g *gate) done() {
	g.mu.Lock()
	g.passed++
	g.mu.Unlock()
}

func (g *gate) returned() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.passed
}

func (g *gate) calls() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.recorded...)
}

// gatedSamples stands between the alert queue and the real evaluator.
type gatedSamples struct {
	*gate
	next store.SampleObserver
}

func (g gatedSamples) ObserveSamples(host string, samples []record.Sample) {
	var vals []string
	for _, s := range samples {
		vals = append(vals, fmt.Sprint(s.Values))
	}
	g.hold(host + " " + strings.Join(vals, ","))
	g.next.ObserveSamples(host, samples)
	g.done()
}

// gatedHeartbeats stands between the heartbeat path and the real evaluator.
type gatedHeartbeats struct {
	*gate
	next heartbeatAlerts
}

func (g gatedHeartbeats) ObserveHeartbeat(ch heartbeat.Change) {
	g.hold(ch.Host + " " + string(ch.Family) + " " + string(ch.To))
	g.next.ObserveHeartbeat(ch)
	g.done()
}

func (g gatedHeartbeats) ObserveClockOffset(host string, offset time.Duration, refused bool, at time.Time) {
	g.next.ObserveClockOffset(host, offset, refused, at)
}

// newPathDaemon builds a real daemon (store, alerting, feed, heartbeat
// listener on 127.0.0.1) with a threshold on cpu_monitor.cpu_percent; the
// caller may wrap its consumers before calling run.
func newPathDaemon(t *testing.T) (d *Daemon, hbPort int, run func() string) {
	t.Helper()
	dir := t.TempDir()
	hbPort = testutil.FreePort(t)
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	cfg := fmt.Sprintf(`hbd_host: 127.0.0.1
hbd_port: %d
ws_port: 0
hb_port: %d
hb_listen4: 127.0.0.1
hb_listen6: ""
data_dir: %s
plugins_dir: %s
thresholds:
  cpu_monitor.cpu_percent: {warning: 80, critical: 90}
watchhosts:
  web01:
    key: "%s"
`, testutil.FreePort(t), hbPort, filepath.Join(dir, "data"), filepath.Join(dir, "plugins"), testutil.Key)
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
	var done chan struct{}
	run = func() string {
		done = make(chan struct{})
		go func() { d.Run(ctx); close(done) }()
		return "http://" + d.HTTPAddr().String()
	}
	t.Cleanup(func() {
		cancel()
		if done == nil {
			d.Close()
			return
		}
		<-done
	})
	return d, hbPort, run
}

func ingest(t *testing.T, base string, ts, cpu float64) {
	t.Helper()
	resp, err := http.DefaultClient.Do(testutil.IngestRequest(t, base, "web01", []byte(testutil.Key),
		testutil.Sample("cpu_monitor", ts, map[string]any{"cpu_percent": cpu})))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestIngestAnswersWhileAlertingIsBlocked: with the alert consumer stuck
// on the first batch, a second batch is still answered 200 (the consumer
// has not returned), the queue's depth shows both in /metrics, and once
// released the evaluator gets both batches in order: its last value is the
// second batch's, and the first batch's CRITICAL was seen and left.
func TestIngestAnswersWhileAlertingIsBlocked(t *testing.T) {
	d, _, run := newPathDaemon(t)
	g := newGate()
	d.alertPath.ev = gatedSamples{gate: g, next: d.alertPath.ev}
	t.Cleanup(g.open) // before the daemon stops, which drains the queue
	base := run()
	now := float64(time.Now().Unix())

	ingest(t, base, now-2, 95)
	<-g.entered
	ingest(t, base, now-1, 50)
	if n := g.returned(); n != 0 {
		t.Fatalf("the alert consumer returned %d times before release", n)
	}
	if body := scrape(t, base); !strings.Contains(body, `hbd_pipeline_queue_depth{queue="alerts"} 2`+"\n") {
		t.Fatalf("/metrics lacks an alert queue depth of 2:\n%s", grepLines(body, "hbd_pipeline"))
	}
	g.open()
	testutil.Eventually(t, "both batches evaluated", 10*time.Second, func() bool { return g.returned() == 2 })
	if got, want := g.calls(), []string{"web01 [95]", "web01 [50]"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("evaluated %q, want %q", got, want)
	}
	for _, st := range d.Alerts.HostAlerts("web01") {
		if st.MetricPath == "cpu_monitor.cpu_percent" {
			if st.LastValue != 50 || st.Level != level.OK {
				t.Fatalf("state after both batches: %+v", st)
			}
			return
		}
	}
	t.Fatalf("no state for cpu_monitor.cpu_percent: %+v", d.Alerts.HostAlerts("web01"))
}

// TestHeartbeatAcksWhileAlertingIsBlocked: with alerting stuck on web01's
// first heartbeat change, a real client's heartbeats keep being acked
// (the consumer has not returned); once released, alerting gets the
// changes in the tracker's order and web01's heartbeat state is known.
func TestHeartbeatAcksWhileAlertingIsBlocked(t *testing.T) {
	d, hbPort, run := newPathDaemon(t)
	g := newGate()
	d.hbPath.alerts = gatedHeartbeats{gate: g, next: d.hbPath.alerts}
	t.Cleanup(g.open)
	run()

	c, err := heartbeat.NewClient(heartbeat.ClientConfig{Host: "web01", Key: []byte(testutil.Key), Interval: 20 * time.Millisecond,
		Addr4: net.JoinHostPort("127.0.0.1", strconv.Itoa(hbPort))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)

	<-g.entered
	at := c.Status(heartbeat.IPv4).Acked
	testutil.Eventually(t, "ten more acks while alerting is blocked", 10*time.Second, func() bool {
		return c.Status(heartbeat.IPv4).Acked >= at+10
	})
	if n := g.returned(); n != 0 {
		t.Fatalf("alerting returned %d times before release", n)
	}
	g.open()
	testutil.Eventually(t, "web01's heartbeat evaluated", 10*time.Second, func() bool {
		for _, st := range d.Alerts.HostAlerts("web01") {
			if st.MetricPath == "heartbeat.host" {
				return true
			}
		}
		return false
	})
	calls := g.calls()
	if len(calls) < 2 || calls[0] != "web01 ipv4 UP" || calls[1] != "web01  UP" {
		t.Fatalf("alerting got %q, want the connection's UP, then the host's", calls)
	}
}

func grepLines(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
