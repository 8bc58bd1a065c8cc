package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/host"
)

// proc supervises one version of one plugin binary: it starts the process,
// registers its type, restarts it with backoff when it dies, and stops it
// on shutdown. A replaced binary gets a new proc, which stops the previous
// one (prev) once it has registered or was refused, so the type never goes
// missing while a working version exists.
type proc struct {
	h    *Host
	name string
	id   fileID
	pin  string
	log  hclog.Logger

	mu       sync.Mutex
	cur      *running      // nil while not running
	changed  chan struct{} // closed (and replaced) whenever cur changes
	schema   sdk.Schema
	restarts int
	prev     *proc
	// failing is the first line of the last start failure until the
	// binary runs again; failures counts them, failingSince is the first.
	failing      string
	failures     int
	failingSince time.Time

	kick      chan struct{}
	stopCh    chan struct{}
	stopOnce  sync.Once
	done      chan struct{}
	first     chan struct{} // closed after the first start attempt
	firstOnce sync.Once
}

// running is one live plugin process.
type running struct {
	pc       *plugin.Client
	cl       *host.Client
	schema   sdk.Schema
	pid      int
	since    time.Time
	protocol int
}

// refuseError means the binary must not run until it changes.
type refuseError struct{ reason string }

func (e *refuseError) Error() string { return e.reason }

func newProc(h *Host, name string, id fileID, pin string, prev *proc) *proc {
	return &proc{
		h: h, name: name, id: id, pin: pin, prev: prev,
		log:     h.log.With("binary", name),
		changed: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		stopCh:  make(chan struct{}),
		done:    make(chan struct{}),
		first:   make(chan struct{}),
	}
}

// run is the supervisor loop; it owns every process of this proc.
func (p *proc) run() {
	defer p.h.wg.Done()
	defer close(p.done)
	defer p.h.unregister(p)
	defer p.retirePrev()
	defer p.firstDone()

	backoff := p.h.opts.RestartMin
	for {
		if p.stopped() {
			return
		}
		r, err := p.start()
		if err != nil {
			var rf *refuseError
			if errors.As(err, &rf) {
				p.h.refuse(p, rf.reason, "")
				return
			}
			p.startFailed(err, backoff)
			p.firstDone()
			if !p.sleep(backoff) {
				return
			}
			backoff = p.grow(backoff)
			continue
		}
		if err := p.h.register(p, r.schema); err != nil {
			p.stopProcess(r)
			var ce *conflictError
			if errors.As(err, &ce) {
				p.h.refuse(p, ce.Error(), ce.typ)
			}
			return
		}
		p.h.starts.Add(1)
		p.started(r)
		p.setRunning(r)
		p.retirePrev()
		p.firstDone()

		exited := p.wait(r)
		p.setRunning(nil)
		p.stopProcess(r)
		if !exited {
			return
		}
		p.h.restarts.Add(1)
		p.mu.Lock()
		p.restarts++
		p.mu.Unlock()
		if time.Since(r.since) > p.h.opts.RestartMax {
			backoff = p.h.opts.RestartMin
		}
		p.log.Warn("notifier plugin exited; restarting it", "type", r.schema.Type, "pid", r.pid, "in", backoff)
		if !p.sleep(backoff) {
			return
		}
		backoff = p.grow(backoff)
	}
}

func (p *proc) grow(d time.Duration) time.Duration {
	d *= 2
	if d > p.h.opts.RestartMax {
		d = p.h.opts.RestartMax
	}
	return d
}

// start launches the binary with a fresh go-plugin client (a client cannot
// be started twice), connects and reads the schema.
func (p *proc) start() (*running, error) {
	cmd := exec.Command(p.id.exe)
	cmd.Env = append([]string(nil), p.h.opts.Env...)
	cmd.Dir = filepath.Dir(p.id.exe)
	cfg := host.ClientConfig(cmd, p.h.log)
	cfg.SkipHostEnv = true
	cfg.StartTimeout = p.h.opts.StartTimeout
	if p.pin != "" {
		sum, err := hex.DecodeString(p.pin)
		if err != nil || len(sum) != sha256.Size {
			return nil, &refuseError{"plugin_checksums entry is not a hex SHA-256"}
		}
		// A SecureConfig hashes into its Hash: it must be new for every start.
		cfg.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	stderr := &tailBuffer{max: 8 << 10}
	cfg.Stderr = stderr
	pc := plugin.NewClient(cfg)
	since := time.Now()
	cl, err := host.Dispense(pc)
	if err != nil {
		p.kill(pc, 0)
		switch {
		case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
			return nil, &refuseError{"SHA-256 does not match plugin_checksums"}
		case strings.Contains(strings.ToLower(err.Error()), "incompatible api version"):
			return nil, &refuseError{fmt.Sprintf("built for another notifier protocol version (the daemon speaks %d to %d): %s",
				host.MinProtocolVersion, host.ProtocolVersion, firstLine(err.Error()))}
		}
		return nil, &startError{err: err, stderr: stderr.String()}
	}
	r := &running{pc: pc, cl: cl, since: since, protocol: cl.ProtocolVersion()}
	if rc := pc.ReattachConfig(); rc != nil {
		r.pid = rc.Pid
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.h.opts.CallTimeout)
	schema, err := cl.Schema(ctx)
	cancel()
	if err != nil {
		p.stopProcess(r)
		if errors.Is(err, host.ErrUnimplemented) {
			return nil, &refuseError{"does not answer Schema: " + err.Error()}
		}
		return nil, fmt.Errorf("schema: %w", err)
	}
	if err := schema.Check(); err != nil {
		p.stopProcess(r)
		return nil, &refuseError{"invalid schema: " + err.Error()}
	}
	r.schema = schema
	p.log.Debug("notifier plugin started", "type", schema.Type, "pid", r.pid)
	return r, nil
}

// wait blocks until the process exits (true) or the proc is stopped
// (false).
func (p *proc) wait(r *running) bool {
	t := time.NewTicker(p.h.opts.Poll)
	defer t.Stop()
	for {
		select {
		case <-p.stopCh:
			return false
		case <-p.kick:
		case <-t.C:
		}
		if r.pc.Exited() {
			return true
		}
	}
}

// stopProcess ends r's process within KillTimeout.
func (p *proc) stopProcess(r *running) { p.kill(r.pc, r.pid) }

// kill ends pc, by force when it does not stop within KillTimeout.
// go-plugin reaps the process, so nothing is left as a zombie.
func (p *proc) kill(pc *plugin.Client, pid int) {
	done := make(chan struct{})
	go func() {
		pc.Kill()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(p.h.opts.KillTimeout):
	}
	p.log.Warn("notifier plugin did not stop in time; killing it", "pid", pid)
	if pid > 0 {
		if proc, err := os.FindProcess(pid); err == nil {
			proc.Kill()
		}
	}
	select {
	case <-done:
	case <-time.After(p.h.opts.KillTimeout):
		p.log.Error("notifier plugin still not stopped", "pid", pid)
	}
}

func (p *proc) setRunning(r *running) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur = r
	close(p.changed)
	p.changed = make(chan struct{})
}

// client returns the live process other than stale, waiting for a restart
// in progress until ctx ends.
func (p *proc) client(ctx context.Context, stale *running) (*running, error) {
	for {
		p.mu.Lock()
		r, changed := p.cur, p.changed
		p.mu.Unlock()
		if r != nil && r != stale {
			return r, nil
		}
		select {
		case <-changed:
		case <-p.done:
			return nil, fmt.Errorf("%s stopped: %w", p.name, host.ErrUnavailable)
		case <-ctx.Done():
			return nil, fmt.Errorf("%s is restarting: %w", p.name, host.ErrUnavailable)
		}
	}
}

// died reports whether r's process has exited, giving it up to d to be
// seen as exited (a broken connection is noticed before the exit).
func (p *proc) died(r *running, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if r.pc.Exited() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *proc) getSchema() sdk.Schema {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.schema
}

func (p *proc) setSchema(s sdk.Schema) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.schema = s
}

func (p *proc) stats() PluginStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := PluginStats{Type: p.schema.Type, Restarts: p.restarts, Failing: p.failing, Failures: p.failures, FailingSince: p.failingSince}
	if p.cur != nil {
		s.Running, s.Pid, s.Since, s.Protocol = true, p.cur.pid, p.cur.since, p.cur.protocol
	}
	return s
}

// poke asks the supervisor to check the process now (a call found the
// connection broken).
func (p *proc) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *proc) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.stopCh:
		return false
	}
}

func (p *proc) stopped() bool {
	select {
	case <-p.stopCh:
		return true
	default:
		return false
	}
}

func (p *proc) firstDone() { p.firstOnce.Do(func() { close(p.first) }) }

// waitFirst waits until the first start attempt is over, at most d.
func (p *proc) waitFirst(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.first:
	case <-t.C:
	}
}

// retirePrev stops the previous version of the binary, if any.
func (p *proc) retirePrev() {
	p.mu.Lock()
	prev := p.prev
	p.prev = nil
	p.mu.Unlock()
	if prev != nil {
		prev.shutdown()
	}
}

// shutdown stops the supervisor and its process and waits for both.
func (p *proc) shutdown() {
	p.stopOnce.Do(func() { close(p.stopCh) })
	<-p.done
}

// startError is a failed start: go-plugin's error and what the process
// wrote to stderr meanwhile.
type startError struct {
	err    error
	stderr string
}

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// summary is the first useful line of the failure: go-plugin's first line,
// with the line of the plugin's stderr that says what went wrong (a panic,
// a fatal error, or its last line) when it wrote one.
func (e *startError) summary() string {
	msg := firstLine(e.err.Error())
	const unrecognized = "Unrecognized remote plugin message:"
	if _, printed, ok := strings.Cut(msg, unrecognized); ok {
		// go-plugin read something other than its handshake line on
		// stdout, or nothing because the process ended first.
		if printed = strings.TrimSpace(printed); printed == "" {
			msg = "the process ended before the plugin handshake"
		} else {
			msg = fmt.Sprintf("not an hbd notifier plugin: it printed %q instead of the plugin handshake", clip(printed))
		}
	}
	if line := stderrLine(e.stderr); line != "" {
		msg += " (stderr: " + line + ")"
	}
	return msg
}

// startFailed counts a failed start and says so: logged and journaled
// when the failure differs from the last one, at debug level when it
// repeats, so a binary failing every retry fills neither the log nor the
// journal.
func (p *proc) startFailed(err error, retry time.Duration) {
	p.h.startFailures.Add(1)
	msg := firstLine(err.Error())
	var se *startError
	if errors.As(err, &se) {
		msg = se.summary()
	}
	p.mu.Lock()
	same := msg == p.failing
	p.failing = msg
	p.failures++
	n := p.failures
	if n == 1 {
		p.failingSince = time.Now()
	}
	p.mu.Unlock()
	if same {
		p.log.Debug("notifier plugin failed to start again", "error", msg, "failures", n, "retry_in", retry)
		return
	}
	p.log.Error("notifier plugin failed to start; retrying with backoff", "error", msg, "retry_in", retry)
	p.h.journal(fmt.Sprintf("notifier plugin %s failed to start: %s", p.name, msg))
}

// started clears the failure state once the binary runs; a recovery from
// failures is journaled.
func (p *proc) started(r *running) {
	p.mu.Lock()
	n := p.failures
	p.failing, p.failures, p.failingSince = "", 0, time.Time{}
	p.mu.Unlock()
	if n > 0 {
		p.log.Info("notifier plugin started after failed starts", "type", r.schema.Type, "failures", n)
		p.h.journal(fmt.Sprintf("notifier plugin %s started (type %s) after %d failed starts", p.name, r.schema.Type, n))
	}
}

// maxLine bounds the failure lines shown to operators.
const maxLine = 300

// firstLine returns the first non-blank line of s, trimmed and cut to
// maxLine runes.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return clip(l)
		}
	}
	return ""
}

// stderrLine picks the line of a plugin's stderr that explains a failed
// start: the first "panic:" or "fatal error:" line, else the last
// non-blank line.
func stderrLine(s string) string {
	last := ""
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") {
			return clip(l)
		}
		if l != "" {
			last = l
		}
	}
	return clip(last)
}

func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > maxLine {
		return string(r[:maxLine]) + "…"
	}
	return s
}

// tailBuffer keeps the first max bytes written to it (a start's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
