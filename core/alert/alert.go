// Package alert evaluates every ingested sample against the configured
// thresholds and the heartbeat state of every watched host, keeps one
// alert state per (host, metric path), persists those states in the store,
// and tells a Sink when something should be notified.
//
// Data flows one way: committed samples arrive through ObserveSamples (the
// store feeds them, see store.FeedAlerts), the heartbeat tracker reports
// state changes (ObserveHeartbeat), and the
// evaluator hands Events to its Sink (the notification dispatcher). The API
// reads states and manages acknowledgements and silences through the
// exported methods.
//
// Lifecycle: New, then Start (loads persisted states and silences from the
// Repository, then evaluates samples and starts the sweep), Reload on SIGHUP, Stop
// before the store is closed.
package alert

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/glob"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/sdk/level"
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
	// KindAcknowledged: a user acknowledged the problem (Event.AckBy);
	// reminders stop until the level changes.
	KindAcknowledged = "acknowledged"
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
	Level         level.Level
	PreviousLevel level.Level
	// Value is the last value (for heartbeat metrics 0 UP, 1 LATE or
	// DEGRADED, 2 DOWN); Detail says it in words ("85.5", "DOWN",
	// "no data for 5m0s").
	Value  float64
	Detail string
	// Since is when the current level began; Time when the event was made.
	Since time.Time
	Time  time.Time
	// Kind is KindChange, KindRenotify, KindRecovery, KindFlapping or
	// KindAcknowledged.
	Kind string
	// Threshold is the configured limit of the level (for a recovery the
	// WARNING limit, else the CRITICAL one) and Comparison its operator,
	// ">=" or "<="; Comparison is "" when no threshold applies
	// (heartbeats, UNKNOWN, a metric without a rule).
	Threshold  float64
	Comparison string
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
	// AckBy is who acknowledged the problem ("" when nobody did, or in
	// open mode).
	AckBy string
	// Batch, for a clustered leader, is the fenced transaction the state
	// change behind the event commits in: a sink that stores something
	// for the event (the dispatcher's outbox rows) adds it to Batch, so
	// it commits with the change or not at all. The evaluator commits it
	// once every sink has seen the event; sinks must not keep it. nil for
	// a single daemon and for events without a state write.
	Batch *store.Batch `json:"-"`
}

// Sink receives notification events. AlertEvent is called from the
// ingestion path, the heartbeat tracker and the sweep, with events of one
// (host, metric) in order; it must not block and must not call back into
// the Evaluator.
type Sink interface {
	AlertEvent(Event)
}

// fanout hands each event to several sinks in order.
type fanout []Sink

// AlertEvent calls every sink.
func (f fanout) AlertEvent(ev Event) {
	for _, s := range f {
		s.AlertEvent(ev)
	}
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

	repo Repository
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

	windows atomic.Pointer[[]window] // maintenance windows, swapped by Reload

	// emitMu orders sink calls and journal lines: it is taken before the
	// host lock that produced them is released.
	emitMu sync.Mutex

	// Lock order: e.mu, then a host's mu, then emitMu, then flushMu, then
	// pendMu or heldMu. flushMu is never taken with a host locked.
	flushMu sync.Mutex
	pendMu  sync.Mutex
	pending []pendingOp // state snapshots and deletions, oldest first
	// waiting holds, on a clustered evaluator, the events decided after
	// TakeOver while the node had not opened its fence yet: they go out
	// with the next flush, in the batch that writes their states
	// (sendEvents). Guarded by pendMu.
	waiting []Event

	hist episodes // open alert episodes (history.go)

	active activeIndex // the non-OK states in list order (active.go)

	// held indexes the family alerts whose first notification waits for
	// FamilySettle, with when it is due, so the loop visits only those.
	heldMu sync.Mutex
	held   map[Key]time.Time

	startedAt time.Time // evaluator clock at Start

	// leader is the cluster's fence (leader.go); nil for a single daemon.
	// follower is set while a clustered evaluator does not lead: it then
	// evaluates, sweeps and writes nothing. leadMu orders TakeOver and
	// StepDown.
	leader   store.FenceFunc
	follower atomic.Bool
	taking   atomic.Bool // within TakeOver: writes wait for the fence
	leadMu   sync.Mutex
	// leadGen counts takeovers, step-downs and reloads of a follower: a
	// mirror read begun before one is not applied (mirror.go).
	leadGen atomic.Uint64
	mirror  mirror

	// ready is set once Start has loaded the persisted states: samples
	// before it are not evaluated (they would race with the load).
	started, ready, stopped atomic.Bool
	cancel                  context.CancelFunc
	done                    chan struct{}
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
	Silence
	host, metric glob.Pattern
}

// New returns an evaluator for cfg keeping its states in repo and handing
// every event to each of sinks, in the order given (nil sinks are
// skipped): in the daemon the live feed, then the notification dispatcher.
// Nothing runs until Start.
func New(cfg *config.Config, repo Repository, log hclog.Logger, sinks ...Sink) (*Evaluator, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	var sink Sink = SinkFunc(func(Event) {})
	var fan fanout
	for _, s := range sinks {
		if s != nil {
			fan = append(fan, s)
		}
	}
	switch len(fan) {
	case 0:
	case 1:
		sink = fan[0]
	default:
		sink = fan
	}
	rs, err := compileRules(cfg)
	if err != nil {
		return nil, err
	}
	e := &Evaluator{
		Now:          time.Now,
		FamilySettle: DefaultFamilySettle,
		repo:         repo,
		log:          log.Named("alert"),
		sink:         sink,
		rules:        rs,
		hosts:        map[string]*hostState{},
		held:         map[Key]time.Time{},
		done:         make(chan struct{}),
	}
	if err := e.setWindows(cfg); err != nil {
		return nil, err
	}
	return e, nil
}

// Start loads persisted states and silences, re-evaluates them against the
// current rules, starts evaluating ObserveSamples and starts the sweep
// (staleness, renotify, flapping, silence expiry, persistence) until ctx is
// done or Stop is called. Call it once, before ingestion starts.
func (e *Evaluator) Start(ctx context.Context) error { return e.start(ctx, true) }

// start is Start; tests pass loop false and drive Sweep with their clock.
func (e *Evaluator) start(ctx context.Context, loop bool) error {
	if !e.started.CompareAndSwap(false, true) {
		return errors.New("alert: evaluator already started")
	}
	e.startedAt = e.now()
	// A clustered evaluator loads at TakeOver: a follower holds nothing.
	if e.leader == nil {
		if err := e.load(ctx); err != nil {
			return err
		}
	}
	e.ready.Store(true)
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
			if e.follower.Load() {
				continue // the leader sweeps
			}
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
func (e *Evaluator) dyn(host string) bool { return e.repo.IsDynamicHost(host) }

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

func toUnix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func fromUnix(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
