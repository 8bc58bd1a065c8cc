package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/store"
)

// StateReader reads the heartbeat state history (GET
// /api/0/hosts/{hostname}/uptime). A Store that does not implement it
// answers that endpoint 503.
type StateReader interface {
	// States returns host's changes of family ("" for the host) since
	// since, oldest first, preceded by the last one before since.
	States(ctx context.Context, host, family string, since float64) ([]store.StateChange, error)
}

// Bounds of GET /api/0/hosts/{hostname}/uptime.
const (
	DefaultStripSpan    = 86400
	MaxStripSpan        = 30 * 86400
	DefaultStripBuckets = 48
	MaxStripBuckets     = 200
)

// uptimeWindows are the uptime figures served, by name and length.
var uptimeWindows = []struct {
	name string
	secs float64
}{{"24h", 86400}, {"7d", 7 * 86400}, {"30d", 30 * 86400}}

// UptimeBucket is one cell of the uptime strip.
type UptimeBucket struct {
	Start float64 `json:"start"`
	// State is the worst state held during the bucket (DOWN, DEGRADED,
	// UP), or "" when nothing is known of it.
	State string `json:"state"`
	// UpPercent is the share of the known time the host was UP or
	// DEGRADED; null when nothing is known.
	UpPercent *float64 `json:"up_percent"`
}

func (s *Server) uptimeRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/api/0/hosts/:hostname/uptime", Access: HostMonitor, Handler: s.hostUptime},
		{Method: http.MethodGet, Path: "/api/0/hosts/:hostname/agent_config", Access: HostOwner, Handler: s.agentConfig},
		{Method: http.MethodGet, Path: "/api/0/uptime", Access: Authenticated, Handler: s.fleetUptime},
	}
}

// hostUptime serves the uptime percentages over 24 h, 7 d and 30 d and
// a strip of buckets, computed from the persisted heartbeat state history.
func (s *Server) hostUptime(c echo.Context) error {
	host, err := s.hostParam(c)
	if err != nil {
		return err
	}
	rd, ok := s.deps.Store.(StateReader)
	if !ok {
		return Errorf(http.StatusServiceUnavailable, "this storage keeps no state history")
	}
	span, err := intParam(c, "span", DefaultStripSpan, MaxStripSpan)
	if err != nil {
		return err
	}
	buckets, err := intParam(c, "buckets", DefaultStripBuckets, MaxStripBuckets)
	if err != nil {
		return err
	}
	now := float64(time.Now().UnixNano()) / 1e9
	oldest := now - uptimeWindows[len(uptimeWindows)-1].secs
	if o := now - float64(span); o < oldest {
		oldest = o
	}
	changes, err := rd.States(c.Request().Context(), host, "", oldest)
	if err != nil {
		return err
	}
	figures := map[string]*float64{}
	for _, w := range uptimeWindows {
		figures[w.name] = upPercent(changes, now-w.secs, now)
	}
	step := float64(span) / float64(buckets)
	strip := make([]UptimeBucket, buckets)
	for i := range strip {
		from := now - float64(span) + float64(i)*step
		strip[i] = UptimeBucket{Start: from, State: worstState(changes, from, from+step), UpPercent: upPercent(changes, from, from+step)}
	}
	return c.JSON(http.StatusOK, map[string]any{
		"hostname": host,
		"uptime":   figures,
		"strip":    map[string]any{"since": now - float64(span), "until": now, "bucket_seconds": step, "buckets": strip},
	})
}

// MaxUptimeHosts bounds the hosts of one GET /api/0/uptime.
const MaxUptimeHosts = 100

// HostUptimeJSON is one host of GET /api/0/uptime.
type HostUptimeJSON struct {
	Uptime24h *float64 `json:"uptime_24h"`
	// Strip is the worst state of each bucket, oldest first ("" unknown).
	Strip []string `json:"strip"`
}

// fleetUptime serves the 24 h uptime and a compact strip of several
// hosts at once, for the live page's rows: ?hosts=a,b (at most
// MaxUptimeHosts; hosts the caller may not see or that do not exist are
// left out, never 403) and ?buckets= (default 24).
func (s *Server) fleetUptime(c echo.Context) error {
	rd, ok := s.deps.Store.(StateReader)
	if !ok {
		return Errorf(http.StatusServiceUnavailable, "this storage keeps no state history")
	}
	buckets, err := intParam(c, "buckets", 24, MaxStripBuckets)
	if err != nil {
		return err
	}
	names := strings.Split(c.QueryParam("hosts"), ",")
	if len(names) > MaxUptimeHosts {
		return Errorf(http.StatusBadRequest, "hosts: at most %d per request", MaxUptimeHosts)
	}
	p := PrincipalOf(c)
	now := float64(time.Now().UnixNano()) / 1e9
	step := 86400.0 / float64(buckets)
	out := map[string]HostUptimeJSON{}
	for _, name := range names {
		if name == "" || !s.policy.CanSee(p, name) || !s.knownHost(name) {
			continue
		}
		changes, err := rd.States(c.Request().Context(), name, "", now-86400)
		if err != nil {
			return err
		}
		h := HostUptimeJSON{Uptime24h: upPercent(changes, now-86400, now), Strip: make([]string, buckets)}
		for i := range h.Strip {
			from := now - 86400 + float64(i)*step
			h.Strip[i] = worstState(changes, from, from+step)
		}
		out[name] = h
	}
	return c.JSON(http.StatusOK, map[string]any{"hosts": out, "bucket_seconds": step})
}

func isUp(state string) bool { return state == "UP" || state == "DEGRADED" }

// segments calls fn for each stretch of [from, to) during which one
// recorded state held; stretches before the first change are unknown and
// skipped. A state holds until the next change (or now).
func segments(changes []store.StateChange, from, to float64, fn func(state string, secs float64)) {
	for i, ch := range changes {
		end := to
		if i+1 < len(changes) {
			end = min(changes[i+1].Time, to)
		}
		start := max(ch.Time, from)
		if end > start {
			fn(ch.State, end-start)
		}
	}
}

// upPercent is the share of the known time of [from, to) the host was UP
// or DEGRADED; nil when nothing is known of that time.
func upPercent(changes []store.StateChange, from, to float64) *float64 {
	var known, up float64
	segments(changes, from, to, func(state string, secs float64) {
		known += secs
		if isUp(state) {
			up += secs
		}
	})
	if known <= 0 {
		return nil
	}
	p := 100 * up / known
	return &p
}

var stateRank = map[string]int{"UP": 1, "DEGRADED": 2, "DOWN": 3}

func worstState(changes []store.StateChange, from, to float64) string {
	worst := ""
	segments(changes, from, to, func(state string, _ float64) {
		if stateRank[state] > stateRank[worst] {
			worst = state
		}
	})
	return worst
}

// agentConfig serves the hbc.yaml that connects host's agent to this
// daemon, with the host's key: owners and admins only (HostOwner), as
// the key lets anyone report as the host.
func (s *Server) agentConfig(c echo.Context) error {
	host, err := s.hostParam(c)
	if err != nil {
		return err
	}
	cfg := s.deps.Config()
	var b strings.Builder
	b.WriteString("# hbc.yaml for " + host + " (docs/AGENT.md)\n")
	b.WriteString("host: " + yamlString(host) + "\n")
	if key, ok := cfg.HostKey(host); ok {
		b.WriteString("key: " + yamlString(string(key)) + "\n")
	} else {
		b.WriteString("# a dynamic host: its key derives from the daemon's enroll_key\n")
		b.WriteString("enroll_key: \"<the enroll_key of hbd.yaml>\"\n")
	}
	name := c.Request().Host
	if i := strings.LastIndexByte(name, ':'); i >= 0 && !strings.HasSuffix(name, "]") {
		name = name[:i]
	}
	if !cspHostname.MatchString(name) {
		name = "hbd.example.net"
	}
	scheme := "http"
	if c.Request().TLS != nil {
		scheme = "https"
	}
	hbPort := cfg.HBPort
	if hbPort == 0 {
		hbPort = 50003
	}
	if strings.HasPrefix(name, "[") {
		b.WriteString("server_ipv6: " + yamlString(name+":"+strconv.Itoa(hbPort)) + "\n")
	} else {
		b.WriteString("server_ipv4: " + yamlString(name+":"+strconv.Itoa(hbPort)) + "\n")
	}
	b.WriteString("api_url: " + yamlString(scheme+"://"+clipName(c.Request().Host)) + "\n")
	return c.JSON(http.StatusOK, map[string]any{"hostname": host, "hbc_yaml": b.String()})
}

// yamlString quotes s as a YAML double-quoted scalar.
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
