// Package pgtest runs a real PostgreSQL server for tests: one per test
// binary, started on first use in a scratch directory (initdb, then
// postgres listening only on a unix socket in that directory), with a
// fresh database per test. As root the server runs as the unprivileged
// user "postgres" (the Debian package creates it): initdb refuses root.
//
// A package that uses it calls Main from its TestMain, which stops the
// server and removes the directory when the tests end; should the test
// binary die first, the server gets SIGQUIT from the kernel (parent-death
// signal) and stops too.
//
// A test that restarts or stops PostgreSQL takes a server of its own
// (Start, then Server.Restart): the shared one serves the package's
// other tests in parallel.
//
// Without PostgreSQL's binaries (initdb and postgres on PATH or under
// /usr/lib/postgresql/*/bin) a test that asks for a database is skipped,
// naming what is missing, except under CI=true, where it fails: CI
// installs the Debian package postgresql (.ci/run, make test-deps).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running PostgreSQL.
type Server struct {
	Dir    string // scratch directory: data/, the socket, log
	Socket string // directory of the unix socket (the "host" of a DSN)
	Port   int
	Log    string // the server's log file

	bin    string              // directory of the server's binaries
	cred   *syscall.Credential // the account it runs as; nil: ours
	cmd    *exec.Cmd           // the running postmaster (replaced by Restart)
	exited chan struct{}       // closed when cmd has exited

	mu    sync.Mutex
	admin *pgx.Conn
}

var (
	once    sync.Once
	shared  *Server
	startEr error
	dbSeq   atomic.Int64
)

// Main runs the tests and then stops the shared server, if one started.
// Call it from TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	os.Exit(code)
}

// Binaries returns the directory holding initdb and postgres, or an error
// naming what is missing.
func Binaries() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.SliceStable(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH nor in /usr/lib/postgresql/*/bin: install the Debian package postgresql")
}

func versionOf(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Shared returns the test binary's server, starting it on first use. A
// missing PostgreSQL skips the test (fails it under CI=true).
func Shared(t testing.TB) *Server {
	t.Helper()
	once.Do(func() { shared, startEr = start() })
	if startEr != nil {
		var miss *missingError
		if errors.As(startEr, &miss) && os.Getenv("CI") != "true" {
			t.Skipf("PostgreSQL unavailable: %v", startEr)
		}
		t.Fatalf("PostgreSQL test server: %v", startEr)
	}
	return shared
}

// DSN creates a fresh, empty database on the shared server and returns
// its connection string; the database is dropped at the test's cleanup
// (register it before anything that must close its connections first).
func DSN(t testing.TB) string {
	t.Helper()
	return Shared(t).NewDatabase(t)
}

// NewDatabase creates a fresh, empty database on s and returns its
// connection string; the database is dropped at the test's cleanup.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	if err := s.exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if err := s.exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return s.DSNFor(name)
}

// DSNFor is the connection string of database name on the server.
func (s *Server) DSNFor(name string) string {
	return fmt.Sprintf("host=%s port=%d user=hbd dbname=%s sslmode=disable", s.Socket, s.Port, name)
}

// Exec runs a statement as the superuser in the maintenance database.
func (s *Server) Exec(ctx context.Context, sql string) error { return s.exec(ctx, sql) }

func (s *Server) exec(ctx context.Context, sql string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admin == nil || s.admin.IsClosed() {
		c, err := pgx.Connect(ctx, s.DSNFor("postgres"))
		if err != nil {
			return err
		}
		s.admin = c
	}
	_, err := s.admin.Exec(ctx, sql)
	return err
}

type missingError struct{ err error }

func (e *missingError) Error() string { return e.err.Error() }

// runAs is the unprivileged account the server runs as when the tests
// run as root.
const runAs = "postgres"

func start() (*Server, error) {
	bin, err := Binaries()
	if err != nil {
		return nil, &missingError{err}
	}
	dir, err := os.MkdirTemp("", "hbd-pgtest-")
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Getuid() == 0 {
		u, err := user.Lookup(runAs)
		if err != nil {
			os.RemoveAll(dir)
			return nil, &missingError{fmt.Errorf("running as root, and initdb refuses root: the unprivileged user %q (created by the Debian package postgresql) is missing: %w", runAs, err)}
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	s := &Server{Dir: dir, Socket: dir, Port: 5432, Log: filepath.Join(dir, "postgres.log"), bin: bin, cred: cred}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", s.data(), "-U", "hbd", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, lastLines(string(out), 5))
	}
	if err := s.launch(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.ready(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) data() string { return filepath.Join(s.Dir, "data") }

// launch starts the postmaster on the data directory (which initdb made).
func (s *Server) launch() error {
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// Durability settings are the server's defaults but fsync: the tests
	// kill hbd, never this server, and fsync would only slow them. A
	// benchmark that wants the real cost sets HBD_PGTEST_FSYNC=on. (A
	// Restart is a clean shutdown: it loses nothing without fsync.)
	fsync := "off"
	if os.Getenv("HBD_PGTEST_FSYNC") == "on" {
		fsync = "on"
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", s.data(), "-k", s.Socket, "-p", strconv.Itoa(s.Port),
		"-c", "listen_addresses=", "-c", "fsync="+fsync, "-c", "max_connections=300",
		"-c", "shared_buffers=64MB", "-c", "log_min_messages=warning")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	exited := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the thread that started the
		// child exits: this one stays until the server has stopped.
		runtime.LockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			cmd.Wait()
		}
		logf.Close()
		close(exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// ready waits until the server answers a query, at most a minute.
func (s *Server) ready() error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := s.exec(ctx, "SELECT 1")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(s.Log)
			return fmt.Errorf("postgres exited at start: %s", lastLines(string(log), 10))
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(s.Log)
			return fmt.Errorf("postgres not ready after 60s: %v: %s", err, lastLines(string(log), 10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Start starts a PostgreSQL server of the test's own, stopped and removed
// at the test's cleanup: for a test that restarts or stops the server,
// which the shared one (Shared, DSN) must never be. A missing PostgreSQL
// skips the test (fails it under CI=true).
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		var miss *missingError
		if errors.As(err, &miss) && os.Getenv("CI") != "true" {
			t.Skipf("PostgreSQL unavailable: %v", err)
		}
		t.Fatalf("PostgreSQL test server: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Restart shuts the server down the way an operator's restart does (a
// fast shutdown: every session is ended, the postmaster exits after a
// checkpoint), keeps it down for at least down, then starts it again on
// the same data directory, socket and port and waits until it answers.
// Only for a server of Start; not safe to call concurrently with Stop or
// another Restart.
func (s *Server) Restart(t testing.TB, down time.Duration) {
	t.Helper()
	s.closeAdmin()
	stopped := time.Now()
	if err := s.shutdown(syscall.SIGINT, 60*time.Second); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if d := down - time.Since(stopped); d > 0 {
		time.Sleep(d)
	}
	if err := s.launch(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := s.ready(); err != nil {
		t.Fatalf("restart: %v", err)
	}
}

// shutdown sends the postmaster sig (SIGINT: fast, SIGQUIT: immediate)
// and waits for it to exit, killing it after timeout.
func (s *Server) shutdown(sig syscall.Signal, timeout time.Duration) error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
		return nil
	case <-time.After(timeout):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("postgres did not stop within %s after %v: killed", timeout, sig)
	}
}

func (s *Server) closeAdmin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admin != nil {
		s.admin.Close(context.Background())
		s.admin = nil
	}
}

// Stop shuts the server down at once and removes its directory.
func (s *Server) Stop() {
	s.closeAdmin()
	s.shutdown(syscall.SIGQUIT, 30*time.Second)
	os.RemoveAll(s.Dir)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
