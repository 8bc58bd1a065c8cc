package daemon_test

import (
	"context"
	"math"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hbdmon/hbd/core/testutil"
)

// ws_max_clients reaches the live feed of a real daemon and a reload
// applies it to the next connection (issue 12).
func TestWSMaxClientsIsConfiguredAndReloaded(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeLivenessConfig(t, dir, testutil.FreePort(t), false)
	base, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	setLimit := func(line string) {
		if err := os.WriteFile(cfgPath, append(append([]byte{}, base...), line...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setLimit("ws_max_clients: 1\n")
	a := startInProcess(t, cfgPath)
	url := "ws" + strings.TrimPrefix(a.base, "http") + "/hbd"
	dial := func() (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			if resp == nil {
				return 0, err
			}
			return resp.StatusCode, nil
		}
		t.Cleanup(func() { c.CloseNow() })
		return http.StatusSwitchingProtocols, nil
	}
	if code, err := dial(); err != nil || code != http.StatusSwitchingProtocols {
		t.Fatalf("first client: %d %v", code, err)
	}
	if code, err := dial(); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("second client at ws_max_clients 1: %d %v, want 503", code, err)
	}
	setLimit("ws_max_clients: 2\n")
	if err := a.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if code, err := dial(); err != nil || code != http.StatusSwitchingProtocols {
		t.Fatalf("second client after reloading ws_max_clients 2: %d %v", code, err)
	}
}

// memory_limit sets the runtime's soft memory limit at start and on a
// reload; "off" removes it. (Not parallel: the limit is process-wide.)
func TestMemoryLimitIsAppliedAndReloaded(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "") // the environment would win over memory_limit
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	dir := t.TempDir()
	cfgPath := writeLivenessConfig(t, dir, testutil.FreePort(t), false)
	base, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	set := func(line string) {
		if err := os.WriteFile(cfgPath, append(append([]byte{}, base...), line...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	set("memory_limit: 900MiB\n")
	a := startInProcess(t, cfgPath)
	if got := debug.SetMemoryLimit(-1); got != 900<<20 {
		t.Fatalf("memory limit after start %d, want %d", got, 900<<20)
	}
	set("memory_limit: off\n")
	if err := a.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("memory limit after reloading off: %d", got)
	}
}
