package agent

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/agent/collect"
	"github.com/hbdmon/hbd/core/agent/internal/ingesttest"
	"github.com/hbdmon/hbd/core/agent/spool"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/testutil"
)

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "hbc", Level: hclog.Debug, Output: t.Output()})
}

// testConfig is a valid config with fast timings and no built-ins enabled.
func testConfig(t *testing.T, apiURL, spoolDir string) Config {
	return Config{
		Host: "web01", Key: validKey, ServerIPv4: "127.0.0.1:50003",
		HeartbeatInterval: time.Second, APIURL: apiURL,
		SpoolDir: spoolDir, SpoolMaxBytes: 8 << 20, SendInterval: 50 * time.Millisecond,
		LogLevel: "debug", Plugins: map[string]PluginConfig{},
	}
}

// counterPlugin is an exec plugin printing 1, 2, 3, ... on successive runs.
func counterPlugin(t *testing.T, name string, interval time.Duration) ExecConfig {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "counter.sh")
	// The count is replaced atomically, so a run killed at shutdown never
	// leaves it empty.
	body := "#!/bin/sh\nf=" + filepath.Join(dir, "count") +
		"\nn=$(cat $f 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > $f.tmp && mv $f.tmp $f\nprintf '{\"n\": %d}' $n\n"
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return ExecConfig{Name: name, Command: []string{path}, Interval: interval, Timeout: 2 * time.Second}
}

func brokenPlugin(t *testing.T) ExecConfig {
	path := filepath.Join(t.TempDir(), "broken.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho '{\"status\": \"ok\"}'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return ExecConfig{Name: "broken", Command: []string{path}, Interval: 50 * time.Millisecond, Timeout: time.Second}
}

func samplesOf(d *ingesttest.Daemon, plugin string) []protocol.Sample {
	var out []protocol.Sample
	for _, s := range d.Samples() {
		if s.Plugin == plugin {
			out = append(out, s)
		}
	}
	return out
}

// counts returns the n values the daemon received from a counter plugin,
// in order.
func counts(d *ingesttest.Daemon, plugin string) []int {
	var out []int
	for _, s := range samplesOf(d, plugin) {
		out = append(out, int(s.Data["n"].(float64)))
	}
	return out
}

func assertContiguous(t *testing.T, got []int, atLeast int) {
	t.Helper()
	if len(got) < atLeast {
		t.Fatalf("got %d samples, want at least %d: %v", len(got), atLeast, got)
	}
	for i, n := range got {
		if n != i+1 {
			t.Fatalf("samples lost, duplicated or out of order: %v", got)
		}
	}
}

func runAgent(t *testing.T, cfg Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- New(cfg, testLogger(t)).Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
}

// pending returns the samples waiting in the spool of a stopped agent.
func pending(t *testing.T, dir string) []protocol.Sample {
	t.Helper()
	sp, err := spool.Open(dir, spool.Options{MaxBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	recs, _, err := sp.Peek(protocol.MaxBatchSamples, protocol.MaxBatchBytes)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]protocol.Sample, len(recs))
	for i, r := range recs {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestRunDeliversValidSamplesAndDrainsOnStop(t *testing.T) {
	d := ingesttest.New(t, "web01", []byte(validKey))
	srv := ingesttest.Serve(t, "127.0.0.1:0", d)
	cfg := testConfig(t, srv.URL, t.TempDir())
	cfg.Plugins[collect.Memory] = PluginConfig{Enabled: true, Interval: 100 * time.Millisecond}
	cfg.Plugins[collect.CPU] = PluginConfig{Enabled: false, Interval: 100 * time.Millisecond}
	cfg.Exec = []ExecConfig{counterPlugin(t, "counter", 50*time.Millisecond), brokenPlugin(t)}

	// Sample times are whole seconds: the run spans [started, stopped].
	started := time.Now().Truncate(time.Second)
	stop := runAgent(t, cfg)
	testutil.Eventually(t, "samples", 10*time.Second, func() bool {
		return len(counts(d, "counter")) >= 5 && len(samplesOf(d, collect.Memory)) >= 1
	})
	stop()
	stopped := time.Now()

	assertContiguous(t, counts(d, "counter"), 5)
	for _, s := range d.Samples() {
		if s.Plugin == "broken" || s.Plugin == collect.CPU {
			t.Fatalf("unexpected sample from %s", s.Plugin)
		}
		if _, err := protocol.Flatten(s.Data); err != nil {
			t.Fatalf("daemon got an invalid sample: %v", err)
		}
		if at := time.Unix(int64(s.Timestamp), 0); at.Before(started) || at.After(stopped) {
			t.Fatalf("sample timestamp %v is not within the run [%v, %v]", s.Timestamp, started, stopped)
		}
	}
	if left := pending(t, cfg.SpoolDir); len(left) != 0 {
		t.Fatalf("%d samples left in the spool after a clean stop with the daemon up", len(left))
	}
}

func TestRestartedAgentSendsWhatTheDaemonMissed(t *testing.T) {
	// A port with nothing listening: the daemon is down during the first run.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	cfg := testConfig(t, "http://"+addr, t.TempDir())
	cfg.Exec = []ExecConfig{counterPlugin(t, "counter", 30*time.Millisecond)}

	stop := runAgent(t, cfg)
	testutil.Eventually(t, "samples to spool", 10*time.Second, func() bool { return spooledBytes(cfg.SpoolDir) > 200 })
	stop()
	var missed []int
	for _, s := range pending(t, cfg.SpoolDir) {
		missed = append(missed, int(s.Data["n"].(float64)))
	}
	assertContiguous(t, missed, 3)

	d := ingesttest.New(t, "web01", []byte(validKey))
	ingesttest.Serve(t, addr, d)
	stop = runAgent(t, cfg)
	testutil.Eventually(t, "the backlog and new samples", 10*time.Second, func() bool { return len(counts(d, "counter")) > len(missed) })
	stop()
	// The backlog first, exactly; then new samples, never one twice. (A run
	// killed by the first stop may leave a gap in the plugin's own count.)
	got := counts(d, "counter")
	if !slices.Equal(got[:len(missed)], missed) || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Fatalf("spooled %v, daemon received %v", missed, got)
	}
}

func spooledBytes(dir string) int64 {
	var n int64
	matches, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func TestOnceReturnsOneRoundOfEveryEnabledPlugin(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", t.TempDir())
	for _, name := range collect.BuiltinNames() {
		cfg.Plugins[name] = PluginConfig{Enabled: true, Interval: 10 * time.Second}
	}
	cfg.Exec = []ExecConfig{counterPlugin(t, "counter", time.Minute), brokenPlugin(t)}

	out, err := Once(t.Context(), cfg, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "1 of 6 plugins failed") {
		t.Fatalf("error %v, want the broken plugin reported", err)
	}
	for _, name := range append(collect.BuiltinNames(), "counter") {
		data, ok := out[name]
		if !ok {
			t.Errorf("no data for %s", name)
			continue
		}
		if _, err := protocol.Flatten(data); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, ok := out["broken"]; ok {
		t.Error("invalid output included")
	}
	if got := out["counter"]["n"]; got != 1.0 {
		t.Errorf("exec plugin ran more than once: n=%v", got)
	}
	if _, ok := out[collect.CPU]["cpu_percent"]; !ok {
		t.Errorf("cpu_percent missing: %v", out[collect.CPU])
	}
}

// A running agent counts its plugins' failures for its health sample and
// sends that sample (plugin hbc) from its first flush on.
func TestRunCountsPluginErrorsAndReportsHealth(t *testing.T) {
	d := ingesttest.New(t, "web01", []byte(validKey))
	srv := ingesttest.Serve(t, "127.0.0.1:0", d)
	cfg := testConfig(t, srv.URL, t.TempDir())
	cfg.Exec = []ExecConfig{counterPlugin(t, "counter", 50*time.Millisecond), brokenPlugin(t)}
	a := New(cfg, testLogger(t))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	testutil.Eventually(t, "two failures of the broken plugin and a health sample", 10*time.Second, func() bool {
		return a.Health().PluginErrors >= 2 && len(samplesOf(d, protocol.AgentPlugin)) >= 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h := a.Health()
	if !strings.HasPrefix(h.LastPluginError, "broken: ") || len(h.LastPluginError) > protocol.MaxAgentErrorLength {
		t.Fatalf("last plugin error %q: want the broken plugin's, at most %d bytes", h.LastPluginError, protocol.MaxAgentErrorLength)
	}
	for _, s := range samplesOf(d, protocol.AgentPlugin) {
		if _, err := protocol.Flatten(s.Data); err != nil || s.Data[protocol.AgentSpoolBytes] == nil {
			t.Fatalf("health sample %v: %v", s.Data, err)
		}
	}
}
