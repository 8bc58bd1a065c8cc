package testutil

import (
	"bytes"
	"fmt"
	"math/rand/v2"
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
)

// FreePort returns a TCP port that was free a moment ago (also free for UDP,
// which the heartbeat listener needs). It is drawn from below the kernel's
// ephemeral range (32768 and up on Linux), where no outgoing connection
// and no listener on port 0 of another test can take it in the meantime,
// and it is never handed out twice in one test process.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for i := 0; i < 200; i++ {
		port := 20000 + rand.IntN(12000)
		if portsGiven[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		if u, err := net.ListenPacket("udp", fmt.Sprintf(":%d", port)); err == nil {
			u.Close()
			portsGiven[port] = true
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// Daemon is an hbd child process started from a built binary.
type Daemon struct {
	Cmd     *exec.Cmd
	BaseURL string
	Dir     string
	mu      sync.Mutex
	stderr  bytes.Buffer
	done    chan struct{}
}

// Stderr returns what the daemon has logged so far.
func (d *Daemon) Stderr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

type lockedWriter struct{ d *Daemon }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.d.stderr.Write(p)
}

// StartDaemon runs bin serve -config dir/hbd.yaml (dir must hold the config
// and its data_dir) and waits until /healthz answers on port.
func StartDaemon(t testing.TB, bin, dir string, port int, env ...string) *Daemon {
	t.Helper()
	d := &Daemon{Dir: dir, BaseURL: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{})}
	d.Cmd = exec.Command(bin, "serve", "-config", filepath.Join(dir, "hbd.yaml"))
	d.Cmd.Dir = dir
	d.Cmd.Env = append(os.Environ(), env...)
	d.Cmd.Stderr = lockedWriter{d}
	if err := d.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.Cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.Kill() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			t.Fatalf("hbd exited during start: %s", d.Stderr())
		default:
		}
		resp, err := http.Get(d.BaseURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return d
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("hbd did not answer /healthz: %s", d.Stderr())
	return nil
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig syscall.Signal) { d.Cmd.Process.Signal(sig) }

// Kill sends SIGKILL and waits for the process to end.
func (d *Daemon) Kill() {
	d.Cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
}

// Exited reports whether the process has ended.
func (d *Daemon) Exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to exit and returns its exit code
// (-1 on timeout).
func (d *Daemon) Wait(timeout time.Duration) int {
	select {
	case <-d.done:
		return d.Cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		return -1
	}
}

// WaitLog waits until the daemon's log contains s.
func (d *Daemon) WaitLog(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(d.Stderr(), s) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("daemon log never contained %q:\n%s", s, d.Stderr())
}

// Eventually polls cond until it holds, failing the test after d with what
// it was waiting for.
func Eventually(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// HasIPv6Loopback reports whether this machine can bind UDP on ::1; tests
// that need both address families skip (saying so) when it cannot.
func HasIPv6Loopback() bool {
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		return false
	}
	c.Close()
	return true
}
