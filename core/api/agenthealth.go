package api

import (
	"sync"
	"time"

	"github.com/hbdmon/hbd/core/metrics"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/store"
)

// AgentHealthJSON is the "agent" object of a host in GET /api/0/hosts: the
// newest health sample its agent (hbc) sent (plugin protocol.AgentPlugin,
// see docs/PROTOCOL.md), kept in memory, one per host.
type AgentHealthJSON struct {
	// ReportedAt is the health sample's time (agent clock), unix seconds.
	ReportedAt float64 `json:"reported_at"`
	// ReceivedAt is when the daemon stored it (daemon clock).
	ReceivedAt float64 `json:"received_at"`
	// SpoolBytes and SpoolBatches are what waited in the agent's spool
	// when the batch carrying the sample was built (that batch included);
	// SpoolBatches is the agent's estimate.
	SpoolBytes   float64 `json:"spool_bytes"`
	SpoolBatches float64 `json:"spool_batches"`
	// OldestUnsentSeconds is the age of the oldest sample waiting then;
	// 0 when none.
	OldestUnsentSeconds float64 `json:"oldest_unsent_seconds"`
	// LastSend is when the daemon last took a batch from the agent before
	// this one (agent clock); null before the agent's first.
	LastSend *float64 `json:"last_send"`
	// PluginErrors counts failed plugin runs since the agent started.
	PluginErrors float64 `json:"plugin_errors"`
	// SpoolDropped counts unsent samples the agent dropped because its
	// spool was full, since it started.
	SpoolDropped float64 `json:"spool_dropped"`
	// LastPluginError is the newest plugin failure ("plugin: error", at
	// most 256 bytes); "" when none or from agents that do not send it.
	LastPluginError string `json:"last_plugin_error"`
}

// agentBook keeps the newest health sample per host. The zero value is
// ready to use. Entries exist only for hosts whose signed batch was
// stored, one each; hosts no longer known are dropped at scrape.
type agentBook struct {
	mu    sync.Mutex
	hosts map[string]AgentHealthJSON
}

// observe files the newest health sample of a stored batch; an older one
// (a late retry) does not replace a newer.
func (b *agentBook) observe(host string, batch []store.PluginSample, info *protocol.AgentInfo, now time.Time) {
	idx := -1
	for i := range batch {
		if batch[i].Plugin == protocol.AgentPlugin && (idx < 0 || batch[i].Timestamp > batch[idx].Timestamp) {
			idx = i
		}
	}
	if idx < 0 {
		return
	}
	smp := batch[idx].Sample
	h := AgentHealthJSON{ReportedAt: smp.Timestamp, ReceivedAt: float64(now.UnixMilli()) / 1e3}
	for i, p := range smp.Paths {
		v := smp.Values[i]
		switch p {
		case protocol.AgentSpoolBytes:
			h.SpoolBytes = v
		case protocol.AgentSpoolBatches:
			h.SpoolBatches = v
		case protocol.AgentOldestUnsent:
			h.OldestUnsentSeconds = v
		case protocol.AgentLastSend:
			if v > 0 {
				h.LastSend = &v
			}
		case protocol.AgentPluginErrors:
			h.PluginErrors = v
		case protocol.AgentSpoolDropped:
			h.SpoolDropped = v
		}
	}
	if info != nil {
		h.LastPluginError = protocol.ClipAgentError(info.LastPluginError)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.hosts[host]; ok && old.ReportedAt > h.ReportedAt {
		return
	}
	if b.hosts == nil {
		b.hosts = map[string]AgentHealthJSON{}
	}
	b.hosts[host] = h
}

// get returns a host's newest health, or nil.
func (b *agentBook) get(host string) *AgentHealthJSON {
	b.mu.Lock()
	defer b.mu.Unlock()
	h, ok := b.hosts[host]
	if !ok {
		return nil
	}
	return &h
}

// each calls fn for every known host with a health sample, in the order
// of names, and forgets the hosts not in names.
func (b *agentBook) each(names []string, fn func(host string, h AgentHealthJSON)) {
	b.mu.Lock()
	keep := make(map[string]AgentHealthJSON, len(b.hosts))
	for _, n := range names {
		if h, ok := b.hosts[n]; ok {
			keep[n] = h
		}
	}
	b.hosts = keep
	b.mu.Unlock()
	for _, n := range names {
		if h, ok := keep[n]; ok {
			fn(n, h)
		}
	}
}

// agentMetrics are the hbd_agent_* families: one series per host and
// field, for the hosts whose agent sent a health sample.
func (s *Server) agentMetrics() []metrics.Family {
	field := func(name, help string, counter bool, value func(AgentHealthJSON) (float64, bool)) metrics.Family {
		return metrics.Family{Name: name, Help: help, Counter: counter, Labels: []string{"host"},
			Collect: func(emit func(float64, ...string)) {
				s.agents.each(s.HostNames(), func(host string, h AgentHealthJSON) {
					if v, ok := value(h); ok {
						emit(v, host)
					}
				})
			}}
	}
	return []metrics.Family{
		field("hbd_agent_spool_bytes", "Bytes waiting in the agent's spool, from its newest health sample.", false,
			func(h AgentHealthJSON) (float64, bool) { return h.SpoolBytes, true }),
		field("hbd_agent_spool_batches", "Batches the agent's spool holds (the agent's estimate), from its newest health sample.", false,
			func(h AgentHealthJSON) (float64, bool) { return h.SpoolBatches, true }),
		field("hbd_agent_oldest_unsent_seconds", "Age of the oldest sample waiting in the agent's spool, from its newest health sample.", false,
			func(h AgentHealthJSON) (float64, bool) { return h.OldestUnsentSeconds, true }),
		field("hbd_agent_last_send_timestamp_seconds", "Unix time (agent clock) the daemon last took a batch from the agent before its newest health sample.", false,
			func(h AgentHealthJSON) (float64, bool) {
				if h.LastSend == nil {
					return 0, false
				}
				return *h.LastSend, true
			}),
		field("hbd_agent_plugin_errors_total", "Failed plugin runs since the agent started (resets with the agent).", true,
			func(h AgentHealthJSON) (float64, bool) { return h.PluginErrors, true }),
		field("hbd_agent_spool_dropped_total", "Unsent samples the agent dropped because its spool was full, since it started.", true,
			func(h AgentHealthJSON) (float64, bool) { return h.SpoolDropped, true }),
		field("hbd_agent_health_timestamp_seconds", "Unix time the daemon stored the agent's newest health sample.", false,
			func(h AgentHealthJSON) (float64, bool) { return h.ReceivedAt, true }),
	}
}
