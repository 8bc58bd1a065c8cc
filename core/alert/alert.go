// Package alert evaluates every ingested sample against the configured
// thresholds and the heartbeat state of every watched host, keeps one
// alert state per (host, metric path), persists those states in the store,
// and tells a Sink when something should be notified.
//
// Data flows one way: the store publishes committed samples (Subscribe),
// the heartbeat tracker reports state changes (ObserveHeartbeat), and the
// evaluator hands Events to its Sink (the notification dispatcher). The API
// reads states and manages acknowledgements and silences through the
// exported methods.
//
// Lifecycle: New, then Start (loads persisted states and silences,
// subscribes to the store and starts the sweep), Reload on SIGHUP, Stop
// before the store is closed.
package alert

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/glob"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/store"
)

// Notification kinds of an Event.
const (
	// KindChange: the level changed to a non-OK level (or a silenced or
	// flapping metric settled at one).
	KindChange = "change"
	// KindRenotify: a reminder that a non-OK level persists.
	KindRenotify = "renotify"
	// KindRecovery: back to OK after a notified WARNING or CRITICAL.
	KindRecovery = "recovery"
	// KindFlapping: the metric started flapping; its flips are not
	// notified until it is stable again.
	KindFlapping = "flapping"
)

// Event is one notification the evaluator wants delivered.
type Event struct {
	// ID identifies this notification (host, metric, episode start and
	// count), so a dispatcher can deduplicate retries.
	ID         string
	Host       string
	MetricPath string
	// Level is the current level; PreviousLevel the level before this
	// episode began (empty when unknown, e.g. renotify after a restart).
	Level         string
	PreviousLevel string
	// Value is the last value (for heartbeat metrics 0 UP, 1 LATE or
	// DEGRADED, 2 DOWN); Detail says it in words ("85.5", "DOWN",
	// "no data for 5m0s").
	Value  float64
	Detail string
	// Since is when the current level began; Time when the event was made.
	Since time.Time
	Time  time.Time
	// Kind is KindChange, KindRenotify, KindRecovery or KindFlapping.
	Kind string
	// EpisodeStart is when the alert episode this event belongs to began:
	// the moment the metric left OK. A recovery carries the start of the
	// episode it ends. Deliveries are counted per (host, metric,
	// EpisodeStart).
	EpisodeStart time.Time
	// Replay is true for an event offered again at start because it was
	// decided shortly before the daemon stopped (maybe killed before its
	// deliveries were stored): the same event, same id; a channel that
	// already has it does not get it again.
	Replay bool
	// Text says what happened in words, for people: "web02 is DOWN: no
	// heartbeat for 2m10s (IPv4 and IPv6)", "web01
	// cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples".
	Text string
	// NotificationCount counts notifications of this level episode,
	// including this one.
	NotificationCount int
	Acknowledged      bool
}

// Sink receives notification events. AlertEvent is called from the
// ingestion path, the heartbeat tracker and the sweep, with events of one
// (host, metric) in order; it must not block and must not call back into
// the Evaluator.
type Sink interface {
	AlertEvent(Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

// AlertEvent calls f.
func (f SinkFunc) AlertEvent(ev Event) { f(ev) }

// Errors callers branch on (the API turns them into status codes).
var (
	// ErrUnknownMetric: the host has no alert state for that metric path.
	ErrUnknownMetric = errors.New("no alert state for that metric")
	// ErrNotAlerting: an acknowledgement of a metric that is OK.
	ErrNotAlerting = errors.New("metric is OK")
	// ErrUnknownSilence: no active silence has that id.
	ErrUnknownSilence = errors.New("no such silence")
	// ErrInvalid: a silence request is malformed.
	ErrInvalid = errors.New("invalid request")
)

// Tunables of the background loop.
const (
	// flushEvery is how often level changes, counts and acknowledgements
	// are written to the store.
	flushEvery = time.Second
	// valueFlushEvery is how often last_value/last_check of quiet states
	// are written; a crash loses at most this much of them.
	valueFlushEvery = time.Minute
	// MaxSilence bounds a silence's duration.
	MaxSilence = 366 * 24 * time.Hour
	// flushChunk is how many states one background write transaction
	// saves at most.
	flushChunk = 2000
	// maxPathsPerPlugin bounds the per-host cache of unmatched paths.
	maxPathsPerPlugin = 4096
	// DefaultFamilySettle is Evaluator.FamilySettle unless changed.
	DefaultFamilySettle = 3 * time.Second
)

// Evaluator keeps the alert states. It is safe for concurrent use.
type Evaluator struct {
	// Now is the evaluator's clock (staleness, renotify, flapping,
	// silences). Replace it before Start, e.g. in tests.
	Now func() time.Time

	// MayManage, when set, reports whether user may silence host. A silence
	// created by a user then holds back only hosts its creator manages when
	// the alert fires, so a host glob cannot reach hosts added later that
	// the creator has no say over. Set it before Start.
	MayManage Manager

	// FamilySettle defers the first notification of a family alert
	// (heartbeat.ipv4, heartbeat.ipv6): it is sent only if, that much later,
	// the family is still not OK and heartbeat.host of the same host is OK.
	// The tracker may take the two families of a dead host DOWN in
	// consecutive sweeps; then only the host is told. 0 decides at once.
	// Set it before Start.
	FamilySettle time.Duration

	st   *store.Store
	log  hclog.Logger
	sink Sink

	// mu is held for reading by every evaluation and for writing by Start
	// and Reload, which swap the rules and re-evaluate everything.
	mu    sync.RWMutex
	rules *ruleset

	hmu   sync.RWMutex
	hosts map[string]*hostState

	silMu    sync.RWMutex
	silences []silence

	// emitMu orders sink calls and journal lines: it is taken before the
	// host lock that produced them is released.
	emitMu sync.Mutex

	// Lock order: e.mu, then a host's mu, then emitMu, then flushMu, then
	// pendMu or heldMu. flushMu is never taken with a host locked.
	flushMu sync.Mutex
	pendMu  sync.Mutex
	pending []pendingOp // state snapshots and deletions, oldest first

	hist episodes // open alert episodes (history.go)

	// held indexes the family alerts whose first notification waits for
	// FamilySettle, with when it is due, so the loop visits only those.
	heldMu sync.Mutex
	held   map[store.AlertKey]time.Time

	startedAt time.Time // evaluator clock at Start

	started, stopped atomic.Bool
	cancel           context.CancelFunc
	done             chan struct{}
}

// hostState holds the states of one host.
type hostState struct {
	name    string
	mu      sync.Mutex
	metrics map[string]*state
	// plugins caches path resolution: plugin → flattened path → state, nil
	// for paths no rule matches. Cleared by Reload.
	plugins map[string]map[string]*state
}

type silence struct {
	store.Silence
	host, metric glob.Pattern
}

// New returns an evaluator for cfg reading samples from st and notifying
// sink. Nothing runs until Start.
func New(cfg *config.Config, st *store.Store, log hclog.Logger, sink Sink) (*Evaluator, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if sink == nil {
		sink = SinkFunc(func(Event) {})
	}
	rs, err := compileRules(cfg)
	if err != nil {
		return nil, err
	}
	return &Evaluator{
		Now:          time.Now,
		FamilySettle: DefaultFamilySettle,
		st:           st,
		log:          log.Named("alert"),
		sink:         sink,
		rules:        rs,
		hosts:        map[string]*hostState{},
		held:         map[store.AlertKey]time.Time{},
		done:         make(chan struct{}),
	}, nil
}

// Start loads persisted states and silences, re-evaluates them against the
// current rules, subscribes to the store's samples and starts the sweep
// (staleness, renotify, flapping, silence expiry, persistence) until ctx is
// done or Stop is called. Call it once, before ingestion starts.
func (e *Evaluator) Start(ctx context.Context) error { return e.start(ctx, true) }

// start is Start; tests pass loop false and drive Sweep with their clock.
func (e *Evaluator) start(ctx context.Context, loop bool) error {
	if !e.started.CompareAndSwap(false, true) {
		return errors.New("alert: evaluator already started")
	}
	e.startedAt = e.now()
	if err := e.load(ctx); err != nil {
		return err
	}
	e.st.Subscribe(e.onSamples)
	ctx, e.cancel = context.WithCancel(ctx)
	if loop {
		go e.loop(ctx)
	} else {
		close(e.done)
	}
	return nil
}

// Stop ends the sweep, stops evaluating new samples and writes every state
// to the store, waiting for the commit. Call it before closing the store.
func (e *Evaluator) Stop(ctx context.Context) error {
	if !e.started.Load() || !e.stopped.CompareAndSwap(false, true) {
		return nil
	}
	e.cancel()
	<-e.done
	// Wait for evaluations that started before stopped was set.
	e.mu.Lock()
	e.mu.Unlock()
	e.saveDirtyEpisodes()
	return e.flush(ctx, true, true)
}

func (e *Evaluator) now() time.Time { return e.Now() }

func (e *Evaluator) loop(ctx context.Context) {
	defer close(e.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	var lastSweep, lastValues time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := e.now()
			if now.Sub(lastSweep) >= e.sweepEvery() {
				e.Sweep(now)
				lastSweep = now
			} else {
				e.runHeld(now)
			}
			all := now.Sub(lastValues) >= valueFlushEvery
			if all {
				lastValues = now
			}
			if err := e.flush(ctx, all, false); err != nil && ctx.Err() == nil {
				e.log.Error("saving alert states failed", "error", err)
			}
		}
	}
}

// sweepEvery is a twentieth of stale_after, between 1 and 10 seconds.
func (e *Evaluator) sweepEvery() time.Duration {
	e.mu.RLock()
	d := e.rules.cfg.Alerting.StaleAfter / 20
	e.mu.RUnlock()
	return min(max(d, time.Second), 10*time.Second)
}

// dyn reports whether the store knows host as a dynamic host.
func (e *Evaluator) dyn(host string) bool {
	h, ok := e.st.Host(host)
	return ok && h.Dyn
}

func (e *Evaluator) hostState(name string, create bool) *hostState {
	e.hmu.RLock()
	hs := e.hosts[name]
	e.hmu.RUnlock()
	if hs != nil || !create {
		return hs
	}
	e.hmu.Lock()
	defer e.hmu.Unlock()
	if hs = e.hosts[name]; hs == nil {
		hs = &hostState{name: name, metrics: map[string]*state{}, plugins: map[string]map[string]*state{}}
		e.hosts[name] = hs
	}
	return hs
}

func (e *Evaluator) hostList() []*hostState {
	e.hmu.RLock()
	defer e.hmu.RUnlock()
	out := make([]*hostState, 0, len(e.hosts))
	for _, hs := range e.hosts {
		out = append(out, hs)
	}
	return out
}

// pendingOp is a state snapshot (or, with del, a deletion) waiting for the
// next flush.
type pendingOp struct {
	row store.AlertState
	del bool
}

// outbox collects what a locked section wants journaled and notified.
type outbox struct {
	journal []journalLine
	events  []Event
}

type journalLine struct{ host, msg string }

func (o *outbox) empty() bool { return len(o.journal) == 0 && len(o.events) == 0 }

// release unlocks a host after taking the emit lock, then delivers the
// outbox, so what one host produced reaches the journal and the sink in
// order.
func (e *Evaluator) release(hs *hostState, out *outbox) {
	if out.empty() {
		hs.mu.Unlock()
		return
	}
	e.emitMu.Lock()
	hs.mu.Unlock()
	e.deliver(out)
	e.emitMu.Unlock()
}

func (e *Evaluator) deliver(out *outbox) {
	for _, j := range out.journal {
		e.st.Journal(j.host, j.msg)
	}
	if len(out.events) > 0 {
		// The snapshots of the states these events come from go to the
		// store's writer (first in, first committed) before the sink
		// queues a delivery: after kill -9 a stored delivery never exists
		// without the state change that made it, so a restart cannot fire
		// the same change again.
		e.handOff()
	}
	for _, ev := range out.events {
		e.sink.AlertEvent(ev)
	}
	out.journal, out.events = out.journal[:0], out.events[:0]
}

// onSamples evaluates a committed batch of one host's samples.
func (e *Evaluator) onSamples(ev store.SampleEvent) {
	if e.stopped.Load() {
		return
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	rs := e.rules
	if !rs.watched(ev.Host, e.dyn) {
		return
	}
	hs := e.hostState(ev.Host, true)
	now := e.now()
	var out outbox
	hs.mu.Lock()
	for i := range ev.Samples {
		ps := &ev.Samples[i]
		if ps.Plugin == heartbeatPlugin || len(ps.Paths) != len(ps.Values) {
			continue
		}
		pm := hs.plugins[ps.Plugin]
		if pm == nil {
			pm = map[string]*state{}
			hs.plugins[ps.Plugin] = pm
		}
		for j, p := range ps.Paths {
			v := ps.Values[j]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				// Ingestion only accepts finite numbers; never evaluate anything else.
				continue
			}
			st, seen := pm[p]
			if !seen {
				st = e.resolveState(rs, hs, ps.Plugin+"."+p, ps.Timestamp, now)
				if st != nil || len(pm) < maxPathsPerPlugin {
					pm[p] = st
				}
			}
			if st != nil {
				e.observe(rs, hs, st, v, ps.Timestamp, now, &out)
			}
		}
	}
	e.release(hs, &out)
}

// resolveState returns the existing state of a metric or creates one at OK
// when a rule matches it; nil when no rule does. hs must be locked.
func (e *Evaluator) resolveState(rs *ruleset, hs *hostState, metric string, ts float64, now time.Time) *state {
	if st := hs.metrics[metric]; st != nil {
		return st
	}
	r := rs.resolve(hs.name, metric)
	if r == nil {
		return nil
	}
	st := &state{host: hs.name, metric: metric, hs: hs, rule: r, level: config.LevelOK, since: ts, lastSeen: now}
	hs.metrics[metric] = st
	return st
}

// ObserveHeartbeat evaluates a heartbeat state change of a watched host.
// A change of family "ipv4" or "ipv6" to UP, LATE or DOWN sets
// heartbeat.ipv4 / heartbeat.ipv6: OK, alerting.heartbeat_late (OK when
// "none") or alerting.heartbeat_down. A change of the host (Family "") to
// UP, DEGRADED or DOWN sets heartbeat.host: OK, OK or
// alerting.heartbeat_down; a DEGRADED host is told through its lost family.
// A family alert is not notified while heartbeat.host is not OK
// (inhibition), and its first notification waits FamilySettle. Other
// states are ignored. Heartbeat metrics change level at once and never go
// stale. A dynamic host must already be known to the store (EnsureHost) to
// be recognised as dynamic.
func (e *Evaluator) ObserveHeartbeat(ch heartbeat.Change) {
	if e.stopped.Load() {
		return
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	rs := e.rules
	path, level, value, ok := heartbeatLevel(rs.cfg.Alerting, string(ch.Family), string(ch.To))
	if !ok {
		e.log.Debug("ignoring heartbeat state", "host", ch.Host, "family", ch.Family, "state", ch.To)
		return
	}
	if !rs.watched(ch.Host, e.dyn) {
		return
	}
	hs := e.hostState(ch.Host, true)
	now := e.now()
	at := ch.Time
	if at.IsZero() {
		at = now
	}
	ts := toUnix(at)
	var out outbox
	hs.mu.Lock()
	st := hs.metrics[path]
	if st == nil {
		st = &state{host: ch.Host, metric: path, hs: hs, heartbeat: true, hb: &hbInfo{}, level: config.LevelOK, since: ts}
		hs.metrics[path] = st
	}
	st.lastValue, st.lastCheck, st.lastSeen, st.detail = value, ts, now, string(ch.To)
	st.hb.seen, st.hb.reason, st.hb.observed = ch.LastSeen, ch.Reason, true
	if ch.Family == "" {
		st.hb.fams = famNames(ch.Families)
	}
	st.valueDirty = true
	if level != st.level {
		e.setLevel(rs, st, level, ts, now, string(ch.To), &out)
	}
	e.release(hs, &out)
}

// runHeld decides the family alerts whose settle delay has passed (see
// FamilySettle). The background loop calls it every second.
func (e *Evaluator) runHeld(now time.Time) {
	e.heldMu.Lock()
	var due []store.AlertKey
	for k, t := range e.held {
		if !now.Before(t) {
			due = append(due, k)
			delete(e.held, k)
		}
	}
	e.heldMu.Unlock()
	if len(due) == 0 {
		return
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	rs := e.rules
	var out outbox
	for _, k := range due {
		hs := e.hostState(k.Host, false)
		if hs == nil {
			continue
		}
		hs.mu.Lock()
		if st := hs.metrics[k.Metric]; st != nil {
			if inhibited(st) {
				e.log.Debug("family alert inhibited by heartbeat.host", "host", st.host, "metric", st.metric)
			}
			e.due(rs, st, now, &out)
		}
		e.release(hs, &out)
	}
}

// Sweep applies the time-driven rules as of now: expired silences end,
// metrics without data for alerting.stale_after become UNKNOWN, metrics
// UNKNOWN for alerting.forget_after are forgotten, flapping metrics stable
// for a flap window settle, and notifications that are due (renotify, or a
// change held back by a silence that ended) are sent. The background loop
// calls it; tests call it with their own clock.
func (e *Evaluator) Sweep(now time.Time) {
	e.expireSilences(now)
	e.runHeld(now)
	e.mu.RLock()
	defer e.mu.RUnlock()
	rs := e.rules
	a := rs.cfg.Alerting
	var out outbox
	forgotten := 0
	for _, hs := range e.hostList() {
		hs.mu.Lock()
		for _, st := range hs.metrics {
			if !st.heartbeat && !st.clock && a.StaleAfter > 0 && st.level != config.LevelUnknown && now.Sub(st.lastSeen) >= a.StaleAfter {
				st.resetStreaks()
				e.setLevel(rs, st, config.LevelUnknown, toUnix(now), now, "no data for "+a.StaleAfter.String(), &out)
			}
			if forgettable(a, st, now) {
				e.forget(hs, st, &out)
				forgotten++
				continue
			}
			if st.flapping && now.Sub(st.lastChange) >= a.FlapWindow {
				e.settle(rs, st, now, &out)
			}
			e.due(rs, st, now, &out)
		}
		e.release(hs, &out)
	}
	if forgotten > 0 {
		e.log.Info("forgot alert states without data", "count", forgotten, "forget_after", a.ForgetAfter)
	}
}

// forgettable reports whether st has been UNKNOWN for alerting.forget_after
// (counted from the level change, which is persisted, so a restart does not
// restart the count). Heartbeat metrics and the clock offset are never
// forgotten.
func forgettable(a config.Alerting, st *state, now time.Time) bool {
	return !st.heartbeat && !st.clock && a.ForgetAfter > 0 && st.level == config.LevelUnknown &&
		now.Sub(fromUnix(st.since)) >= a.ForgetAfter
}

// forget drops a state from memory (its metrics and its path cache entry,
// so a later sample starts a fresh state) and, through the pending queue,
// from the store. It is journaled, never notified. hs must be locked.
func (e *Evaluator) forget(hs *hostState, st *state, out *outbox) {
	delete(hs.metrics, st.metric)
	for plugin, pm := range hs.plugins {
		if path, ok := strings.CutPrefix(st.metric, plugin+"."); ok && pm[path] == st {
			delete(pm, path)
		}
	}
	last := st.lastCheck
	if last == 0 {
		last = st.since
	}
	out.journal = append(out.journal, journalLine{st.host, fmt.Sprintf("%s %s forgotten (no data since %s)",
		st.host, st.metric, fromUnix(last).UTC().Format(time.RFC3339))})
	e.log.Debug("alert state forgotten", "host", st.host, "metric", st.metric)
	e.episodesGone([]store.AlertKey{{Host: st.host, Metric: st.metric}}, toUnix(e.now()))
	e.pendMu.Lock()
	e.pending = append(e.pending, pendingOp{row: store.AlertState{Host: st.host, Metric: st.metric}, del: true})
	e.pendMu.Unlock()
}

// Reload swaps in a new configuration: every metric's last value is
// re-evaluated against the new rules at once (ignoring `for`), states no
// rule matches any more and states of hosts no longer watched are dropped,
// and metrics newly matched get a state from their latest stored sample.
func (e *Evaluator) Reload(cfg *config.Config) error {
	rs, err := compileRules(cfg)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules = rs
	e.reconcile(rs, e.now())
	return nil
}

// reconcile re-evaluates every state against rs. e.mu must be held for
// writing.
func (e *Evaluator) reconcile(rs *ruleset, now time.Time) {
	var out outbox
	var dropped []store.AlertKey
	e.hmu.Lock()
	for name, hs := range e.hosts {
		if !rs.watched(name, e.dyn) {
			for m := range hs.metrics {
				dropped = append(dropped, store.AlertKey{Host: name, Metric: m})
			}
			delete(e.hosts, name)
		}
	}
	e.hmu.Unlock()
	watched := map[string]bool{}
	for name := range rs.cfg.Watchhosts {
		watched[name] = true
	}
	if rs.cfg.WatchDynamic {
		for _, h := range e.st.Hosts() {
			if h.Dyn {
				watched[h.Name] = true
			}
		}
	}
	for name := range watched {
		hs := e.hostState(name, true)
		hs.mu.Lock()
		plugins := hs.pluginNames()
		hs.plugins = map[string]map[string]*state{}
		for m, st := range hs.metrics {
			if st.heartbeat {
				if _, level, _, ok := heartbeatLevel(rs.cfg.Alerting, familyOf(m), st.detail); ok && level != st.level {
					e.setLevel(rs, st, level, toUnix(now), now, st.detail, &out)
				}
				continue
			}
			r := rs.ruleFor(name, m)
			if r == nil {
				delete(hs.metrics, m)
				dropped = append(dropped, store.AlertKey{Host: name, Metric: m})
				continue
			}
			st.rule = r
			st.resetStreaks()
			if st.level != config.LevelUnknown {
				e.jump(rs, st, toUnix(now), now, &out)
			}
		}
		// Metrics the new rules match for the first time start from the
		// latest sample the store holds, unless it is already stale.
		for _, smp := range e.latest(name, plugins) {
			if a := rs.cfg.Alerting.StaleAfter; a > 0 && now.Sub(fromUnix(smp.Timestamp)) >= a {
				continue
			}
			for i, p := range smp.Paths {
				m := smp.Plugin + "." + p
				v := smp.Values[i]
				if hs.metrics[m] != nil || math.IsNaN(v) || math.IsInf(v, 0) {
					continue
				}
				st := e.resolveState(rs, hs, m, smp.Timestamp, now)
				if st == nil {
					continue
				}
				st.lastValue, st.lastCheck = v, smp.Timestamp
				st.valueDirty = true
				e.jump(rs, st, smp.Timestamp, now, &out)
			}
		}
		if len(hs.metrics) == 0 {
			e.hmu.Lock()
			delete(e.hosts, name)
			e.hmu.Unlock()
		}
		e.release(hs, &out)
	}
	if len(dropped) > 0 {
		e.episodesGone(dropped, toUnix(now))
		e.pendMu.Lock()
		for _, k := range dropped {
			e.pending = append(e.pending, pendingOp{row: store.AlertState{Host: k.Host, Metric: k.Metric}, del: true})
		}
		e.pendMu.Unlock()
		e.log.Info("dropped alert states no rule matches any more", "count", len(dropped))
	}
}

// pluginNames returns the plugins a host is known to report, from the
// path cache and the metric paths of its states. hs must be locked.
func (hs *hostState) pluginNames() []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if p != heartbeatPlugin && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for p := range hs.plugins {
		add(p)
	}
	for m := range hs.metrics {
		p, _, _ := strings.Cut(m, ".")
		add(p)
	}
	return out
}

// latest returns the newest stored sample of each plugin of a host: of the
// given plugins, or, when none are known (a host the evaluator has not
// seen since it started), of every plugin the store has for it.
func (e *Evaluator) latest(host string, plugins []string) []store.PluginSample {
	var out []store.PluginSample
	if len(plugins) == 0 {
		for p, sum := range e.st.Plugins(host) {
			if p != heartbeatPlugin {
				out = append(out, store.PluginSample{Plugin: p, Sample: sum.Latest})
			}
		}
		return out
	}
	for _, p := range plugins {
		if l, err := e.st.Latest(host, p, 1); err == nil && len(l) == 1 {
			out = append(out, store.PluginSample{Plugin: p, Sample: l[0]})
		}
	}
	return out
}

func familyOf(metric string) string {
	switch metric {
	case HeartbeatIPv4:
		return "ipv4"
	case HeartbeatIPv6:
		return "ipv6"
	}
	return ""
}

// load restores persisted silences and states and reconciles them with the
// current configuration.
func (e *Evaluator) load(ctx context.Context) error {
	sils, err := e.st.Silences(ctx)
	if err != nil {
		return fmt.Errorf("load silences: %w", err)
	}
	now := e.now()
	e.silMu.Lock()
	for _, sl := range sils {
		if c, err := compileSilence(sl); err == nil {
			e.silences = append(e.silences, c)
		} else {
			e.log.Warn("ignoring stored silence", "id", sl.ID, "error", err)
		}
	}
	e.silMu.Unlock()
	rows, err := e.st.AlertStates(ctx)
	if err != nil {
		return fmt.Errorf("load alert states: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range rows {
		hs := e.hostState(a.Host, true)
		st := &state{
			host: a.Host, metric: a.Metric, hs: hs, level: a.Level, since: a.Since,
			lastValue: a.LastValue, lastCheck: a.LastCheck, lastSeen: now,
			count: a.NotificationCount, notifiedLevel: a.NotifiedLevel,
			ack: a.Acknowledged, ackBy: a.AckBy, flapping: a.Flapping, detail: a.Detail,
			heartbeat: familyOf(a.Metric) != "" || a.Metric == HeartbeatHost,
			clock:     a.Metric == HeartbeatClockOffset,
			episode:   a.EpisodeStart,
		}
		if a.LastNotified > 0 {
			st.lastNotified = fromUnix(a.LastNotified)
		}
		st.lastKind, st.lastPrev, st.lastEpisode = a.LastKind, a.PrevLevel, a.LastEpisode
		if st.flapping {
			st.lastChange, st.flapLevel = now, st.notifiedLevel
		}
		if st.heartbeat {
			st.hb = &hbInfo{}
		}
		if rankOf(st.level) == rankUnknown && st.level != config.LevelUnknown {
			st.level = config.LevelUnknown
		}
		switch {
		case st.level == config.LevelOK:
			st.episode = 0
		case st.episode == 0:
			st.episode = st.since // stored before episodes were
		}
		if st.level != config.LevelOK {
			st.worst = st.level
		}
		hs.metrics[a.Metric] = st
	}
	if err := e.resumeEpisodes(ctx, now); err != nil {
		return err
	}
	e.reconcile(e.rules, now)
	e.replay(now)
	e.log.Debug("alert states loaded", "states", len(rows), "silences", len(sils))
	return nil
}

// flush hands dirty states to the store; all adds states whose value
// changed, wait waits for the commit.
func (e *Evaluator) flush(ctx context.Context, all, wait bool) error {
	if all {
		// Queued like any snapshot, under the host lock, so they keep
		// their place after older snapshots of the same state.
		for _, hs := range e.hostList() {
			hs.mu.Lock()
			for _, st := range hs.metrics {
				if st.valueDirty {
					e.save(st)
				}
			}
			hs.mu.Unlock()
		}
	}
	// flushMu keeps the store's queue in snapshot order across flushes.
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	e.pendMu.Lock()
	ops := e.pending
	e.pending = nil
	e.pendMu.Unlock()
	// Only the newest operation of each state is written.
	last := make(map[store.AlertKey]int, len(ops))
	for i, op := range ops {
		last[store.AlertKey{Host: op.row.Host, Metric: op.row.Metric}] = i
	}
	var rows []store.AlertState
	var del []store.AlertKey
	for i, op := range ops {
		k := store.AlertKey{Host: op.row.Host, Metric: op.row.Metric}
		switch {
		case last[k] != i:
		case op.del:
			del = append(del, k)
		default:
			rows = append(rows, op.row)
		}
	}
	if wait {
		return e.st.SaveAlertStatesSync(ctx, rows, del)
	}
	// In slices, so the store's writer can commit ingestion in between.
	for len(rows) > flushChunk {
		e.st.SaveAlertStates(rows[:flushChunk], nil)
		rows = rows[flushChunk:]
	}
	e.st.SaveAlertStates(rows, del)
	return nil
}

// handOff queues every pending snapshot with the store's writer without
// waiting for the commit.
func (e *Evaluator) handOff() {
	if err := e.flush(context.Background(), false, false); err != nil {
		e.log.Error("saving alert states failed", "error", err)
	}
}

// Flush writes every state to the store and waits for the commit.
func (e *Evaluator) Flush(ctx context.Context) error { return e.flush(ctx, true, true) }

func toUnix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func fromUnix(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// Status is the view of one alert state served by the API.
type Status struct {
	Host              string
	MetricPath        string
	Level             string
	Since             float64 // unix seconds
	LastValue         float64
	LastCheck         float64 // unix seconds
	NotificationCount int
	Acknowledged      bool
	AcknowledgedBy    string
	// SilencedUntil is the end of the longest active silence matching the
	// state (unix seconds), 0 when none does.
	SilencedUntil float64
	Flapping      bool
	// EpisodeStart is when the metric left OK (unix seconds); 0 while OK.
	EpisodeStart float64
	// Text says the state in words, like Event.Text.
	Text string
}

// HostAlerts returns every evaluated metric of a host, sorted by metric
// path; empty when the host is not evaluated.
func (e *Evaluator) HostAlerts(host string) []Status {
	hs := e.hostState(host, false)
	out := []Status{}
	if hs == nil {
		return out
	}
	now := e.now()
	hs.mu.Lock()
	for _, st := range hs.metrics {
		out = append(out, e.status(st, now))
	}
	hs.mu.Unlock()
	e.addSilences(out, now)
	sort.Slice(out, func(i, j int) bool { return out[i].MetricPath < out[j].MetricPath })
	return out
}

// ActiveAlerts returns every state that is not OK, most severe first, then
// oldest first.
func (e *Evaluator) ActiveAlerts() []Status {
	out := []Status{}
	now := e.now()
	for _, hs := range e.hostList() {
		hs.mu.Lock()
		for _, st := range hs.metrics {
			if st.level != config.LevelOK {
				out = append(out, e.status(st, now))
			}
		}
		hs.mu.Unlock()
	}
	e.addSilences(out, now)
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ra, rb := config.LevelRank(a.Level), config.LevelRank(b.Level); ra != rb {
			return ra > rb
		}
		if a.Since != b.Since {
			return a.Since < b.Since
		}
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		return a.MetricPath < b.MetricPath
	})
	return out
}

// EvaluatedHosts returns the hosts being evaluated: every watchhosts entry,
// plus dynamic hosts the store knows when watch_dynamic is on. Sorted.
func (e *Evaluator) EvaluatedHosts() []string {
	e.mu.RLock()
	cfg := e.rules.cfg
	e.mu.RUnlock()
	var out []string
	for name := range cfg.Watchhosts {
		out = append(out, name)
	}
	if cfg.WatchDynamic {
		for _, h := range e.st.Hosts() {
			if _, ok := cfg.Watchhosts[h.Name]; !ok && h.Dyn {
				out = append(out, h.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Evaluated reports whether a host is being evaluated.
func (e *Evaluator) Evaluated(host string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.rules.watched(host, e.dyn)
}

// Ack acknowledges a host's non-OK metric on behalf of user by: renotify
// stops until the level changes. It returns ErrUnknownMetric or
// ErrNotAlerting when there is nothing to acknowledge.
func (e *Evaluator) Ack(ctx context.Context, host, metric, by string) (Status, error) {
	hs := e.hostState(host, false)
	if hs == nil {
		return Status{}, ErrUnknownMetric
	}
	hs.mu.Lock()
	st := hs.metrics[metric]
	if st == nil {
		hs.mu.Unlock()
		return Status{}, ErrUnknownMetric
	}
	if st.level == config.LevelOK {
		hs.mu.Unlock()
		return Status{}, ErrNotAlerting
	}
	st.ack, st.ackBy = true, by
	e.episodeAcked(st)
	e.save(st)
	view := e.status(st, e.now())
	hs.mu.Unlock()
	// Through the pending queue, so an older queued row of this state can
	// never overwrite the acknowledgement.
	if err := e.flush(ctx, false, true); err != nil {
		return Status{}, err
	}
	e.st.Journal(host, fmt.Sprintf("%s %s %s acknowledged by %s", host, metric, view.Level, who(by)))
	s := []Status{view}
	e.addSilences(s, e.now())
	return s[0], nil
}
