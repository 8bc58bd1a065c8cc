package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// clusterNode is one daemon's heartbeat side on a shared PostgreSQL
// database: its own store connections, a real UDP server, a tracker and
// its Shared. The tests drive the Shared's rounds (Sync, Flush, Claim)
// themselves instead of its ticker, so what happens when is decided by
// the test, not by timing.
type clusterNode struct {
	name string
	st   *store.Store
	sh   *Shared
	*testServer
}

func startClusterNode(t *testing.T, dsn, name string, leader store.FenceFunc, timeout time.Duration) *clusterNode {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenPostgres(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sh, err := NewShared(SharedConfig{Node: name, Store: st, FlushInterval: time.Hour, ClaimTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerWith(t, TrackerConfig{
		Timeout: func(string) time.Duration { return timeout },
		Leader:  leader,
		Shared:  sh,
	})
	return &clusterNode{name: name, st: st, sh: sh, testServer: ts}
}

// handled waits until the server has read want datagrams in all and
// decided on each (accepted or dropped): Received is counted when a
// datagram is read, before its checks, so Received alone would let a
// test read the counters of a datagram still being checked.
func (n *clusterNode) handled(t *testing.T, want uint64) Stats {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := n.srv.Stats()
		decided := st.Accepted
		for _, d := range st.Dropped {
			decided += d
		}
		if st.Received >= want && decided >= st.Received {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s handled %d datagrams, want %d", n.name, st.Received, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stream is one agent stream (one session) to one daemon over IPv4.
type stream struct {
	t       *testing.T
	key     []byte
	host    string
	session uint64
	seq     uint64
	a       *rawAgent
}

func newStream(t *testing.T, n *clusterNode, host string, key []byte, session uint64) *stream {
	return &stream{t: t, key: key, host: host, session: session, a: dialRaw(t, n.srv, IPv4)}
}

// next builds the stream's next heartbeat.
func (s *stream) next() []byte {
	s.seq++
	return heartbeat(s.t, s.key, Packet{Session: s.session, Seq: s.seq, Host: []byte(s.host)})
}

// acked sends b and returns the sequence number of the ack that comes
// back, failing the test when none does.
func (s *stream) acked(b []byte) uint64 {
	s.t.Helper()
	s.a.send(b)
	ack := s.a.recv(20 * time.Second)
	var p Packet
	if ack == nil || Decode(ack, &p) != nil {
		s.t.Fatalf("no ack for %s session %d", s.host, s.session)
	}
	return p.Seq
}

// open starts the stream on node n: its first heartbeat is refused as
// unclaimed while n claims the session, the next one is accepted.
func (s *stream) open(n *clusterNode) {
	s.t.Helper()
	before := n.srv.Stats()
	s.a.send(s.next())
	st := n.handled(s.t, before.Received+1)
	if got := st.Dropped[DropUnclaimed] - before.Dropped[DropUnclaimed]; got != 1 {
		s.t.Fatalf("first heartbeat of a session: %d unclaimed drops, want 1 (stats %+v)", got, st)
	}
	n.sh.Claim(context.Background())
	if seq := s.acked(s.next()); seq != s.seq {
		s.t.Fatalf("ack for seq %d, want %d (the unclaimed heartbeat must not be acked)", seq, s.seq)
	}
}

func leaderOf(t *testing.T, st *store.Store, holder string) (store.FenceFunc, int64) {
	t.Helper()
	g, err := st.TakeLease(context.Background(), holder, time.Hour, time.Second)
	if err != nil || !g.Held {
		t.Fatalf("take lease: %+v %v", g, err)
	}
	f := store.Fence{Holder: holder, Epoch: g.Epoch}
	return func() (store.Fence, bool) { return f, true }, g.Epoch
}

func follower() (store.Fence, bool) { return store.Fence{}, false }

// TestHeartbeatsToOneDaemonShowUpOnBothAndTheLeaderKeepsItUp: web01 sends
// to daemon b only (a follower). Both daemons expected it long ago, so
// without the shared liveness the leader a would declare it DOWN on its
// next sweep. After b's flush and a's read, both show it UP, a's sweep
// declares nothing, and b never declares DOWN however late it sweeps.
// When the host falls silent, the leader (and only it) declares it DOWN,
// fenced, and b follows the leader's shared decision.
func TestHeartbeatsToOneDaemonShowUpOnBothAndTheLeaderKeepsItUp(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	timeout := time.Minute
	// a creates the tables first, then takes the lease.
	a := startClusterNode(t, dsn, "a", nil, timeout)
	lead, epoch := leaderOf(t, a.st, "a")
	a.tr.SetLeader(lead)
	b := startClusterNode(t, dsn, "b", follower, timeout)
	long := time.Now().Add(-time.Hour)
	for _, n := range []*clusterNode{a, b} {
		n.tr.Expect(Expectation{Host: "web01", From: long, LastSeen: map[Family]time.Time{IPv4: long}})
	}

	s := newStream(t, b, "web01", keyWeb01, 7)
	s.open(b)
	s.acked(s.next())
	b.sh.Sync(ctx)
	a.sh.Sync(ctx)

	for _, n := range []*clusterNode{a, b} {
		if h, _ := n.tr.Snapshot("web01"); h.State != StateUp {
			t.Fatalf("%s shows web01 %s, want UP from b's heartbeats", n.name, h.State)
		}
	}
	up := a.log.all()
	if len(up) == 0 || up[0].Remote != "b" || up[0].To != StateUp || up[0].Follower || up[0].Fence.Epoch != epoch {
		t.Fatalf("a's changes %+v: want UP from b's shared liveness, recorded by a (the leader) with its fence", up)
	}
	if bc := b.log.all(); len(bc) == 0 || !bc[0].Follower || bc[0].Remote != "" {
		t.Fatalf("b's changes %+v: want its own UP, as a follower", bc)
	}
	a.tr.Sweep(time.Now())
	b.tr.Sweep(time.Now().Add(10 * time.Hour))
	for _, n := range []*clusterNode{a, b} {
		if slices.Contains(n.log.states("web01", IPv4), StateDown) || slices.Contains(n.log.states("web01", ""), StateDown) {
			t.Fatalf("%s declared web01 DOWN: %+v", n.name, n.log.all())
		}
	}
	if got := b.log.states("web01", IPv4); !slices.Equal(got, []State{StateUp, StateLate}) {
		t.Fatalf("follower b went %v, want UP then only LATE", got)
	}

	// The host falls silent: the leader declares it DOWN, with its fence.
	a.tr.Sweep(time.Now().Add(10 * time.Hour))
	var down *Change
	for _, c := range a.log.all() {
		if c.Family == IPv4 && c.To == StateDown {
			down = &c
		}
	}
	if down == nil || down.Follower || down.Fence != (store.Fence{Holder: "a", Epoch: epoch}) {
		t.Fatalf("leader a's changes %+v: want web01 ipv4 DOWN with fence a/%d", a.log.all(), epoch)
	}
	a.sh.Flush(ctx)
	b.sh.Read(ctx)
	if got := b.log.states("web01", IPv4); !slices.Equal(got, []State{StateUp, StateLate, StateDown}) {
		t.Fatalf("follower b went %v, want UP LATE DOWN (the leader's decision)", got)
	}
	last := b.log.all()[len(b.log.all())-1]
	if last.Remote != "a" || !last.Follower {
		t.Fatalf("b's DOWN %+v: want it from a, not written by b", last)
	}

	// The leader's write of its decision is fenced: it goes through while
	// a holds the lease, and is refused once b took it over.
	ts := float64(down.Time.UnixNano()) / 1e9
	if err := a.st.RecordStateFenced(ctx, down.Fence, "web01", "ipv4", "DOWN", ts); err != nil {
		t.Fatalf("fenced write while leading: %v", err)
	}
	if err := a.st.ReleaseLease(ctx, "a", epoch); err != nil {
		t.Fatal(err)
	}
	if g, err := b.st.TakeLease(ctx, "b", time.Hour, time.Second); err != nil || !g.Held {
		t.Fatalf("b takes the lease: %+v %v", g, err)
	}
	if err := a.st.RecordStateFenced(ctx, down.Fence, "web01", "ipv4", "DOWN", ts+1); !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("fenced write after the takeover: %v, want ErrNotLeader", err)
	}
	states, err := a.st.States(ctx, "web01", "ipv4", 0)
	if err != nil || len(states) != 1 {
		t.Fatalf("stored states %+v %v: want only the write made while leading", states, err)
	}
}

// TestDatagramReplayedToAnotherDaemonIsRefused: the agent sends its own
// stream (own session) to each daemon. A heartbeat daemon a accepted is
// sent again, byte for byte, to daemon b: b refuses it (first as
// unclaimed, while it asks; then, the session being a's, as a replay), and
// never acks it, whether a flushed its counter or not. b's own stream keeps
// working.
func TestDatagramReplayedToAnotherDaemonIsRefused(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	a := startClusterNode(t, dsn, "a", nil, time.Minute)
	b := startClusterNode(t, dsn, "b", follower, time.Minute)

	toA := newStream(t, a, "web01", keyWeb01, 100)
	toB := newStream(t, b, "web01", keyWeb01, 200)
	toA.open(a)
	toB.open(b)
	a.sh.Flush(ctx)

	for _, flushed := range []bool{true, false} {
		t.Run(fmt.Sprintf("flushed=%v", flushed), func(t *testing.T) {
			captured := toA.next()
			toA.acked(captured) // accepted at a
			if flushed {
				a.sh.Flush(ctx)
			}
			before := b.srv.Stats()
			replayer := dialRaw(t, b.srv, IPv4)
			for i := 0; i < 2; i++ {
				replayer.send(captured)
				b.handled(t, before.Received+uint64(i)+1)
				b.sh.Claim(ctx)
			}
			st := b.srv.Stats()
			if st.Accepted != before.Accepted {
				t.Fatalf("b accepted the replayed datagram: %+v", st)
			}
			refused := st.Dropped[DropUnclaimed] - before.Dropped[DropUnclaimed] + st.Dropped[DropReplay] - before.Dropped[DropReplay]
			if refused != 2 || st.Dropped[DropReplay] == before.Dropped[DropReplay] {
				t.Fatalf("drops %+v (before %+v): want both refused, the second as a replay", st.Dropped, before.Dropped)
			}
			// b's own stream still works; its ack is the next datagram
			// that socket could see, and no ack ever went to the replayer.
			if seq := toB.acked(toB.next()); seq != toB.seq {
				t.Fatalf("b acked seq %d, want %d", seq, toB.seq)
			}
			if ack := replayer.recv(0); ack != nil {
				t.Fatal("b acked the replayed datagram")
			}
		})
	}
	var unclaimed, replay float64
	for _, f := range b.srv.Metrics() {
		if f.Name == "hbd_heartbeats_dropped_total" {
			f.Collect(func(v float64, l ...string) {
				switch l[0] {
				case string(DropUnclaimed):
					unclaimed = v
				case string(DropReplay):
					replay = v
				}
			})
		}
	}
	if unclaimed < 1 || replay < 2 {
		t.Fatalf("/metrics dropped unclaimed=%v replay=%v, want the refusals counted", unclaimed, replay)
	}
}

// TestSharedFlushIsCoalesced: many heartbeats of two connections between
// two flushes make one statement of two rows. The shared counter was
// advanced with the session's first row and is not again before a
// quarter of the claim TTL (an hour here) passed.
func TestSharedFlushIsCoalesced(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	a := startClusterNode(t, dsn, "a", nil, time.Minute)
	web := newStream(t, a, "web01", keyWeb01, 1)
	db := newStream(t, a, "db01", keyDB01, 2)
	web.open(a)
	db.open(a)
	a.sh.Flush(ctx)
	first := web.seq
	before := a.sh.Stats()
	for i := 0; i < 25; i++ {
		web.acked(web.next())
		if i%5 == 0 {
			db.acked(db.next())
		}
	}
	if p := a.sh.Pending(); p != 2 {
		t.Fatalf("%d rows pending after 30 heartbeats of 2 connections, want 2", p)
	}
	a.sh.Flush(ctx)
	st := a.sh.Stats()
	if st.Statements-before.Statements != 1 || st.Rows-before.Rows != 2 || st.Written-before.Written != 2 {
		t.Fatalf("flush %+v (before %+v): want 1 statement, 2 rows", st, before)
	}
	var seq int64
	if err := a.st.Reader().QueryRowContext(ctx, `SELECT last_seq FROM heartbeat_sessions WHERE host = 'web01' AND session = 1`).Scan(&seq); err != nil || seq != int64(first) {
		t.Fatalf("shared counter %d (%v), want %d (the first flushed)", seq, err, first)
	}
	// Nothing new: no statement at all.
	a.sh.Flush(ctx)
	if st2 := a.sh.Stats(); st2.Statements != st.Statements {
		t.Fatalf("an empty flush ran a statement: %+v", st2)
	}
}

// TestHoldTimeoutsDelaysDownAfterTakeover: a follower never declares DOWN;
// a new leader holding timeouts does not either until the hold is over.
// The order is read from the recorded events.
func TestHoldTimeoutsDelaysDownAfterTakeover(t *testing.T) {
	var leading atomic.Bool
	var events []string
	tr := NewTracker(TrackerConfig{
		Timeout: func(string) time.Duration { return time.Minute },
		Leader:  func() (store.Fence, bool) { return store.Fence{}, leading.Load() },
		OnChange: func(c Change) {
			if c.Family == IPv4 {
				events = append(events, string(c.To))
			}
		},
	})
	now := time.Now()
	p := Packet{Session: 1, Seq: 1, SentNanos: now.UnixNano(), IntervalMS: 1000, Host: []byte("web01")}
	if err := tr.observe(p.Host, 0, &p, netipAddr(), now, false); err != nil {
		t.Fatal(err)
	}
	tr.Sweep(now.Add(time.Hour))
	events = append(events, "takeover")
	leading.Store(true)
	tr.HoldTimeouts(2 * time.Hour)
	tr.Sweep(now.Add(time.Hour + time.Minute))
	events = append(events, "hold over")
	tr.Sweep(now.Add(3 * time.Hour))
	want := []string{"UP", "LATE", "takeover", "hold over", "DOWN"}
	if !slices.Equal(events, want) {
		t.Fatalf("events %v, want %v", events, want)
	}
}

func netipAddr() netip.AddrPort { return netip.MustParseAddrPort("192.0.2.1:40000") }

// BenchmarkVerifyAndApplyShared is BenchmarkVerifyAndApply with the
// liveness shared through a real PostgreSQL store (sessions claimed in the
// warm-up) and without: the packet path's cost of the shared liveness. With
// flush, a flush of the pending rows (one per host and family, at most
// 2,000) runs on the benchmark's goroutine after every 4,096 heartbeats,
// its time included: what a daemon pays per heartbeat all told when
// 4,096 heartbeats arrive per flush interval.
func BenchmarkVerifyAndApplyShared(b *testing.B) {
	b.Run("shared=off", func(b *testing.B) { benchVerifyAndApply(b, NewTracker(TrackerConfig{}), nil, 0) })
	for _, flush := range []bool{false, true} {
		b.Run(fmt.Sprintf("shared=on/flush=%v", flush), func(b *testing.B) {
			sh := benchShared(b)
			tr := NewTracker(TrackerConfig{Shared: sh})
			ctx := context.Background()
			every := 0
			if flush {
				every = 4096
			}
			benchVerifyAndApply(b, tr, func() { sh.Claim(ctx); sh.Flush(ctx) }, every)
			if st := sh.Stats(); st.FlushErrors > 0 || st.Refused > 0 {
				b.Fatalf("shared stats %+v", st)
			}
		})
	}
}

func benchShared(b *testing.B) *Shared {
	st, err := store.OpenPostgres(context.Background(), pgtest.DSN(b), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	sh, err := NewShared(SharedConfig{Node: "bench", Store: st})
	if err != nil {
		b.Fatal(err)
	}
	return sh
}

// BenchmarkSharedFlush measures one flush of 2,000 pending rows (1,000
// hosts, two families) to a real PostgreSQL on the same machine, and
// reports the wall time per row (PostgreSQL's work included).
func BenchmarkSharedFlush(b *testing.B) {
	sh := benchShared(b)
	tr := NewTracker(TrackerConfig{Shared: sh})
	ctx := context.Background()
	hosts := newBenchHosts(1000)
	addr := netip.MustParseAddrPort("127.0.0.1:40000")
	seq := uint64(0)
	beat := func() {
		seq++
		now := time.Now()
		for i, h := range hosts.names {
			for fi := range 2 {
				p := Packet{Session: uint64(i), Seq: seq, SentNanos: now.UnixNano(), IntervalMS: 1000, Host: []byte(h)}
				tr.observe(p.Host, fi, &p, addr, now, false)
			}
		}
	}
	beat()
	sh.Claim(ctx)
	var rows uint64
	var flushing time.Duration
	for b.Loop() {
		b.StopTimer()
		beat()
		b.StartTimer()
		before := sh.Stats().Rows
		t0 := time.Now()
		sh.Flush(ctx)
		flushing += time.Since(t0)
		rows += sh.Stats().Rows - before
	}
	if st := sh.Stats(); st.FlushErrors > 0 || rows == 0 {
		b.Fatalf("flushed %d rows, stats %+v", rows, st)
	}
	b.ReportMetric(float64(flushing.Microseconds())/float64(rows), "µs/row")
	b.ReportMetric(float64(rows)/float64(b.N), "rows/flush")
}
