package loadgen_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/loadgen"
	"github.com/hbdmon/hbd/core/testutil"
)

const enrollKey = "loadgen-test-enroll-key-0123456789abcdef"

// startDaemon runs the built hbd with enroll_key and dynamic hosts, in
// open mode, heartbeats on IPv4 (and IPv6 where the machine has it).
func startDaemon(t *testing.T) (d *testutil.Daemon, hb4, hb6 string) {
	t.Helper()
	bin := testutil.Build(t, "./core/cmd/hbd")
	dir := t.TempDir()
	port, hbPort := testutil.FreePort(t), testutil.FreePort(t)
	listen6 := ""
	if c, err := net6(); err == nil {
		c.Close()
		listen6 = "::1"
		hb6 = fmt.Sprintf("[::1]:%d", hbPort)
	}
	cfg := fmt.Sprintf(`hbd_host: 127.0.0.1
hbd_port: %d
ws_port: 0
hb_port: %d
hb_listen4: 127.0.0.1
hb_listen6: "%s"
data_dir: ./data
plugins_dir: ./plugins
enroll_key: %q
watch_dynamic: true
max_dynamic_hosts: 1000
thresholds:
  cpu_monitor.cpu_percent: {warning: 80, critical: 95}
`, port, hbPort, listen6, enrollKey)
	for _, sub := range []string{"data", "plugins"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "hbd.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return testutil.StartDaemon(t, bin, dir, port), fmt.Sprintf("127.0.0.1:%d", hbPort), hb6
}

// TestCountsMatchTheDaemon runs every phase with a tiny fleet against a
// real daemon and checks the tool's counts against what the daemon says
// it stored and answered: samples accepted, heartbeats sent and acked,
// hosts registered. It asserts no timing.
func TestCountsMatchTheDaemon(t *testing.T) {
	d, hb4, hb6 := startDaemon(t)
	const hosts = 12
	cfg := loadgen.Config{
		URL: d.BaseURL, HB4: hb4, HB6: hb6, EnrollKey: []byte(enrollKey),
		Hosts: hosts, Prefix: "lt", NonOKEvery: 3,
		Phases:    loadgen.AllPhases,
		Duration:  1500 * time.Millisecond,
		HBSockets: 2, HBWindow: 8, HBRate: 2000,
		IngestConns: 3, Batch: 8, IngestRate: 2000, BackgroundRate: 500,
		PluginReaders: 1, SampleReaders: 1, AlertReaders: 1,
		WSClients: 3, WSStalled: 1, WSSources: 2,
		PID: d.Cmd.Process.Pid,
	}
	rep, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Phases) != len(loadgen.AllPhases) {
		t.Fatalf("%d phases reported, want %d", len(rep.Phases), len(loadgen.AllPhases))
	}

	var sent, accepted, hbSent, hbAcked uint64
	for _, p := range rep.Phases {
		if in := p.Ingest; in != nil {
			sent += in.SamplesSent
			accepted += in.SamplesAccepted
			for status, n := range in.Status {
				if status != "200" {
					t.Errorf("phase %s: %d batches answered %s", p.Name, n, status)
				}
			}
			// The phase's own figure against the daemon's counter
			// over the same phase.
			if got := p.DaemonMetrics["hbd_samples_ingested_total"]; got != float64(in.SamplesAccepted) {
				t.Errorf("phase %s: daemon ingested %v samples, the tool counted %d accepted", p.Name, got, in.SamplesAccepted)
			}
		}
		if h := p.Heartbeats; h != nil {
			hbSent += h.Sent
			hbAcked += h.Acked
			if h.BadAcks != 0 {
				t.Errorf("phase %s: %d acks did not verify with the host's key", p.Name, h.BadAcks)
			}
		}
		if p.Daemon == nil || p.Daemon.PID != d.Cmd.Process.Pid || p.Daemon.RSSPeakMiB <= 0 {
			t.Errorf("phase %s: no /proc figures of the daemon: %+v (notes %v)", p.Name, p.Daemon, p.Notes)
		}
	}
	if seed := rep.Phases[0]; seed.Ingest.SamplesAccepted != hosts*4 {
		t.Errorf("seed accepted %d samples, want one per host and plugin (%d)", seed.Ingest.SamplesAccepted, hosts*4)
	}
	if accepted == 0 || accepted != sent {
		t.Errorf("samples sent %d, accepted %d: want every sample accepted", sent, accepted)
	}

	m := metrics(t, d.BaseURL)
	if got := m["hbd_samples_ingested_total"]; got != float64(accepted) {
		t.Errorf("daemon's hbd_samples_ingested_total = %v, the tool's 200-acked samples = %d", got, accepted)
	}
	if got := m["hbd_hosts_known"]; got != hosts {
		t.Errorf("daemon knows %v hosts, want the fleet's %d", got, hosts)
	}
	// Every heartbeat that reached the daemon verified and was accepted
	// (signatures, sessions and sequence numbers right), none arrived
	// that the tool did not count as sent, and the tool counted no ack
	// the daemon did not send. (Datagrams the kernel dropped on a starved
	// machine are the difference between sent and received.)
	received, acked := m["hbd_heartbeats_received_total"], m["hbd_heartbeats_acked_total"]
	if got := m["hbd_heartbeats_accepted_total"]; got != received || received > float64(hbSent) {
		t.Errorf("daemon received %v heartbeats and accepted %v; the tool sent %d", received, got, hbSent)
	}
	if hbAcked == 0 || float64(hbAcked) > acked {
		t.Errorf("tool counted %d acks, the daemon sent %v", hbAcked, acked)
	}
	for k, v := range m {
		if strings.HasPrefix(k, "hbd_heartbeats_dropped_total") && v != 0 {
			t.Errorf("%s = %v", k, v)
		}
	}

	read := rep.Phases[3]
	if len(read.Reads) != 3 {
		t.Fatalf("read phase measured %d endpoints, want 3", len(read.Reads))
	}
	for name, e := range read.Reads {
		if e.Requests == 0 || e.Status["200"] != e.Requests {
			t.Errorf("%s: %d requests, answers %v: want all 200", name, e.Requests, e.Status)
		}
	}
	ws := rep.Phases[4].WS
	if ws == nil || ws.Connected != 3 || ws.Handshake["101"] != 3 {
		t.Fatalf("ws: %+v, want 3 clients connected", ws)
	}
	if ws.Samples == 0 {
		t.Errorf("the feed clients received no sample: %+v", ws)
	}
}

func metrics(t *testing.T, base string) map[string]float64 {
	t.Helper()
	m, err := loadgen.ScrapeMetrics(context.Background(), http.DefaultClient, base, "")
	if err != nil {
		t.Fatal(err)
	}
	return m
}
