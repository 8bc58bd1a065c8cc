package daemon

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/metrics"
)

// keysFor builds the heartbeat and ingestion key lookup of a config:
// watched hosts sign with their key, other hosts with the key derived from
// enroll_key (when set) and are dynamic.
func keysFor(cfg *config.Config) heartbeat.KeyFunc {
	hosts := make(map[string][]byte, len(cfg.Watchhosts))
	for name, h := range cfg.Watchhosts {
		hosts[name] = []byte(h.Key)
	}
	var enroll []byte
	if cfg.EnrollKey != "" {
		enroll = []byte(cfg.EnrollKey)
	}
	return heartbeat.KeysFrom(hosts, enroll)
}

// startHeartbeats binds the UDP heartbeat sockets and wires the tracker's
// changes to the journal and to every observer registered with
// OnHeartbeatChange.
func (d *Daemon) startHeartbeats() error {
	cfg := d.Config()
	d.Tracker = heartbeat.NewTracker(heartbeat.TrackerConfig{
		Timeout:  func(host string) time.Duration { return d.Config().HostTimeout(host) },
		OnChange: d.heartbeatChanged,
	})
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
	d.OnClose(func() { srv.Close() })
	d.OnReload(func(c *config.Config) {
		kf := keysFor(c)
		d.hbKeys.Store(&kf)
		srv.SetKeys(kf)
		// Hosts removed from watchhosts stop being tracked (and shown DOWN).
		for _, h := range d.Tracker.Hosts() {
			if _, ok := c.Watchhosts[h.Name]; !ok && !h.Dynamic {
				d.Tracker.Forget(h.Name)
			}
		}
	})
	d.Metrics.Add(d.heartbeatFamilies()...)
	return nil
}

func (d *Daemon) keys() heartbeat.KeyFunc {
	if k := d.hbKeys.Load(); k != nil {
		return *k
	}
	kf := keysFor(d.Config())
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
		isNew, err := d.Store.EnsureHost(ctx, ch.Host, true)
		cancel()
		if err != nil {
			d.log.Error("record dynamic host", "host", ch.Host, "error", err)
		} else if isNew {
			d.Store.Journal(ch.Host, ch.Host+" registered (dynamic)")
		}
	}
	if ch.Family == "" {
		d.Store.Journal(ch.Host, fmt.Sprintf("%s %s", ch.Host, ch.To))
	} else {
		d.Store.Journal(ch.Host, fmt.Sprintf("%s %s %s", ch.Host, ch.Family, ch.To))
	}
	for _, fn := range d.hbObservers {
		fn(ch)
	}
}

// HostConnections implements api.ConnectionSource from the tracker.
func (d *Daemon) HostConnections(host string) (string, any) {
	st, ok := d.Tracker.Snapshot(host)
	if !ok {
		return "", nil
	}
	return string(st.State), st.Connections
}

func (d *Daemon) heartbeatFamilies() []metrics.Family {
	return []metrics.Family{
		{Name: "hbd_heartbeats_received_total", Help: "Heartbeat datagrams received.", Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(d.Heartbeats.Stats().Received)) }},
		{Name: "hbd_heartbeats_accepted_total", Help: "Heartbeats verified and applied.", Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(d.Heartbeats.Stats().Accepted)) }},
		{Name: "hbd_heartbeats_acked_total", Help: "Heartbeat acks sent.", Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(d.Heartbeats.Stats().Acked)) }},
		{Name: "hbd_heartbeats_dropped_total", Help: "Heartbeats dropped, by reason.", Counter: true, Labels: []string{"reason"},
			Collect: func(emit func(float64, ...string)) {
				for r, n := range d.Heartbeats.Stats().Dropped {
					emit(float64(n), string(r))
				}
			}},
		{Name: "hbd_host_up", Help: "1 when the host's heartbeat state is UP, 0.5 DEGRADED, 0 DOWN.", Labels: []string{"host"},
			Collect: func(emit func(float64, ...string)) {
				for _, h := range d.Tracker.Hosts() {
					v := 0.0
					switch h.State {
					case heartbeat.StateUp:
						v = 1
					case heartbeat.StateDegraded:
						v = 0.5
					}
					emit(v, h.Name)
				}
			}},
		{Name: "hbd_connection_latency_seconds", Help: "Smoothed heartbeat round-trip time per address family.", Labels: []string{"host", "family"},
			Collect: func(emit func(float64, ...string)) {
				for _, h := range d.Tracker.Hosts() {
					for _, c := range h.Connections {
						emit(c.LatencyAvgMS/1000, h.Name, string(c.Family))
					}
				}
			}},
	}
}
