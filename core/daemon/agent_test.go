package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/testutil"
)

// exampleEnv runs the shipped example configs on free ports through
// environment overrides, so the test checks the files the README uses.
func exampleEnv(t *testing.T, dir string, httpPort, hbPort int) (hbd, hbc []string) {
	ws := testutil.FreePort(t)
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	hbd = []string{
		fmt.Sprintf("HBD_HBD_PORT=%d", httpPort), fmt.Sprintf("HBD_WS_PORT=%d", ws), fmt.Sprintf("HBD_HB_PORT=%d", hbPort),
		"HBD_DATA_DIR=" + filepath.Join(dir, "data"), "HBD_PLUGINS_DIR=" + filepath.Join(dir, "plugins"),
	}
	hbc = []string{
		fmt.Sprintf("HBC_SERVER_IPV4=127.0.0.1:%d", hbPort), fmt.Sprintf("HBC_SERVER_IPV6=[::1]:%d", hbPort),
		fmt.Sprintf("HBC_API_URL=http://127.0.0.1:%d", httpPort), "HBC_SPOOL_DIR=" + filepath.Join(dir, "spool"),
		"HBC_HEARTBEAT_INTERVAL=1s", "HBC_SEND_INTERVAL=1s",
		"HBC_PLUGINS__CPU_MONITOR__INTERVAL=1s", "HBC_PLUGINS__MEMORY_MONITOR__INTERVAL=1s",
		"HBC_PLUGINS__DISK_MONITOR__INTERVAL=1s", "HBC_PLUGINS__NETWORK_MONITOR__INTERVAL=1s",
	}
	return hbd, hbc
}

// TestExampleConfigsWorkTogether starts bin/hbd on examples/hbd.yaml and
// bin/hbc on examples/hbc.yaml (ports moved by environment overrides) and
// waits for the host to be UP on both address families with all four
// built-in plugins reporting. Then it stops the daemon while the agent keeps
// collecting, starts it again, and finds the samples of the outage in the
// history: the agent's spool lost none.
func TestExampleConfigsWorkTogether(t *testing.T) {
	hbdBin := testutil.Build(t, "./core/cmd/hbd")
	hbcBin := testutil.Build(t, "./core/cmd/hbc")
	root := testutil.RepoRoot(t)
	dir := t.TempDir()
	httpPort, hbPort := testutil.FreePort(t), testutil.FreePort(t)
	hbdEnv, hbcEnv := exampleEnv(t, dir, httpPort, hbPort)
	os.WriteFile(filepath.Join(dir, "hbd.yaml"), mustRead(t, filepath.Join(root, "examples/hbd.yaml")), 0o600)
	d := testutil.StartDaemon(t, hbdBin, dir, httpPort, hbdEnv...)

	agent := exec.Command(hbcBin, "-config", filepath.Join(root, "examples/hbc.yaml"))
	agent.Env = append(os.Environ(), hbcEnv...)
	agent.Dir = dir
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { agent.Process.Signal(syscall.SIGKILL); agent.Wait() }()

	wantFamilies := []string{"ipv4"}
	if testutil.HasIPv6Loopback() {
		wantFamilies = append(wantFamilies, "ipv6")
	} else {
		t.Log("no IPv6 loopback on this machine: checking IPv4 heartbeats only")
	}
	testutil.Eventually(t, "host localhost UP on "+fmt.Sprint(wantFamilies)+" with four plugins", 20*time.Second, func() bool {
		var hosts []struct {
			Name        string `json:"name"`
			State       string `json:"state"`
			Connections []struct {
				Family string `json:"family"`
				State  string `json:"state"`
			} `json:"connections"`
		}
		getJSON(t, d.BaseURL+"/api/0/hosts", &hosts)
		if len(hosts) != 1 || hosts[0].Name != "localhost" || hosts[0].State != "UP" {
			return false
		}
		var up []string
		for _, c := range hosts[0].Connections {
			if c.State == "UP" {
				up = append(up, c.Family)
			}
		}
		sort.Strings(up)
		if fmt.Sprint(up) != fmt.Sprint(wantFamilies) {
			return false
		}
		var plugins struct {
			Plugins map[string]any    `json:"plugins"`
			Units   map[string]string `json:"units"`
		}
		getJSON(t, d.BaseURL+"/api/0/hosts/localhost/plugins", &plugins)
		for _, p := range []string{"cpu_monitor", "memory_monitor", "disk_monitor", "network_monitor"} {
			if plugins.Plugins[p] == nil {
				return false
			}
		}
		// The agent's declared units arrive with the batch after the
		// daemon's first answer announced that it takes them.
		return plugins.Units["cpu_monitor.cpu_percent"] == "percent" && plugins.Units["memory_monitor.total_mb"] == "MiB" &&
			plugins.Units["network_monitor.lo.bytes_sent"] == "bytes_total"
	})

	// Outage: the daemon stops for three seconds while the agent collects.
	d.Signal(syscall.SIGTERM)
	if code := d.Wait(10 * time.Second); code != 0 {
		t.Fatalf("daemon exit %d", code)
	}
	down := float64(time.Now().UnixNano()) / 1e9
	time.Sleep(3 * time.Second)
	up := float64(time.Now().UnixNano()) / 1e9
	d2 := testutil.StartDaemon(t, hbdBin, dir, httpPort, hbdEnv...)
	testutil.Eventually(t, "cpu samples taken during the outage to arrive", 15*time.Second, func() bool {
		var body struct {
			Samples []struct {
				Timestamp float64 `json:"timestamp"`
			} `json:"samples"`
		}
		getJSON(t, fmt.Sprintf("%s/api/0/hosts/localhost/plugins/cpu_monitor?since=%f&until=%f", d2.BaseURL, down, up), &body)
		return len(body.Samples) >= 2
	})
	// The units were stored: the restarted daemon serves them.
	var plugins struct {
		Units map[string]string `json:"units"`
	}
	getJSON(t, d2.BaseURL+"/api/0/hosts/localhost/plugins", &plugins)
	if plugins.Units["cpu_monitor.cpu_percent"] != "percent" {
		t.Errorf("units after the restart: %v", plugins.Units)
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(v)
}
