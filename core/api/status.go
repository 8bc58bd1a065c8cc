package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// The public status page (status_page: in the config): GET /status and
// GET /api/0/status_page, both without a session, showing only the hosts
// status_page.hosts lists and only their heartbeat state, uptime figures
// and uptime strip. Nothing else is reachable through them.

// StatusPageCache is how long one answer of GET /api/0/status_page is
// served to everyone before it is computed again: the endpoint needs no
// login, so its cost must not grow with the requests.
const StatusPageCache = 15 * time.Second

// statusStripBuckets is the status page's strip: 24 h in 48 cells.
const statusStripBuckets = 48

// StatusPageJSON is GET /api/0/status_page.
type StatusPageJSON struct {
	Title         string           `json:"title"`
	Updated       float64          `json:"updated"`
	BucketSeconds float64          `json:"bucket_seconds"`
	Hosts         []StatusHostJSON `json:"hosts"`
}

// StatusHostJSON is one host of the status page.
type StatusHostJSON struct {
	Name string `json:"name"`
	// State is the host's last recorded heartbeat state (UP, DEGRADED,
	// DOWN) or UNKNOWN when none is recorded.
	State     string   `json:"state"`
	Uptime24h *float64 `json:"uptime_24h"`
	Uptime7d  *float64 `json:"uptime_7d"`
	Uptime30d *float64 `json:"uptime_30d"`
	// Strip is the worst state of each bucket of the last 24 h, oldest
	// first ("" unknown).
	Strip []string `json:"strip"`
}

type statusCache struct {
	mu   sync.Mutex
	at   time.Time
	key  string // title and hosts the body was made for
	body []byte
}

func (s *Server) statusRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/api/0/status_page", Access: Public, Handler: s.statusPage},
	}
}

// statusPageEnabled reports whether the config has a status page.
func (s *Server) statusPageEnabled() bool {
	return len(s.deps.Config().StatusPage.Hosts) > 0
}

func (s *Server) statusPage(c echo.Context) error {
	sp := s.deps.Config().StatusPage
	if len(sp.Hosts) == 0 {
		return Errorf(http.StatusNotFound, "No status page is configured (status_page.hosts)")
	}
	rd, ok := s.deps.Store.(StateReader)
	if !ok {
		return Errorf(http.StatusServiceUnavailable, "this storage keeps no state history")
	}
	title := sp.Title
	if title == "" {
		title = "Status"
	}
	key, _ := json.Marshal([]any{title, sp.Hosts})
	s.status.mu.Lock()
	defer s.status.mu.Unlock()
	if s.status.body != nil && s.status.key == string(key) && time.Since(s.status.at) < StatusPageCache {
		return c.JSONBlob(http.StatusOK, s.status.body)
	}
	now := float64(time.Now().UnixNano()) / 1e9
	step := 86400.0 / statusStripBuckets
	out := StatusPageJSON{Title: title, Updated: now, BucketSeconds: step, Hosts: []StatusHostJSON{}}
	for _, name := range sp.Hosts {
		changes, err := rd.States(c.Request().Context(), name, "", now-30*86400)
		if err != nil {
			return err
		}
		h := StatusHostJSON{
			Name: name, State: "UNKNOWN",
			Uptime24h: upPercent(changes, now-86400, now),
			Uptime7d:  upPercent(changes, now-7*86400, now),
			Uptime30d: upPercent(changes, now-30*86400, now),
			Strip:     make([]string, statusStripBuckets),
		}
		if n := len(changes); n > 0 && slices.Contains([]string{"UP", "DEGRADED", "DOWN"}, changes[n-1].State) {
			h.State = changes[n-1].State
		}
		for i := range h.Strip {
			from := now - 86400 + float64(i)*step
			h.Strip[i] = worstState(changes, from, from+step)
		}
		out.Hosts = append(out.Hosts, h)
	}
	body, err := json.Marshal(out)
	if err != nil {
		return err
	}
	s.status.at, s.status.key, s.status.body = time.Now(), string(key), body
	return c.JSONBlob(http.StatusOK, body)
}
