package ws

import (
	"time"

	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/metrics"
	"github.com/hbdmon/hbd/sdk/level"
)

// Host is the data of a "host" message: a host's heartbeat state with the
// field names of GET /api/0/hosts.
type Host struct {
	Name string `json:"name"`
	// State is UP, DEGRADED or DOWN, or UNKNOWN while the host is awaited.
	State       string                       `json:"state"`
	Since       float64                      `json:"since"`
	Dyn         bool                         `json:"dyn"`
	Connections []heartbeat.ConnectionStatus `json:"connections"`
	// LastSeen is when the host was last heard from, unix seconds; null
	// when never.
	LastSeen      *float64 `json:"last_seen"`
	ClockOffsetMS *float64 `json:"clock_offset_ms"`
	Reason        string   `json:"reason"`
	// Watched is false for a host nobody is alerted about.
	Watched bool `json:"watched"`
}

// HostFrom returns the "host" message of a tracker snapshot; watched says
// whether anyone is alerted about the host.
func HostFrom(st heartbeat.HostStatus, watched bool) Host {
	h := Host{
		Name: st.Name, State: string(st.State), Since: st.Since, Dyn: st.Dynamic,
		Connections: st.Connections, ClockOffsetMS: st.ClockOffsetMS, Reason: st.Reason, Watched: watched,
	}
	if h.State == "" {
		h.State = "UNKNOWN"
	}
	if h.Connections == nil {
		h.Connections = []heartbeat.ConnectionStatus{}
	}
	if st.LastSeen > 0 {
		h.LastSeen = &st.LastSeen
	}
	return h
}

// Alert is the data of an "alert" message: one alert change (a level
// change, a renotification, an acknowledgement...) as the evaluator
// reports it.
type Alert struct {
	Hostname      string      `json:"hostname"`
	MetricPath    string      `json:"metric_path"`
	Level         level.Level `json:"level"`
	PreviousLevel level.Level `json:"previous_level"`
	LastValue     float64     `json:"last_value"`
	Detail        string      `json:"detail"`
	// Kind is what happened: alert.KindChange, KindRenotify, KindRecovery
	// or KindFlapping.
	Kind string `json:"kind"`
	// Since is when the alert entered Level, Time when the change was
	// made; unix seconds.
	Since             float64 `json:"since"`
	Time              float64 `json:"time"`
	NotificationCount int     `json:"notification_count"`
	// Text is the alert's sentence, as in GET /api/0/alerts.
	Text string `json:"text"`
	// EpisodeStart is when the episode began (unix seconds); 0 when it is
	// not known.
	EpisodeStart float64 `json:"episode_start"`
}

// AlertFrom returns the "alert" message of an evaluator event.
func AlertFrom(e alert.Event) Alert {
	return Alert{
		Hostname: e.Host, MetricPath: e.MetricPath, Level: e.Level, PreviousLevel: e.PreviousLevel,
		LastValue: e.Value, Detail: e.Detail, Kind: e.Kind,
		Since: unix(e.Since), Time: unix(e.Time), NotificationCount: e.NotificationCount,
		Text: e.Text, EpisodeStart: unix(e.EpisodeStart),
	}
}

// unix is t in unix seconds, 0 for the zero time.
func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// AlertEvent publishes an evaluator event on the feed: the hub is an
// alert.Sink. Only clients that may see the event's host receive it.
func (h *Hub) AlertEvent(e alert.Event) { h.PublishAlert(AlertFrom(e)) }

// Interface guards.
var _ alert.Sink = (*Hub)(nil)

// Metrics returns the hub's metric families for /metrics: connected
// clients, clients dropped for falling behind (by reason: queue_full,
// write_timeout, ping_timeout), connect snapshots taken and shared, and
// queued frames replaced by a newer one.
func (h *Hub) Metrics() []metrics.Family {
	return []metrics.Family{
		{Name: "hbd_ws_clients", Help: "Connected WebSocket clients.",
			Collect: func(emit func(float64, ...string)) { emit(float64(h.Clients())) }},
		{Name: "hbd_ws_dropped_total", Help: "WebSocket clients dropped for falling behind, by reason: queue_full (send queue full), write_timeout (a frame not taken within the write timeout), ping_timeout (no pong).",
			Counter: true, Labels: []string{"reason"},
			Collect: func(emit func(float64, ...string)) {
				for i, r := range dropReasons {
					emit(float64(h.dropped[i].Load()), r.label)
				}
			}},
		{Name: "hbd_ws_snapshots_total", Help: "Host snapshots given to connecting WebSocket clients, by source: taken (built for this client) or shared (one taken for a client that connected just before, no host state published since).",
			Counter: true, Labels: []string{"source"},
			Collect: func(emit func(float64, ...string)) {
				emit(float64(h.snapTaken.Load()), "taken")
				emit(float64(h.snapShared.Load()), "shared")
			}},
		{Name: "hbd_ws_coalesced_total", Help: "Queued WebSocket frames (host states, plugin samples) replaced by a newer one before being sent.",
			Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(h.coalesced.Load())) }},
	}
}
