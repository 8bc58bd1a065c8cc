package daemon_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/hbdmon/hbd/core/testutil"
)

func writeConfig(t *testing.T, dir string, port int, extra string) {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	body := fmt.Sprintf(`hbd_host: 127.0.0.1
hbd_port: %d
ws_port: %d
hb_port: %d
data_dir: ./data
plugins_dir: ./plugins
watchhosts:
  web01:
    key: "%s"
%s`, port, testutil.FreePort(t), testutil.FreePort(t), testutil.Key, extra)
	if err := os.WriteFile(filepath.Join(dir, "hbd.yaml"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestKill9LosesNoAcknowledgedSample feeds signed batches to a real hbd
// process, kills it with SIGKILL while batches are in flight, restarts it
// and finds every batch that was answered 200 in the history.
func TestKill9LosesNoAcknowledgedSample(t *testing.T) { kill9LosesNoAcknowledgedSample(t, "") }

// kill9LosesNoAcknowledgedSample runs the test with extra config (the
// store key) and returns the daemon's directory, the acknowledged count
// and both daemons' logs.
func kill9LosesNoAcknowledgedSample(t *testing.T, extra string) (string, int64, string) {
	bin := testutil.Build(t, "./core/cmd/hbd")
	dir := t.TempDir()
	port := testutil.FreePort(t)
	writeConfig(t, dir, port, extra)
	d := testutil.StartDaemon(t, bin, dir, port)

	key := []byte(testutil.Key)
	base := float64(time.Now().Unix() - 1000)
	var acked atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			req := testutil.IngestRequest(t, d.BaseURL, "web01", key,
				testutil.Sample("cpu_monitor", base+float64(i), map[string]any{"cpu_percent": float64(i)}))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return
			}
			acked.Store(int64(i))
		}
	}()
	for acked.Load() < 200 {
		time.Sleep(5 * time.Millisecond)
	}
	d.Kill()
	close(stop)
	<-done
	n := acked.Load()

	d2 := testutil.StartDaemon(t, bin, dir, port)
	url := fmt.Sprintf("%s/api/0/hosts/web01/plugins/cpu_monitor?since=0&limit=10000", d2.BaseURL)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Samples []struct {
			Timestamp float64 `json:"timestamp"`
		} `json:"samples"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	have := map[float64]bool{}
	for _, s := range body.Samples {
		have[s.Timestamp] = true
	}
	for i := int64(1); i <= n; i++ {
		if !have[base+float64(i)] {
			t.Fatalf("sample %d was acknowledged but is missing after kill -9 (%d stored, %d acked)", i, len(body.Samples), n)
		}
	}
	t.Logf("%d batches acknowledged before SIGKILL, %d stored after restart", n, len(body.Samples))
	return dir, n, d.Stderr() + d2.Stderr()
}

func TestBadConfigRefusesToStart(t *testing.T) {
	bin := testutil.Build(t, "./core/cmd/hbd")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hbd.yaml"), []byte("watchhosts:\n  web01:\n    key: short\n"), 0o600)
	out, err := exec.Command(bin, "serve", "-config", filepath.Join(dir, "hbd.yaml")).CombinedOutput()
	if code := exitCode(err); code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, out)
	}
	want := filepath.Join(dir, "hbd.yaml") + ": watchhosts.web01.key: must be at least 32 bytes"
	if !strings.Contains(string(out), want) || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Fatalf("output %q, want one line with %q", out, want)
	}
}

func TestMissingDataDirAndPortInUse(t *testing.T) {
	bin := testutil.Build(t, "./core/cmd/hbd")
	dir := t.TempDir()
	port := testutil.FreePort(t)
	writeConfig(t, dir, port, "")
	os.RemoveAll(filepath.Join(dir, "data"))
	out, err := exec.Command(bin, "serve", "-config", filepath.Join(dir, "hbd.yaml")).CombinedOutput()
	if exitCode(err) != 1 || !strings.Contains(string(out), "data_dir ./data: no such file or directory") {
		t.Fatalf("missing data_dir: %v %s", err, out)
	}
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd := exec.Command(bin, "serve", "-config", filepath.Join(dir, "hbd.yaml"))
	cmd.Dir = dir
	out, err = cmd.CombinedOutput()
	if exitCode(err) != 1 || !strings.Contains(string(out), fmt.Sprintf("hbd_port: listen 127.0.0.1:%d", port)) {
		t.Fatalf("port in use: %v %s", err, out)
	}
}

func TestSighupReloadKeepsRunningConfigOnError(t *testing.T) {
	bin := testutil.Build(t, "./core/cmd/hbd")
	dir := t.TempDir()
	port := testutil.FreePort(t)
	writeConfig(t, dir, port, "")
	d := testutil.StartDaemon(t, bin, dir, port)
	cfgPath := filepath.Join(dir, "hbd.yaml")
	good, _ := os.ReadFile(cfgPath)

	os.WriteFile(cfgPath, append(good, []byte("bogus_key: 1\n")...), 0o600)
	d.Signal(syscall.SIGHUP)
	d.WaitLog(t, "config reload failed", 5*time.Second)
	if !hostListed(t, d.BaseURL, "web01") {
		t.Fatal("running config lost after bad reload")
	}
	if !messageLogged(t, d.BaseURL, "config reload failed") {
		t.Fatal("bad reload not journaled")
	}
	if strings.Contains(d.Stderr(), testutil.Key) {
		t.Fatal("host key leaked into the log")
	}

	os.WriteFile(cfgPath, []byte(strings.Replace(string(good), "web01:", "web02:", 1)), 0o600)
	d.Signal(syscall.SIGHUP)
	d.WaitLog(t, "config reloaded", 5*time.Second)
	if !hostListed(t, d.BaseURL, "web02") || hostListed(t, d.BaseURL, "web01") {
		t.Fatal("good reload not applied")
	}

	d.Signal(syscall.SIGTERM)
	if code := d.Wait(10 * time.Second); code != 0 {
		t.Fatalf("SIGTERM exit code %d: %s", code, d.Stderr())
	}
}

func hostListed(t *testing.T, base, name string) bool {
	resp, err := http.Get(base + "/api/0/hosts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var hosts []struct{ Name string }
	json.NewDecoder(resp.Body).Decode(&hosts)
	for _, h := range hosts {
		if h.Name == name {
			return true
		}
	}
	return false
}

func messageLogged(t *testing.T, base, text string) bool {
	resp, err := http.Get(base + "/api/0/messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var msgs []struct{ Msg string }
	json.NewDecoder(resp.Body).Decode(&msgs)
	for _, m := range msgs {
		if strings.Contains(m.Msg, text) {
			return true
		}
	}
	return false
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func TestAuthModeLoginAcrossRestart(t *testing.T) {
	bin := testutil.Build(t, "./core/cmd/hbd")
	dir := t.TempDir()
	port := testutil.FreePort(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, port, fmt.Sprintf("    monitors: [alice]\nusers:\n  alice:\n    password_hash: %q\n  root:\n    password_hash: %q\n    admin: true\n", hash, hash))
	d := testutil.StartDaemon(t, bin, dir, port)

	if code := status(t, d.BaseURL+"/api/0/hosts", ""); code != 401 {
		t.Fatalf("anonymous GET /api/0/hosts: %d, want 401", code)
	}
	resp, err := http.Post(d.BaseURL+"/api/0/auth/login", "application/json", strings.NewReader(`{"username":"alice","password":"correct horse"}`))
	if err != nil {
		t.Fatal(err)
	}
	var login struct {
		Token   string  `json:"token"`
		Expires float64 `json:"expires"`
	}
	json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if resp.StatusCode != 200 || login.Token == "" || login.Expires < float64(time.Now().Add(23*time.Hour).Unix()) {
		t.Fatalf("login: %d %+v", resp.StatusCode, login)
	}
	if code := status(t, d.BaseURL+"/api/0/hosts/web01/plugins", login.Token); code != 200 {
		t.Fatalf("monitor reading its host: %d", code)
	}
	if code := status(t, d.BaseURL+"/api/0/users", login.Token); code != 403 {
		t.Fatalf("non-admin listing users: %d, want 403", code)
	}
	d.Signal(syscall.SIGTERM)
	d.Wait(10 * time.Second)

	d2 := testutil.StartDaemon(t, bin, dir, port)
	if code := status(t, d2.BaseURL+"/api/0/hosts/web01/plugins", login.Token); code != 200 {
		t.Fatalf("token after restart: %d", code)
	}
	if strings.Contains(d2.Stderr(), "OPEN MODE") {
		t.Fatal("auth mode logged as open mode")
	}
}

func status(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
