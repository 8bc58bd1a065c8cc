package alert

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
	"github.com/hbdmon/hbd/sdk/level"
)

// clusterPair is two clustered evaluators on one PostgreSQL database:
// a leads (holds the lease, took over), b follows with a mirror.
type clusterPair struct {
	sa, sb *store.Store
	a, b   *Evaluator
	ra, rb *recorder
	fb     *recorder // b's live feed (SetMirror)
	fence  store.Fence
	dsn    string
	now    time.Time
}

func newClusterPair(t *testing.T) *clusterPair {
	t.Helper()
	ctx := context.Background()
	p := &clusterPair{dsn: pgtest.DSN(t), now: t0}
	open := func() (*store.Store, *Evaluator, *recorder, *recorder, *fenceSwitch) {
		st, err := store.OpenPostgres(ctx, p.dsn, store.Options{SampleHistory: 10})
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		ev, err := New(baseConfig(), st, nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		ev.FamilySettle = 0
		ev.Now = func() time.Time { return p.now }
		sw := &fenceSwitch{}
		if err := ev.SetLeader(sw.fn); err != nil {
			t.Fatal(err)
		}
		feed := &recorder{}
		if err := ev.SetMirror(st, feed); err != nil {
			t.Fatal(err)
		}
		if err := ev.start(ctx, false); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ev.Stop(ctx); st.Close() })
		return st, ev, rec, feed, sw
	}
	var fa *fenceSwitch
	p.sa, p.a, p.ra, _, fa = open()
	p.sb, p.b, p.rb, p.fb, _ = open()
	g, err := p.sa.TakeLease(ctx, "a", time.Minute, time.Second)
	if err != nil || !g.Held {
		t.Fatalf("a takes the lease: %+v %v", g, err)
	}
	p.fence = store.Fence{Holder: "a", Epoch: g.Epoch}
	fa.set(p.fence, true)
	if err := p.a.TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

// critical drives web01's cpu CRITICAL on the leader and commits it.
func (p *clusterPair) critical(t *testing.T) {
	t.Helper()
	p.now = p.now.Add(10 * time.Second)
	p.a.ObserveSamples("web01", []Sample{{Plugin: "cpu_monitor", Timestamp: toUnix(p.now), Paths: []string{"cpu_percent"}, Values: []float64{95}}})
	if err := p.a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// follow has e read the database until cond holds: a read passes a
// write only once every transaction begun before it ended.
func (p *clusterPair) follow(t *testing.T, e *Evaluator, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, what, 10*time.Second, func() bool {
		if err := e.SyncMirror(context.Background()); err != nil {
			t.Fatal(err)
		}
		return cond()
	})
}

// serve applies the leader's pending commands until stop is closed.
func (p *clusterPair) serve(t *testing.T, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		if _, err := p.sa.ApplyAlertCommands(context.Background(), p.fence, CommandWait, 10, p.a.ApplyCommand); err != nil {
			t.Error(err)
			return
		}
	}
}

// TestFollowerMirrorsTheLeadersStates: a follower's evaluator shows the
// states and silences the leader committed, drops a state the leader
// deleted, and decides, notifies and writes nothing itself.
func TestFollowerMirrorsTheLeadersStates(t *testing.T) {
	ctx := context.Background()
	p := newClusterPair(t)
	const cpu = "cpu_monitor.cpu_percent"
	if err := p.b.SyncMirror(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.b.ActiveAlerts(); len(got) != 0 {
		t.Fatalf("follower before any state: %+v", got)
	}
	p.critical(t)
	p.follow(t, p.b, "the leader's CRITICAL on the follower", func() bool { return len(p.b.ActiveAlerts()) > 0 })
	act := p.b.ActiveAlerts()
	if len(act) != 1 || act[0].Host != "web01" || act[0].MetricPath != cpu || act[0].Level != level.Critical {
		t.Fatalf("follower's active alerts %+v", act)
	}
	if st := p.b.statusOf(t, "web01", cpu); st.LastValue != 95 || st.Text == "" {
		t.Fatalf("follower's status %+v", st)
	}
	if got := p.rb.take(); len(got) != 0 {
		t.Fatalf("the follower notified %v", got)
	}
	if got := p.fb.take(); !eq(got, []string{"CRITICAL/change"}) {
		t.Fatalf("the follower's live feed was told %v, want the CRITICAL it read", got)
	}
	// A silence the leader stored, then removed.
	sl, err := p.a.AddSilence(ctx, SilenceSpec{Host: "web01", Duration: time.Hour, By: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	p.follow(t, p.b, "the leader's silence on the follower", func() bool { _, ok := p.b.Silence(sl.ID); return ok })
	if st := p.b.statusOf(t, "web01", cpu); st.SilencedUntil != sl.Until {
		t.Fatalf("follower's silenced_until %v, want %v", st.SilencedUntil, sl.Until)
	}
	if err := p.a.RemoveSilence(ctx, sl.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	// The leader deletes the state (as forgetting does).
	if err := p.sa.SaveAlertStatesFencedSync(ctx, p.fence, nil, []Key{{Host: "web01", Metric: cpu}}); err != nil {
		t.Fatal(err)
	}
	p.follow(t, p.b, "the deleted state and silence gone from the follower", func() bool {
		_, ok := p.b.Silence(sl.ID)
		return !ok && len(p.b.HostAlerts("web01")) == 0
	})
	// Written again after the deletion: back in the mirror.
	p.critical(t)
	// A sweep or a reload on the follower writes nothing.
	p.b.Sweep(p.now.Add(time.Hour))
	if err := p.b.Reload(baseConfig()); err != nil {
		t.Fatal(err)
	}
	p.follow(t, p.b, "the state written again on the follower", func() bool { return len(p.b.ActiveAlerts()) == 1 })
	if got := p.rb.take(); len(got) != 0 {
		t.Fatalf("the follower notified %v", got)
	}
	var n int
	if err := pgQuery(ctx, p.dsn, `SELECT count(*) FROM fenced_writes WHERE holder <> 'a'`, &n); err != nil || n != 0 {
		t.Fatalf("writes by others than the leader: %d, %v", n, err)
	}
	// After a takeover the mirror is replaced by the loaded state, and
	// the ex-leader, stepped down, mirrors.
	p.a.StepDown()
	p.follow(t, p.a, "the ex-leader's mirror", func() bool { return len(p.a.ActiveAlerts()) == 1 })
	if st := p.a.statusOf(t, "web01", cpu); st.Level != level.Critical {
		t.Fatalf("ex-leader's mirror %+v", st)
	}
}

// TestFollowerCommandsAreAppliedByTheLeader: an acknowledgement and a
// silence asked of a follower are applied by the leader's evaluator
// (journal, acknowledgement notification), and the follower answers with
// the leader's result and errors; with no leader applying, ErrNoLeader.
func TestFollowerCommandsAreAppliedByTheLeader(t *testing.T) {
	ctx := context.Background()
	p := newClusterPair(t)
	const cpu = "cpu_monitor.cpu_percent"
	p.critical(t)
	p.ra.take()
	stop := make(chan struct{})
	served := make(chan struct{})
	go func() { defer close(served); p.serve(t, stop) }()

	st, err := p.b.Ack(ctx, "web01", cpu, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Acknowledged || st.AcknowledgedBy != "alice" || st.Level != level.Critical {
		t.Fatalf("follower's ack answer %+v", st)
	}
	if got := p.a.statusOf(t, "web01", cpu); !got.Acknowledged || got.AcknowledgedBy != "alice" {
		t.Fatalf("leader's state after the follower's ack %+v", got)
	}
	if got := p.ra.take(); !eq(got, []string{"CRITICAL/acknowledged"}) {
		t.Fatalf("leader's events %v", got)
	}
	if got := p.rb.take(); len(got) != 0 {
		t.Fatalf("follower's events %v", got)
	}
	testutil.Eventually(t, "the journal line of the acknowledgement", 10*time.Second, func() bool {
		var n int
		err := pgQuery(ctx, p.dsn, `SELECT count(*) FROM journal WHERE msg LIKE '%acknowledged by alice%'`, &n)
		return err == nil && n == 1
	})
	if _, err := p.b.Ack(ctx, "web01", "nope.x", "alice"); !errors.Is(err, ErrUnknownMetric) {
		t.Fatalf("ack of an unknown metric through the follower: %v", err)
	}
	if _, err := p.b.Ack(ctx, "db01", cpu, "alice"); !errors.Is(err, ErrUnknownMetric) {
		t.Fatalf("ack of an unknown host through the follower: %v", err)
	}

	sl, err := p.b.AddSilence(ctx, SilenceSpec{Host: "web01", Metric: cpu, Duration: time.Hour, By: "bob", Comment: "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := p.a.Silence(sl.ID); !ok || got.CreatedBy != "bob" || got.Comment != "deploy" {
		t.Fatalf("leader's silence %+v %v", got, ok)
	}
	// A leader that died after applying the command but before recording
	// its result: the next one applies it again, and finds the silence
	// by the id the follower chose instead of adding a second one.
	again := p.a.ApplyCommand(ctx, store.AlertCommand{ID: 99, Kind: cmdAddSilence,
		Args: []byte(`{"by":"bob","id":"` + sl.ID + `","silence":{"Host":"web01","Metric":"` + cpu + `","Duration":3600000000000,"By":"bob","Comment":"deploy"}}`)})
	if n := len(p.a.Silences()); n != 1 || !strings.Contains(string(again), sl.ID) {
		t.Fatalf("the add applied again: %s; leader holds %d silences, want 1", again, n)
	}
	p.follow(t, p.b, "the follower's silence in its mirror", func() bool { _, ok := p.b.Silence(sl.ID); return ok })
	if err := p.b.RemoveSilence(ctx, "0000", "bob"); !errors.Is(err, ErrUnknownSilence) {
		t.Fatalf("removing an unknown silence through the follower: %v", err)
	}
	if err := p.b.RemoveSilence(ctx, sl.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.a.Silence(sl.ID); ok {
		t.Fatal("the leader still holds the removed silence")
	}
	close(stop)
	<-served

	// Nobody applies: the follower gives up and withdraws its command.
	p.b.mirror.wait = 300 * time.Millisecond
	if _, err := p.b.AddSilence(ctx, SilenceSpec{Host: "web01", Duration: time.Hour, By: "bob"}); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("a silence nobody applies: %v", err)
	}
	if n, err := p.sa.ApplyAlertCommands(ctx, p.fence, CommandWait, 10, p.a.ApplyCommand); err != nil || n != 0 {
		t.Fatalf("a withdrawn command was applied: %d %v", n, err)
	}
	if got := p.a.Silences(); len(got) != 0 {
		t.Fatalf("leader's silences %+v", got)
	}
	// Each command was applied once.
	var applied int
	if err := pgQuery(ctx, p.dsn, `SELECT count(*) FROM alert_commands WHERE applied_by = 'a'`, &applied); err != nil || applied != 6 {
		t.Fatalf("commands applied by the leader: %d, %v", applied, err)
	}
}
