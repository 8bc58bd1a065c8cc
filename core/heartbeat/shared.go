package heartbeat

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/heartbeat/record"
)

// Shared liveness defaults.
const (
	// DefaultFlushInterval is how often a daemon writes the liveness it
	// observed to the shared store, claims the sessions it was asked for
	// and reads the other daemons' liveness.
	DefaultFlushInterval = time.Second
	// DefaultClaimTTL is how long a session's claim holds after its
	// holder last advanced it: after that another daemon may take the
	// session over (an agent address that moved between daemons), still
	// only above the shared counter.
	DefaultClaimTTL = time.Minute
	// DefaultSharedLimit bounds the liveness rows waiting for the next
	// flush and the session verdicts remembered; beyond it new entries
	// are dropped and counted (Overflow).
	DefaultSharedLimit = 1 << 17
	// SessionRetention is how long a session claim nobody advanced is
	// kept in the shared store: far beyond DefaultMaxClockSkew, so none of
	// its datagrams can be accepted anywhere any more.
	SessionRetention = time.Hour
	// advanceParts: a session's shared counter is advanced at most every
	// ClaimTTL/advanceParts (and with the first row of each session), not
	// with every flush: enough to keep the claim from looking abandoned,
	// at a fraction of the writes.
	advanceParts = 4
	// claimRetryFlushes: a refused claim is asked again after this many
	// flush intervals, when the session still sends.
	claimRetryFlushes = 5
	// readLookbackFlushes: the read of the other daemons' rows reaches
	// back this many flush intervals before the newest row read last
	// time, for transactions that committed late.
	readLookbackFlushes = 3
	trimEvery           = 10 * time.Minute
)

// errUnclaimed is returned by observe for a heartbeat of an agent session
// this daemon has not claimed yet in the shared store; the claim is being
// asked for off the packet path.
var errUnclaimed = errors.New("heartbeat: agent session not claimed yet")

// SharedStore is the shared state the daemons of a cluster keep liveness
// and session claims in (the PostgreSQL store). Its methods are called
// from Shared's own goroutine only, never on the packet path.
type SharedStore interface {
	ClaimHeartbeatSessions(ctx context.Context, node string, ttl time.Duration, claims []record.SessionClaim) ([]record.SessionGrant, error)
	FlushHeartbeatLiveness(ctx context.Context, node string, rows []record.Liveness) (int64, error)
	HeartbeatLivenessSince(ctx context.Context, node string, since time.Time) ([]record.Liveness, time.Time, error)
	TrimHeartbeatSessions(ctx context.Context, olderThan time.Duration) (int64, error)
}

// SharedConfig configures a Shared. Node and Store are required.
type SharedConfig struct {
	// Node is this daemon's name in the cluster (cluster.node): it
	// signs the liveness rows and holds the session claims. Every daemon
	// needs its own.
	Node string
	// Store is the shared store.
	Store SharedStore
	// FlushInterval overrides DefaultFlushInterval when > 0.
	FlushInterval time.Duration
	// ClaimTTL overrides DefaultClaimTTL when > 0.
	ClaimTTL time.Duration
	// Limit overrides DefaultSharedLimit when > 0.
	Limit int
	// Logger receives flush and claim errors; nil discards them.
	Logger hclog.Logger
}

// SharedStats are a Shared's counters since it was created.
type SharedStats struct {
	// Flushes counts flushes that had rows to write; Statements the
	// statements they ran (one per flush); Rows the rows they carried
	// (at most one per host and family, however many heartbeats arrived
	// in between); Written the rows the store took (a row older than the
	// stored one is not written).
	Flushes, Statements, Rows, Written uint64
	// FlushErrors counts failed flushes (their rows wait for the next).
	FlushErrors uint64
	// Overflow counts liveness rows and claims dropped because Limit
	// entries were waiting.
	Overflow uint64
	// Claims counts sessions asked for; Granted and Refused the answers.
	Claims, Granted, Refused uint64
	// ClaimErrors counts failed claim statements.
	ClaimErrors uint64
	// Merged counts other daemons' rows read; Applied those that changed
	// this daemon's view (newer than what it knew).
	Merged, Applied uint64
}

// Shared shares a Tracker's liveness and agent sessions with the other
// daemons of a cluster through a SharedStore. The packet path only
// touches memory: an accepted heartbeat overwrites its host and family's
// pending row (so a flush carries one row per connection, not one per
// datagram), and a heartbeat of a session not claimed yet is refused
// while the claim is asked for. Run does every store round trip.
//
// Lock order: a tracker host's mu, then Shared.mu; Shared never takes a
// host lock while holding mu.
type Shared struct {
	node    string
	store   SharedStore
	flush   time.Duration
	ttl     time.Duration
	limit   int
	log     hclog.Logger
	tracker atomic.Pointer[Tracker]

	wake chan struct{}

	lastFlush atomic.Int64 // unix nanoseconds of the last flush round that wrote, or had nothing to write

	mu     sync.Mutex
	dirty  map[connKey]liveRow
	spare  map[connKey]liveRow
	claims map[sessKey]*claimState
	ask    []sessKey // claims to ask for (claimPending), in arrival order

	cursor     time.Time // newest write time read from the others (their clock: the store's)
	lastTrim   time.Time
	lastExpire time.Time

	flushes, statements, rows, written, flushErrors, overflow atomic.Uint64
	asked, granted, refused, claimErrors, merged, applied     atomic.Uint64
}

type connKey struct {
	host string
	fi   uint8
}

type sessKey struct {
	host    string
	fi      uint8
	session uint64
}

// liveRow is a connection's pending liveness: what the next flush writes.
type liveRow struct {
	dynamic  bool
	down     bool
	lastSeen int64
	interval time.Duration
	rtt      time.Duration
	rttAvg   float64
	loss     float64
	addr     netip.AddrPort
	session  uint64
	seq      uint64
	sent     int64
}

// Claim verdicts.
const (
	claimPending uint8 = iota // to be asked
	claimAsked                // in the statement running now
	claimGranted
	claimRefused
)

type claimState struct {
	verdict uint8
	floor   uint64
	seq     uint64
	sent    int64
	at      time.Time
}

// NewShared returns a Shared for cfg; attach it with Tracker.Share and
// start it with Run.
func NewShared(cfg SharedConfig) (*Shared, error) {
	if cfg.Node == "" || cfg.Store == nil {
		return nil, errors.New("heartbeat: SharedConfig needs Node and Store")
	}
	s := &Shared{
		node:   cfg.Node,
		store:  cfg.Store,
		flush:  cfg.FlushInterval,
		ttl:    cfg.ClaimTTL,
		limit:  cfg.Limit,
		log:    cfg.Logger,
		wake:   make(chan struct{}, 1),
		dirty:  make(map[connKey]liveRow),
		spare:  make(map[connKey]liveRow),
		claims: make(map[sessKey]*claimState),
	}
	if s.flush <= 0 {
		s.flush = DefaultFlushInterval
	}
	if s.ttl <= 0 {
		s.ttl = DefaultClaimTTL
	}
	if s.limit <= 0 {
		s.limit = DefaultSharedLimit
	}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	return s, nil
}

// Node returns the daemon's name in the cluster.
func (s *Shared) Node() string { return s.node }

// FlushInterval returns how often Run flushes.
func (s *Shared) FlushInterval() time.Duration { return s.flush }

// Stats returns the counters so far.
func (s *Shared) Stats() SharedStats {
	return SharedStats{
		Flushes: s.flushes.Load(), Statements: s.statements.Load(), Rows: s.rows.Load(), Written: s.written.Load(),
		FlushErrors: s.flushErrors.Load(), Overflow: s.overflow.Load(),
		Claims: s.asked.Load(), Granted: s.granted.Load(), Refused: s.refused.Load(), ClaimErrors: s.claimErrors.Load(),
		Merged: s.merged.Load(), Applied: s.applied.Load(),
	}
}

// Pending returns the number of liveness rows waiting for the next flush.
func (s *Shared) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dirty)
}

// Run claims sessions as soon as they are asked for, and every flush
// interval writes the pending liveness, reads the other daemons' and
// forgets old verdicts, until ctx is done; then it flushes once more.
func (s *Shared) Run(ctx context.Context) {
	tick := time.NewTicker(s.flush)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			s.Flush(fctx)
			cancel()
			return
		case <-s.wake:
			s.Claim(ctx)
		case <-tick.C:
			s.Sync(ctx)
		}
	}
}

// Sync does one round of Run's periodic work now: claims, flush, read of
// the other daemons' liveness, expiry. Tests call it to drive the rounds
// themselves.
func (s *Shared) Sync(ctx context.Context) {
	now := time.Now()
	s.Claim(ctx)
	s.Flush(ctx)
	s.Read(ctx)
	if now.Sub(s.lastExpire) > s.ttl/2 {
		s.lastExpire = now
		s.expire(now)
	}
	if now.Sub(s.lastTrim) > trimEvery {
		s.lastTrim = now
		if _, err := s.store.TrimHeartbeatSessions(ctx, SessionRetention); err != nil && ctx.Err() == nil {
			s.log.Warn("trim heartbeat sessions", "error", err)
		}
	}
}

// admit decides on the packet path whether this daemon may accept p's
// session (host, family fi): the floor above which its sequence numbers
// are new, or errUnclaimed (the claim is asked for now) or errReplay (the
// session is another daemon's, or p's sequence number was accepted
// somewhere already). It never waits on the store.
func (s *Shared) admit(host string, fi int, p *Packet, now time.Time) (uint64, error) {
	k := sessKey{host: host, fi: uint8(fi), session: p.Session}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.claims[k]
	if cs == nil {
		if len(s.claims) >= s.limit {
			s.overflow.Add(1)
			return 0, errUnclaimed
		}
		s.claims[k] = &claimState{verdict: claimPending, seq: p.Seq, sent: p.SentNanos, at: now}
		s.ask = append(s.ask, k)
		s.signal()
		return 0, errUnclaimed
	}
	switch cs.verdict {
	case claimGranted:
		cs.at = now
		return cs.floor, nil
	case claimRefused:
		if now.Sub(cs.at) < claimRetryFlushes*s.flush {
			return 0, errReplay
		}
		// The holder may have gone: ask again with this heartbeat.
		cs.verdict, cs.seq, cs.sent, cs.at = claimPending, p.Seq, p.SentNanos, now
		s.ask = append(s.ask, k)
		s.signal()
	}
	return 0, errUnclaimed
}

func (s *Shared) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// touch records the accepted state of connection c of host e as the
// connection's pending row. e.mu is held. The row carries the session's
// sequence number (advancing the shared counter) only when the counter
// was last advanced ClaimTTL/advanceParts ago or by another session.
func (s *Shared) touch(e *hostEntry, fi int, c *conn, down bool) {
	r := liveRow{
		dynamic: e.dynamic, down: down, lastSeen: c.lastSeen.UnixNano(), interval: c.interval,
		rtt: c.rtt, rttAvg: c.rttAvg, loss: c.lossPercent(), addr: c.addr,
	}
	if !down && (c.advSession != c.session || c.lastSeen.Sub(c.advancedAt) >= s.ttl/advanceParts) {
		r.session, r.seq, r.sent = c.session, c.lastSeq, c.lastSent
		c.advSession, c.advancedAt = c.session, c.lastSeen
	}
	k := connKey{host: e.name, fi: uint8(fi)}
	s.mu.Lock()
	if _, ok := s.dirty[k]; !ok && len(s.dirty) >= s.limit {
		s.mu.Unlock()
		s.overflow.Add(1)
		return
	}
	s.dirty[k] = r
	s.mu.Unlock()
}

// Claim asks the store for every pending session claim in one statement
// and records the verdicts.
func (s *Shared) Claim(ctx context.Context) {
	var ask []record.SessionClaim
	var keys []sessKey
	s.mu.Lock()
	for _, k := range s.ask {
		if cs := s.claims[k]; cs != nil && cs.verdict == claimPending {
			cs.verdict = claimAsked
			ask = append(ask, record.SessionClaim{Host: k.host, Family: string(families[k.fi]), Session: k.session, Seq: cs.seq, Sent: cs.sent})
			keys = append(keys, k)
		}
	}
	s.ask = nil
	s.mu.Unlock()
	if len(ask) == 0 {
		return
	}
	s.asked.Add(uint64(len(ask)))
	grants, err := s.store.ClaimHeartbeatSessions(ctx, s.node, s.ttl, ask)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.claimErrors.Add(1)
		if ctx.Err() == nil {
			s.log.Warn("claim heartbeat sessions", "sessions", len(ask), "error", err)
		}
		for _, k := range keys {
			if cs := s.claims[k]; cs != nil && cs.verdict == claimAsked {
				// Asked again with the next heartbeat of the session.
				delete(s.claims, k)
			}
		}
		return
	}
	for _, g := range grants {
		fi, ok := familyIndex(Family(g.Family))
		if !ok {
			continue
		}
		if cs := s.claims[sessKey{host: g.Host, fi: uint8(fi), session: g.Session}]; cs != nil {
			cs.verdict, cs.floor, cs.at = claimGranted, g.Floor, now
		}
	}
	s.granted.Add(uint64(len(grants)))
	for _, k := range keys {
		if cs := s.claims[k]; cs != nil && cs.verdict == claimAsked {
			cs.verdict, cs.at = claimRefused, now
			s.refused.Add(1)
		}
	}
}

// Flush writes every pending liveness row in one statement. Rows of a
// failed flush wait for the next one unless a newer row replaced them.
func (s *Shared) Flush(ctx context.Context) {
	s.mu.Lock()
	batch := s.dirty
	s.dirty, s.spare = s.spare, nil
	if s.dirty == nil {
		s.dirty = make(map[connKey]liveRow)
	}
	s.mu.Unlock()
	if len(batch) == 0 {
		s.mu.Lock()
		s.spare = batch
		s.mu.Unlock()
		s.lastFlush.Store(time.Now().UnixNano())
		return
	}
	rows := make([]record.Liveness, 0, len(batch))
	for k, r := range batch {
		addr := ""
		if r.addr.IsValid() {
			addr = r.addr.String()
		}
		rows = append(rows, record.Liveness{
			Host: k.host, Family: string(families[k.fi]), Node: s.node, Dynamic: r.dynamic, Down: r.down,
			LastSeen: r.lastSeen, IntervalMS: r.interval.Milliseconds(),
			RTTMicros: r.rtt.Microseconds(), RTTAvgMicros: int64(r.rttAvg / float64(time.Microsecond)), LossPercent: r.loss,
			Addr: addr, Session: r.session, Seq: r.seq, Sent: r.sent,
		})
	}
	s.flushes.Add(1)
	s.statements.Add(1)
	s.rows.Add(uint64(len(rows)))
	n, err := s.store.FlushHeartbeatLiveness(ctx, s.node, rows)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.flushErrors.Add(1)
		if ctx.Err() == nil {
			s.log.Warn("flush heartbeat liveness", "rows", len(rows), "error", err)
		}
		for k, r := range batch {
			if _, newer := s.dirty[k]; !newer {
				s.dirty[k] = r
			}
		}
		clear(batch)
		s.spare = batch
		return
	}
	s.written.Add(uint64(n))
	s.lastFlush.Store(time.Now().UnixNano())
	clear(batch)
	s.spare = batch
}

// LastFlush is when the last flush round ended without an error (having
// written its rows or had none to write); zero before the first.
func (s *Shared) LastFlush() time.Time {
	ns := s.lastFlush.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Read merges the rows the other daemons wrote since the last read into
// the tracker.
func (s *Shared) Read(ctx context.Context) {
	t := s.tracker.Load()
	if t == nil {
		return
	}
	since := s.cursor
	if !since.IsZero() {
		since = since.Add(-readLookbackFlushes * s.flush)
	}
	rows, next, err := s.store.HeartbeatLivenessSince(ctx, s.node, since)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("read shared heartbeat liveness", "error", err)
		}
		return
	}
	if next.After(s.cursor) {
		s.cursor = next
	}
	s.merged.Add(uint64(len(rows)))
	now := time.Now()
	for i := range rows {
		if t.mergeRemote(&rows[i], now) {
			s.applied.Add(1)
		}
	}
}

// expire forgets the verdicts not used for a claim TTL, so a session
// that stopped costs nothing, and one that comes back is asked again.
func (s *Shared) expire(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, cs := range s.claims {
		if cs.verdict != claimAsked && cs.verdict != claimPending && now.Sub(cs.at) > s.ttl {
			delete(s.claims, k)
		}
	}
}
