package api

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/store"
)

// Limits of the read endpoints.
const (
	DefaultSampleLimit  = 10
	DefaultHistoryLimit = 1000
	MaxHistoryLimit     = 10000
	DefaultMessageLimit = 30
	MaxMessageLimit     = 1000
)

func (s *Server) coreRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/healthz", Access: Public, Handler: s.healthz},
		{Method: http.MethodGet, Path: "/api/0/hosts", Access: Authenticated, Handler: s.listHosts},
		{Method: http.MethodGet, Path: "/api/0/messages", Access: Authenticated, Handler: s.listMessages},
		{Method: http.MethodGet, Path: "/api/0/hosts/:hostname/plugins", Access: HostMonitor, Handler: s.hostPlugins},
		{Method: http.MethodGet, Path: "/api/0/hosts/:hostname/plugins/:plugin_name", Access: HostMonitor, Handler: s.pluginSamples},
		{Method: http.MethodPost, Path: protocol.IngestPath, Access: Agent, Handler: s.ingest},
	}
}

// healthz answers 200 {"ok": true} while the daemon can store data, and
// 503 with the storage failure (disk full, I/O error) while it cannot.
func (s *Server) healthz(c echo.Context) error {
	if err := s.deps.Store.Health(); err != nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"ok": false, "error": cleanMessage(err.Error())})
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": true})
}

// HostJSON is one entry of GET /api/0/hosts.
type HostJSON struct {
	Name     string   `json:"name"`
	Dyn      bool     `json:"dyn"`
	Owner    *string  `json:"owner"`
	Managers []string `json:"managers"`
	Monitors []string `json:"monitors"`
	// State is UP, DEGRADED or DOWN from the heartbeats, or UNKNOWN while
	// a watched host is awaited (its timeout since the daemon's start or
	// the host's addition has not run out) or for a host nobody waits for.
	State string `json:"state"`
	// LastSeen is when the host was last heard from (heartbeat, possibly
	// from before the daemon's restart, or sample batch), unix seconds;
	// null when never.
	LastSeen    *float64                     `json:"last_seen"`
	Connections []heartbeat.ConnectionStatus `json:"connections"`
	// Watched is false for a host nobody is alerted about: a dynamic host
	// while watch_dynamic is off, or a host no longer configured.
	Watched bool `json:"watched"`
	// ClockOffsetMS is the host's estimated clock offset against the
	// daemon's in milliseconds (positive: ahead); null until known.
	ClockOffsetMS *float64 `json:"clock_offset_ms"`
	// Reason says why the host is not heard from when more is known than
	// silence, e.g. "clock 6m12s ahead of hbd"; empty otherwise.
	Reason string `json:"reason"`
	// Agent is the newest health its agent reported (spool, sends, plugin
	// errors); null until an agent that reports it sent a batch since
	// the daemon started.
	Agent *AgentHealthJSON `json:"agent"`
}

// HostLiveness is what the heartbeat tracker knows of a host beyond the
// ConnectionSource's state and connections.
type HostLiveness struct {
	// State is UP, DEGRADED or DOWN; "" while the host is awaited.
	State heartbeat.State
	// Connections are the per-family connections.
	Connections []heartbeat.ConnectionStatus
	// LastSeen is when the host's newest heartbeat was accepted, unix
	// seconds, possibly from before the daemon's restart; 0 when never.
	LastSeen float64
	// ClockOffsetMS is the estimated clock offset; nil when unknown.
	ClockOffsetMS *float64
	// Reason says why the host is not heard from, when known.
	Reason string
}

// TrackerSource serves hosts' liveness from a heartbeat tracker: the
// ConnectionSource and LivenessSource the daemon (and tests) wire in.
type TrackerSource struct{ Tracker *heartbeat.Tracker }

// HostConnections implements ConnectionSource.
func (s TrackerSource) HostConnections(host string) (heartbeat.State, []heartbeat.ConnectionStatus) {
	l, _ := s.HostLiveness(host)
	return l.State, l.Connections
}

// HostLiveness implements LivenessSource.
func (s TrackerSource) HostLiveness(host string) (HostLiveness, bool) {
	st, ok := s.Tracker.Snapshot(host)
	if !ok {
		return HostLiveness{}, false
	}
	conns := st.Connections
	if conns == nil {
		conns = []heartbeat.ConnectionStatus{}
	}
	return HostLiveness{State: st.State, Connections: conns, LastSeen: st.LastSeen,
		ClockOffsetMS: st.ClockOffsetMS, Reason: st.Reason}, true
}

// LivenessSource is a ConnectionSource that also knows last-seen times,
// clock offsets and reasons. When Deps.Connections implements it,
// GET /api/0/hosts uses it; HostLiveness returns false for a host it
// neither heard from nor expects.
type LivenessSource interface {
	HostLiveness(host string) (HostLiveness, bool)
}

// Watched reports whether host is watched, i.e. alerted about: configured
// hosts, and dynamic hosts while watch_dynamic is on.
func (s *Server) Watched(host string) bool {
	cfg := s.deps.Config()
	if _, ok := cfg.Watchhosts[host]; ok {
		return true
	}
	info, ok := s.deps.Store.Host(host)
	return ok && info.Dyn && cfg.WatchDynamic
}

// HostNames returns every host the daemon knows: configured ones and those
// that have reported (dynamic hosts), sorted.
func (s *Server) HostNames() []string {
	seen := map[string]bool{}
	var names []string
	for name := range s.deps.Config().Watchhosts {
		seen[name] = true
		names = append(names, name)
	}
	for _, h := range s.deps.Store.Hosts() {
		if !seen[h.Name] {
			names = append(names, h.Name)
		}
	}
	sort.Strings(names)
	return names
}

func (s *Server) hostJSON(name string) HostJSON {
	cfg := s.deps.Config()
	_, configured := cfg.Watchhosts[name]
	info, reported := s.deps.Store.Host(name)
	h := HostJSON{Name: name, Dyn: !configured && info.Dyn, Managers: []string{}, Monitors: []string{}, Connections: []heartbeat.ConnectionStatus{}}
	roles := s.policy.HostRoles(name)
	if roles.Owner != "" {
		h.Owner = &roles.Owner
	}
	if roles.Managers != nil {
		h.Managers = roles.Managers
	}
	if roles.Monitors != nil {
		h.Monitors = roles.Monitors
	}
	h.Watched = s.Watched(name)
	var lastSeen float64
	if reported {
		lastSeen = info.LastSeen
	}
	h.State = "UNKNOWN"
	if ls, ok := s.deps.Connections.(LivenessSource); ok {
		if l, known := ls.HostLiveness(name); known {
			if l.State != "" {
				h.State = string(l.State)
			}
			if l.Connections != nil {
				h.Connections = l.Connections
			}
			lastSeen = max(lastSeen, l.LastSeen)
			h.ClockOffsetMS, h.Reason = l.ClockOffsetMS, l.Reason
		}
	} else if s.deps.Connections != nil {
		state, conns := s.deps.Connections.HostConnections(name)
		if state != "" {
			h.State = string(state)
		}
		if conns != nil {
			h.Connections = conns
		}
	}
	if lastSeen > 0 {
		h.LastSeen = &lastSeen
	}
	h.Agent = s.agents.get(name)
	return h
}

func (s *Server) listHosts(c echo.Context) error {
	p := PrincipalOf(c)
	out := []HostJSON{}
	for _, name := range s.HostNames() {
		if s.policy.CanSee(p, name) {
			out = append(out, s.hostJSON(name))
		}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) listMessages(c echo.Context) error {
	limit, err := intParam(c, "limit", DefaultMessageLimit, MaxMessageLimit)
	if err != nil {
		return err
	}
	q := store.MessageQuery{Limit: limit}
	if v := c.QueryParam("before"); v != "" {
		b, err := strconv.ParseFloat(v, 64)
		if err != nil || b <= 0 || math.IsNaN(b) || math.IsInf(b, 0) {
			return Errorf(http.StatusBadRequest, "before must be a unix time in seconds")
		}
		q.Before = b
	}
	p := PrincipalOf(c)
	if host := c.QueryParam("host"); host != "" {
		// Access first: a caller who may not read a host learns nothing,
		// not even whether it exists.
		if !s.policy.CanSee(p, host) {
			return Errorf(http.StatusForbidden, "You may not read host '%s'", clipName(host))
		}
		if !s.knownHost(host) {
			return Errorf(http.StatusNotFound, "Host '%s' not found", clipName(host))
		}
		q.Host = host
	} else if !s.policy.IsAdmin(p) {
		q.Hosts = []string{}
		for _, name := range s.HostNames() {
			if s.policy.CanSee(p, name) {
				q.Hosts = append(q.Hosts, name)
			}
		}
	}
	msgs, err := s.deps.Store.Messages(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, msgs)
}

// SampleJSON is one sample in the reference's shape.
type SampleJSON struct {
	Timestamp float64        `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

type pluginSummaryJSON struct {
	Timestamp   float64        `json:"timestamp"`
	Data        map[string]any `json:"data"`
	SampleCount int            `json:"sample_count"`
}

func (s *Server) hostPlugins(c echo.Context) error {
	host, err := s.hostParam(c)
	if err != nil {
		return err
	}
	sums := s.deps.Store.Plugins(host)
	var paths []string
	for name, sum := range sums {
		for _, p := range sum.Latest.Paths {
			paths = append(paths, name+"."+p)
		}
	}
	// The thresholds the evaluator applies to these metrics, for the
	// charts' lines and the cards' colors.
	thresholds, err := alert.ThresholdsFor(s.deps.Config(), host, paths)
	if err != nil {
		return err
	}
	declared := s.hostUnits(c.Request().Context(), host)
	b, err := hostPluginsJSON(host, sums, thresholds, declared)
	if err != nil {
		return err
	}
	// A dashboard polling an idle host gets 304 and no body.
	return jsonBytesWithETag(c, b)
}

// hostPluginsJSON is the answer of GET /api/0/hosts/{h}/plugins: what
// c.JSON writes for {"hostname": host, "plugins": {name:
// pluginSummaryJSON}, "thresholds": thresholds, "units": the declared
// units resolved for the newest samples' paths (metricUnits)}, byte for
// byte, written without the maps.
func hostPluginsJSON(host string, sums map[string]store.PluginSummary, thresholds map[string]alert.Threshold, declared map[string]map[string]string) ([]byte, error) {
	th, err := json.Marshal(thresholds)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(sums))
	for name := range sums {
		names = append(names, name)
	}
	slices.Sort(names)
	b := make([]byte, 0, 256+512*len(names))
	b = append(b, `{"hostname":`...)
	b = appendJSONString(b, host)
	b = append(b, `,"plugins":{`...)
	for i, name := range names {
		sum := sums[name]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, name)
		b = append(b, `:{"timestamp":`...)
		b = appendJSONFloat(b, sum.Latest.Timestamp)
		b = append(b, `,"data":`...)
		b = appendNested(b, sum.Latest.Paths, sum.Latest.Values)
		b = append(b, `,"sample_count":`...)
		b = strconv.AppendInt(b, int64(sum.Count), 10)
		b = append(b, '}')
	}
	b = append(b, `},"thresholds":`...)
	b = append(b, th...)
	b = append(b, `,"units":`...)
	b = appendUnits(b, names, func(name string) []string { return sums[name].Latest.Paths }, declared)
	return append(b, "}\n"...), nil
}

// samplesJSON is the answer of GET /api/0/hosts/{h}/plugins/{p}: what
// c.JSON writes for {"hostname", "plugin", "samples": [SampleJSON],
// "sample_count", "units"}, byte for byte, written without the maps.
// declared are the plugin's declared units.
func samplesJSON(host, plugin string, samples []store.Sample, declared map[string]string) []byte {
	b := make([]byte, 0, 256+512*len(samples))
	b = append(b, `{"hostname":`...)
	b = appendJSONString(b, host)
	b = append(b, `,"plugin":`...)
	b = appendJSONString(b, plugin)
	b = append(b, `,"sample_count":`...)
	b = strconv.AppendInt(b, int64(len(samples)), 10)
	b = append(b, `,"samples":[`...)
	for i, smp := range samples {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"timestamp":`...)
		b = appendJSONFloat(b, smp.Timestamp)
		b = append(b, `,"data":`...)
		b = appendNested(b, smp.Paths, smp.Values)
		b = append(b, '}')
	}
	b = append(b, `],"units":`...)
	b = appendUnits(b, []string{plugin}, func(string) []string { return pathUnion(samples) }, map[string]map[string]string{plugin: declared})
	return append(b, "}\n"...)
}

func (s *Server) pluginSamples(c echo.Context) error {
	host, err := s.hostParam(c)
	if err != nil {
		return err
	}
	plugin := c.Param("plugin_name")
	sinceStr, untilStr := c.QueryParam("since"), c.QueryParam("until")
	history := sinceStr != "" || untilStr != ""
	def, max := DefaultSampleLimit, s.deps.Config().SampleHistory
	if history {
		def, max = DefaultHistoryLimit, MaxHistoryLimit
	}
	limit, err := intParam(c, "limit", def, max)
	if err != nil {
		return err
	}
	var samples []store.Sample
	if history {
		since, err := timeParam(sinceStr, "since", 0)
		if err != nil {
			return err
		}
		until, err := timeParam(untilStr, "until", float64(time.Now().Add(24*time.Hour).Unix()))
		if err != nil {
			return err
		}
		if until < since {
			return Errorf(http.StatusBadRequest, "until must not be before since")
		}
		samples, err = s.deps.Store.History(c.Request().Context(), host, plugin, since, until, limit)
		if err != nil {
			return err
		}
		if len(samples) == 0 {
			if _, err := s.deps.Store.Latest(host, plugin, 1); errors.Is(err, store.ErrNotFound) {
				return Errorf(http.StatusNotFound, "Plugin '%s' not found for host '%s'", clipName(plugin), host)
			}
		}
	} else {
		samples, err = s.deps.Store.Latest(host, plugin, limit)
		if errors.Is(err, store.ErrNotFound) {
			return Errorf(http.StatusNotFound, "Plugin '%s' not found for host '%s'", clipName(plugin), host)
		}
	}
	return jsonBytes(c, samplesJSON(host, plugin, samples, s.hostUnits(c.Request().Context(), host)[plugin]))
}

// intParam reads a positive integer query parameter, capped at max.
func intParam(c echo.Context, name string, def, max int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, Errorf(http.StatusBadRequest, "%s must be a positive integer, got '%s'", name, clipName(v))
	}
	if n > max {
		n = max
	}
	return n, nil
}

func timeParam(v, name string, def float64) (float64, error) {
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		if t, terr := time.Parse(time.RFC3339, v); terr == nil {
			return float64(t.UnixNano()) / 1e9, nil
		}
		return 0, Errorf(http.StatusBadRequest, "%s must be a unix time in seconds or RFC 3339, got '%s'", name, clipName(v))
	}
	return f, nil
}
