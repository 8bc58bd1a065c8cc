package alert

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"

	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
	"github.com/hbdmon/hbd/sdk/level"
)

// fenceSwitch is a leader fence the test sets by hand.
type fenceSwitch struct {
	mu sync.Mutex
	f  store.Fence
	ok bool
}

func (s *fenceSwitch) set(f store.Fence, ok bool) {
	s.mu.Lock()
	s.f, s.ok = f, ok
	s.mu.Unlock()
}

func (s *fenceSwitch) fn() (store.Fence, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f, s.ok
}

// TestOnlyTheLeaderEvaluatesAndAStaleLeaderWritesNothing: two clustered
// evaluators on one PostgreSQL database, each fed the same samples. The
// follower decides, notifies and writes nothing; the leader's state rows
// carry its epoch. After the lease moves to the other daemon, the old
// leader, still believing it leads (paused), has its writes refused by
// the fence in the transaction; the new leader loads the state the old
// one committed at TakeOver and carries on from it (no new notification
// for a level already told), and the old one, stepped down, stops.
func TestOnlyTheLeaderEvaluatesAndAStaleLeaderWritesNothing(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	open := func() (*store.Store, *Evaluator, *recorder, *fenceSwitch) {
		st, err := store.OpenPostgres(ctx, dsn, store.Options{SampleHistory: 10})
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		ev, err := New(baseConfig(), st, hclog.New(&hclog.LoggerOptions{Level: hclog.Debug}), rec)
		if err != nil {
			t.Fatal(err)
		}
		ev.FamilySettle = 0
		sw := &fenceSwitch{}
		if err := ev.SetLeader(sw.fn); err != nil {
			t.Fatal(err)
		}
		if err := ev.start(ctx, false); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ev.Stop(ctx); st.Close() })
		return st, ev, rec, sw
	}
	sa, a, ra, fa := open()
	sb, b, rb, fb := open()
	now := t0
	a.Now = func() time.Time { return now }
	b.Now = a.Now
	const cpu = "cpu_monitor.cpu_percent"
	feed := func(v float64) {
		now = now.Add(10 * time.Second)
		s := []Sample{{Plugin: "cpu_monitor", Timestamp: toUnix(now), Paths: []string{"cpu_percent"}, Values: []float64{v}}}
		a.ObserveSamples("web01", s)
		b.ObserveSamples("web01", s)
	}
	epochOf := func() (lv string, ep int64) {
		// Queued writes commit in order: this one is a barrier.
		if err := sa.JournalSync(ctx, "", "barrier"); err != nil {
			t.Fatal(err)
		}
		if err := sb.JournalSync(ctx, "", "barrier"); err != nil {
			t.Fatal(err)
		}
		rows, err := sa.AlertStates(ctx)
		if err != nil || len(rows) != 1 {
			t.Fatalf("alert states %+v, %v", rows, err)
		}
		var e int64
		if err := pgQuery(ctx, dsn, `SELECT epoch FROM alert_states WHERE host = 'web01'`, &e); err != nil {
			t.Fatal(err)
		}
		return string(rows[0].Level), e
	}

	ga, err := sa.TakeLease(ctx, "a", 2*time.Second, 200*time.Millisecond)
	if err != nil || !ga.Held {
		t.Fatalf("a takes the lease: %+v %v", ga, err)
	}
	fa.set(store.Fence{Holder: "a", Epoch: ga.Epoch}, true)
	if err := a.TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	if !a.Leading() || b.Leading() {
		t.Fatal("a should lead, b follow")
	}
	feed(95)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ra.take(); !eq(got, []string{"CRITICAL/change"}) {
		t.Fatalf("leader's events %v", got)
	}
	if got := rb.take(); len(got) != 0 || len(b.HostAlerts("web01")) != 0 {
		t.Fatalf("the follower decided: %v %+v", got, b.HostAlerts("web01"))
	}
	if lv, ep := epochOf(); lv != "CRITICAL" || ep != ga.Epoch {
		t.Fatalf("stored %s epoch %d, want CRITICAL epoch %d", lv, ep, ga.Epoch)
	}

	// The lease expires; b takes it. a is paused and still believes it
	// leads: its recovery must not reach the database.
	var gb store.LeaseGrant
	deadline := time.Now().Add(60 * time.Second)
	for {
		gb, err = sb.TakeLease(ctx, "b", 2*time.Second, 200*time.Millisecond)
		if err == nil && gb.Held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b never took the lease")
		}
		time.Sleep(50 * time.Millisecond)
	}
	fb.set(store.Fence{Holder: "b", Epoch: gb.Epoch}, true)
	if err := b.TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.statusOf(t, "web01", cpu); got.Level != level.Critical {
		t.Fatalf("b loaded %s, want CRITICAL", got.Level)
	}
	feed(10)
	if err := a.Flush(ctx); err != nil {
		t.Fatalf("a stale leader's flush: %v (a refusal is logged, not returned)", err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if lv, ep := epochOf(); lv != "OK" || ep != gb.Epoch {
		t.Fatalf("stored %s epoch %d, want OK by b's epoch %d", lv, ep, gb.Epoch)
	}
	if got := rb.take(); !eq(got, []string{"OK/recovery"}) {
		t.Fatalf("new leader's events %v: the loaded CRITICAL was told already, its recovery is due", got)
	}
	ws, err := sa.FencedWrites(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range ws {
		if i > 0 && w.Epoch < ws[i-1].Epoch {
			t.Fatalf("epoch %d wrote after epoch %d: %+v", w.Epoch, ws[i-1].Epoch, ws)
		}
	}
	if len(ws) == 0 || ws[len(ws)-1].Epoch != gb.Epoch {
		t.Fatalf("fenced writes %+v", ws)
	}

	a.StepDown()
	b.StepDown()
	fb.set(store.Fence{}, false)
	ra.take()
	feed(96)
	a.Sweep(now.Add(time.Hour))
	if got := append(ra.take(), rb.take()...); len(got) != 0 || a.Leading() || b.Leading() {
		t.Fatalf("both stepped down but decided %v", got)
	}
	if err := a.TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.statusOf(t, "web01", cpu); got.Level != level.OK {
		t.Fatalf("a took over again and loaded %s, want b's OK", got.Level)
	}
	var single Evaluator
	if err := single.TakeOver(ctx); !errors.Is(err, ErrFollower) {
		t.Fatalf("TakeOver without a fence: %v", err)
	}
}

// statusOf returns e's status of a host's metric.
func (e *Evaluator) statusOf(t *testing.T, host, metric string) Status {
	t.Helper()
	for _, s := range e.HostAlerts(host) {
		if s.MetricPath == metric {
			return s
		}
	}
	t.Fatalf("%s %s has no alert state", host, metric)
	return Status{}
}

// pgQuery scans the one row of q into dst, on a connection of its own.
func pgQuery(ctx context.Context, dsn, q string, dst ...any) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, q).Scan(dst...)
}

// takingOver is a clustered evaluator on a real PostgreSQL store, its
// sink rec, that has taken the lease (held as "a") and run TakeOver, with
// its fence still closed: sw opens it. Its clock stands at t0.
func takingOver(t *testing.T) (ev *Evaluator, st *store.Store, rec *recorder, sw *fenceSwitch, fence store.Fence) {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	st, err := store.OpenPostgres(ctx, dsn, store.Options{SampleHistory: 10})
	if err != nil {
		t.Fatal(err)
	}
	rec = &recorder{}
	ev, err = New(baseConfig(), st, hclog.NewNullLogger(), rec)
	if err != nil {
		t.Fatal(err)
	}
	ev.FamilySettle = 0
	sw = &fenceSwitch{}
	if err := ev.SetLeader(sw.fn); err != nil {
		t.Fatal(err)
	}
	if err := ev.start(ctx, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Stop(ctx); st.Close() })
	ev.Now = func() time.Time { return t0 }
	g, err := st.TakeLease(ctx, "a", time.Minute, time.Second)
	if err != nil || !g.Held {
		t.Fatalf("take the lease: %+v %v", g, err)
	}
	if err := ev.TakeOver(ctx); err != nil { // the fence is still closed
		t.Fatal(err)
	}
	return ev, st, rec, sw, store.Fence{Holder: "a", Epoch: g.Epoch}
}

// TestStatesDecidedBeforeTheFenceOpensAreWritten reproduces a lost first
// state: the cluster's node opens its fence only after every takeover
// callback returned, so between the evaluator's TakeOver and the fence
// opening, the evaluator decides (a new metric's first OK) while its
// writes cannot pass the fence yet. What a flush in that window takes
// must be written by the first flush after the fence opens, not dropped
// until the state next changes (a quiet OK state waited up to a minute
// for the values flush, or forever).
func TestStatesDecidedBeforeTheFenceOpensAreWritten(t *testing.T) {
	ctx := context.Background()
	ev, st, _, sw, fence := takingOver(t)
	ev.ObserveSamples("web01", []Sample{{Plugin: "cpu_monitor", Timestamp: toUnix(t0), Paths: []string{"cpu_percent"}, Values: []float64{10}}})
	if err := ev.flush(ctx, false, true); err != nil { // the loop's tick, in the window
		t.Fatal(err)
	}
	sw.set(fence, true)                                // the node opens the fence
	if err := ev.flush(ctx, false, true); err != nil { // the next tick
		t.Fatal(err)
	}
	rows, err := st.AlertStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Host != "web01" || rows[0].Level != level.OK {
		t.Fatalf("stored states %+v, want web01's first OK", rows)
	}
}

// TestEventsDecidedBeforeTheFenceOpensAreHeld: a level change decided in
// the window after TakeOver and before the cluster node opens its fence
// (while the other takeover callbacks run) reaches the sink only once the
// fence is open, with the fenced batch its outbox rows commit in. Before,
// it reached the sink at once with no batch, and the dispatcher, finding
// the fence closed, dropped it: the state change was written at the next
// flush, its notification never (a recovery lost after a failover).
func TestEventsDecidedBeforeTheFenceOpensAreHeld(t *testing.T) {
	ctx := context.Background()
	ev, st, rec, sw, fence := takingOver(t)
	ev.ObserveSamples("web01", []Sample{{Plugin: "cpu_monitor", Timestamp: toUnix(t0), Paths: []string{"cpu_percent"}, Values: []float64{95}}})
	if err := ev.flush(ctx, false, true); err != nil { // the loop's tick, in the window
		t.Fatal(err)
	}
	rec.mu.Lock()
	early := len(rec.events)
	rec.mu.Unlock()
	if early != 0 {
		t.Fatalf("%d events reached the sink before the fence opened", early)
	}
	sw.set(fence, true)                                // the node opens the fence
	if err := ev.flush(ctx, false, true); err != nil { // the next tick
		t.Fatal(err)
	}
	rec.mu.Lock()
	got := append([]Event(nil), rec.events...)
	rec.mu.Unlock()
	if len(got) != 1 || got[0].Level != level.Critical || got[0].Batch == nil || got[0].Batch.Fence() != fence {
		t.Fatalf("events after the fence opened: %+v, want web01's CRITICAL in a batch under %+v", got, fence)
	}
	// The batch commits on the store's writer.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		rows, err := st.AlertStates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 1 && rows[0].Host == "web01" && rows[0].Level == level.Critical {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored states %+v, want web01 CRITICAL", rows)
		}
	}
}
