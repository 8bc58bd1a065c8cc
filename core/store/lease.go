package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The leader lease (issue 15, item 3; PostgreSQL only). Not wired into
// the daemon yet: this is the primitive the leader election will use.
//
// One row (holder, epoch, expiry, since) decided on PostgreSQL's clock
// only: a daemon takes the lease when it is free or expired, renews it
// while it holds it, and every change of holder (or a holder that let it
// expire) increments the epoch. A write the leader makes checks its
// epoch in the same transaction (CheckLease, which takes the row FOR
// SHARE, so a takeover waits for that transaction and the transaction
// fails after one), and the caller stops leader work on its own timer
// before the lease can expire (LeaseGrant.SafeUntil). No session advisory
// locks: they break behind PgBouncer transaction pooling and vanish
// silently on a database failover.

// ErrNotLeader is returned by CheckLease when the lease is held by
// another daemon, by another epoch, or has expired.
var ErrNotLeader = errors.New("not the leader (lease lost)")

// ErrNoLease is returned by the lease methods of a SQLite store.
var ErrNoLease = errors.New("the leader lease needs the PostgreSQL store")

// LeaseGrant is the outcome of TakeLease.
type LeaseGrant struct {
	Held   bool      // the caller holds the lease
	Holder string    // who holds it (the caller or another daemon; "" when nobody ever did)
	Epoch  int64     // the lease's epoch
	Since  time.Time // when the holder took it (database clock)
	// SafeUntil, when Held, is the local (monotonic) time until which the
	// caller may act as leader: the moment it sent the request plus the
	// TTL, less margin. The database's expiry is at least that late.
	SafeUntil time.Time
}

func init() {
	registerPG(migration{Version: 40, Name: "leader lease", SQL: `
CREATE TABLE leader_lease (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	holder  TEXT NOT NULL,
	epoch   BIGINT NOT NULL,
	expires TIMESTAMPTZ NOT NULL,
	since   TIMESTAMPTZ NOT NULL
);
`})
}

// pgOnlyMigrations are the versions that exist only for PostgreSQL (the
// cluster's tables); TestPostgresMigrationsMatch allows them.
func pgOnlyMigration(v int) bool { return v >= 40 && v < 50 }

// The statement is PostgreSQL's own (no rewrite needed: no ?).
const takeLeaseSQL = `
INSERT INTO leader_lease AS l (id, holder, epoch, expires, since)
VALUES (1, $1, 1, clock_timestamp() + $2::float8 * interval '1 second', clock_timestamp())
ON CONFLICT (id) DO UPDATE SET
	holder  = EXCLUDED.holder,
	epoch   = CASE WHEN l.holder = EXCLUDED.holder AND l.expires > clock_timestamp() THEN l.epoch ELSE l.epoch + 1 END,
	since   = CASE WHEN l.holder = EXCLUDED.holder AND l.expires > clock_timestamp() THEN l.since ELSE clock_timestamp() END,
	expires = EXCLUDED.expires
WHERE l.holder = EXCLUDED.holder OR l.expires <= clock_timestamp()
RETURNING epoch, since`

// TakeLease takes the leader lease for holder for ttl, or renews it when
// holder has it: free or expired, it is the caller's with a new epoch;
// held by the caller and not expired, it is extended with the same
// epoch; held by another daemon and not expired, the answer says who.
// margin is subtracted from SafeUntil for clock rate differences and the
// time a check takes.
func (s *Store) TakeLease(ctx context.Context, holder string, ttl, margin time.Duration) (LeaseGrant, error) {
	if !s.pg {
		return LeaseGrant{}, ErrNoLease
	}
	if holder == "" || ttl <= margin || margin < 0 {
		return LeaseGrant{}, fmt.Errorf("lease: need a holder name and ttl > margin >= 0")
	}
	sent := time.Now()
	var g LeaseGrant
	err := s.ldb.QueryRowContext(ctx, takeLeaseSQL, holder, ttl.Seconds()).Scan(&g.Epoch, &g.Since)
	switch {
	case err == nil:
		g.Held, g.Holder = true, holder
		g.SafeUntil = sent.Add(ttl - margin)
		return g, nil
	case errors.Is(err, sql.ErrNoRows):
		err = s.ldb.QueryRowContext(ctx, `SELECT holder, epoch, since FROM leader_lease WHERE id = 1`).Scan(&g.Holder, &g.Epoch, &g.Since)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return LeaseGrant{}, fmt.Errorf("lease: %w", err)
		}
		return g, nil
	default:
		return LeaseGrant{}, fmt.Errorf("lease: %w", err)
	}
}

// ReleaseLease gives the lease up at once (a clean shutdown), when holder
// holds it with epoch, so another daemon need not wait for the expiry.
func (s *Store) ReleaseLease(ctx context.Context, holder string, epoch int64) error {
	if !s.pg {
		return ErrNoLease
	}
	_, err := s.ldb.ExecContext(ctx, `UPDATE leader_lease SET expires = clock_timestamp() WHERE id = 1 AND holder = $1 AND epoch = $2`, holder, epoch)
	return err
}

// CheckLease fences a leader's write: called inside the write's
// transaction, it fails with ErrNotLeader unless holder still holds the
// lease with epoch and it has not expired, and it holds the row (FOR
// SHARE) until the transaction ends, so no takeover commits in between.
func CheckLease(tx *sql.Tx, holder string, epoch int64) error {
	var one int
	err := tx.QueryRow(`SELECT 1 FROM leader_lease WHERE id = 1 AND holder = $1 AND epoch = $2 AND expires > clock_timestamp() FOR SHARE`, holder, epoch).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotLeader
	}
	return err
}
