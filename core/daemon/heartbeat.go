package daemon

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/pipeline"
)

// startHeartbeats binds the UDP heartbeat sockets, tells the tracker which
// hosts to expect (with the families they used before a restart), and
// hands the tracker's changes and clock reports to the heartbeat queue,
// whose consumer (heartbeatPath) does the rest off the packet path.
func (d *Daemon) startHeartbeats() error {
	cfg := d.Config()
	d.hbPath = &heartbeatPath{ctx: d.svcCtx, store: d.Store, log: d.log}
	d.hbQueue = pipeline.New[heartbeatEvent]("heartbeats", heartbeatQueueLimit, d.hbPath)
	d.OnStart(d.hbQueue.Run)
	d.Tracker = heartbeat.NewTracker(heartbeat.TrackerConfig{
		Timeout:  func(host string) time.Duration { return d.Config().HostTimeout(host) },
		OnChange: d.heartbeatChanged,
		OnClock:  d.clockObserved,
	})
	book := heartbeat.NewBook(d.Tracker, d.Store, d.log.Named("heartbeat"))
	d.hbPath.book = book
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

// heartbeatChanged queues a tracker's state change for heartbeatPath. It
// runs on the packet path or the sweeper and never waits; the tracker
// calls it in order for each host.
func (d *Daemon) heartbeatChanged(ch heartbeat.Change) {
	d.hbQueue.Put(ch.Host, heartbeatEvent{change: ch})
}

// clockObserved queues a host's clock offset, from its heartbeats or a
// refused sample batch, for alerting (through heartbeatPath). It never
// waits.
func (d *Daemon) clockObserved(host string, offset time.Duration, refused bool, at time.Time) {
	d.hbQueue.Put(host, heartbeatEvent{clock: true, offset: offset, refused: refused, at: at})
}
