package daemon

// The hand-offs between the hot paths and the work that follows them. A
// UDP reader and an ingest request only ever Put into a bounded
// pipeline.Queue; one goroutine per queue (started in Run) does the rest,
// in order per host:
//
//	tracker (UDP reader, sweeper) ─Change, clock report─► heartbeats ─► heartbeatPath.Consume:
//	    store.EnsureHost (new dynamic host), log, journal, ws host frame,
//	    alert.ObserveHeartbeat / ObserveClockOffset, Book.Changed
//	store.AppendSamples (committed) ─FeedAlerts─► alertFeed ─► alerts ─► evaluateSamples.Consume:
//	    alert.Evaluator.ObserveSamples ─Event─► ws alert frame, dispatch (routing)
//	store.AppendSamples (committed) ─Subscribe─► liveFeed ─► feed ─► publishSamples.Consume:
//	    ws.Hub.OnSamples (plugin frames)

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/alert/record"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/pipeline"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/ws"
)

// Queue limits, in items. The heartbeat queue drops on overflow (a state
// change is rare; 64k is every connection of a large fleet changing at
// once). The alert queue holds two seconds of 50,000 samples/s and then
// keeps the newest sample per host and plugin. The live feed drops.
const (
	heartbeatQueueLimit = 1 << 16
	alertQueueLimit     = 100_000
	feedQueueLimit      = 1 << 14
)

// heartbeatEvent is one item of the heartbeat queue: a state change, or,
// when clock is set, a clock report (from heartbeats or a refused batch).
type heartbeatEvent struct {
	change  heartbeat.Change
	clock   bool
	offset  time.Duration
	refused bool
	at      time.Time
}

// heartbeatAlerts is what the heartbeat path tells alerting
// (*alert.Evaluator).
type heartbeatAlerts interface {
	ObserveHeartbeat(heartbeat.Change)
	ObserveClockOffset(host string, offset time.Duration, refused bool, at time.Time)
}

// hostFrames publishes a host's current state on the live feed.
type hostFrames struct {
	tracker *heartbeat.Tracker
	hub     *ws.Hub
	watched func(host string) bool
}

// publish sends host's host frame, built from the tracker's current state.
func (f hostFrames) publish(host string) {
	if st, ok := f.tracker.Snapshot(host); ok {
		f.hub.PublishHost(ws.HostFrom(st, f.watched(st.Name)))
	}
}

// heartbeatPath consumes the heartbeat queue: the cold work of a state
// change or clock report, off the packet path, in order per host. feed
// and alerts are set while the daemon is built, before Run starts the
// queue; nil ones are skipped.
type heartbeatPath struct {
	ctx    context.Context // the services' context, for the committed write
	store  *store.Store
	log    hclog.Logger
	book   *heartbeat.Book
	feed   *hostFrames
	alerts heartbeatAlerts
}

// Consume handles host's queued events in order.
func (p *heartbeatPath) Consume(host string, events []heartbeatEvent) {
	for i := range events {
		ev := &events[i]
		if ev.clock {
			if p.alerts != nil {
				p.alerts.ObserveClockOffset(host, ev.offset, ev.refused, ev.at)
			}
			continue
		}
		p.changed(ev.change)
	}
}

func (p *heartbeatPath) changed(ch heartbeat.Change) {
	if ch.Dynamic && ch.From == "" {
		// Recorded before alerting hears of it, so alerting already knows
		// the host is dynamic. One committed write per new host.
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		_, err := p.store.EnsureHost(ctx, ch.Host, true)
		cancel()
		if err != nil {
			p.log.Error("record dynamic host", "host", ch.Host, "error", err)
		}
	}
	heartbeat.LogChange(p.log, ch)
	if !ch.Follower {
		p.record(ch) // heartbeat_shared.go
	}
	if p.feed != nil {
		p.feed.publish(ch.Host)
	}
	if p.alerts != nil {
		p.alerts.ObserveHeartbeat(ch)
	}
	p.book.Changed(ch)
}

// alertFeed queues committed samples for alerting. The store calls
// ObserveSamples on the ingesting request's goroutine (store.FeedAlerts);
// it only queues.
type alertFeed struct {
	q *pipeline.Queue[record.Sample]
}

// ObserveSamples queues a committed batch of host.
func (f alertFeed) ObserveSamples(host string, samples []record.Sample) { f.q.Put(host, samples...) }

// samplePlugin is the alert queue's coalescing key: on overflow the newest
// sample per host and plugin is kept.
func samplePlugin(s record.Sample) string { return s.Plugin }

// evaluateSamples consumes the alert queue: it hands each host's samples
// to the evaluator (*alert.Evaluator), whose events go on to the live feed
// and dispatch on this goroutine.
type evaluateSamples struct{ ev store.SampleObserver }

// Consume evaluates host's queued samples, oldest first.
func (e *evaluateSamples) Consume(host string, samples []record.Sample) {
	e.ev.ObserveSamples(host, samples)
}

// liveFeed queues committed samples for the live feed while anyone
// listens. The store calls OnSamples on the ingesting request's goroutine
// (store.Subscribe); it only queues.
type liveFeed struct {
	hub *ws.Hub
	q   *pipeline.Queue[store.PluginSample]
}

// OnSamples queues a committed batch for the feed's clients.
func (f liveFeed) OnSamples(ev store.SampleEvent) {
	if f.hub.Clients() > 0 {
		f.q.Put(ev.Host, ev.Samples...)
	}
}

// sampleFrames is the live feed's entry for samples (*ws.Hub).
type sampleFrames interface{ OnSamples(store.SampleEvent) }

// publishSamples consumes the feed queue: plugin frames for each host's
// samples.
type publishSamples struct{ hub sampleFrames }

// Consume publishes host's queued samples, oldest first.
func (p *publishSamples) Consume(host string, samples []store.PluginSample) {
	p.hub.OnSamples(store.SampleEvent{Host: host, Samples: samples})
}
