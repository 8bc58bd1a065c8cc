package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/hbdmon/hbd/core/dispatch/dispatchrecord"
)

// The cluster outbox (issue 15, item 4; PostgreSQL only): with several
// daemons on one database, notify_queue is one queue that every daemon's
// delivery workers take from. The leader queues an event's deliveries
// with QueueOutbox, fenced by its lease in the same transaction; any
// daemon's worker claims a due delivery with ClaimOutbox (FOR UPDATE SKIP
// LOCKED, so two workers never take the same row), sends it outside any
// transaction and records the outcome with CompleteClaim or RetryClaim.
// A claim lasts a TTL on PostgreSQL's clock: a worker killed mid-send
// leaves its claim to expire, and another worker sends the delivery
// again. Per-channel order: only the oldest delivery of a channel
// (created, id) can be claimed, so a channel's next delivery waits while
// an earlier one is in flight or waiting for its retry.
//
// Wake-ups: QueueOutbox and CompleteClaim send NOTIFY hbd_outbox in their
// transaction (delivered on commit); ListenOutbox listens for it on a
// connection of its own.

// OutboxChannel is the PostgreSQL notification channel of the outbox.
const OutboxChannel = "hbd_outbox"

// ErrNeedsPostgres is returned by the cluster methods of a SQLite store
// (the outbox, the user channels' change counter).
var ErrNeedsPostgres = errors.New("shared by a cluster: needs the PostgreSQL store")

func init() {
	registerPG(migration{Version: 43, Name: "outbox claims", SQL: `
ALTER TABLE notify_queue ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE notify_queue ADD COLUMN claimed_until TIMESTAMPTZ;
ALTER TABLE notify_queue ADD COLUMN claim_seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX notify_queue_channel ON notify_queue (channel, created, id);
`})
}

// openOutboxDB opens the outbox's pool: claims and outcomes run beside
// the writer's group commits, never queued behind them.
func openOutboxDB(cfg *pgx.ConnConfig) *sql.DB {
	db := sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg.Copy()), false})
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(4)
	return db
}

// pgNowNs is PostgreSQL's clock in unix nanoseconds, as next_at.
const pgNowNs = `(extract(epoch from clock_timestamp()) * 1000000000)::bigint`

// QueueOutbox queues the deliveries of one event in the cluster outbox,
// as QueueDeliveries does, without waiting: fence is checked in the same
// transaction (a stale fence fails it with ErrNotLeader and nothing is
// written), every delivery is due at once, and the workers of every
// daemon are woken on commit. done gets the outcome on the writer
// goroutine (it must not wait on the store's writes). Writes commit in
// the order they are queued, so the deliveries of events queued one after
// the other become visible to the workers in that order.
func (s *Store) QueueOutbox(fence Fence, eventID string, ep dispatchrecord.EpisodeKey, ds []dispatchrecord.Delivery, done func(skipped map[string]bool, err error)) {
	if !s.pg {
		done(nil, ErrNeedsPostgres)
		return
	}
	s.enqueueFenced(fence, []writeOp{s.outboxOp(eventID, ep, ds, done)})
}

// QueueOutboxIn is QueueOutbox as a write of b, behind its fence: the
// deliveries commit with the batch's other writes (the alert change they
// notify) or not at all.
func (s *Store) QueueOutboxIn(b *Batch, eventID string, ep dispatchrecord.EpisodeKey, ds []dispatchrecord.Delivery, done func(skipped map[string]bool, err error)) {
	if !s.pg {
		done(nil, ErrNeedsPostgres)
		return
	}
	b.add(s.outboxOp(eventID, ep, ds, done))
}

// outboxOp is the unfenced write of QueueOutbox.
func (s *Store) outboxOp(eventID string, ep dispatchrecord.EpisodeKey, ds []dispatchrecord.Delivery, done func(skipped map[string]bool, err error)) writeOp {
	var skipped map[string]bool
	return writeOp{
		fn: func(tx *sql.Tx) error {
			live, gone, err := lockUserChannels(tx, ds)
			if err != nil {
				return err
			}
			if skipped, err = queueDeliveries(tx, eventID, ep, live, true); err != nil {
				return err
			}
			for id := range gone {
				skipped[id] = true
			}
			if len(skipped) < len(ds) {
				_, err = tx.Exec(`SELECT pg_notify('` + OutboxChannel + `', '')`)
			}
			return err
		},
		after: func(err error) {
			if err != nil {
				done(nil, fmt.Errorf("queue notifications of event %s: %w", eventID, err))
				return
			}
			done(skipped, nil)
		},
	}
}

// lockUserChannels returns the deliveries of ds to config channels and
// to user channels still stored, whose rows it locks (FOR SHARE) until tx
// ends, and the IDs of the others (their channel was deleted, maybe
// through another daemon whose deletion this daemon's registry has not
// yet followed). The lock orders the outbox write and a deletion: a
// DeleteUserChannel waits for tx and then removes what tx queued; one
// that committed first leaves nothing to lock, and nothing is queued.
func lockUserChannels(tx *sql.Tx, ds []dispatchrecord.Delivery) (live []dispatchrecord.Delivery, gone map[string]bool, err error) {
	var names []string
	for _, d := range ds {
		if d.UserChannel {
			names = append(names, d.Channel)
		}
	}
	if len(names) == 0 {
		return ds, nil, nil
	}
	rows, err := tx.Query(`SELECT name FROM notification_channels WHERE name = ANY($1::text[]) ORDER BY name FOR SHARE`, names)
	if err != nil {
		return nil, nil, fmt.Errorf("lock notification channels: %w", err)
	}
	defer rows.Close()
	stored := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, nil, fmt.Errorf("lock notification channels: %w", err)
		}
		stored[name] = true
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("lock notification channels: %w", err)
	}
	gone = map[string]bool{}
	for _, d := range ds {
		if d.UserChannel && !stored[d.Channel] {
			gone[d.ID] = true
			continue
		}
		live = append(live, d)
	}
	return live, gone, nil
}

// claimSQL finds the head of each of the daemon's channels through the
// (channel, created, id) index, one probe per channel, so a claim costs
// the number of channels, not the outbox's length; of the heads that are
// due and unclaimed it locks the oldest one no other worker holds.
const claimSQL = `
UPDATE notify_queue AS q
SET claimed_by = $1, claimed_until = clock_timestamp() + $2::float8 * interval '1 second', claim_seq = q.claim_seq + 1
WHERE q.id = (
	SELECT c.id FROM notify_queue c
	WHERE c.id IN (
			SELECT h.id FROM unnest($3::text[]) AS ch(name)
			CROSS JOIN LATERAL (SELECT e.id FROM notify_queue e WHERE e.channel = ch.name ORDER BY e.created, e.id LIMIT 1) h)
		AND c.next_at <= ` + pgNowNs + `
		AND (c.claimed_until IS NULL OR c.claimed_until <= clock_timestamp())
	ORDER BY c.created, c.id
	LIMIT 1
	FOR UPDATE OF c SKIP LOCKED)
RETURNING q.id, q.channel, q.event, q.attempts, q.next_at, q.created, q.claim_seq`

// ClaimOutbox claims the oldest due delivery to one of channels that
// heads its channel's queue and is not claimed (or whose claim expired)
// for node until ttl from now on PostgreSQL's clock. ok is false when none
// is due.
func (s *Store) ClaimOutbox(ctx context.Context, node string, ttl time.Duration, channels []string) (c dispatchrecord.Claim, ok bool, err error) {
	if !s.pg {
		return c, false, ErrNeedsPostgres
	}
	var ev string
	var next, created int64
	err = s.odb.QueryRowContext(ctx, claimSQL, node, ttl.Seconds(), channels).Scan(&c.ID, &c.Channel, &ev, &c.Attempts, &next, &created, &c.Seq)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("claim a notification: %w", err)
	}
	c.Event, c.NextAt, c.Created = []byte(ev), time.Unix(0, next), time.Unix(0, created)
	return c, true, nil
}

// CompleteClaim removes a claimed delivery and counts its outcome in ep,
// in one transaction, when claim is still the delivery's latest; held is
// false when it is not (the claim expired and another worker took the
// delivery over, and records its outcome). It wakes every daemon's
// workers when the channel has a next delivery, which may now be claimed.
func (s *Store) CompleteClaim(ctx context.Context, c dispatchrecord.Claim, ep dispatchrecord.EpisodeKey, delivered bool) (held bool, err error) {
	if !s.pg {
		return false, ErrNeedsPostgres
	}
	ok := 0
	if delivered {
		ok = 1
	}
	// One statement, one round trip: it commits as a whole. The wake-up
	// goes out only when the channel has a next delivery: the worker that
	// ends this one looks for more work anyway.
	var n, counted int
	var woke bool
	err = s.odb.QueryRowContext(ctx, completeClaimSQL, c.ID, c.Seq, ep.Host, ep.Metric, ep.StartMs, ok, time.Now().UnixNano(), c.Channel).
		Scan(&n, &counted, &woke)
	if err != nil {
		return false, fmt.Errorf("complete notification %s: %w", c.ID, err)
	}
	return n > 0, nil
}

const completeClaimSQL = `
WITH del AS (
	DELETE FROM notify_queue WHERE id = $1 AND claim_seq = $2 RETURNING id
), counted AS (
	UPDATE notify_episodes SET delivered = delivered + $6::bigint, failed = failed + (1 - $6::bigint), updated = $7::bigint
	WHERE host = $3 AND metric = $4 AND start_ms = $5 AND EXISTS (SELECT 1 FROM del)
	RETURNING 1
)
SELECT (SELECT count(*) FROM del), (SELECT count(*) FROM counted),
	CASE WHEN EXISTS (SELECT 1 FROM del) AND EXISTS (SELECT 1 FROM notify_queue q WHERE q.channel = $8 AND q.id <> $1)
		THEN pg_notify('` + OutboxChannel + `', '') IS NULL ELSE false END`

// RetryClaim records a failed attempt of a claimed delivery (attempts so
// far) and releases it, due again after delay on PostgreSQL's clock, when
// claim is still the delivery's latest (held reports it).
func (s *Store) RetryClaim(ctx context.Context, c dispatchrecord.Claim, attempts int, delay time.Duration) (held bool, err error) {
	if !s.pg {
		return false, ErrNeedsPostgres
	}
	res, err := s.odb.ExecContext(ctx, `UPDATE notify_queue SET attempts = $3, next_at = `+pgNowNs+` + $4::bigint,
		claimed_by = '', claimed_until = NULL WHERE id = $1 AND claim_seq = $2`, c.ID, c.Seq, attempts, delay.Nanoseconds())
	if err != nil {
		return false, fmt.Errorf("reschedule notification %s: %w", c.ID, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// ReleaseClaim gives a claimed delivery back unattempted (a worker
// stopping), due at once for any worker, when claim is still its latest,
// and wakes the workers.
func (s *Store) ReleaseClaim(ctx context.Context, c dispatchrecord.Claim) error {
	if !s.pg {
		return ErrNeedsPostgres
	}
	_, err := s.odb.ExecContext(ctx, `WITH r AS (UPDATE notify_queue SET claimed_by = '', claimed_until = NULL WHERE id = $1 AND claim_seq = $2 RETURNING 1)
		SELECT pg_notify('`+OutboxChannel+`', '') FROM r`, c.ID, c.Seq)
	if err != nil {
		return fmt.Errorf("release notification %s: %w", c.ID, err)
	}
	return nil
}

// OutboxBacklog counts the outbox's pending deliveries and those node
// has claimed (unexpired).
func (s *Store) OutboxBacklog(ctx context.Context, node string) (dispatchrecord.Backlog, error) {
	var b dispatchrecord.Backlog
	if !s.pg {
		return b, ErrNeedsPostgres
	}
	var oldest sql.NullInt64
	err := s.odb.QueryRowContext(ctx, `SELECT count(*),
		count(*) FILTER (WHERE claimed_by = $1 AND claimed_until > clock_timestamp()), min(created) FROM notify_queue`, node).
		Scan(&b.Pending, &b.Claimed, &oldest)
	if err != nil {
		return b, fmt.Errorf("count pending notifications: %w", err)
	}
	if oldest.Valid {
		b.Oldest = time.Unix(0, oldest.Int64)
	}
	return b, nil
}

// ListenOutbox listens for the outbox's wake-ups on a connection of its
// own and calls wake for each (also once as soon as it listens, for rows
// queued before), until ctx ends or the connection fails; it returns
// that error. The caller listens again after a pause and polls meanwhile.
func (s *Store) ListenOutbox(ctx context.Context, wake func()) error {
	if !s.pg {
		return ErrNeedsPostgres
	}
	conn, err := s.odb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("listen for notifications: %w", err)
	}
	defer conn.Close()
	var lerr error
	err = conn.Raw(func(dc any) error {
		pc := dc.(*pgConn).c.Conn()
		if _, lerr = pc.Exec(ctx, "LISTEN "+OutboxChannel); lerr != nil {
			return driver.ErrBadConn
		}
		wake()
		for {
			if _, lerr = pc.WaitForNotification(ctx); lerr != nil {
				// Never handed back to the pool still listening.
				return driver.ErrBadConn
			}
			wake()
		}
	})
	if lerr != nil {
		err = lerr
	}
	return fmt.Errorf("listen for notifications: %w", err)
}

// outboxTx runs fn in a transaction on the outbox's pool, once more on a
// new connection when the session was lost before it committed.
func (s *Store) outboxTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for try := 0; ; try++ {
		err := s.outboxTxOnce(ctx, fn)
		if err == nil || try > 0 || !pgSessionLost(err) {
			return err
		}
	}
}

func (s *Store) outboxTxOnce(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.odb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
