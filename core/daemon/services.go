package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/alert/record"
	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/pipeline"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/ws"
	"github.com/hbdmon/hbd/webui"
)

// startFeed builds the WebSocket hub, mounts it same-origin at /hbd and
// binds ws_port (and wss_port with TLS) for it.
func (d *Daemon) startFeed() error {
	cfg := d.Config()
	hub := ws.New(ws.Options{
		Authenticate: d.API.Authenticate,
		Policy:       d.Policy,
		Snapshot:     d.hostSnapshot,
		Limits:       func() (int, int) { c := d.Config(); return c.WSMaxClients, c.WSMaxPerUser }, // asked at each upgrade, so reloads apply
		Logger:       d.log.Named("ws"),
	})
	d.Hub = hub
	d.Auth.OnSessionsEnded(hub.Recheck)
	d.API.Echo.GET(ws.Path, echo.WrapHandler(hub))
	// The path of a sample to the feed: store (committed) -> liveFeed ->
	// feed queue -> publishSamples -> hub.OnSamples.
	d.feedQueue = pipeline.New[store.PluginSample]("feed", feedQueueLimit, &publishSamples{hub: hub})
	d.OnStart(d.feedQueue.Run)
	d.Store.Subscribe(liveFeed{hub: hub, q: d.feedQueue}.OnSamples)
	d.Store.SubscribeJournal(func(m store.Message) { hub.PublishMessage(m.Host, m) })
	d.hbPath.feed = &hostFrames{tracker: d.Tracker, hub: hub, watched: d.API.Watched}
	d.OnClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Shutdown(ctx)
	})
	if cfg.WSPort != 0 {
		if err := d.serveFeed("ws_port", cfg.WSPort, nil); err != nil {
			return err
		}
	}
	if cfg.WSSPort != 0 {
		cert, err := tls.LoadX509KeyPair(filepath.Join(cfg.CertPath, cfg.WSSPem), filepath.Join(cfg.CertPath, cfg.WSSKey))
		if err != nil {
			return fmt.Errorf("wss_pem/wss_key: %w", err)
		}
		if err := d.serveFeed("wss_port", cfg.WSSPort, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}); err != nil {
			return err
		}
	}
	d.Metrics.Add(hub.Metrics()...)
	return nil
}

func (d *Daemon) serveFeed(key string, port int, tlsCfg *tls.Config) error {
	addr := net.JoinHostPort(d.Config().HBDHost, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: listen %s: %w", key, addr, unwrapOp(err))
	}
	scheme := "ws"
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
		scheme = "wss"
	}
	d.feedAddrs = append(d.feedAddrs, scheme, ln.Addr().String())
	srv := &http.Server{Handler: d.Hub.PortHandler(), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	d.OnStart(func(ctx context.Context) {
		go func() {
			<-ctx.Done()
			srv.Close()
		}()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("websocket listener stopped", "port", key, "error", err)
		}
	})
	d.OnClose(func() { ln.Close() })
	return nil
}

func (d *Daemon) hostSnapshot() []ws.Host {
	hosts := d.Tracker.Hosts()
	out := make([]ws.Host, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, ws.HostFrom(h, d.API.Watched(h.Name)))
	}
	return out
}

// startAlerting starts the threshold evaluator: fed by the store's
// samples and the tracker's changes, publishing its events to the live feed
// and to the notification sink.
func (d *Daemon) startAlerting() error {
	// An alert event goes to the live feed, then to the dispatcher (or,
	// without notifications, to the journal).
	var notify alert.Sink = alert.JournalSink(d.Store)
	if d.Notify != nil {
		notify = d.Notify
	}
	ev, err := alert.New(d.Config(), d.Store, d.log.Named("alert"), d.Hub, notify)
	if err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	ev.MayManage = d.Policy
	// The path of a sample to alerting: store (committed) -> alertFeed ->
	// alert queue -> evaluateSamples -> ev.ObserveSamples.
	d.alertPath = &evaluateSamples{ev: ev}
	d.alertQueue = pipeline.New[record.Sample]("alerts", alertQueueLimit, d.alertPath, pipeline.Coalesce(samplePlugin))
	d.OnStart(d.alertQueue.Run)
	d.Store.FeedAlerts(alertFeed{q: d.alertQueue})
	if err := d.fenceAlerting(ev); err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	if err := ev.Start(d.svcCtx); err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	d.Alerts = ev
	d.hbPath.alerts = ev
	d.OnReload(func(c *config.Config) {
		if err := ev.Reload(c); err != nil {
			d.log.Error("alerting reload", "error", err)
		}
	})
	d.OnClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ev.Stop(ctx); err != nil {
			d.log.Error("stop alerting", "error", err)
		}
	})
	// The dispatcher (when notifications run) tells what became of each
	// episode's notifications.
	deliveries, _ := d.Notify.(api.DeliveryStatus)
	d.API.Add(d.API.AlertRoutes(ev, deliveries)...)
	d.Metrics.Add(ev.Metrics()...)
	return nil
}

// addPages mounts the embedded web UI.
func (d *Daemon) addPages() error {
	cfg := d.Config()
	routes, err := d.API.PageRoutes(webui.FS(), api.PageOptions{WSPort: cfg.WSPort, WSSPort: cfg.WSSPort})
	if err != nil {
		return fmt.Errorf("web ui: %w", err)
	}
	d.API.Add(routes...)
	return nil
}
