// Package daemon wires hbd together: it loads the config, opens the store,
// starts the listeners and the feature services, reloads on SIGHUP and shuts
// everything down in order on SIGTERM.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/alert/record"
	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth"
	"github.com/hbdmon/hbd/core/cluster"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/metrics"
	"github.com/hbdmon/hbd/core/pipeline"
	"github.com/hbdmon/hbd/core/pluginhost"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/ws"
)

// Version is the daemon's version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Daemon is a running hbd. Build it with New, then call Run.
type Daemon struct {
	path string
	cfg  atomic.Pointer[config.Config]
	log  hclog.Logger

	Store   *store.Store
	API     *api.Server
	Metrics *metrics.Registry
	Auth    *auth.Service
	Alerts  *alert.Evaluator
	Hub     *ws.Hub
	// Notify receives alert events for delivery; nil until the notifier
	// dispatcher is wired (events are then journaled).
	Notify     alert.Sink
	Plugins    *pluginhost.Host
	Tracker    *heartbeat.Tracker
	shared     *heartbeat.Shared // clustered: the tracker's shared liveness; nil otherwise
	Heartbeats *heartbeat.Server
	// Cluster is the leader election (cluster.go); nil unless
	// cluster.enabled: a single daemon always leads.
	Cluster *cluster.Node

	// Policy is the one access policy: auth changes its host access
	// lists, api, ws, alert and dispatch ask it.
	Policy *access.Policy

	hbKeys atomic.Pointer[heartbeat.KeyFunc]

	// The hand-off queues of the hot paths and their consumers (paths.go).
	hbQueue    *pipeline.Queue[heartbeatEvent]
	hbPath     *heartbeatPath
	alertQueue *pipeline.Queue[record.Sample]
	alertPath  *evaluateSamples
	feedQueue  *pipeline.Queue[store.PluginSample]

	httpLn  net.Listener
	httpSrv *http.Server
	tls     bool // hbd_port serves HTTPS
	// feedAddrs are "ws"/"wss" and the address of each separate live
	// feed listener, for the start-up log line.
	feedAddrs []any

	svcCtx       context.Context // lives until shutdown begins
	stopServices context.CancelFunc

	reloadMu  sync.Mutex
	onReload  []func(*config.Config)
	starters  []func(ctx context.Context)
	closers   []func()
	startedAt time.Time
}

// Options tune New; the zero value is what `hbd serve` uses.
type Options struct {
	Environ []string     // environment for HBD_ overrides; os.Environ when nil
	Logger  hclog.Logger // built from the config's log settings when nil
}

// New loads the config at path, opens the store and binds the listeners.
// Every error names what failed and where; nothing is started on error.
func New(ctx context.Context, path string, opts Options) (*Daemon, error) {
	cfg, err := config.Load(path, opts.Environ)
	if err != nil {
		return nil, err
	}
	// A file cut short must not start a protected daemon in open mode.
	if err := config.CheckAgainstState(cfg); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = hclog.New(&hclog.LoggerOptions{
			Name:       "hbd",
			Level:      hclog.LevelFromString(cfg.LogLevel),
			JSONFormat: cfg.LogJSON,
			Output:     os.Stderr,
		})
	}
	for _, w := range cfg.Warnings {
		log.Warn(w, "file", path)
	}
	applyMemoryLimit(cfg, log)
	d := &Daemon{path: path, log: log, startedAt: time.Now()}
	d.cfg.Store(cfg)
	d.svcCtx, d.stopServices = context.WithCancel(context.Background())
	fail := func(err error) (*Daemon, error) {
		d.stopServices()
		d.close()
		return nil, err
	}

	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return fail(err)
	}
	d.Store = st
	d.recordConfig(cfg)
	d.OnClose(func() {
		if err := st.Close(); err != nil {
			log.Error("close store", "error", err)
		}
	})

	addr := net.JoinHostPort(cfg.HBDHost, strconv.Itoa(cfg.HBDPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fail(fmt.Errorf("hbd_port: listen %s: %w", addr, unwrapOp(err)))
	}
	d.OnClose(func() { ln.Close() })
	if ln, err = d.serveTLS(ln, cfg); err != nil {
		return fail(err)
	}
	d.httpLn = ln

	d.Metrics = metrics.New()
	if err := d.startHeartbeats(); err != nil {
		return fail(err)
	}
	d.Policy = access.NewPolicy(d.Config, access.NewHosts(cfg))
	d.Auth, err = auth.New(ctx, auth.Options{Store: st, Config: cfg, Logger: log, Policy: d.Policy})
	if err != nil {
		return fail(fmt.Errorf("auth: %w", err))
	}
	d.OnReload(d.Auth.Reload)
	d.OnReload(func(c *config.Config) { st.SetRetention(c.Retention) })
	d.API = api.New(api.Deps{
		Config:      d.Config,
		Store:       st,
		HostKey:     d.hostKey,
		ClockOffset: d.clockObserved,
		Connections: api.TrackerSource{Tracker: d.Tracker},
		Policy:      d.Policy,
		Sessions:    d.Auth,
		Accounts:    d.Auth,
		ConfigFile:  configFile{d},
		Logger:      log,
	})
	if err := d.startCluster(); err != nil {
		return fail(err)
	}
	if err := d.startFeed(); err != nil {
		return fail(err)
	}
	if err := d.startNotify(ctx); err != nil {
		return fail(err)
	}
	if err := d.startAlerting(); err != nil {
		return fail(err)
	}
	if err := d.addPages(); err != nil {
		return fail(err)
	}
	d.Metrics.Add(pipeline.Metrics(d.hbQueue, d.alertQueue, d.feedQueue)...)
	d.Metrics.Add(d.Store.Metrics()...)
	d.Metrics.Add(d.API.Metrics()...)
	d.Metrics.Add(d.ownMetrics()...)
	d.API.Add(d.metricsRoute(d.Metrics))

	d.httpSrv = &http.Server{
		Handler:           d.API.Echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	return d, nil
}

func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// Config returns the configuration in force. Callers must not modify it.
func (d *Daemon) Config() *config.Config { return d.cfg.Load() }

// Logger returns the daemon's logger.
func (d *Daemon) Logger() hclog.Logger { return d.log }

// HTTPAddr returns the address the HTTP API listens on.
func (d *Daemon) HTTPAddr() net.Addr { return d.httpLn.Addr() }

// OnReload registers fn to receive every new config after a successful
// SIGHUP reload, in registration order.
func (d *Daemon) OnReload(fn func(*config.Config)) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.onReload = append(d.onReload, fn)
}

// OnStart registers fn to run in its own goroutine when Run starts; ctx
// ends at shutdown, before the OnClose functions run.
func (d *Daemon) OnStart(fn func(ctx context.Context)) {
	d.starters = append(d.starters, fn)
}

// OnClose registers fn to run at shutdown, before the store closes; the
// last registered runs first.
func (d *Daemon) OnClose(fn func()) {
	d.closers = append(d.closers, fn)
}

// hostKey returns the signing key of a host for sample batches: the same
// lookup the heartbeat server uses.
func (d *Daemon) hostKey(host string) ([]byte, bool, bool) {
	return d.keys()(host)
}

// Reload reads the config file again and, when it is valid, swaps it in
// and tells the services. A bad file keeps the running config; the error
// is logged, journaled and returned.
func (d *Daemon) Reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	raw, err := config.ReadFile(d.path)
	var cfg *config.Config
	if err == nil {
		cfg, err = d.CheckConfig(raw)
	}
	if err != nil {
		d.log.Error("config reload failed; keeping the running config", "error", err)
		d.Store.Journal("", "config reload failed: "+err.Error())
		return err
	}
	d.cfg.Store(cfg)
	d.recordConfig(cfg)
	applyMemoryLimit(cfg, d.log)
	for _, w := range cfg.Warnings {
		d.log.Warn(w, "file", d.path)
	}
	for _, fn := range d.onReload {
		fn(cfg)
	}
	d.log.Info("config reloaded", "file", d.path)
	d.Store.Journal("", "config reloaded")
	return nil
}

// CheckConfig checks a new content of the config file as Reload does
// (config.Validate against the config in force) without applying it: the
// admin config editor's check.
func (d *Daemon) CheckConfig(raw []byte) (*config.Config, error) {
	return config.Validate(d.Config().Summary(), d.path, raw, nil)
}

// ConfigPath returns the path of the config file the daemon reads.
func (d *Daemon) ConfigPath() string { return d.path }

// configFile is the daemon as the admin config editor's file
// (api.ConfigFile).
type configFile struct{ *Daemon }

func (f configFile) JournalSync(ctx context.Context, host, msg string) error {
	return f.Store.JournalSync(ctx, host, msg)
}

var _ api.ConfigFile = configFile{}

// recordConfig writes the summary of the applied config into data_dir, for
// the transition check of the next start and of `hbd check-config`.
func (d *Daemon) recordConfig(cfg *config.Config) {
	if err := config.WriteState(cfg.DataDir, cfg.Summary()); err != nil {
		d.log.Warn("cannot record the config state", "data_dir", cfg.DataDir, "error", err)
	}
}

// Run serves until ctx ends or SIGTERM/SIGINT arrives, reloading on SIGHUP,
// then shuts down cleanly and returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	cfg := d.Config()
	if cfg.OpenMode() {
		d.log.Warn("NO USERS CONFIGURED: running in OPEN MODE, every endpoint is reachable without authentication")
	}
	scheme := "http"
	if d.tls {
		scheme = "https"
	}
	args := []any{"version", Version, scheme, d.httpLn.Addr().String()}
	args = append(args, d.feedAddrs...)
	for _, f := range []heartbeat.Family{heartbeat.IPv4, heartbeat.IPv6} {
		if a := d.Heartbeats.Addr(f); a.IsValid() {
			args = append(args, "heartbeat_"+string(f), "udp "+a.String())
		}
	}
	d.log.Info("hbd started", append(args, "data_dir", cfg.DataDir)...)
	d.Store.Journal("", "hbd started")
	defer d.writePID(cfg.DataDir)()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	var svcWG sync.WaitGroup
	for _, fn := range d.starters {
		svcWG.Add(1)
		go func() {
			defer svcWG.Done()
			fn(d.svcCtx)
		}()
	}

	errc := make(chan error, 1)
	go func() {
		if err := d.httpSrv.Serve(d.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-errc:
			runErr = fmt.Errorf("http server: %w", err)
			break loop
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				d.Reload()
				// The plugins directory is rescanned even when the file is
				// bad: dropping in a binary should not need a valid config.
				// Starting new plugins can take seconds: do not hold up a
				// SIGTERM behind it.
				go d.Plugins.Rescan()
				continue
			}
			d.log.Info("shutting down", "signal", sig.String())
			break loop
		}
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.httpSrv.Shutdown(shutCtx); err != nil {
		d.log.Warn("http shutdown", "error", err)
	}
	d.stopServices()
	svcWG.Wait()
	d.Store.Journal("", "hbd stopped")
	d.close()
	d.log.Info("hbd stopped")
	return runErr
}

// Close releases a daemon that was built with New but will not Run.
func (d *Daemon) Close() {
	d.stopServices()
	d.close()
}

func (d *Daemon) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}
