// Package agent is hbc, the program on each monitored host: it runs the
// configured plugins on their intervals, appends every valid sample to the
// on-disk spool and has the sender deliver the spool to the daemon.
// Heartbeats are sent by core/heartbeat, wired in by the hbc command.
//
// Lifecycle: LoadConfig, then New, then Run until its context ends. Run
// stops the plugins, makes one last delivery attempt and closes the spool;
// whatever could not be delivered is sent by the next Run.
package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/agent/collect"
	"github.com/hbdmon/hbd/core/agent/sender"
	"github.com/hbdmon/hbd/core/agent/spool"
	"github.com/hbdmon/hbd/core/protocol"
)

const (
	// primeDelay separates a plugin's first reading from the first sample
	// measured against it.
	primeDelay = time.Second
	// shutdownFlush bounds the last delivery attempt when Run stops.
	shutdownFlush = 5 * time.Second
	// maxRecordBytes keeps every sample deliverable in a batch of its own.
	maxRecordBytes = protocol.MaxBatchBytes - 64
)

// NewLogger returns the agent's logger, writing to w (hbc uses stderr) at
// the configured level and format.
func NewLogger(cfg Config, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "hbc",
		Level:      hclog.LevelFromString(cfg.LogLevel),
		JSONFormat: cfg.LogJSON,
		Output:     w,
	})
}

type scheduled struct {
	plugin   collect.Plugin
	interval time.Duration
	// timeout bounds one Collect: the interval for built-ins; exec plugins
	// enforce their own timeout (at most the interval once validated).
	timeout time.Duration
}

// Agent runs plugins and delivers their samples. Build it with New.
type Agent struct {
	cfg     Config
	log     hclog.Logger
	plugins []scheduled

	mu           sync.Mutex
	pluginErrors int64
	lastError    string
}

// pluginFailed counts a failed plugin run for the health sample.
func (a *Agent) pluginFailed(name string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pluginErrors++
	a.lastError = protocol.ClipAgentError(name + ": " + err.Error())
}

// Health returns the plugin side of the agent's health sample.
func (a *Agent) Health() sender.Health {
	a.mu.Lock()
	defer a.mu.Unlock()
	return sender.Health{PluginErrors: a.pluginErrors, LastPluginError: a.lastError}
}

// Units returns the units every plugin of the agent declares, and those of
// its health sample (protocol.AgentPlugin).
func (a *Agent) Units() protocol.Units {
	out := protocol.Units{protocol.AgentPlugin: protocol.AgentUnits}
	for _, s := range a.plugins {
		if u, ok := s.plugin.(collect.Uniter); ok && len(u.Units()) > 0 {
			out[s.plugin.Name()] = u.Units()
		}
	}
	return out
}

// New returns an agent for a Config from LoadConfig.
func New(cfg Config, logger hclog.Logger) *Agent {
	a := &Agent{cfg: cfg, log: logger}
	names := make([]string, 0, len(cfg.Plugins))
	for name, pc := range cfg.Plugins {
		if pc.Enabled && collect.Builtins[name] != nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		iv := cfg.Plugins[name].Interval
		a.plugins = append(a.plugins, scheduled{collect.Builtins[name](), iv, iv})
	}
	for _, e := range cfg.Exec {
		p := collect.NewExec(collect.ExecSpec{Name: e.Name, Command: e.Command, Timeout: e.Timeout, Units: e.UnitMap})
		a.plugins = append(a.plugins, scheduled{p, e.Interval, max(e.Interval, e.Timeout)})
	}
	return a
}

// Run collects and delivers samples until ctx ends, then stops every
// plugin, tries once more to deliver and closes the spool. It returns an
// error only if the spool cannot be opened.
func (a *Agent) Run(ctx context.Context) error {
	names := make([]string, 0, len(a.plugins))
	for _, s := range a.plugins {
		names = append(names, s.plugin.Name())
	}
	urls := a.cfg.DaemonURLs()
	a.log.Info("agent starting", "host", a.cfg.Host, "api_urls", urls, "plugins", names)
	if len(urls) == 0 {
		<-ctx.Done() // no plugins, nothing to deliver: heartbeats only
		return nil
	}

	sp, err := spool.Open(a.cfg.SpoolDir, spool.Options{
		MaxBytes: int64(a.cfg.SpoolMaxBytes),
		Logger:   a.log.Named("spool"),
	})
	if err != nil {
		return fmt.Errorf("open spool %s: %w", a.cfg.SpoolDir, err)
	}
	defer sp.Close()
	if st := sp.Stats(); st.Pending > 0 {
		a.log.Info("resuming from spool", "dir", a.cfg.SpoolDir, "pending_bytes", st.Pending)
	}
	opts := sender.Options{
		URLs:     urls,
		Host:     a.cfg.Host,
		Key:      a.cfg.Key.Bytes(),
		Interval: a.cfg.SendInterval,
		Logger:   a.log.Named("sender"),
		Health:   a.Health,
		Units:    a.Units(),
	}
	if a.cfg.CAFile != "" {
		pool, err := LoadCAs(a.cfg.CAFile)
		if err != nil {
			return fmt.Errorf("ca_file: %w", err)
		}
		opts.Client = &http.Client{Timeout: sender.DefaultTimeout, Transport: &http.Transport{
			Proxy:           http.ProxyFromEnvironment,
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		}}
	}
	snd := sender.New(sp, opts)

	var wg sync.WaitGroup
	for _, s := range a.plugins {
		wg.Go(func() { a.schedule(ctx, s, sp) })
	}
	wg.Go(func() { snd.Run(ctx) })
	wg.Wait()

	// ctx is done; the last attempt gets its own short deadline.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownFlush)
	defer cancel()
	if err := snd.Flush(fctx); err != nil {
		a.log.Info("stopping with samples still spooled; they are sent on the next start", "error", err)
	}
	a.log.Info("agent stopped", "pending_bytes", sp.Stats().Pending)
	return nil
}

// schedule runs one plugin every interval and spools its samples. Failures
// are logged when they start or change, so a broken plugin does not flood
// the log.
func (a *Agent) schedule(ctx context.Context, s scheduled, sp *spool.Spool) {
	log := a.log.With("plugin", s.plugin.Name())
	next := time.Duration(0)
	if pr, ok := s.plugin.(collect.Primer); ok {
		if err := pr.Prime(ctx); err != nil {
			log.Warn("first reading failed", "error", err)
		}
		next = min(primeDelay, s.interval)
	}
	t := time.NewTimer(next)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		err := a.spoolSample(ctx, s, sp)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && lastErr != "":
			log.Info("plugin recovered")
		case err != nil && err.Error() != lastErr:
			log.Warn("sample skipped", "error", err)
		case err != nil:
			log.Debug("sample skipped", "error", err)
		}
		lastErr = ""
		if err != nil {
			lastErr = err.Error()
			a.pluginFailed(s.plugin.Name(), err)
		}
		t.Reset(max(0, s.interval-time.Since(start)))
	}
}

func (a *Agent) spoolSample(ctx context.Context, s scheduled, sp *spool.Spool) error {
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	sample, err := collectSample(cctx, s.plugin)
	if err != nil {
		return err
	}
	rec, err := json.Marshal(sample)
	if err != nil {
		return fmt.Errorf("encode sample: %w", err)
	}
	if len(rec) > maxRecordBytes {
		return fmt.Errorf("sample of %d bytes is larger than a batch may be", len(rec))
	}
	if err := sp.Append(rec); err != nil {
		return fmt.Errorf("spool sample: %w", err)
	}
	return nil
}

// collectSample runs a plugin once and checks its data with the rules the
// daemon applies, so nothing invalid is ever queued.
func collectSample(ctx context.Context, p collect.Plugin) (protocol.Sample, error) {
	ts := time.Now()
	data, err := p.Collect(ctx)
	if err != nil {
		return protocol.Sample{}, err
	}
	if err := protocol.ValidatePlugin(p.Name()); err != nil {
		return protocol.Sample{}, err
	}
	if _, err := protocol.Flatten(data); err != nil {
		return protocol.Sample{}, err
	}
	return protocol.Sample{Plugin: p.Name(), Timestamp: float64(ts.UnixMilli()) / 1e3, Data: data}, nil
}

// Once runs every enabled plugin one time, as Run would (plugins that
// report rates get their first reading and a short pause first), and
// returns the data keyed by plugin name. Plugins that fail are logged and
// left out; the error then says how many failed.
func Once(ctx context.Context, cfg Config, logger hclog.Logger) (map[string]map[string]any, error) {
	a := New(cfg, logger)
	primed := false
	for _, s := range a.plugins {
		if pr, ok := s.plugin.(collect.Primer); ok {
			primed = true
			if err := pr.Prime(ctx); err != nil {
				logger.Warn("first reading failed", "plugin", s.plugin.Name(), "error", err)
			}
		}
	}
	if primed {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(primeDelay):
		}
	}

	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		out    = make(map[string]map[string]any, len(a.plugins))
		failed int
	)
	for _, s := range a.plugins {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, s.timeout)
			defer cancel()
			sample, err := collectSample(cctx, s.plugin)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				logger.Error("plugin failed", "plugin", s.plugin.Name(), "error", err)
				failed++
				return
			}
			out[sample.Plugin] = sample.Data
		})
	}
	wg.Wait()
	if failed > 0 {
		return out, fmt.Errorf("%d of %d plugins failed", failed, len(a.plugins))
	}
	return out, nil
}
