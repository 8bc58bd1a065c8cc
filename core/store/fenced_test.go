package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/alert/record"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// TestFencedAlertWritesCarryTheirEpochAndStopAtATakeover: the leader's
// alert-state writes record its epoch on the rows and in fenced_writes;
// once another daemon took the expired lease, the old leader's write is
// refused (ErrNotLeader) and changes nothing, and the cluster tables
// record both epochs and both nodes. Retention behind a fence that says
// "not leading" trims nothing.
func TestFencedAlertWritesCarryTheirEpochAndStopAtATakeover(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := postgresBackend.openAt(t, dsn, 10), postgresBackend.openAt(t, dsn, 10)
	const ttl, margin = 2 * time.Second, 200 * time.Millisecond
	g, err := a.TakeLease(ctx, "a", ttl, margin)
	if err != nil || !g.Held {
		t.Fatalf("a takes the lease: %+v, %v", g, err)
	}
	fa := Fence{Holder: "a", Epoch: g.Epoch}
	row := record.SavedState{Host: "h", Metric: "m", Level: "CRITICAL", Since: 1}
	if err := a.SaveAlertStatesFencedSync(ctx, fa, []record.SavedState{row}, nil); err != nil {
		t.Fatalf("the leader's write: %v", err)
	}
	epochOf := func() (lv string, ep int64) {
		if err := a.rdb.QueryRowContext(ctx, `SELECT level, epoch FROM alert_states WHERE host = 'h' AND metric = 'm'`).Scan(&lv, &ep); err != nil {
			t.Fatal(err)
		}
		return lv, ep
	}
	if lv, ep := epochOf(); lv != "CRITICAL" || ep != g.Epoch {
		t.Fatalf("row = %s epoch %d, want CRITICAL epoch %d", lv, ep, g.Epoch)
	}
	var gb LeaseGrant
	pollUntil(t, "b to take the expired lease", func() bool {
		gb, err = b.TakeLease(ctx, "b", ttl, margin)
		return err == nil && gb.Held
	})
	if gb.Epoch <= g.Epoch {
		t.Fatalf("b's epoch %d, want > %d", gb.Epoch, g.Epoch)
	}
	row.Level = "OK"
	if err := a.SaveAlertStatesFencedSync(ctx, fa, []record.SavedState{row}, nil); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("the old leader's write: %v, want ErrNotLeader", err)
	}
	done := make(chan error, 1)
	a.SaveAlertStatesFenced(fa, []record.SavedState{row}, nil, func(err error) { done <- err })
	if err := <-done; !errors.Is(err, ErrNotLeader) {
		t.Fatalf("the old leader's queued write: %v, want ErrNotLeader", err)
	}
	if lv, ep := epochOf(); lv != "CRITICAL" || ep != g.Epoch {
		t.Fatalf("after the refused writes row = %s epoch %d, want CRITICAL epoch %d", lv, ep, g.Epoch)
	}
	if err := b.SaveAlertStatesFencedSync(ctx, Fence{Holder: "b", Epoch: gb.Epoch}, []record.SavedState{row}, nil); err != nil {
		t.Fatalf("the new leader's write: %v", err)
	}
	ws, err := a.FencedWrites(ctx)
	if err != nil || len(ws) != 2 || ws[0].Epoch != g.Epoch || ws[1].Epoch != gb.Epoch || !ws[0].At.Time.Before(ws[1].At.Time) {
		t.Fatalf("fenced writes %+v, %v: want one of each epoch, in order", ws, err)
	}

	for _, e := range []ClusterEpoch{{Epoch: g.Epoch, Holder: "a", Since: g.Since}, {Epoch: gb.Epoch, Holder: "b", Since: gb.Since}, {Epoch: gb.Epoch, Holder: "x", Since: gb.Since}} {
		if err := a.RecordEpoch(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	eps, err := a.ClusterEpochs(ctx, 10)
	if err != nil || len(eps) != 2 || eps[0].Holder != "b" || eps[1].Holder != "a" {
		t.Fatalf("epochs %+v, %v", eps, err)
	}
	now := time.Now()
	if err := a.NodeSeen(ctx, ClusterNode{Node: "a", Address: "http://a", Started: now, Epoch: g.Epoch}); err != nil {
		t.Fatal(err)
	}
	if err := b.NodeSeen(ctx, ClusterNode{Node: "b", Started: now, Leading: true, Epoch: gb.Epoch}); err != nil {
		t.Fatal(err)
	}
	if err := a.NodeSeen(ctx, ClusterNode{Node: "a", Address: "http://a", Started: now}); err != nil {
		t.Fatal(err)
	}
	nodes, err := a.ClusterNodes(ctx)
	if err != nil || len(nodes) != 2 || nodes[0].Node != "a" || nodes[0].Epoch != g.Epoch || nodes[0].Leading ||
		!nodes[1].Leading || nodes[1].HeartbeatFlush != nil || nodes[1].DeliveryBacklog != nil {
		t.Fatalf("nodes %+v, %v", nodes, err)
	}

	a.SetRetentionFence(func() (Fence, bool) { return Fence{}, false })
	if _, err := a.Trim(ctx, time.Now()); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a trim while not leading: %v, want ErrNotLeader", err)
	}
	a.SetRetentionFence(func() (Fence, bool) { return fa, true })
	if _, err := a.Trim(ctx, time.Now()); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a trim with a lost epoch: %v, want ErrNotLeader", err)
	}
	b.SetRetentionFence(func() (Fence, bool) { return Fence{Holder: "b", Epoch: gb.Epoch}, true })
	pollUntil(t, "b to renew", func() bool { g, err := b.TakeLease(ctx, "b", ttl, margin); return err == nil && g.Held })
	if _, err := b.Trim(ctx, time.Now()); err != nil {
		t.Fatalf("the leader's trim: %v", err)
	}
	if ws, err := a.FencedWrites(ctx); err != nil || len(ws) != 0 {
		t.Fatalf("fenced writes after the trim: %+v, %v", ws, err)
	}
}
