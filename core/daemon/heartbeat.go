package daemon

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
)

// startHeartbeats binds the UDP heartbeat sockets, tells the tracker which
// hosts to expect (with the families they used before a restart), and wires
// the tracker's changes to the log, the journal and every observer
// registered with OnHeartbeatChange, and its clock reports to alerting.
func (d *Daemon) startHeartbeats() error {
	cfg := d.Config()
	var book *heartbeat.Book
	d.Tracker = heartbeat.NewTracker(heartbeat.TrackerConfig{
		Timeout: func(host string) time.Duration { return d.Config().HostTimeout(host) },
		OnChange: func(ch heartbeat.Change) {
			d.heartbeatChanged(ch)
			book.Changed(ch)
		},
		OnClock: d.clockObserved,
	})
	book = heartbeat.NewBook(d.Tracker, d.Store, d.log.Named("heartbeat"))
	if err := d.expectHosts(cfg, d.startedAt, book); err != nil {
		return err
	}
	addr := func(host string) string {
		if host == "" {
			return ""
		}
		return net.JoinHostPort(host, strconv.Itoa(cfg.HBPort))
	}
	srv, err := heartbeat.NewServer(heartbeat.ServerConfig{
		Addr4:   addr(cfg.HBListen4),
		Addr6:   addr(cfg.HBListen6),
		Keys:    d.keys(),
		Tracker: d.Tracker,
		Logger:  d.log.Named("heartbeat"),
	})
	if err != nil {
		return fmt.Errorf("hb_port: %w", err)
	}
	d.Heartbeats = srv
	d.OnStart(func(ctx context.Context) { d.Tracker.Run(ctx) })
	d.OnStart(func(ctx context.Context) {
		if err := srv.Serve(ctx); err != nil && err != heartbeat.ErrServerClosed {
			d.log.Error("heartbeat server stopped", "error", err)
		}
	})
	d.OnStart(book.Run)
	d.OnClose(func() { srv.Close() })
	// Registered after the store's closer, so it runs before the store
	// closes: the last heartbeat times are written once more.
	d.OnClose(book.Flush)
	d.OnReload(func(c *config.Config) {
		kf := d.keysFor(c)
		d.hbKeys.Store(&kf)
		srv.SetKeys(kf)
		// Hosts removed from watchhosts stop being tracked (and shown DOWN),
		// and their families are forgotten.
		var gone []string
		for _, h := range d.Tracker.Hosts() {
			if _, ok := c.Watchhosts[h.Name]; !ok && !h.Dynamic {
				d.Tracker.Forget(h.Name)
				gone = append(gone, h.Name)
			}
		}
		book.Forget(gone)
		// Hosts added are expected from now on; those already expected
		// keep waiting from when they were first expected.
		if err := d.expectHosts(c, time.Now(), book); err != nil {
			d.log.Error("reload: expected hosts", "error", err)
		}
	})
	d.Metrics.Add(d.Heartbeats.Metrics()...)
	d.Metrics.Add(d.Tracker.Metrics()...)
	return nil
}

// expectHosts tells the tracker to expect every watched host, from from
// unless it is expected already: each configured host, and each dynamic
// host the store knows when watch_dynamic is on (when it is off, dynamic
// hosts not heard from since the start stop being awaited).
func (d *Daemon) expectHosts(cfg *config.Config, from time.Time, book *heartbeat.Book) error {
	ctx, cancel := context.WithTimeout(d.svcCtx, 30*time.Second)
	defer cancel()
	persisted, err := book.Load(ctx)
	if err != nil {
		return fmt.Errorf("heartbeats: %w", err)
	}
	expect := func(name string, dynamic bool) {
		x := heartbeat.Expectation{Host: name, Dynamic: dynamic, From: from}
		if r, ok := persisted[name]; ok {
			x = heartbeat.ExpectationOf(r, from, dynamic)
		}
		d.Tracker.Expect(x)
	}
	for name := range cfg.Watchhosts {
		expect(name, false)
	}
	for _, h := range d.Store.Hosts() {
		if _, configured := cfg.Watchhosts[h.Name]; configured || !h.Dyn {
			continue
		}
		if cfg.WatchDynamic {
			expect(h.Name, true)
		} else {
			d.Tracker.Unexpect(h.Name)
		}
	}
	return nil
}

func (d *Daemon) keys() heartbeat.KeyFunc {
	if k := d.hbKeys.Load(); k != nil {
		return *k
	}
	kf := d.keysFor(d.Config())
	d.hbKeys.Store(&kf)
	return kf
}

// OnHeartbeatChange registers fn to receive every heartbeat state change.
// It runs on the packet path: fn must return quickly.
func (d *Daemon) OnHeartbeatChange(fn func(heartbeat.Change)) {
	d.hbObservers = append(d.hbObservers, fn)
}

func (d *Daemon) heartbeatChanged(ch heartbeat.Change) {
	if ch.Dynamic && ch.From == "" {
		// Recorded before the observers run, so alerting already knows the
		// host is dynamic. It costs one committed write per new host.
		ctx, cancel := context.WithTimeout(d.svcCtx, 10*time.Second)
		_, err := d.Store.EnsureHost(ctx, ch.Host, true)
		cancel()
		if err != nil {
			d.log.Error("record dynamic host", "host", ch.Host, "error", err)
		}
	}
	heartbeat.LogChange(d.log, ch)
	d.Store.Journal(ch.Host, ch.JournalLine())
	for _, fn := range d.hbObservers {
		fn(ch)
	}
}

// clockObserved passes a host's clock offset, from its heartbeats or a
// refused sample batch, to alerting. The heartbeat server and the HTTP API
// start serving in Run, after New has set d.Alerts, so the field needs no
// lock; the nil check covers a daemon built without alerting.
func (d *Daemon) clockObserved(host string, offset time.Duration, refused bool, at time.Time) {
	if d.Alerts != nil {
		d.Alerts.ObserveClockOffset(host, offset, refused, at)
	}
}
