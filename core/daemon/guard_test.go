package daemon_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/hbdmon/hbd/core/testutil"
)

// An empty or truncated hbd.yaml must not switch a daemon with users to
// open mode: not on SIGHUP, not on restart, and check-config says so.
func TestEmptyConfigNeverTurnsAuthenticationOff(t *testing.T) {
	bin := testutil.Build(t, "./core/cmd/hbd")
	dir := t.TempDir()
	port := testutil.FreePort(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, port, fmt.Sprintf("users:\n  root:\n    password_hash: %q\n    admin: true\n", hash))
	cfgPath := filepath.Join(dir, "hbd.yaml")
	good, _ := os.ReadFile(cfgPath)
	d := testutil.StartDaemon(t, bin, dir, port)

	for _, bad := range []string{"", string(good[:strings.Index(string(good), "users:")])} {
		os.WriteFile(cfgPath, []byte(bad), 0o600)
		d.Signal(syscall.SIGHUP)
		d.WaitLog(t, "would turn authentication off", 10*time.Second)
		if code := status(t, d.BaseURL+"/api/0/hosts", ""); code != 401 {
			t.Fatalf("anonymous GET /api/0/hosts after reloading %d bytes: %d, want 401", len(bad), code)
		}
		check := exec.Command(bin, "check-config", "-config", cfgPath)
		check.Dir = dir // data_dir is relative to the working directory, as for serve
		out, err := check.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "auth: {open: true}") {
			t.Errorf("check-config of %d bytes: %v %s", len(bad), err, out)
		}
		// Clear the log match for the next round.
		os.WriteFile(cfgPath, good, 0o600)
	}

	// A restart on the truncated file is refused too.
	d.Signal(syscall.SIGTERM)
	if code := d.Wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	os.WriteFile(cfgPath, nil, 0o600)
	cmd := exec.Command(bin, "serve", "-config", cfgPath)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "users") {
		t.Fatalf("serve on an empty file after auth mode: %v %s", err, out)
	}

	// Saying so explicitly is accepted.
	os.WriteFile(cfgPath, []byte(strings.Replace(string(good[:strings.Index(string(good), "users:")]), "data_dir:", "auth: {open: true}\ndata_dir:", 1)), 0o600)
	d2 := testutil.StartDaemon(t, bin, dir, port)
	if code := status(t, d2.BaseURL+"/api/0/hosts", ""); code != 200 {
		t.Fatalf("confirmed open mode: %d", code)
	}
}
