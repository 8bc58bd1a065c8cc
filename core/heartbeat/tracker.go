package heartbeat

import (
	"context"
	"errors"
	"hash/maphash"
	"math"
	"math/bits"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hbdmon/hbd/core/heartbeat/record"
	"github.com/hbdmon/hbd/core/store"
)

// Family names an address family. The empty Family stands for the host as a
// whole in a Change.
type Family string

// Address families a host can send heartbeats over.
const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

// families indexes the per-family arrays of the tracker and the client.
var families = [2]Family{IPv4, IPv6}

func familyIndex(f Family) (int, bool) {
	switch f {
	case IPv4:
		return 0, true
	case IPv6:
		return 1, true
	}
	return 0, false
}

// State is the state of a connection (one host and family) or of a host.
// The empty State means "never heard from".
type State string

// Connection and host states.
const (
	// StateUp: heartbeats arrive within 1.5 times the agent's interval
	// (connection); every family the host has used is UP or LATE (host).
	StateUp State = "UP"
	// StateLate: no heartbeat for more than 1.5 times the agent's interval,
	// but not yet for the host's timeout. Connections only.
	StateLate State = "LATE"
	// StateDown: no heartbeat for the host's timeout (connection); every
	// family the host has used is DOWN (host).
	StateDown State = "DOWN"
	// StateDegraded: some family the host has used is DOWN and another is
	// not. Hosts only.
	StateDegraded State = "DEGRADED"
)

// Tracker defaults and fixed parameters.
const (
	// DefaultTimeout is the host timeout when TrackerConfig.Timeout is nil
	// or returns 0.
	DefaultTimeout = 30 * time.Second
	// DefaultSweepInterval is how often the sweeper looks for late and
	// down connections unless TrackerConfig.SweepInterval says otherwise.
	DefaultSweepInterval = time.Second
	// LossWindow is the number of most recent expected sequence numbers
	// loss_percent is computed over.
	LossWindow = 100
	// latencyEWMAWeight is the weight of a new RTT report in latency_avg_ms.
	latencyEWMAWeight = 0.2
	// lateFactor times the agent's interval without a heartbeat makes a
	// connection LATE.
	lateFactor = 1.5
	// minTimeoutIntervals: a connection is never declared DOWN before this
	// many agent intervals have passed, whatever the configured timeout, so a
	// timeout shorter than the agent's interval cannot make it flap.
	minTimeoutIntervals = 2
	trackerShards       = 16
)

// errReplay is returned by observe for a sequence number that is not above
// the last one accepted for the session and family, or a session older than
// the current one.
var errReplay = errors.New("heartbeat: replayed or reordered sequence number")

// Change is one state transition, reported through TrackerConfig.OnChange.
type Change struct {
	// Host is the host name.
	Host string
	// Family is IPv4 or IPv6 for a connection's change, "" for the host's.
	Family Family
	// From is the previous state; "" on the first heartbeat of the host or
	// family.
	From State
	// To is the new state.
	To State
	// Time is when the tracker noticed the change.
	Time time.Time
	// Dynamic is true for hosts registered with an enroll-derived key.
	Dynamic bool
	// Addr is the connection's last remote address; zero for host changes.
	Addr netip.AddrPort
	// LastSeen is when the last heartbeat was accepted: of the family for a
	// connection's change, the newest of the host's families for a host's
	// change. Zero when none was accepted since the host was first expected
	// (a host that never reported). It may come from the store (a time
	// before the daemon's restart).
	LastSeen time.Time
	// Families lists the address families the host uses (or, after a
	// restart, used before it), IPv4 first; set on host changes.
	Families []Family
	// Reason says why, when more is known than silence: for example
	// "clock 6m12s ahead of hbd" when the host's heartbeats are refused for
	// clock skew. Empty otherwise.
	Reason string
	// Remote names the daemon of the cluster whose shared liveness caused
	// the change (a heartbeat it accepted, or its DOWN decision as the
	// leader); "" when this daemon's own heartbeat or sweep did.
	Remote string
	// Follower is true when this daemon was not the cluster's leader when
	// the change was made: the change updates its own view (API, feed)
	// only, and the leader records it (journal, state history), so each
	// change is written once. False without a cluster.
	Follower bool
	// Fence is the leader's fence when the change was made (the zero
	// Fence without a cluster): the leader's write of it must check it in
	// its own transaction (store.Fence.Check).
	Fence store.Fence
}

// TrackerConfig configures a Tracker. Every field is optional.
type TrackerConfig struct {
	// Timeout returns the host's heartbeat timeout: a connection without a
	// heartbeat for that long is DOWN. Nil, or a result <= 0, means
	// DefaultTimeout. It is called by the sweeper for every host on every
	// sweep, so it picks up reloaded configuration; it must be cheap and
	// safe for concurrent use.
	Timeout func(host string) time.Duration
	// OnChange receives every state change. Calls for one host are
	// serialized and arrive in order; calls for different hosts may run
	// concurrently. It may call Snapshot or Hosts, but must not call Forget
	// for the host it is being told about, and should return quickly: it
	// runs on the packet path or the sweeper.
	OnChange func(Change)
	// SweepInterval is how often Run checks for late and down connections;
	// DefaultSweepInterval when 0.
	SweepInterval time.Duration
	// OnClock receives the estimated clock offset of a host (positive: the
	// host's clock is ahead of the tracker's), smoothed over its last
	// heartbeats, and whether its heartbeats are being refused for clock
	// skew. It is called at most every ClockReportEvery per host, sooner
	// when the offset moved by more than ClockReportMove or the refusal
	// started or ended. Calls for one host are serialized; a report never
	// overtakes a newer one. Like OnChange it runs on the packet path or the
	// sweeper and must return quickly.
	OnClock func(host string, offset time.Duration, refused bool, at time.Time)
	// Leader says whether this daemon leads the cluster: only the leader
	// declares connections and hosts DOWN for silence, and its changes
	// carry its fence. Nil: a single daemon, always the leader. See
	// SetLeader and HoldTimeouts.
	Leader store.FenceFunc
	// Shared, when set, shares liveness and agent sessions with the other
	// daemons of a cluster (see Share).
	Shared *Shared
}

// Tracker holds the connection state of every host heard from or expected
// (Expect). It is safe
// for concurrent use; hosts are spread over shards, and each host has its own
// lock. The Server feeds it; Run moves silent connections to LATE and DOWN.
type Tracker struct {
	timeout  func(string) time.Duration
	onChange func(Change)
	onClock  func(string, time.Duration, bool, time.Time)
	sweep    time.Duration
	seed     maphash.Seed
	shards   [trackerShards]trackerShard

	leader    atomic.Pointer[store.FenceFunc]
	shared    atomic.Pointer[Shared]
	holdUntil atomic.Int64 // unix nanoseconds before which no DOWN is declared (HoldTimeouts)
}

type trackerShard struct {
	mu    sync.RWMutex
	hosts map[string]*hostEntry
}

// hostEntry is one host's state. mu guards everything but name, which never
// changes. emitMu serializes OnChange calls for the host (see emit), clockMu
// the OnClock calls (see reportClock); neither is acquired while mu is
// held, so the callbacks may call Snapshot.
type hostEntry struct {
	mu      sync.Mutex
	emitMu  sync.Mutex
	pending []Change // changes not yet delivered to OnChange; guarded by mu
	name    string
	dynamic bool
	state   State
	since   time.Time
	conns   [2]conn

	// expected: the host must be heard from by from plus its timeout
	// (Expect). heard: a heartbeat was accepted since the entry was made.
	// silent: declared DOWN without any family ever used.
	expected, heard, silent bool
	from                    time.Time

	clock clockEstimate
	// refusedAt is when the last heartbeat refused for clock skew arrived
	// (zero: none refused since the last accepted one); refusedOffset is
	// that heartbeat's offset.
	refusedAt     time.Time
	refusedOffset time.Duration

	clockMu        sync.Mutex
	clockDelivered uint64 // seq of the last report given to OnClock; guarded by clockMu
}

// conn is one family of one host.
type conn struct {
	state    State // "" until the first heartbeat
	since    time.Time
	addr     netip.AddrPort
	lastSeen time.Time
	interval time.Duration
	session  uint64
	lastSeq  uint64
	lastSent int64 // agent clock of the last accepted heartbeat
	rtt      time.Duration
	rttAvg   float64 // nanoseconds, EWMA
	hasRTT   bool
	loss     lossWindow
	// persisted: the host used this family before the daemon restarted
	// (Expect); while state is "" the family is awaited.
	persisted bool
	// refSession and refSeq identify the newest heartbeat refused for
	// clock skew, so a replay of it is not counted again.
	refSession, refSeq uint64
	// claimed: the shared store granted this daemon the current session
	// (always false without Shared).
	claimed bool
	// remote names the daemon the newest heartbeat was accepted by when
	// that was not this one (shared liveness); remoteLoss is the loss it
	// saw.
	remote     string
	remoteLoss float64
	// advSession and advancedAt: the session whose shared counter this
	// daemon last advanced, and when (Shared.touch).
	advSession uint64
	advancedAt time.Time
}

// NewTracker returns an empty Tracker. Start its sweeper with Run.
func NewTracker(cfg TrackerConfig) *Tracker {
	t := &Tracker{
		timeout:  cfg.Timeout,
		onChange: cfg.OnChange,
		onClock:  cfg.OnClock,
		sweep:    cfg.SweepInterval,
		seed:     maphash.MakeSeed(),
	}
	if t.sweep <= 0 {
		t.sweep = DefaultSweepInterval
	}
	for i := range t.shards {
		t.shards[i].hosts = make(map[string]*hostEntry)
	}
	t.SetLeader(cfg.Leader)
	if cfg.Shared != nil {
		t.Share(cfg.Shared)
	}
	return t
}

// SetLeader replaces the leader check (TrackerConfig.Leader); nil makes
// the tracker a single daemon's again. Safe to call at any time.
func (t *Tracker) SetLeader(fn store.FenceFunc) {
	if fn == nil {
		t.leader.Store(nil)
		return
	}
	t.leader.Store(&fn)
}

// Share makes the tracker share its liveness and agent sessions through
// sh (and merge the other daemons' into its own view): from then on a
// heartbeat of a session this daemon has not claimed is refused while
// the claim is asked for. Call it before the server serves; sh's Run
// does the store work.
func (t *Tracker) Share(sh *Shared) {
	sh.tracker.Store(t)
	t.shared.Store(sh)
}

// HoldTimeouts keeps the sweep from declaring anything DOWN for d from
// now: a new leader calls it with the longest heartbeat timeout, so the
// hosts it had not been watching closely get one whole timeout to be
// heard (through the shared liveness) before a failover turns into an
// outage storm. LATE is still shown.
func (t *Tracker) HoldTimeouts(d time.Duration) {
	t.holdUntil.Store(time.Now().Add(d).UnixNano())
}

func (t *Tracker) leading() (store.Fence, bool) {
	if p := t.leader.Load(); p != nil {
		return p.Leading()
	}
	return store.Fence{}, true
}

// slack is added to the LATE and DOWN limits when the liveness is shared:
// another daemon's heartbeat reaches this one's view up to about two
// flush intervals late.
func (t *Tracker) slack() time.Duration {
	if sh := t.shared.Load(); sh != nil {
		return 2 * sh.flush
	}
	return 0
}

// Run sweeps every SweepInterval, moving connections that stopped sending to
// LATE and then DOWN, until ctx is done.
func (t *Tracker) Run(ctx context.Context) {
	tick := time.NewTicker(t.sweep)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			t.Sweep(now)
		}
	}
}

// Sweep applies the LATE and DOWN rules as of now to every host once. Run
// calls it on its ticker; it is exported for callers that drive time
// themselves.
func (t *Tracker) Sweep(now time.Time) {
	_, lead := t.leading()
	mayDown := lead && now.UnixNano() >= t.holdUntil.Load()
	slack := t.slack()
	shared := t.shared.Load()
	var batch []*hostEntry
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		batch = batch[:0]
		for _, e := range sh.hosts {
			batch = append(batch, e)
		}
		sh.mu.RUnlock()
		for _, e := range batch {
			t.sweepHost(e, now, mayDown, slack, shared)
		}
	}
}

func (t *Tracker) hostTimeout(host string) time.Duration {
	if t.timeout != nil {
		if d := t.timeout(host); d > 0 {
			return d
		}
	}
	return DefaultTimeout
}

// sweepHost applies the rules to e. Only when mayDown (leading, and not
// holding timeouts) is anything declared DOWN; with sh, each connection
// declared DOWN is shared as such.
func (t *Tracker) sweepHost(e *hostEntry, now time.Time, mayDown bool, slack time.Duration, sh *Shared) {
	timeout := t.hostTimeout(e.name)
	var changes [3]Change
	n := 0
	e.mu.Lock()
	// An expected host had its timeout to be heard from, counted from when
	// it was first expected.
	waited := e.expected && now.Sub(e.from) > timeout
	for i := range e.conns {
		c := &e.conns[i]
		next := c.state
		switch c.state {
		case StateDown:
			continue
		case "":
			if !c.persisted || !waited || !mayDown {
				continue
			}
			next = StateDown
		default:
			silent := now.Sub(c.lastSeen)
			switch {
			case silent > max(timeout, minTimeoutIntervals*c.interval)+slack && mayDown:
				next = StateDown
			case silent > c.lateAfter(slack):
				next = StateLate
			}
		}
		if next != c.state {
			changes[n] = e.change(families[i], c, c.state, next, now)
			n++
			c.state, c.since = next, now
			if next == StateDown && sh != nil && !c.lastSeen.IsZero() {
				sh.touch(e, i, c, true)
			}
		}
	}
	recompute := n > 0
	if waited && mayDown && e.state == "" && !e.silent && !e.usesFamily() {
		// Never heard from, and no family to wait for: the host itself
		// is DOWN.
		e.silent = true
		recompute = true
	}
	if recompute {
		if hc, ok := e.updateHostState(now); ok {
			changes[n] = hc
			n++
		}
	}
	var rep clockReport
	if !e.refusedAt.IsZero() && now.Sub(e.refusedAt) > timeout {
		// No refused heartbeat for a whole timeout: the host stopped
		// sending, or its clock was fixed. Either way it is no longer
		// being refused (the changes above still say why it went silent).
		e.refusedAt = time.Time{}
		rep = e.clockDue(now, false, e.clock.median())
	}
	t.emit(e, changes[:n])
	t.reportClock(e, rep)
}

// observe applies one verified heartbeat received over family fi from addr.
// It returns errReplay, leaving all state untouched, when the heartbeat's
// sequence number is not above the last one accepted for its session and
// family, or when it belongs to a session older than the current one (its
// send time is not after the last accepted heartbeat's). With Shared, a
// heartbeat of a session this daemon has not claimed yet returns
// errUnclaimed, and one of a session another daemon holds (or numbered at
// or below the shared counter) errReplay, both without a state change.
func (t *Tracker) observe(host []byte, fi int, p *Packet, addr netip.AddrPort, now time.Time, dynamic bool) error {
	e := t.lookupOrCreate(host, dynamic)
	var changes [2]Change
	n := 0
	e.mu.Lock()
	c := &e.conns[fi]
	newSession := c.state == "" || p.Session != c.session
	if c.state != "" {
		if (!newSession && p.Seq <= c.lastSeq) || (newSession && p.SentNanos <= c.lastSent) {
			e.mu.Unlock()
			return errReplay
		}
	}
	sh := t.shared.Load()
	if sh != nil && (newSession || !c.claimed) {
		// The session must be this daemon's in the shared store, and the
		// sequence number above what any daemon accepted of it.
		floor, err := sh.admit(e.name, fi, p, now)
		if err == nil && p.Seq <= floor {
			err = errReplay
		}
		if err != nil {
			e.mu.Unlock()
			return err
		}
		c.claimed = true
	}
	// A reload can move a host into or out of watchhosts.
	e.dynamic = dynamic
	if newSession {
		c.session = p.Session
		c.claimed = sh != nil
		c.loss.reset()
	} else {
		c.loss.add(p.Seq - c.lastSeq)
	}
	c.lastSeq, c.lastSent = p.Seq, p.SentNanos
	c.lastSeen, c.addr = now, addr
	c.interval = p.Interval()
	c.remote = ""
	if p.RTTMicros > 0 {
		rtt := time.Duration(p.RTTMicros) * time.Microsecond
		c.rtt = rtt
		if c.hasRTT {
			c.rttAvg += latencyEWMAWeight * (float64(rtt) - c.rttAvg)
		} else {
			c.rttAvg, c.hasRTT = float64(rtt), true
		}
	}
	e.heard, e.silent = true, false
	if !e.refusedAt.IsZero() {
		// Refused before, accepted now: the clock moved, so the offsets
		// measured before say nothing about it any more.
		e.refusedAt = time.Time{}
		e.clock.reset()
	}
	e.clock.add(time.Duration(p.SentNanos-now.UnixNano()) + c.rtt/2)
	rep := e.clockDue(now, false, e.clock.median())
	if sh != nil {
		sh.touch(e, fi, c, false)
	}
	if c.state != StateUp {
		changes[n] = e.change(families[fi], c, c.state, StateUp, now)
		n++
		c.state, c.since = StateUp, now
		if hc, ok := e.updateHostState(now); ok {
			changes[n] = hc
			n++
		}
	}
	t.emit(e, changes[:n])
	t.reportClock(e, rep)
	return nil
}

func (e *hostEntry) change(f Family, c *conn, from, to State, now time.Time) Change {
	ch := Change{Host: e.name, Family: f, From: from, To: to, Time: now, Dynamic: e.dynamic, Addr: c.addr, LastSeen: c.lastSeen}
	if to == StateDown {
		ch.Reason = e.reason()
	}
	return ch
}

// updateHostState recomputes the host state from its connections and
// returns the change, if any. e.mu must be held.
func (e *hostEntry) updateHostState(now time.Time) (Change, bool) {
	used, down := 0, 0
	for i := range e.conns {
		switch e.conns[i].state {
		case "":
		case StateDown:
			used++
			down++
		default:
			used++
		}
	}
	var s State
	switch {
	case used == 0 && e.silent:
		s = StateDown
	case used == 0:
		s = ""
	case down == 0:
		s = StateUp
	case down == used:
		s = StateDown
	default:
		s = StateDegraded
	}
	if s == e.state {
		return Change{}, false
	}
	c := Change{Host: e.name, From: e.state, To: s, Time: now, Dynamic: e.dynamic,
		LastSeen: e.lastSeen(), Families: e.familyList()}
	if s == StateDown || s == StateDegraded {
		c.Reason = e.reason()
	}
	e.state, e.since = s, now
	return c, true
}

// emit reports changes through OnChange. It is called with e.mu held and
// releases it. The changes are queued under e.mu and delivered under
// emitMu, which is never taken while e.mu is held: OnChange may call
// Snapshot (which takes e.mu) while another packet of the same host is
// being applied. Whoever holds emitMu drains the queue in order, so calls
// for one host stay serialized and ordered.
func (t *Tracker) emit(e *hostEntry, changes []Change) {
	if len(changes) == 0 || t.onChange == nil {
		e.mu.Unlock()
		return
	}
	f, lead := t.leading()
	for i := range changes {
		changes[i].Follower, changes[i].Fence = !lead, f
	}
	e.pending = append(e.pending, changes...)
	e.mu.Unlock()
	e.emitMu.Lock()
	defer e.emitMu.Unlock()
	for {
		e.mu.Lock()
		batch := e.pending
		e.pending = nil
		e.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for _, c := range batch {
			t.onChange(c)
		}
	}
}

func (t *Tracker) shard(host []byte) *trackerShard {
	return &t.shards[maphash.Bytes(t.seed, host)%trackerShards]
}

func (t *Tracker) shardOf(host string) *trackerShard {
	return &t.shards[maphash.String(t.seed, host)%trackerShards]
}

func (t *Tracker) lookupOrCreate(host []byte, dynamic bool) *hostEntry {
	sh := t.shard(host)
	sh.mu.RLock()
	e := sh.hosts[string(host)]
	sh.mu.RUnlock()
	if e != nil {
		return e
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e = sh.hosts[string(host)]; e == nil {
		e = &hostEntry{name: string(host), dynamic: dynamic}
		sh.hosts[e.name] = e
	}
	return e
}

// Forget drops everything known about host, for instance when it was
// removed from the configuration, and reports whether it was known. No
// Change is emitted; the next heartbeat starts afresh.
func (t *Tracker) Forget(host string) bool {
	sh := t.shardOf(host)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, ok := sh.hosts[host]
	delete(sh.hosts, host)
	return ok
}

// ConnectionStatus is the API view of one connection (host and family).
type ConnectionStatus struct {
	// Family is "ipv4" or "ipv6".
	Family Family `json:"family"`
	// State is "UP", "LATE" or "DOWN".
	State State `json:"state"`
	// Since is when State was entered, unix seconds.
	Since float64 `json:"since"`
	// Address is the remote address of the last accepted heartbeat; empty
	// for a family not heard from since the daemon started (DOWN from its
	// persisted use).
	Address string `json:"address"`
	// LastSeen is when the last accepted heartbeat arrived, unix seconds.
	LastSeen float64 `json:"last_seen"`
	// LatencyMS is the last round-trip time the agent reported; 0 until
	// it reported one.
	LatencyMS float64 `json:"latency_ms"`
	// LatencyAvgMS is the exponentially weighted moving average of the
	// reported round-trip times (weight 0.2 for each new report).
	LatencyAvgMS float64 `json:"latency_avg_ms"`
	// LossPercent is the share of the last LossWindow expected sequence
	// numbers (of the current agent session) that never arrived.
	LossPercent float64 `json:"loss_percent"`
	// IntervalMS is the agent's announced sending interval.
	IntervalMS int64 `json:"interval_ms"`
}

// HostStatus is the API view of one host.
type HostStatus struct {
	// Name is the host name.
	Name string `json:"name"`
	// Dynamic is true for hosts registered with an enroll-derived key.
	Dynamic bool `json:"dyn"`
	// State is "UP", "DEGRADED" or "DOWN"; "" while an expected host has
	// not been heard from and its timeout has not run out (waiting).
	State State `json:"state"`
	// Since is when State was entered, unix seconds.
	Since float64 `json:"since"`
	// Connections holds one entry per family the host has used, IPv4
	// first.
	Connections []ConnectionStatus `json:"connections"`
	// LastSeen is when the newest heartbeat of the host was accepted, over
	// any family, unix seconds; it may be from before the daemon's restart.
	// 0 when never.
	LastSeen float64 `json:"last_seen"`
	// ClockOffsetMS is the host's estimated clock offset against the
	// daemon's clock in milliseconds (positive: ahead); nil until a
	// heartbeat was seen.
	ClockOffsetMS *float64 `json:"clock_offset_ms"`
	// Reason says why the host is not heard when more is known than
	// silence, e.g. "clock 6m12s ahead of hbd"; empty otherwise.
	Reason string `json:"reason"`
}

// Snapshot returns a copy of host's state, and false if the host was never
// heard from nor expected.
func (t *Tracker) Snapshot(host string) (HostStatus, bool) {
	sh := t.shardOf(host)
	sh.mu.RLock()
	e := sh.hosts[host]
	sh.mu.RUnlock()
	if e == nil {
		return HostStatus{}, false
	}
	return e.snapshot(), true
}

// entries returns every host entry, taking each shard's lock only to copy
// its pointers.
func (t *Tracker) entries() []*hostEntry {
	var out []*hostEntry
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		for _, e := range sh.hosts {
			out = append(out, e)
		}
		sh.mu.RUnlock()
	}
	return out
}

// Hosts returns a copy of the state of every host heard from or expected,
// sorted by name.
func (t *Tracker) Hosts() []HostStatus {
	var out []HostStatus
	for _, e := range t.entries() {
		out = append(out, e.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (e *hostEntry) snapshot() HostStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := HostStatus{Name: e.name, Dynamic: e.dynamic, State: e.state, Since: unixSeconds(e.since),
		LastSeen: unixSeconds(e.lastSeen()), Reason: e.reason()}
	if off, ok := e.offset(); ok {
		ms := math.Round(float64(off)/float64(time.Millisecond)*10) / 10
		h.ClockOffsetMS = &ms
	}
	for i := range e.conns {
		c := &e.conns[i]
		if c.state == "" {
			continue
		}
		addr := ""
		if c.addr.IsValid() {
			addr = c.addr.String()
		}
		h.Connections = append(h.Connections, ConnectionStatus{
			Family:       families[i],
			State:        c.state,
			Since:        unixSeconds(c.since),
			Address:      addr,
			LastSeen:     unixSeconds(c.lastSeen),
			LatencyMS:    float64(c.rtt) / float64(time.Millisecond),
			LatencyAvgMS: c.rttAvg / float64(time.Millisecond),
			LossPercent:  c.lossPercent(),
			IntervalMS:   c.interval.Milliseconds(),
		})
	}
	return h
}

// lossPercent is the connection's loss as the daemon that accepted its
// newest heartbeat saw it.
func (c *conn) lossPercent() float64 {
	if c.remote != "" {
		return c.remoteLoss
	}
	return c.loss.percent()
}

// lateAfter is how long the connection may be silent before it is LATE.
func (c *conn) lateAfter(slack time.Duration) time.Duration {
	return time.Duration(lateFactor*float64(c.interval)) + slack
}

// mergeRemote applies a liveness row another daemon of the cluster wrote
// and reports whether it changed this daemon's view: a heartbeat newer
// than the newest known here moves the connection's last-seen time (and
// makes it UP when it is recent), and the leader's DOWN decision is
// followed unless this daemon heard the host since. Hosts unknown here
// are taken on only when dynamic.
func (t *Tracker) mergeRemote(r *record.Liveness, now time.Time) bool {
	fi, ok := familyIndex(Family(r.Family))
	if !ok || !ValidHost(r.Host) {
		return false
	}
	sh := t.shardOf(r.Host)
	sh.mu.RLock()
	e := sh.hosts[r.Host]
	sh.mu.RUnlock()
	if e == nil {
		if !r.Dynamic {
			return false
		}
		e = t.lookupOrCreate([]byte(r.Host), true)
	}
	var changes [2]Change
	n := 0
	applied := false
	seen := time.Unix(0, r.LastSeen)
	e.mu.Lock()
	c := &e.conns[fi]
	switch {
	case r.Down:
		live := c.state == StateUp || c.state == StateLate || (c.state == "" && c.persisted)
		if live && !seen.Before(c.lastSeen) {
			changes[n] = e.change(families[fi], c, c.state, StateDown, now)
			n++
			c.state, c.since = StateDown, now
			applied = true
		}
	case seen.After(c.lastSeen):
		c.lastSeen = seen
		c.interval = time.Duration(r.IntervalMS) * time.Millisecond
		if a, err := netip.ParseAddrPort(r.Addr); err == nil {
			c.addr = a
		}
		c.rtt = time.Duration(r.RTTMicros) * time.Microsecond
		c.rttAvg = float64(r.RTTAvgMicros) * float64(time.Microsecond)
		c.hasRTT = c.hasRTT || r.RTTMicros > 0
		c.remote, c.remoteLoss = r.Node, r.LossPercent
		e.heard, e.silent = true, false
		applied = true
		if c.state != StateUp && now.Sub(seen) <= c.lateAfter(t.slack()) {
			changes[n] = e.change(families[fi], c, c.state, StateUp, now)
			n++
			c.state, c.since = StateUp, now
		}
	}
	if n > 0 {
		if hc, ok := e.updateHostState(now); ok {
			changes[n] = hc
			n++
		}
		for i := range changes[:n] {
			changes[i].Remote = r.Node
		}
	}
	t.emit(e, changes[:n])
	return applied
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return math.Round(float64(t.UnixNano())/1e6) / 1e3
}

// lossWindow remembers which of the last LossWindow sequence numbers of a
// session arrived. Bit i of bits is set when sequence number hi-i arrived;
// span counts the sequence numbers the window covers so far.
type lossWindow struct {
	bits [2]uint64
	span uint64
}

// reset starts the window of a new session with its first heartbeat.
func (w *lossWindow) reset() {
	w.bits = [2]uint64{1, 0}
	w.span = 1
}

// add records the arrival of the sequence number d above the previous
// highest (d >= 1); the d-1 numbers in between are lost.
func (w *lossWindow) add(d uint64) {
	lo, hi := w.bits[0], w.bits[1]
	switch {
	case d >= 128:
		lo, hi = 0, 0
	case d >= 64:
		lo, hi = 0, lo<<(d-64)
	default:
		lo, hi = lo<<d, hi<<d|lo>>(64-d)
	}
	w.bits = [2]uint64{lo | 1, hi}
	w.span = min(w.span+d, LossWindow)
}

// percent returns the share of the window's sequence numbers that did not
// arrive, in percent.
func (w *lossWindow) percent() float64 {
	if w.span == 0 {
		return 0
	}
	lo, hi := w.bits[0], w.bits[1]
	if w.span < 64 {
		lo &= 1<<w.span - 1
		hi = 0
	} else {
		hi &= 1<<(w.span-64) - 1
	}
	got := uint64(bits.OnesCount64(lo) + bits.OnesCount64(hi))
	return math.Round(float64(w.span-got)/float64(w.span)*100*100) / 100
}
