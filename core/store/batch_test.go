package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/alert/record"
	"github.com/hbdmon/hbd/core/dispatch/dispatchrecord"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
	"github.com/hbdmon/hbd/sdk/level"
)

// TestBatchCommitsAlertChangeWithItsOutboxRows: an alert change and the
// outbox rows of its notifications, written as one fenced Batch, commit
// together or not at all — a committed change always has its rows, a
// batch that fails in any write leaves neither, and a stale fence (the
// lease taken over) writes neither and tells both writers ErrNotLeader.
func TestBatchCommitsAlertChangeWithItsOutboxRows(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := postgresBackend.openAt(t, dsn, 10), postgresBackend.openAt(t, dsn, 10)
	const ttl, margin = 2 * time.Second, 200 * time.Millisecond
	g, err := a.TakeLease(ctx, "a", ttl, margin)
	if err != nil || !g.Held {
		t.Fatalf("a takes the lease: %+v, %v", g, err)
	}
	fa := Fence{Holder: "a", Epoch: g.Epoch}
	ep := dispatchrecord.EpisodeKey{Host: "h", Metric: "m", StartMs: 1000}

	// write queues the change to level lv and one delivery of event id in
	// one batch under f (plus extra, when set), and returns both outcomes.
	write := func(f Fence, lv, id string, extra func(*sql.Tx) error) (stateErr, outboxErr error) {
		bt := a.NewBatch(f)
		se, oe := make(chan error, 1), make(chan error, 1)
		a.SaveAlertStatesIn(bt, []record.SavedState{{Host: "h", Metric: "m", Level: level.Level(lv), Since: 1}}, nil, func(err error) { se <- err })
		a.QueueOutboxIn(bt, id, ep, []dispatchrecord.Delivery{{ID: "d-" + id, Channel: "hook", Event: []byte(`{}`), Created: time.Now()}},
			func(_ map[string]bool, err error) { oe <- err })
		if extra != nil {
			bt.add(writeOp{fn: extra})
		}
		bt.Commit()
		return <-se, <-oe
	}
	levelNow := func() string {
		var lv string
		if err := a.rdb.QueryRowContext(ctx, `SELECT level FROM alert_states WHERE host = 'h' AND metric = 'm'`).Scan(&lv); err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
		return lv
	}
	rowsOf := func(id string) (queued, sent int) {
		if err := a.rdb.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM notify_queue WHERE id = $1), (SELECT count(*) FROM notify_sent WHERE event_id = $2)`,
			"d-"+id, id).Scan(&queued, &sent); err != nil {
			t.Fatal(err)
		}
		return queued, sent
	}

	if se, oe := write(fa, "CRITICAL", "ev1", nil); se != nil || oe != nil {
		t.Fatalf("the leader's batch: state %v, outbox %v", se, oe)
	}
	if q, s := rowsOf("ev1"); levelNow() != "CRITICAL" || q != 1 || s != 1 {
		t.Fatalf("after the leader's batch: level %q, outbox %d, pairs %d; want CRITICAL, 1, 1", levelNow(), q, s)
	}

	boom := errors.New("boom")
	se, oe := write(fa, "WARNING", "ev2", func(*sql.Tx) error { return boom })
	if !errors.Is(se, boom) || !errors.Is(oe, boom) {
		t.Fatalf("a batch failing in its last write: state %v, outbox %v; want both %v", se, oe, boom)
	}
	if q, s := rowsOf("ev2"); levelNow() != "CRITICAL" || q != 0 || s != 0 {
		t.Fatalf("after the failed batch: level %q, outbox %d, pairs %d; want CRITICAL, 0, 0", levelNow(), q, s)
	}

	pollUntil(t, "b to take the expired lease", func() bool {
		gb, err := b.TakeLease(ctx, "b", ttl, margin)
		return err == nil && gb.Held
	})
	se, oe = write(fa, "OK", "ev3", nil)
	if !errors.Is(se, ErrNotLeader) || !errors.Is(oe, ErrNotLeader) {
		t.Fatalf("the stale leader's batch: state %v, outbox %v; want ErrNotLeader for both", se, oe)
	}
	if q, s := rowsOf("ev3"); levelNow() != "CRITICAL" || q != 0 || s != 0 {
		t.Fatalf("after the stale batch: level %q, outbox %d, pairs %d; want CRITICAL, 0, 0", levelNow(), q, s)
	}
}
