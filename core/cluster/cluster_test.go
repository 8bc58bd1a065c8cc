package cluster

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stallable passes TakeLease to the store until stalled, then blocks it
// until released: a leader cut off from the database.
type stallable struct {
	*store.Store
	mu      sync.Mutex
	stalled chan struct{}
}

func (s *stallable) TakeLease(ctx context.Context, holder string, ttl, margin time.Duration) (store.LeaseGrant, error) {
	s.mu.Lock()
	ch := s.stalled
	s.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return store.LeaseGrant{}, ctx.Err()
		}
	}
	return s.Store.TakeLease(ctx, holder, ttl, margin)
}

type change struct {
	leading bool
	epoch   int64
}

type recorder struct {
	mu  sync.Mutex
	got []change
}

func (r *recorder) on(l bool, e int64) {
	r.mu.Lock()
	r.got = append(r.got, change{l, e})
	r.mu.Unlock()
}

func (r *recorder) list() []change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]change(nil), r.got...)
}

func openPG(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.OpenPostgres(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestOneLeaderTakeoverAndSelfFence: two nodes on one database; exactly
// one leads and only its Fence opens. The leader is cut off (its lease
// requests hang): its fence closes on its own timer and it steps down
// without any answer from the database, and the other takes over with a
// new epoch. A clean stop releases the lease and the other takes over.
func TestOneLeaderTakeoverAndSelfFence(t *testing.T) {
	dsn := pgtest.DSN(t)
	sa := &stallable{Store: openPG(t, dsn)}
	sb := openPG(t, dsn)
	opts := Options{TTL: 2 * time.Second, Renew: 300 * time.Millisecond}
	opts.Node = "a"
	a, err := New(sa, opts)
	if err != nil {
		t.Fatal(err)
	}
	var ra, rb recorder
	a.OnChange(ra.on)
	ctxA, stopA := context.WithCancel(context.Background())
	doneA := make(chan struct{})
	go func() { a.Run(ctxA); close(doneA) }()
	defer func() { stopA(); <-doneA }()
	poll(t, "a to lead", a.Leading)

	opts.Node = "b"
	b, err := New(sb, opts)
	if err != nil {
		t.Fatal(err)
	}
	b.OnChange(rb.on)
	ctxB, stopB := context.WithCancel(context.Background())
	doneB := make(chan struct{})
	go func() { b.Run(ctxB); close(doneB) }()
	defer func() { stopB(); <-doneB }()

	ctx := context.Background()
	poll(t, "b to record itself", func() bool {
		ns, err := sb.ClusterNodes(ctx)
		return err == nil && len(ns) == 2
	})
	if b.Leading() || !a.Leading() {
		t.Fatalf("leading: a %v, b %v; want a only", a.Leading(), b.Leading())
	}
	if _, ok := b.Fence().Leading(); ok {
		t.Fatal("the follower's fence is open")
	}
	f, ok := a.Fence().Leading()
	if !ok || f.Holder != a.Holder() || f.Epoch != a.Epoch() || !strings.HasPrefix(f.Holder, "a#") {
		t.Fatalf("leader's fence %+v %v", f, ok)
	}
	first := a.Epoch()

	// Cut a off: its fence must close by itself, and b take over.
	sa.mu.Lock()
	sa.stalled = make(chan struct{})
	sa.mu.Unlock()
	poll(t, "a to fence itself", func() bool { return !a.Leading() })
	if _, ok := a.Fence().Leading(); ok {
		t.Fatal("a's fence is open after its self-fence")
	}
	poll(t, "b to take over", b.Leading)
	if b.Epoch() <= first {
		t.Fatalf("b's epoch %d, want > %d", b.Epoch(), first)
	}
	poll(t, "a to tell its step-down", func() bool { return len(ra.list()) >= 2 })
	if got := ra.list(); got[0] != (change{true, first}) || got[1] != (change{false, first}) {
		t.Fatalf("a's changes %v", got)
	}
	// a is reconnected: it must stay a follower.
	sa.mu.Lock()
	close(sa.stalled)
	sa.stalled = nil
	sa.mu.Unlock()
	poll(t, "a to record itself as a follower again", func() bool {
		ns, _ := sb.ClusterNodes(ctx)
		return len(ns) == 2 && !ns[0].Leading && ns[1].Leading && ns[0].LastSeen.After(ns[1].Started)
	})
	if a.Leading() {
		t.Fatal("a leads again while b holds the lease")
	}

	// A clean stop of b releases the lease: a takes over.
	second := b.Epoch()
	stopB()
	<-doneB
	poll(t, "a to take over after b's release", a.Leading)
	if a.Epoch() <= second {
		t.Fatalf("a's epoch %d, want > %d", a.Epoch(), second)
	}
	if got := rb.list(); len(got) != 2 || got[0] != (change{true, second}) || got[1] != (change{false, second}) {
		t.Fatalf("b's changes %v", got)
	}
	if a.Failovers() != 2 || a.Stepdowns() != 1 || b.Failovers() != 1 || b.Stepdowns() != 1 {
		t.Fatalf("counters a %d/%d b %d/%d", a.Failovers(), a.Stepdowns(), b.Failovers(), b.Stepdowns())
	}
	eps, err := sb.ClusterEpochs(ctx, 10)
	if err != nil || len(eps) != 3 || eps[0].Holder != a.Holder() || eps[1].Holder != b.Holder() || eps[2].Holder != a.Holder() {
		t.Fatalf("epochs %+v, %v", eps, err)
	}
	// The journal (written asynchronously) tells each node's changes in
	// its order.
	journal := func(node string) []string {
		ms, err := sb.Messages(ctx, store.MessageQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for i := len(ms) - 1; i >= 0; i-- {
			if rest, ok := strings.CutPrefix(ms[i].Msg, "cluster: "+node+" "); ok {
				out = append(out, rest)
			}
		}
		return out
	}
	poll(t, "the journal", func() bool { return len(journal("a")) == 3 && len(journal("b")) == 2 })
	for node, want := range map[string][]string{"a": {"took over", "stepped down", "took over"}, "b": {"took over", "stepped down"}} {
		got := journal(node)
		for i, w := range want {
			if !strings.HasPrefix(got[i], w) {
				t.Fatalf("journal of %s %q: entry %d should say %q", node, got, i, w)
			}
		}
	}
}

func TestNewRefusesBadTimings(t *testing.T) {
	for _, o := range []Options{
		{TTL: time.Second, Renew: 500 * time.Millisecond},
		{Node: "a", TTL: time.Second, Renew: 500 * time.Millisecond},
		{Node: "a", TTL: time.Second},
	} {
		if _, err := New(nil, o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// TestSlowTakeoverKeepsTheLease: a takeover callback (the evaluator
// loading a large alert state on a loaded machine) that outlasts the
// lease's TTL. The node keeps renewing while its fence stays closed, so
// when the callback returns it leads under the epoch the callback was
// given: no self-fence, no step-down, no second takeover. Before, the
// loop could not renew during the callback, the lease expired, and every
// takeover with a slow load ended in a step-down and another load.
func TestSlowTakeoverKeepsTheLease(t *testing.T) {
	dsn := pgtest.DSN(t)
	st := openPG(t, dsn)
	n, err := New(st, Options{Node: "a", TTL: time.Second, Renew: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	var calls atomic.Int32
	var fenceInCallback atomic.Bool
	n.OnChange(func(leading bool, epoch int64) {
		rec.on(leading, epoch)
		if leading && calls.Add(1) == 1 {
			// Three TTLs at least: a lower bound, not a measurement.
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
				if _, ok := n.Fence().Leading(); ok {
					fenceInCallback.Store(true)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	defer func() { stop(); <-done }()
	poll(t, "a to lead", n.Leading)
	got := rec.list()
	if len(got) != 1 || !got[0].leading || got[0].epoch != n.Epoch() {
		t.Fatalf("changes %+v, epoch %d: want one takeover, under the epoch it leads", got, n.Epoch())
	}
	if fenceInCallback.Load() {
		t.Fatal("the fence opened before the takeover callback returned")
	}
	// It goes on leading: renewals after the slow takeover succeed.
	g, err := st.TakeLease(context.Background(), "other", time.Second, 0)
	if err != nil || g.Held || g.Epoch != n.Epoch() {
		t.Fatalf("another holder's attempt: %+v %v; want refused, epoch %d", g, err, n.Epoch())
	}
	if n.Stepdowns() != 0 || n.Failovers() != 1 {
		t.Fatalf("stepdowns %d, failovers %d; want 0 and 1", n.Stepdowns(), n.Failovers())
	}
}
