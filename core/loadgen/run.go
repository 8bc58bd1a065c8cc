// Package loadgen is the load generator behind hbd-load: a simulated fleet
// of agents (heartbeats over IPv4 and IPv6, signed sample batches with the
// four built-in plugin shapes), readers on the main read endpoints and
// live feed clients, run against a daemon that is already running, in
// named phases. It measures what the clients see (rates, latencies,
// answers by status, drops) and what the daemon spends (CPU and RSS from
// /proc, counters from /metrics).
//
// The phases, in the order given (Config.Phases):
//
//	seed       one heartbeat per host and family, then one batch of the four
//	           plugins per host: the fleet exists, with 4 series per host
//	heartbeat  heartbeats only, at HBRate (0: as fast as acks come back)
//	ingest     batches at IngestRate samples/s, heartbeats at the fleet rate
//	read       readers on the three read endpoints, batches at
//	           BackgroundRate, heartbeats at the fleet rate
//	ws         WSClients live feed clients (WSStalled of them stop reading
//	           halfway), batches at BackgroundRate, heartbeats at the fleet
//	           rate
//
// The fleet rate is one heartbeat per host and family every 5 s (hbc's
// default interval).
package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Phase names.
const (
	PhaseSeed      = "seed"
	PhaseHeartbeat = "heartbeat"
	PhaseIngest    = "ingest"
	PhaseRead      = "read"
	PhaseWS        = "ws"
)

// AllPhases is every phase in its usual order.
var AllPhases = []string{PhaseSeed, PhaseHeartbeat, PhaseIngest, PhaseRead, PhaseWS}

// Config is one load run. Hosts, Prefix, Duration, HBSockets, HBWindow,
// IngestConns and Batch left zero take Defaults' values; any other zero
// field means none of that load (for a rate: as fast as answers come back).
type Config struct {
	// URL is the daemon's HTTP base URL (http://127.0.0.1:50004).
	URL string
	// WSURL is the live feed (default: URL's host, path /hbd).
	WSURL string
	// HB4 and HB6 are the heartbeat addresses (host:port); empty: that
	// family is not used.
	HB4, HB6 string
	// Token is sent as a bearer token on reads, /metrics and the feed
	// (empty in open mode).
	Token string
	// EnrollKey is the daemon's enroll_key; the hosts' keys derive from it.
	EnrollKey []byte
	// Hosts is the fleet size; Prefix starts every host name; every
	// NonOKEvery-th host reports a cpu_percent of 97 (0: none).
	Hosts      int
	Prefix     string
	NonOKEvery int

	Phases   []string
	Duration time.Duration // of each timed phase

	HBSockets int     // sockets per family
	HBWindow  int     // unacknowledged heartbeats per socket
	HBRate    float64 // heartbeat phase, per second (0: as fast as acks allow)

	IngestConns    int
	Batch          int     // samples per batch
	IngestRate     float64 // ingest phase, samples per second (0: closed loop)
	BackgroundRate float64 // read and ws phases, samples per second

	PluginReaders, SampleReaders, AlertReaders int
	AlertsQuery                                string // e.g. "?limit=100"

	WSClients, WSStalled int
	// WSSources spreads the feed clients over this many loopback source
	// addresses (127.0.0.2 ...) when the daemon is on 127.0.0.1, so caps
	// per remote address (open mode) do not refuse them. 0: one address.
	WSSources int
	// WSPlain makes the feed clients take one frame per message, as old
	// clients do; by default they ask for multi-message frames
	// (?batch=1) like the web UI.
	WSPlain bool

	// PID is the daemon's process, sampled from /proc (0: not sampled).
	PID int
	// Log receives progress lines (nil: none).
	Log io.Writer
}

// Defaults returns the built-in defaults: 1,000 hosts, 60 s phases.
func Defaults() Config {
	return Config{
		Hosts: 1000, Prefix: "load", NonOKEvery: 5, Phases: AllPhases, Duration: time.Minute,
		HBSockets: 2, HBWindow: 64,
		IngestConns: 16, Batch: 20, IngestRate: 50000, BackgroundRate: 10000,
		PluginReaders: 64, SampleReaders: 64, AlertReaders: 8, AlertsQuery: "?limit=100",
		WSClients: 1000, WSStalled: 5, WSSources: 125,
	}
}

// Phase is the figures of one phase.
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	// Heartbeats, Ingest, Reads and WS are what the clients saw; each is
	// absent when the phase did not run that load.
	Heartbeats *HBFigures          `json:"heartbeats,omitempty"`
	Ingest     *IngestFigures      `json:"ingest,omitempty"`
	Reads      map[string]Endpoint `json:"reads,omitempty"`
	WS         *WSFigures          `json:"ws,omitempty"`
	// Daemon is its CPU and memory over the phase (from /proc).
	Daemon *ProcFigures `json:"daemon,omitempty"`
	// DaemonMetrics are the daemon's own hbd_* series: the increase of
	// every counter over the phase, the end value of every gauge.
	DaemonMetrics map[string]float64 `json:"daemon_metrics,omitempty"`
	// Notes say what could not be measured.
	Notes []string `json:"notes,omitempty"`
}

// Report is a whole run.
type Report struct {
	Started  time.Time `json:"started"`
	URL      string    `json:"url"`
	Hosts    int       `json:"hosts"`
	Families []string  `json:"families"`
	Duration string    `json:"phase_duration"`
	Phases   []Phase   `json:"phases"`
}

func (c *Config) fill() error {
	d := Defaults()
	if c.URL == "" {
		return fmt.Errorf("the daemon's URL is required")
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("URL %q: want http://host:port", c.URL)
	}
	c.URL = strings.TrimSuffix(c.URL, "/")
	if c.WSURL == "" {
		scheme := "ws"
		if u.Scheme == "https" {
			scheme = "wss"
		}
		c.WSURL = scheme + "://" + u.Host + "/hbd"
		if !c.WSPlain {
			c.WSURL += "?batch=1"
		}
	}
	if len(c.EnrollKey) == 0 {
		return fmt.Errorf("the daemon's enroll_key is required (the hosts' keys derive from it)")
	}
	if c.HB4 == "" && c.HB6 == "" && slices.ContainsFunc(c.Phases, func(p string) bool { return p != PhaseSeed }) {
		return fmt.Errorf("at least one heartbeat address is required")
	}
	for _, p := range c.Phases {
		if !slices.Contains(AllPhases, p) {
			return fmt.Errorf("unknown phase %q (phases: %s)", p, strings.Join(AllPhases, ", "))
		}
	}
	if c.Hosts <= 0 {
		c.Hosts = d.Hosts
	}
	if c.Prefix == "" {
		c.Prefix = d.Prefix
	}
	if c.Duration <= 0 {
		c.Duration = d.Duration
	}
	if c.HBSockets <= 0 {
		c.HBSockets = d.HBSockets
	}
	if c.HBWindow <= 0 {
		c.HBWindow = d.HBWindow
	}
	if c.IngestConns <= 0 {
		c.IngestConns = d.IngestConns
	}
	if c.Batch <= 0 {
		c.Batch = d.Batch
	}
	c.WSStalled = min(c.WSStalled, c.WSClients)
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

// Run runs the phases of cfg against the daemon and returns their figures.
// It stops early, with the phases done so far, when ctx ends.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	hosts := newFleet(cfg.Prefix, cfg.Hosts, cfg.EnrollKey, cfg.NonOKEvery)
	hb, err := newHBLoad(hosts, cfg.HB4, cfg.HB6, cfg.HBSockets, cfg.HBWindow)
	if err != nil {
		return nil, err
	}
	defer hb.close()
	rep := &Report{Started: time.Now().UTC(), URL: cfg.URL, Hosts: cfg.Hosts, Duration: cfg.Duration.String()}
	if cfg.HB4 != "" {
		rep.Families = append(rep.Families, "ipv4")
	}
	if cfg.HB6 != "" {
		rep.Families = append(rep.Families, "ipv6")
	}
	r := &runner{cfg: cfg, hosts: hosts, hb: hb, ingest: newHTTPClient(cfg.IngestConns), meta: newHTTPClient(2)}
	// The fleet rate: one heartbeat per host and family per interval.
	r.fleetRate = float64(cfg.Hosts*len(rep.Families)) / hbInterval.Seconds()
	for _, name := range cfg.Phases {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(cfg.Log, "hbd-load: phase %s ...\n", name)
		p := r.phase(ctx, name)
		rep.Phases = append(rep.Phases, p)
	}
	return rep, nil
}

type runner struct {
	cfg       Config
	hosts     []fleetHost
	hb        *hbLoad
	ingest    *http.Client
	meta      *http.Client
	seq       uint64Counter
	fleetRate float64
}

func (r *runner) phase(ctx context.Context, name string) Phase {
	cfg := r.cfg
	p := Phase{Name: name}
	before, err := ScrapeMetrics(ctx, r.meta, cfg.URL, cfg.Token)
	if err != nil {
		p.Notes = append(p.Notes, "no /metrics before the phase: "+err.Error())
	}
	watch := watchProc(cfg.PID, 250*time.Millisecond)
	start := time.Now()
	mark := r.hb.mark()

	if name == PhaseSeed {
		r.hb.start(ctx, 0, true)()
		// The fleet keeps beating while its first batches go in, so no
		// host falls silent (and alerts) during a long seed.
		bctx, cancel := context.WithCancel(ctx)
		waitHB := r.hb.start(bctx, r.fleetRate, false)
		in := runIngest(ctx, r.ingest, cfg.URL, r.hosts, cfg.IngestConns, len(plugins), 0, &r.seq, true)
		cancel()
		waitHB()
		time.Sleep(200 * time.Millisecond) // the last acks
		f := r.hb.figures(mark, time.Since(start).Seconds())
		p.Heartbeats = &f
		p.Ingest = &in
	} else {
		pctx, cancel := context.WithTimeout(ctx, cfg.Duration)
		hbRate := r.fleetRate
		if name == PhaseHeartbeat {
			hbRate = cfg.HBRate
		}
		waitHB := r.hb.start(pctx, hbRate, false)
		ingestRate := cfg.BackgroundRate
		if name == PhaseIngest {
			ingestRate = cfg.IngestRate
		}
		done := make(chan struct{})
		var in IngestFigures
		if name != PhaseHeartbeat && (ingestRate > 0 || name == PhaseIngest) {
			go func() {
				defer close(done)
				in = runIngest(pctx, r.ingest, cfg.URL, r.hosts, cfg.IngestConns, cfg.Batch, ingestRate, &r.seq, false)
			}()
		} else {
			close(done)
		}
		switch name {
		case PhaseRead:
			p.Reads = runReaders(pctx, cfg.URL, cfg.Token, r.hosts,
				readEndpoints(cfg.PluginReaders, cfg.SampleReaders, cfg.AlertReaders, cfg.AlertsQuery))
		case PhaseWS:
			stallAt := start.Add(cfg.Duration / 2)
			resumeAt := start.Add(max(cfg.Duration/2, cfg.Duration-StalledResumeWait))
			ws := runWS(pctx, cfg.WSURL, cfg.Token, cfg.WSClients, cfg.WSStalled, cfg.WSSources, stallAt, resumeAt)
			p.WS = &ws
		}
		<-pctx.Done()
		cancel()
		waitHB()
		<-done
		time.Sleep(200 * time.Millisecond) // the last acks
		secs := time.Since(start).Seconds()
		f := r.hb.figures(mark, secs)
		p.Heartbeats = &f
		if name != PhaseHeartbeat {
			p.Ingest = &in
		}
	}
	p.Seconds = round3(time.Since(start).Seconds())
	if watch != nil {
		pf, err := watch.finish()
		p.Daemon = &pf
		if err != nil {
			p.Notes = append(p.Notes, "/proc: "+err.Error())
		}
	}
	after, err := ScrapeMetrics(context.WithoutCancel(ctx), r.meta, cfg.URL, cfg.Token)
	if err != nil {
		p.Notes = append(p.Notes, "no /metrics after the phase: "+err.Error())
	} else if before != nil {
		p.DaemonMetrics = metricDelta(before, after)
	}
	return p
}
