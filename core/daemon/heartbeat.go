package daemon

import (
	"context"
	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/store"
)

// persistEvery is how often at most a host's heartbeat record (families
// and last seen) is written while it keeps sending; a new family is written
// at once, and everything once more at shutdown.
const persistEvery = 30 * time.Second

// startHeartbeats binds the UDP heartbeat sockets, tells the tracker which
// hosts to expect (with the families they used before a restart), and wires
// the tracker's changes to the log, the journal and every observer
// registered with OnHeartbeatChange, and its clock reports to alerting.
func (d *Daemon) startHeartbeats() error {
	cfg := d.Config()
	book := &heartbeatBook{st: d.Store, log: d.log.Named("heartbeat"), nudge: make(chan struct{}, 1), saved: map[string]store.HostHeartbeat{}}
	d.Tracker = heartbeat.NewTracker(heartbeat.TrackerConfig{
		Timeout: func(host string) time.Duration { return d.Config().HostTimeout(host) },
		OnChange: func(ch heartbeat.Change) {
			d.heartbeatChanged(ch)
			book.changed(ch)
		},
		OnClock: d.clockObserved,
	})
	book.tr = d.Tracker
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
	d.OnStart(book.run)
	d.OnClose(func() { srv.Close() })
	// Registered after the store's closer, so it runs before the store
	// closes: the last heartbeat times are written once more.
	d.OnClose(book.flush)
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
		book.forget(gone)
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
func (d *Daemon) expectHosts(cfg *config.Config, from time.Time, book *heartbeatBook) error {
	ctx, cancel := context.WithTimeout(d.svcCtx, 30*time.Second)
	defer cancel()
	records, err := d.Store.HostHeartbeats(ctx)
	if err != nil {
		return fmt.Errorf("heartbeats: %w", err)
	}
	persisted := make(map[string]store.HostHeartbeat, len(records))
	for _, r := range records {
		persisted[r.Host] = r
	}
	book.remember(persisted)
	expect := func(name string, dynamic bool) {
		x := heartbeat.Expectation{Host: name, Dynamic: dynamic, From: from}
		if r, ok := persisted[name]; ok {
			x.LastSeen = make(map[heartbeat.Family]time.Time, len(r.Families))
			for f, ts := range r.Families {
				x.LastSeen[heartbeat.Family(f)] = fromUnix(ts)
			}
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

func fromUnix(ts float64) time.Time {
	if ts <= 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(ts*1e9))
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
	logHeartbeatChange(d.log, ch)
	d.Store.Journal(ch.Host, journalLine(ch))
	for _, fn := range d.hbObservers {
		fn(ch)
	}
}

// journalLine is a heartbeat change as the journal shows it, e.g.
// "web01 ipv6 DOWN" or "web01 DOWN: never heard from".
func journalLine(ch heartbeat.Change) string {
	var b strings.Builder
	b.WriteString(ch.Host)
	if ch.Family != "" {
		b.WriteString(" " + string(ch.Family))
	}
	b.WriteString(" " + string(ch.To))
	switch {
	case ch.Reason != "":
		b.WriteString(": " + ch.Reason)
	case ch.To == heartbeat.StateDown && ch.LastSeen.IsZero():
		b.WriteString(": never heard from")
	}
	return b.String()
}

// logHeartbeatChange writes a heartbeat state change to the daemon's log:
// UP and LATE at info, DOWN and DEGRADED at warn, with the host, the family
// (connection changes), when it was last heard from, and the reason when
// one is known.
func logHeartbeatChange(log hclog.Logger, ch heartbeat.Change) {
	args := []any{"host", ch.Host}
	msg := "host " + string(ch.To)
	if ch.Family != "" {
		msg = "heartbeat connection " + string(ch.To)
		args = append(args, "family", ch.Family)
		if ch.Addr.IsValid() {
			args = append(args, "address", ch.Addr.String())
		}
	} else if len(ch.Families) > 0 {
		fams := make([]string, len(ch.Families))
		for i, f := range ch.Families {
			fams[i] = string(f)
		}
		args = append(args, "families", strings.Join(fams, ","))
	}
	if ch.LastSeen.IsZero() {
		args = append(args, "last_seen", "never")
	} else {
		args = append(args, "last_seen", ch.LastSeen.UTC().Format(time.RFC3339))
		if ch.To != heartbeat.StateUp {
			args = append(args, "silent_for", ch.Time.Sub(ch.LastSeen).Round(time.Second).String())
		}
	}
	if ch.Reason != "" {
		args = append(args, "reason", ch.Reason)
	}
	switch ch.To {
	case heartbeat.StateDown, heartbeat.StateDegraded:
		log.Warn(msg, args...)
	default:
		log.Info(msg, args...)
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

// heartbeatBook persists what the tracker knows of each host's families
// (store.HostHeartbeat): a host's record at most every persistEvery while
// only its times move, at once when it starts using a family, and all of
// them once more at shutdown. Writes are queued to the store's writer; the
// packet path only ever does a non-blocking send on nudge.
type heartbeatBook struct {
	tr    *heartbeat.Tracker
	st    *store.Store
	log   hclog.Logger
	nudge chan struct{}

	mu    sync.Mutex
	saved map[string]store.HostHeartbeat // what the store holds
}

// remember records what the store holds, as read at start or reload.
func (b *heartbeatBook) remember(records map[string]store.HostHeartbeat) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for h, r := range records {
		b.saved[h] = r
	}
}

// changed is an OnChange observer: a family used for the first time since
// the start gets written at once.
func (b *heartbeatBook) changed(ch heartbeat.Change) {
	if ch.Family != "" && ch.From == "" && ch.To == heartbeat.StateUp {
		select {
		case b.nudge <- struct{}{}:
		default:
		}
	}
}

// run writes changed records every persistEvery and when nudged, until
// ctx ends.
func (b *heartbeatBook) run(ctx context.Context) {
	tick := time.NewTicker(persistEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			b.save(false)
		case <-b.nudge:
			b.save(true)
		}
	}
}

// flush writes every changed record.
func (b *heartbeatBook) flush() { b.save(false) }

// save queues the records that changed since they were last written; with
// newFamiliesOnly, only those whose set of families changed, so a nudge
// does not write every host's times.
func (b *heartbeatBook) save(newFamiliesOnly bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []store.HostHeartbeat
	for _, hs := range b.tr.Seen() {
		r := store.HostHeartbeat{Host: hs.Host, Families: make(map[string]float64, len(hs.LastSeen))}
		for f, at := range hs.LastSeen {
			if !at.IsZero() {
				r.Families[string(f)] = float64(at.UnixNano()) / 1e9
			} else {
				r.Families[string(f)] = 0
			}
		}
		old, ok := b.saved[hs.Host]
		if ok && maps.Equal(old.Families, r.Families) {
			continue
		}
		if newFamiliesOnly && ok && sameKeys(old.Families, r.Families) {
			continue
		}
		out = append(out, r)
		b.saved[hs.Host] = r
	}
	if len(out) > 0 {
		b.st.SaveHostHeartbeats(out)
		b.log.Debug("heartbeat records saved", "hosts", len(out))
	}
}

func sameKeys(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// forget drops the records of hosts removed from the configuration.
func (b *heartbeatBook) forget(hosts []string) {
	if len(hosts) == 0 {
		return
	}
	b.mu.Lock()
	for _, h := range hosts {
		delete(b.saved, h)
	}
	b.mu.Unlock()
	b.st.DeleteHostHeartbeats(hosts...)
}
