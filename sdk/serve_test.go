package sdk_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/host"
	"github.com/hbdmon/hbd/sdk/internal/pluginrpc"
	"github.com/hbdmon/hbd/sdk/internal/testnotifier"
)

// When the test binary is started with this variable set it becomes a
// notifier plugin, so the tests below exercise a real plugin process.
const servePluginEnv = "HBD_SDK_TEST_SERVE_PLUGIN"

func TestMain(m *testing.M) {
	switch os.Getenv(servePluginEnv) {
	case "1":
		sdk.Serve(testnotifier.New())
		os.Exit(0)
	case "v1":
		// What a plugin built against an SDK before protocol 2 serves:
		// one unversioned plugin set under handshake version 1.
		cfg := pluginrpc.NotifierServeConfig(testnotifier.New(), os.Stderr)
		cfg.Plugins = cfg.VersionedPlugins[1]
		cfg.VersionedPlugins = nil
		cfg.HandshakeConfig.ProtocolVersion = 1
		plugin.Serve(cfg)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type syncBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

// startPluginProcess launches this test binary as a plugin the way the
// daemon launches a notifier binary.
func startPluginProcess(t *testing.T) (*host.Client, *plugin.Client, *syncBuffer) {
	t.Helper()
	return startPluginProcessAs(t, "1")
}

// startPluginProcessAs is startPluginProcess with the value of
// servePluginEnv: "1" for sdk.Serve, "v1" for a protocol 1 plugin.
func startPluginProcessAs(t *testing.T, mode string) (*host.Client, *plugin.Client, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), servePluginEnv+"="+mode)
	hostLog := &syncBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Name: "host", Output: hostLog, Level: hclog.Debug})
	pc := plugin.NewClient(host.ClientConfig(cmd, logger))
	t.Cleanup(pc.Kill)
	c, err := host.Dispense(pc)
	if err != nil {
		t.Fatalf("Dispense: %v\nhost log:\n%s", err, hostLog)
	}
	return c, pc, hostLog
}

func TestPluginProcessRoundTrip(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer good-token" {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		if r.Header.Get("X-Event-Id") == "flaky" {
			http.Error(w, "try later", http.StatusServiceUnavailable)
		}
	}))
	defer receiver.Close()

	c, _, hostLog := startPluginProcess(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	schema, err := c.Schema(ctx)
	if err != nil || schema.Type != "test" || len(schema.Fields) != 4 || schema.Fields[2].Default != "3" {
		t.Fatalf("Schema = %+v, %v", schema, err)
	}
	if err := schema.Check(); err != nil {
		t.Fatalf("schema from the wire fails Check: %v", err)
	}

	good := sdk.Config{"url": receiver.URL, "token": "good-token"}
	t.Run("validate", func(t *testing.T) {
		if err := c.Validate(ctx, good); err != nil {
			t.Fatalf("Validate(good) = %v", err)
		}
		err := c.Validate(ctx, sdk.Config{"url": "not a url", "token": "x"})
		var re *sdk.RemoteError
		if !errors.As(err, &re) || re.Field != "url" || sdk.ErrorField(err) != "url" {
			t.Fatalf("Validate(bad url) = %#v, want RemoteError on field url", err)
		}
	})

	t.Run("schema defaults and check come before the notifier", func(t *testing.T) {
		err := c.Validate(ctx, sdk.Config{"url": receiver.URL})
		if sdk.ErrorField(err) != "token" || sdk.Reason(err) != sdk.ReasonSettings {
			t.Fatalf("Validate(no token) = %v, want an error on field token", err)
		}
		mu.Lock()
		before := len(got)
		mu.Unlock()
		err = c.Notify(ctx, sdk.Config{"url": receiver.URL, "token": "good-token", "retries": "many"}, sdk.Event{ID: "ok"})
		if sdk.ErrorField(err) != "retries" || !sdk.IsPermanent(err) {
			t.Fatalf("Notify(retries=many) = %v, want a permanent error on field retries", err)
		}
		mu.Lock()
		after := len(got)
		mu.Unlock()
		if after != before {
			t.Fatalf("the notifier was called with a configuration that fails the schema check")
		}
	})

	tests := []struct {
		name      string
		cfg       sdk.Config
		ev        sdk.Event
		wantErr   bool
		permanent bool
	}{
		{"delivered", good, sdk.Event{ID: "ok", Level: sdk.LevelCritical, Host: "web01"}, false, false},
		{"rejected credentials are permanent", sdk.Config{"url": receiver.URL, "token": "wrong-token"}, sdk.Event{ID: "a"}, true, true},
		{"server error is retryable", good, sdk.Event{ID: "flaky"}, true, false},
		{"explicit permanent crosses the wire", good, sdk.Event{Message: testnotifier.Reject}, true, true},
		{"panic becomes a retryable error", good, sdk.Event{Message: testnotifier.Panic}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Notify(ctx, tt.cfg, tt.ev)
			if (err != nil) != tt.wantErr || sdk.IsPermanent(err) != tt.permanent {
				t.Fatalf("Notify = %v (permanent %v), want error %v permanent %v", err, sdk.IsPermanent(err), tt.wantErr, tt.permanent)
			}
		})
	}

	t.Run("plugin still serves after a panic", func(t *testing.T) {
		if err := c.Notify(ctx, good, sdk.Event{ID: "after-panic"}); err != nil {
			t.Fatalf("Notify after panic = %v", err)
		}
	})

	t.Run("secrets redacted from errors and forwarded logs", func(t *testing.T) {
		const secret = "Sup3rSecretT0ken"
		err := c.Notify(ctx, sdk.Config{"url": receiver.URL, "token": secret}, sdk.Event{Message: testnotifier.Leak})
		if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "•••") {
			t.Fatalf("Notify(leak) = %v, want error with the secret redacted", err)
		}
		err = c.Notify(ctx, sdk.Config{"url": receiver.URL, "token": secret}, sdk.Event{Message: testnotifier.Panic})
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("Notify(panic) = %v, want error with the secret redacted", err)
		}
		eventually(t, "the plugin's log line in the host log", func() bool { return strings.Contains(hostLog.String(), "about to leak") })
		if logs := hostLog.String(); strings.Contains(logs, secret) {
			t.Fatalf("host log contains the secret:\n%s", logs)
		}
	})

	t.Run("deadline reaches the plugin", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		// The plugin blocks until its ctx ends: the call returns only
		// because the deadline crossed the wire.
		err := c.Notify(short, good, sdk.Event{Message: testnotifier.Block})
		if !errors.Is(err, context.DeadlineExceeded) || sdk.IsPermanent(err) {
			t.Fatalf("Notify(block) = %v, want retryable deadline error", err)
		}
	})

	t.Run("messages above gRPC's 4 MiB default", func(t *testing.T) {
		big := sdk.Config{"url": receiver.URL, "token": "good-token", "padding": strings.Repeat("x", 6<<20)}
		if err := c.Validate(ctx, big); err != nil {
			t.Fatalf("Validate(6 MiB config) = %v", err)
		}
	})

	mu.Lock()
	n := len(got)
	mu.Unlock()
	if n < 4 {
		t.Errorf("receiver saw %d requests, want at least 4", n)
	}
}

func TestPluginProcessGoneIsUnavailable(t *testing.T) {
	c, pc, _ := startPluginProcess(t)
	pc.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.Notify(ctx, sdk.Config{"url": "http://127.0.0.1:1", "token": "x"}, sdk.Event{})
	if !errors.Is(err, host.ErrUnavailable) || sdk.IsPermanent(err) || sdk.Reason(err) != sdk.ReasonPlugin {
		t.Fatalf("Notify on a killed plugin = %v, want retryable ErrUnavailable", err)
	}
}

func TestPluginExitsWhenParentIsKilled(t *testing.T) {
	// sh plays the daemon: it starts the plugin, prints its pid and is then
	// SIGKILLed, so it cannot stop the plugin.
	sh := exec.Command("sh", "-c", `"$0" & echo "pid=$!"; wait`, os.Args[0])
	sh.Env = append(os.Environ(), servePluginEnv+"=1", pluginrpc.Handshake.MagicCookieKey+"="+pluginrpc.Handshake.MagicCookieValue)
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Skipf("no sh: %v", err)
	}
	pid := 0
	handshake := false
	lines := bufio.NewScanner(out)
	for (pid == 0 || !handshake) && lines.Scan() {
		if v, ok := strings.CutPrefix(lines.Text(), "pid="); ok {
			pid, _ = strconv.Atoi(v)
		} else if strings.Contains(lines.Text(), "|grpc|") {
			handshake = true
		}
	}
	if pid == 0 || !handshake {
		_ = sh.Process.Kill()
		t.Fatalf("plugin did not start (pid %d, handshake %v)", pid, handshake)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	if err := sh.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = sh.Wait()
	eventually(t, "the orphaned plugin to exit", func() bool { return !running(pid) })
}

// running reports whether pid is alive and not a zombie awaiting its reaper.
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// eventually fails t unless cond becomes true. The bound only stops a
// hang (the plugin checks for its parent every second); no test here
// measures how long anything takes. It is the sdk module's one polling
// helper: the module cannot import core/testutil.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	const bound = 60 * time.Second
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkNotifyRoundTripProcess measures Notify calls per second to a
// plugin in its own process, over go-plugin's automatic mutual TLS, as the
// daemon runs them.
func BenchmarkNotifyRoundTripProcess(b *testing.B) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), servePluginEnv+"=1")
	pc := plugin.NewClient(host.ClientConfig(cmd, hclog.NewNullLogger()))
	defer pc.Kill()
	c, err := host.Dispense(pc)
	if err != nil {
		b.Fatal(err)
	}
	cfg := sdk.Config{"url": "http://127.0.0.1:1/", "token": "bench-token-value"}
	ev := sdk.Event{ID: "bench", Host: "web01", Level: sdk.LevelCritical, Value: 95.5, Message: testnotifier.Drop}
	for b.Loop() {
		if err := c.Notify(context.Background(), cfg, ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notify/s")
}

// TestProtocolNegotiation: a plugin of this SDK speaks protocol 2 with the
// daemon's client, one built before protocol 2 still works over protocol 1,
// and a retry-after wish crosses the wire from a real plugin process.
func TestProtocolNegotiation(t *testing.T) {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Event-Id") == "slow" {
			w.Header().Set("Retry-After", "3")
			http.Error(w, "rate limited", http.StatusTooManyRequests)
		}
	}))
	defer receiver.Close()
	cfg := sdk.Config{"url": receiver.URL, "token": "tok"}
	for mode, want := range map[string]int{"1": host.ProtocolVersion, "v1": host.MinProtocolVersion} {
		c, _, hostLog := startPluginProcessAs(t, mode)
		if got := c.ProtocolVersion(); got != want {
			t.Errorf("plugin mode %s: negotiated protocol %d, want %d", mode, got, want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := c.Notify(ctx, cfg, sdk.Event{ID: "ok", Kind: sdk.KindFiring, Level: sdk.LevelCritical}); err != nil {
			t.Errorf("plugin mode %s: Notify = %v\n%s", mode, err, hostLog)
		}
		err := c.Notify(ctx, cfg, sdk.Event{ID: "slow", Level: sdk.LevelCritical})
		cancel()
		if d, ok := sdk.RetryAfterOf(err); !ok || d != 3*time.Second || sdk.IsPermanent(err) {
			t.Errorf("plugin mode %s: Notify against a 429 with Retry-After 3 = %v (wait %v, %v), want retryable after 3s", mode, err, d, ok)
		}
	}
	// What each protocol's plugin renders of an acknowledgement: a plugin
	// of this SDK knows the kind; a protocol 1 plugin sees neither the
	// kind nor the threshold, and reads the acknowledgement in the text.
	var mu sync.Mutex
	titles := map[string]string{}
	rec := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		b := make([]byte, 512)
		n, _ := r.Body.Read(b)
		mu.Lock()
		titles[r.Header.Get("X-Event-Id")] = string(b[:n])
		mu.Unlock()
	}))
	defer rec.Close()
	for mode, want := range map[string]string{
		"1":  "[ACKNOWLEDGED] web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples",
		"v1": "[CRITICAL] Acknowledged: web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples",
	} {
		c, _, _ := startPluginProcessAs(t, mode)
		ev := sdk.SampleEvent(sdk.KindAcknowledged)
		ev.ID = "ack-" + mode
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := c.Notify(ctx, sdk.Config{"url": rec.URL, "token": "tok"}, ev)
		cancel()
		mu.Lock()
		got := titles[ev.ID]
		mu.Unlock()
		if err != nil || got != want {
			t.Errorf("plugin mode %s: acknowledgement rendered %q (%v), want %q", mode, got, err, want)
		}
	}
	if host.ProtocolVersion != pluginrpc.ProtocolVersion || host.MinProtocolVersion != 1 {
		t.Errorf("protocol versions: host %d..%d", host.MinProtocolVersion, host.ProtocolVersion)
	}
}
