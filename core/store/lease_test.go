package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"database/sql"

	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// pollUntil polls cond (no timing assertion: it only bounds the wait).
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLeaseTakeRenewExpireRelease(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := postgresBackend.openAt(t, dsn, 10), postgresBackend.openAt(t, dsn, 10)
	const ttl, margin = 2 * time.Second, 200 * time.Millisecond

	g, err := a.TakeLease(ctx, "a", ttl, margin)
	if err != nil || !g.Held || g.Epoch != 1 || g.Holder != "a" || g.SafeUntil.IsZero() {
		t.Fatalf("a takes a free lease: %+v, %v", g, err)
	}
	g, err = b.TakeLease(ctx, "b", ttl, margin)
	if err != nil || g.Held || g.Holder != "a" || g.Epoch != 1 {
		t.Fatalf("b while a holds it: %+v, %v; want not held, holder a, epoch 1", g, err)
	}
	g, err = a.TakeLease(ctx, "a", ttl, margin)
	if err != nil || !g.Held || g.Epoch != 1 {
		t.Fatalf("a renews: %+v, %v; want the same epoch", g, err)
	}
	fenced := func(s *Store, holder string, epoch int64) error {
		return s.Write(ctx, func(tx *sql.Tx) error { return CheckLease(tx, holder, epoch) })
	}
	if err := fenced(a, "a", 1); err != nil {
		t.Fatalf("the leader's fenced write: %v", err)
	}
	if err := fenced(b, "b", 1); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a non-leader's fenced write: %v, want ErrNotLeader", err)
	}

	// a stops renewing: b gets it once it expired, with a new epoch, and
	// a's writes are refused from then on.
	pollUntil(t, "b to take the expired lease", func() bool {
		g, err = b.TakeLease(ctx, "b", ttl, margin)
		return err == nil && g.Held
	})
	if g.Epoch != 2 {
		t.Fatalf("b's epoch = %d, want 2", g.Epoch)
	}
	if err := fenced(a, "a", 1); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("the old leader's fenced write after the takeover: %v, want ErrNotLeader", err)
	}
	if g, err := a.TakeLease(ctx, "a", ttl, margin); err != nil || g.Held || g.Holder != "b" {
		t.Fatalf("a renews after losing it: %+v, %v", g, err)
	}

	if err := b.ReleaseLease(ctx, "b", 2); err != nil {
		t.Fatal(err)
	}
	if g, err := a.TakeLease(ctx, "a", ttl, margin); err != nil || !g.Held || g.Epoch != 3 {
		t.Fatalf("a after b released: %+v, %v; want held with epoch 3", g, err)
	}
	if _, err := sqliteBackend.openAt(t, t.TempDir(), 1).TakeLease(ctx, "x", ttl, margin); !errors.Is(err, ErrNoLease) {
		t.Fatalf("SQLite store: %v, want ErrNoLease", err)
	}
}

// Three stores contend for a short lease while each writes fenced rows as
// long as it believes it leads: every committed row of an epoch comes from
// one holder, and epochs pass from holder to holder without two at once.
func TestLeaseNeverHasTwoHoldersInOneEpoch(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	const ttl, margin = 400 * time.Millisecond, 100 * time.Millisecond
	stores := make([]*Store, 3)
	for i := range stores {
		stores[i] = postgresBackend.openAt(t, dsn, 10)
	}
	if err := stores[0].Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`CREATE TABLE fence_log (epoch BIGINT NOT NULL, holder TEXT NOT NULL)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, s := range stores {
		wg.Add(1)
		go func(name string, s *Store) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				g, err := s.TakeLease(ctx, name, ttl, margin)
				if err != nil || !g.Held {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				// Lead until the safe time, then stop renewing for a while
				// (as a paused or partitioned leader would).
				for time.Now().Before(g.SafeUntil) {
					s.Write(ctx, func(tx *sql.Tx) error {
						if err := CheckLease(tx, name, g.Epoch); err != nil {
							return err
						}
						_, err := tx.Exec(`INSERT INTO fence_log (epoch, holder) VALUES (?, ?)`, g.Epoch, name)
						return err
					})
				}
				time.Sleep(ttl)
			}
		}(fmt.Sprintf("d%d", i), s)
	}
	var epochs int
	pollUntil(t, "several takeovers", func() bool {
		stores[0].rdb.QueryRow(`SELECT count(DISTINCT epoch) FROM fence_log`).Scan(&epochs)
		return epochs >= 5
	})
	close(stop)
	wg.Wait()
	rows, err := stores[0].rdb.Query(`SELECT epoch, count(DISTINCT holder) FROM fence_log GROUP BY epoch HAVING count(DISTINCT holder) > 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var e, n int64
		rows.Scan(&e, &n)
		t.Errorf("epoch %d has fenced writes from %d holders", e, n)
	}
	t.Logf("%d epochs with fenced writes", epochs)
}
