package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the tests run this binary as hbc itself.
func TestMain(m *testing.M) {
	if os.Getenv("RUN_AS_HBC") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func writeConfig(t *testing.T, apiURL, extra string) string {
	t.Helper()
	dir := t.TempDir()
	body := "host: web01\nkey: test-key-0123456789abcdef-0123456789\nserver_ipv4: 127.0.0.1:50003\n" +
		"api_url: " + apiURL + "\nspool_dir: " + filepath.Join(dir, "spool") + "\nsend_interval: 1s\n" +
		"plugins:\n  cpu_monitor: {enabled: false}\n  disk_monitor: {enabled: false}\n  network_monitor: {enabled: false}\n" +
		"  memory_monitor: {interval: 1s}\n" + extra
	path := filepath.Join(dir, "hbc.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		var out bytes.Buffer
		if code := run(args, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "hbc ") {
			t.Fatalf("hbc %v: exit %d, output %q", args, code, out.String())
		}
	}
}

// -h and --help print the usage with examples on stdout and exit 0, also
// after other flags (issue 14).
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"once", "-h"}, {"-config", "x.yaml", "--help"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "examples:") {
			t.Errorf("hbc %v: exit %d, stdout %q, stderr %q", args, code, stdout.String(), stderr.String())
		}
	}
}

func TestOncePrintsPluginDataAsJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"once", "-config", writeConfig(t, "http://127.0.0.1:1", "")}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var out map[string]map[string]float64
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("stdout is not plugin JSON: %v\n%s", err, stdout.String())
	}
	if len(out) != 1 || out["memory_monitor"]["total_mb"] <= 0 {
		t.Fatalf("unexpected output: %v", out)
	}
}

func TestBadConfigExitsNonZeroNamingTheKey(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"-config", writeConfig(t, "http://127.0.0.1:1", "send_intervall: 1s\n")}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "send_intervall: unknown key") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &out); code != 2 {
		t.Fatalf("exit %d", code)
	}
}

func TestSIGTERMFlushesAndExitsZero(t *testing.T) {
	got := make(chan struct{}, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- struct{}{}
		w.Write([]byte(`{"ok":true,"accepted":1}`))
	}))
	defer srv.Close()

	cmd := exec.Command(os.Args[0], "-config", writeConfig(t, srv.URL, ""))
	cmd.Env = append(os.Environ(), "RUN_AS_HBC=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("no batch reached the daemon:\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("hbc did not stop after SIGTERM:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "agent stopped: pending_bytes=0") {
		t.Fatalf("no clean, fully flushed stop logged:\n%s", stderr.String())
	}
}
