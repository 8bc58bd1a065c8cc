package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hbdmon/hbd/core/heartbeat/record"
)

// Shared heartbeat liveness (issue 15, item 2; PostgreSQL only, migration
// 42). Every daemon of a cluster writes the liveness it observed in one
// statement per flush (heartbeat.Shared coalesces the heartbeats of about
// a second per host and family), reads the rows the others wrote, and
// claims an agent session before it accepts the session's sequence
// numbers, so a datagram captured at one daemon and replayed to another
// is refused. The statements are PostgreSQL's own (no ? to rewrite) and
// run on a connection pool of their own, never behind the writer's group
// commits.

// ErrNoShared is returned by the shared heartbeat methods of a SQLite
// store.
var ErrNoShared = errors.New("shared heartbeat liveness needs the PostgreSQL store")

const claimSessionsSQL = `
INSERT INTO heartbeat_sessions AS s (host, family, session, claimed_by, claimed_at, updated, last_seq, last_sent)
SELECT u.host, u.family, u.session, $1, clock_timestamp(), clock_timestamp(), u.seq - 1, u.sent
FROM unnest($3::text[], $4::text[], $5::int8[], $6::int8[], $7::int8[]) AS u(host, family, session, seq, sent)
ON CONFLICT (host, family, session) DO UPDATE SET
	claimed_by = EXCLUDED.claimed_by,
	claimed_at = CASE WHEN s.claimed_by = EXCLUDED.claimed_by THEN s.claimed_at ELSE EXCLUDED.claimed_at END,
	updated    = EXCLUDED.updated
WHERE EXCLUDED.last_seq >= s.last_seq
	AND (s.claimed_by = EXCLUDED.claimed_by OR s.updated < clock_timestamp() - $2::float8 * interval '1 second')
RETURNING host, family, session, last_seq`

// ClaimHeartbeatSessions claims, for node, the right to accept the
// sequence numbers of each claim's agent session from claim.Seq on, in one
// statement, and returns the claims granted. A claim is granted when the
// session is new, or already node's, or its holder has not advanced it
// for ttl (a daemon that stopped, or an address that moved), and in every
// case only when claim.Seq is above the session's shared counter. A claim
// refused is a session another daemon holds, or a sequence number already
// accepted somewhere: a replay.
func (s *Store) ClaimHeartbeatSessions(ctx context.Context, node string, ttl time.Duration, claims []record.SessionClaim) ([]record.SessionGrant, error) {
	if !s.pg {
		return nil, ErrNoShared
	}
	if len(claims) == 0 {
		return nil, nil
	}
	n := len(claims)
	hosts, fams := make([]string, n), make([]string, n)
	sess, seqs, sent := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, c := range claims {
		hosts[i], fams[i] = c.Host, c.Family
		sess[i], seqs[i], sent[i] = int64(c.Session), int64(c.Seq), c.Sent
	}
	rows, err := s.hdb.QueryContext(ctx, claimSessionsSQL, node, ttl.Seconds(), hosts, fams, sess, seqs, sent)
	if err != nil {
		return nil, fmt.Errorf("claim heartbeat sessions: %w", err)
	}
	defer rows.Close()
	var out []record.SessionGrant
	for rows.Next() {
		var g record.SessionGrant
		var session, floor int64
		if err := rows.Scan(&g.Host, &g.Family, &session, &floor); err != nil {
			return nil, fmt.Errorf("claim heartbeat sessions: %w", err)
		}
		g.Session, g.Floor = uint64(session), uint64(max(floor, 0))
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim heartbeat sessions: %w", err)
	}
	return out, nil
}

// The flush: one statement. adv advances the shared counter of every
// session the rows name (seq > 0) that node holds; upd overwrites each stored row
// the new one is newer than (or, for a leader's DOWN row, as new as); ins
// adds the rows not stored yet (a concurrent insert of the same key by
// another daemon wins, and the next flush updates it). An UPDATE ... FROM
// costs PostgreSQL about half of an INSERT ... ON CONFLICT DO UPDATE.
const flushLivenessSQL = `
WITH u AS (
	SELECT * FROM unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[],
		$9::int8[], $10::int8[], $11::int8[], $12::float8[], $13::text[], $14::int8[])
		AS u(host, family, session, seq, sent, last_seen, dynamic, interval_ms, rtt_us, rtt_avg_us, loss, addr, down)
), adv AS (
	UPDATE heartbeat_sessions s SET last_seq = u.seq, last_sent = u.sent, updated = clock_timestamp()
	FROM u
	WHERE u.seq > 0 AND u.down = 0 AND s.host = u.host AND s.family = u.family AND s.session = u.session
		AND s.claimed_by = $1 AND u.seq > s.last_seq
	RETURNING 1
), upd AS (
	UPDATE heartbeat_liveness l SET
		node = $1, last_seen = u.last_seen, dynamic = u.dynamic, interval_ms = u.interval_ms, rtt_us = u.rtt_us,
		rtt_avg_us = u.rtt_avg_us, loss_percent = u.loss, addr = u.addr, down = u.down, written = clock_timestamp()
	FROM u
	WHERE l.host = u.host AND l.family = u.family
		AND (u.last_seen > l.last_seen OR (u.down = 1 AND l.down = 0 AND u.last_seen >= l.last_seen))
	RETURNING 1
), ins AS (
	INSERT INTO heartbeat_liveness (host, family, node, last_seen, dynamic, interval_ms, rtt_us, rtt_avg_us, loss_percent, addr, down, written)
	SELECT host, family, $1, last_seen, dynamic, interval_ms, rtt_us, rtt_avg_us, loss, addr, down, clock_timestamp() FROM u
	WHERE NOT EXISTS (SELECT 1 FROM heartbeat_liveness l WHERE l.host = u.host AND l.family = u.family)
	ON CONFLICT (host, family) DO NOTHING
	RETURNING 1
)
SELECT (SELECT count(*) FROM upd) + (SELECT count(*) FROM ins)`

// FlushHeartbeatLiveness writes node's liveness rows (at most one per host
// and family) and advances the shared counters of the sessions node holds
// to the rows' Seq (a row with Seq 0 advances nothing), in one statement. It returns the number of liveness rows written (a row
// older than the stored one is not).
func (s *Store) FlushHeartbeatLiveness(ctx context.Context, node string, rows []record.Liveness) (int64, error) {
	if !s.pg {
		return 0, ErrNoShared
	}
	if len(rows) == 0 {
		return 0, nil
	}
	n := len(rows)
	hosts, fams, addrs := make([]string, n), make([]string, n), make([]string, n)
	sess, seqs, sent, seen := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	dyn, ival, rtt, avg, down := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	loss := make([]float64, n)
	for i, r := range rows {
		hosts[i], fams[i], addrs[i] = r.Host, r.Family, r.Addr
		sess[i], seqs[i], sent[i], seen[i] = int64(r.Session), int64(r.Seq), r.Sent, r.LastSeen
		dyn[i], ival[i], rtt[i], avg[i], down[i] = b2i(r.Dynamic), r.IntervalMS, r.RTTMicros, r.RTTAvgMicros, b2i(r.Down)
		loss[i] = r.LossPercent
	}
	var written int64
	err := s.hdb.QueryRowContext(ctx, flushLivenessSQL, node, hosts, fams, sess, seqs, sent, seen, dyn, ival, rtt, avg, loss, addrs, down).Scan(&written)
	if err != nil {
		return 0, fmt.Errorf("flush heartbeat liveness: %w", err)
	}
	return written, nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// HeartbeatLivenessSince returns the liveness rows other daemons than node
// wrote after since (PostgreSQL's clock; the zero time for every row),
// oldest first, and the newest row's write time (since when there is
// none), to pass back, less a margin for transactions still committing.
func (s *Store) HeartbeatLivenessSince(ctx context.Context, node string, since time.Time) ([]record.Liveness, time.Time, error) {
	if !s.pg {
		return nil, since, ErrNoShared
	}
	rows, err := s.hdb.QueryContext(ctx, `SELECT host, family, node, last_seen, dynamic, interval_ms, rtt_us, rtt_avg_us, loss_percent, addr, down, written
		FROM heartbeat_liveness WHERE node <> $1 AND written > $2 ORDER BY written`, node, since)
	if err != nil {
		return nil, since, fmt.Errorf("read heartbeat liveness: %w", err)
	}
	defer rows.Close()
	var out []record.Liveness
	next := since
	for rows.Next() {
		var r record.Liveness
		var dyn, down int64
		var written time.Time
		if err := rows.Scan(&r.Host, &r.Family, &r.Node, &r.LastSeen, &dyn, &r.IntervalMS, &r.RTTMicros, &r.RTTAvgMicros,
			&r.LossPercent, &r.Addr, &down, &written); err != nil {
			return nil, since, fmt.Errorf("read heartbeat liveness: %w", err)
		}
		r.Dynamic, r.Down = dyn != 0, down != 0
		if written.After(next) {
			next = written
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, since, fmt.Errorf("read heartbeat liveness: %w", err)
	}
	return out, next, nil
}

// TrimHeartbeatSessions deletes the session claims nobody advanced for
// olderThan: far beyond the heartbeat clock skew allowed, so none of
// their datagrams can be accepted anywhere any more.
func (s *Store) TrimHeartbeatSessions(ctx context.Context, olderThan time.Duration) (int64, error) {
	if !s.pg {
		return 0, ErrNoShared
	}
	res, err := s.hdb.ExecContext(ctx, `DELETE FROM heartbeat_sessions WHERE updated < clock_timestamp() - $1::float8 * interval '1 second'`, olderThan.Seconds())
	if err != nil {
		return 0, fmt.Errorf("trim heartbeat sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// RecordStateFenced records a connection's or host's state change, as
// RecordState, in a transaction that first checks the leader's fence, and
// returns once it is committed: ErrNotLeader (nothing written) when the
// lease moved on. For the zero Fence it checks nothing.
func (s *Store) RecordStateFenced(ctx context.Context, f Fence, host, family, state string, ts float64) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		if err := f.Check(tx); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO host_states (host, family, ts, state) VALUES (?, ?, ?, ?)`, host, family, ts, state)
		if err != nil {
			return fmt.Errorf("record state of %s: %w", host, err)
		}
		return nil
	})
}
