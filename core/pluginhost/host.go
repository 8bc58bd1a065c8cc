// Package pluginhost runs the notifier plugins: it finds the executables
// named hbd-notifier-* in plugins_dir, runs one long-lived go-plugin
// process per binary, registers the channel type each one reports, and
// forwards Validate and Notify calls to the right process.
//
// Lifecycle: New, then Start (scans the directory, starts every plugin and
// watches the directory), Rescan whenever the daemon gets SIGHUP, Close at
// shutdown (after the dispatcher stopped calling Notify). Types, Schema,
// Validate, Notify and Stats are safe for concurrent use at any time;
// after Close they behave as if no plugin were installed.
//
// Every plugin runs with a minimal environment (the daemon's secrets are
// not passed on), its logs go to the daemon's logger under the binary's
// name, every call is bounded by a timeout, and a plugin that dies is
// restarted with exponential backoff by a fresh go-plugin client.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/host"
)

// Prefix starts the file name of every notifier plugin binary.
const Prefix = "hbd-notifier-"

// Defaults for the zero fields of Options.
const (
	DefaultCallTimeout  = 30 * time.Second
	DefaultStartTimeout = 15 * time.Second
	DefaultKillTimeout  = 5 * time.Second
	DefaultDebounce     = 300 * time.Millisecond
	DefaultRestartMin   = 500 * time.Millisecond
	DefaultRestartMax   = time.Minute
	DefaultPoll         = 250 * time.Millisecond
	DefaultRescanEvery  = 30 * time.Second
)

// ErrUnknownType is returned by Validate and Notify for a channel type no
// running plugin provides (never installed, removed, or refused).
var ErrUnknownType = errors.New("notifier type is not installed")

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("plugin host is closed")

// Options configure a Host. Only Dir is required.
type Options struct {
	// Dir is plugins_dir. Empty means no plugins.
	Dir string
	// Checksums pins binaries by file name to a hex SHA-256
	// (plugin_checksums). A pinned binary that does not match is refused.
	// When any pin is set, binaries without one are refused too; with no
	// pins at all, every acceptable binary runs.
	Checksums map[string]string
	// Logger receives the host's and the plugins' logs.
	Logger hclog.Logger
	// Journal, when set, records what operators must see without reading
	// the log: a plugin that fails to start (once per distinct failure,
	// not per retry), starts again, or is refused.
	Journal Journal
	// Env is the complete environment of plugin processes. Nil means a
	// small allow-list taken from the daemon's environment (PATH, TZ,
	// locale, CA certificate locations and proxy settings), so secrets in
	// the daemon's environment never reach a third-party binary.
	Env []string

	CallTimeout  time.Duration // bound of one Schema, Validate or Notify call
	StartTimeout time.Duration // bound of a plugin's start and handshake
	KillTimeout  time.Duration // after this a plugin that will not stop is killed
	Debounce     time.Duration // quiet time after a directory change before a rescan
	RestartMin   time.Duration // first restart delay of a dead plugin
	RestartMax   time.Duration // cap of the doubling restart delay
	Poll         time.Duration // how often liveness is checked
	RescanEvery  time.Duration // periodic rescan, in case an event was missed
}

// envAllow lists the variables plugins inherit when Options.Env is nil.
var envAllow = []string{
	"PATH", "TZ", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
}

func (o *Options) fill() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.CallTimeout, DefaultCallTimeout)
	def(&o.StartTimeout, DefaultStartTimeout)
	def(&o.KillTimeout, DefaultKillTimeout)
	def(&o.Debounce, DefaultDebounce)
	def(&o.RestartMin, DefaultRestartMin)
	def(&o.RestartMax, DefaultRestartMax)
	def(&o.Poll, DefaultPoll)
	def(&o.RescanEvery, DefaultRescanEvery)
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Env == nil {
		o.Env = []string{}
		for _, k := range envAllow {
			if v, ok := os.LookupEnv(k); ok {
				o.Env = append(o.Env, k+"="+v)
			}
		}
	}
}

// Journal records daemon-wide events (*store.Store provides it).
type Journal interface {
	// Journal records msg about host ("" for daemon-wide entries).
	Journal(host, msg string)
}

// Host runs the notifier plugins of one directory. Build it with New.
type Host struct {
	opts Options
	log  hclog.Logger

	scanMu sync.Mutex // serializes scans

	mu        sync.RWMutex
	checksums map[string]string
	procs     map[string]*proc    // current generation per binary name
	types     map[string]*proc    // registered type -> provider
	refused   map[string]*refusal // binary name -> why it does not run
	closed    bool

	stop    chan struct{}
	wg      sync.WaitGroup // proc supervisors
	watchWG sync.WaitGroup

	calls         atomic.Uint64
	callErrors    atomic.Uint64
	starts        atomic.Uint64
	restarts      atomic.Uint64
	startFailures atomic.Uint64

	watchMu  sync.Mutex
	onChange []func(typ string)
}

// refusal records a binary that is not run, so a rescan does not retry it
// (and log again) until the file, its pin or the conflict changes.
type refusal struct {
	id       fileID
	pin      string
	reason   string
	conflict string // the type another binary provides, for conflicts
	// checked is true for refusals the scan decides (file checks, no
	// pin): they are decided again at every scan, without starting it.
	checked bool
}

// New returns a Host for opts. Nothing runs until Start.
func New(opts Options) *Host {
	opts.fill()
	h := &Host{
		opts:      opts,
		log:       opts.Logger.Named("plugins"),
		checksums: copyMap(opts.Checksums),
		procs:     map[string]*proc{},
		types:     map[string]*proc{},
		refused:   map[string]*refusal{},
		stop:      make(chan struct{}),
	}
	return h
}

// Start scans the directory, starts every acceptable plugin (returning
// once each has registered its type or failed its first start), and
// starts watching the directory for changes. A missing or unreadable
// directory is logged, not fatal: it is watched for when it appears.
func (h *Host) Start(ctx context.Context) error {
	if h.opts.Dir == "" {
		h.log.Info("plugins_dir not set: no notifier plugins")
		return nil
	}
	h.Rescan()
	h.watchWG.Add(1)
	go h.watch()
	return nil
}

// Rescan compares the directory with the running plugins and starts new
// binaries, restarts replaced ones and stops removed ones. It returns once
// new plugins have registered or failed their first start. The daemon
// calls it on SIGHUP; the directory watcher calls it after changes.
func (h *Host) Rescan() {
	h.scanMu.Lock()
	defer h.scanMu.Unlock()
	h.scan()
}

// SetChecksums replaces the binary pins (after a config reload). Binaries
// whose pin changed are restarted (or refused) by the next Rescan.
func (h *Host) SetChecksums(sums map[string]string) {
	h.mu.Lock()
	h.checksums = copyMap(sums)
	h.mu.Unlock()
}

// Close stops watching, stops every plugin process (each within
// KillTimeout) and waits until all are gone.
func (h *Host) Close() error {
	h.scanMu.Lock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.scanMu.Unlock()
		return nil
	}
	h.closed = true
	close(h.stop)
	procs := make([]*proc, 0, len(h.procs))
	for _, p := range h.procs {
		procs = append(procs, p)
	}
	h.mu.Unlock()
	h.scanMu.Unlock()
	h.watchWG.Wait()
	for _, p := range procs {
		p.shutdown()
	}
	h.wg.Wait()
	return nil
}

// Types returns the schema of every registered channel type, by type name.
func (h *Host) Types() map[string]sdk.Schema {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make(map[string]sdk.Schema, len(h.types))
	for t, p := range h.types {
		out[t] = p.getSchema()
	}
	return out
}

// Schema returns the schema of one registered type.
func (h *Host) Schema(typ string) (sdk.Schema, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	p, ok := h.types[typ]
	if !ok {
		return sdk.Schema{}, false
	}
	return p.getSchema(), true
}

// Validate asks the plugin of typ whether cfg is a usable channel
// configuration. Errors: ErrUnknownType, a *sdk.RemoteError for a
// configuration problem, or an error wrapping host.ErrUnavailable or a
// context error when the plugin could not answer.
func (h *Host) Validate(ctx context.Context, typ string, cfg sdk.Config) error {
	return h.call(ctx, typ, func(ctx context.Context, c *host.Client) error { return c.Validate(ctx, cfg) })
}

// Notify asks the plugin of typ to deliver ev through the channel
// configured by cfg. sdk.IsPermanent tells whether retrying may help.
func (h *Host) Notify(ctx context.Context, typ string, cfg sdk.Config, ev sdk.Event) error {
	return h.call(ctx, typ, func(ctx context.Context, c *host.Client) error { return c.Notify(ctx, cfg, ev) })
}

func (h *Host) call(ctx context.Context, typ string, fn func(context.Context, *host.Client) error) error {
	h.calls.Add(1)
	err := h.doCall(ctx, typ, fn)
	if err != nil {
		h.callErrors.Add(1)
	}
	return err
}

func (h *Host) doCall(ctx context.Context, typ string, fn func(context.Context, *host.Client) error) error {
	h.mu.RLock()
	p, ok := h.types[typ]
	closed := h.closed
	h.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownType, typ)
	}
	ctx, cancel := context.WithTimeout(ctx, h.opts.CallTimeout)
	defer cancel()
	r, err := p.client(ctx, nil)
	if err != nil {
		return err
	}
	err = fn(ctx, r.cl)
	if !errors.Is(err, host.ErrUnavailable) || ctx.Err() != nil {
		return err
	}
	// The process died under the call (the request never reached it, or
	// its answer was lost): once the supervisor has restarted it, try the
	// new process once within the same deadline.
	p.poke()
	if !p.died(r, time.Second) {
		return err
	}
	if r, err = p.client(ctx, r); err != nil {
		return err
	}
	return fn(ctx, r.cl)
}

// Stats describes the host for /metrics and diagnostics.
type Stats struct {
	// Plugins lists the binaries that run (or are being restarted), by
	// binary name.
	Plugins []PluginStats
	// Refused lists binaries that are not run, with the reason.
	Refused []Refused
	// Calls and CallErrors count Validate and Notify calls.
	Calls, CallErrors uint64
	// Starts counts plugin process starts, Restarts those after a crash,
	// StartFailures the starts that failed (every retry counts).
	Starts, Restarts, StartFailures uint64
}

// PluginStats is one plugin binary.
type PluginStats struct {
	Binary   string
	Type     string // empty until it registered
	Running  bool
	Pid      int
	Restarts int
	Since    time.Time // start of the current process
	// Protocol is the notifier protocol version the running process
	// speaks (0 when not running).
	Protocol int
	// Failing is the first useful line of the last start failure while
	// the binary does not run ("" when it runs or never failed);
	// Failures counts the failed starts since it last ran, FailingSince
	// is when the first of them happened.
	Failing      string
	Failures     int
	FailingSince time.Time
}

// Refused is one binary that is not run.
type Refused struct {
	Binary string
	Reason string
}

// Stats returns a snapshot of the host's state.
func (h *Host) Stats() Stats {
	h.mu.RLock()
	s := Stats{
		Calls: h.calls.Load(), CallErrors: h.callErrors.Load(),
		Starts: h.starts.Load(), Restarts: h.restarts.Load(), StartFailures: h.startFailures.Load(),
	}
	for name, p := range h.procs {
		ps := p.stats()
		ps.Binary = name
		s.Plugins = append(s.Plugins, ps)
	}
	for name, r := range h.refused {
		s.Refused = append(s.Refused, Refused{Binary: name, Reason: r.reason})
	}
	h.mu.RUnlock()
	sort.Slice(s.Plugins, func(i, j int) bool { return s.Plugins[i].Binary < s.Plugins[j].Binary })
	sort.Slice(s.Refused, func(i, j int) bool { return s.Refused[i].Binary < s.Refused[j].Binary })
	return s
}

// register makes p the provider of schema.Type. A type provided by
// another binary is a conflict: the newcomer is refused. A newer
// generation of the same binary (a replaced file) takes the type over.
func (h *Host) register(p *proc, schema sdk.Schema) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.procs[p.name] != p {
		return errStopped
	}
	if cur, ok := h.types[schema.Type]; ok && cur != p && cur.name != p.name {
		return &conflictError{typ: schema.Type, other: cur.name}
	}
	if old := p.getSchema().Type; old != "" && old != schema.Type && h.types[old] == p {
		delete(h.types, old)
		h.log.Info("notifier type unregistered", "type", old, "binary", p.name)
	}
	prev, had := h.types[schema.Type]
	h.types[schema.Type] = p
	p.setSchema(schema)
	if !had || prev != p {
		h.log.Info("notifier type registered", "type", schema.Type, "label", schema.Label, "binary", p.name, "fields", len(schema.Fields))
		h.changed(schema.Type)
	}
	return nil
}

// OnTypeChange registers fn to be called, in its own goroutine, whenever a
// channel type gets a new provider: a plugin registered it for the first
// time, or a replaced binary (or another binary) took it over. The channel
// registry re-validates the channels of the type then.
func (h *Host) OnTypeChange(fn func(typ string)) {
	h.watchMu.Lock()
	h.onChange = append(h.onChange, fn)
	h.watchMu.Unlock()
}

func (h *Host) changed(typ string) {
	h.watchMu.Lock()
	fns := slices.Clone(h.onChange)
	h.watchMu.Unlock()
	for _, fn := range fns {
		go fn(typ)
	}
}

// journal records msg daemon-wide when a Journal is set.
func (h *Host) journal(msg string) {
	if h.opts.Journal != nil {
		h.opts.Journal.Journal("", msg)
	}
}

// unregister removes the types p provides, unless a newer generation has
// taken them over.
func (h *Host) unregister(p *proc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := p.getSchema().Type
	if t != "" && h.types[t] == p {
		delete(h.types, t)
		h.log.Info("notifier type unregistered", "type", t, "binary", p.name)
	}
	if h.procs[p.name] == p {
		delete(h.procs, p.name)
	}
}

// refuse records that p's binary is not run.
func (h *Host) refuse(p *proc, reason, conflict string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.procs[p.name] != p {
		return
	}
	delete(h.procs, p.name)
	h.refused[p.name] = &refusal{id: p.id, pin: p.pin, reason: reason, conflict: conflict}
	h.log.Error("notifier plugin refused", "binary", p.name, "reason", reason)
	h.journal(fmt.Sprintf("notifier plugin %s refused: %s", p.name, firstLine(reason)))
}

type conflictError struct{ typ, other string }

func (e *conflictError) Error() string {
	return fmt.Sprintf("type %q is already provided by %s", e.typ, e.other)
}

var errStopped = errors.New("plugin stopped")

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = strings.ToLower(v)
	}
	return out
}

// binPath returns the path of a binary name inside the plugins dir.
func (h *Host) binPath(name string) string { return filepath.Join(h.opts.Dir, name) }
