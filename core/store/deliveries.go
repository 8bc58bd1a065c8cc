package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/hbdmon/hbd/core/dispatch/dispatchrecord"
)

// Delivery accounting of package dispatch: which (event, channel) pairs
// were ever queued, so a pair is never queued twice (also across a crash
// and restart), and how many deliveries of each alert episode were queued,
// succeeded or failed, so the API can say whether anybody was told.
func init() {
	register(migration{Version: 22, Name: "notification dedupe and episode deliveries", SQL: `
CREATE TABLE notify_sent (
	event_id TEXT NOT NULL,
	channel  TEXT NOT NULL,
	delivery TEXT NOT NULL,
	created  INTEGER NOT NULL,
	PRIMARY KEY (event_id, channel)
) WITHOUT ROWID;
CREATE INDEX notify_sent_created ON notify_sent (created);
CREATE TABLE notify_episodes (
	host       TEXT NOT NULL,
	metric     TEXT NOT NULL,
	start_ms   INTEGER NOT NULL,
	queued     INTEGER NOT NULL DEFAULT 0,
	delivered  INTEGER NOT NULL DEFAULT 0,
	failed     INTEGER NOT NULL DEFAULT 0,
	no_channel INTEGER NOT NULL DEFAULT 0,
	updated    INTEGER NOT NULL,
	PRIMARY KEY (host, metric, start_ms)
) WITHOUT ROWID;
CREATE INDEX notify_episodes_updated ON notify_episodes (updated);
`})
}

// QueueDeliveries queues the deliveries of one event, each to its own
// channel, and returns once committed. In the same transaction it records
// each (eventID, channel) pair and adds the number queued to ep's count; a
// pair recorded before is not queued again, and its delivery's ID is in
// skipped. So a delivery is in the queue only with its pair, and a crash
// loses both or neither.
func (s *Store) QueueDeliveries(ctx context.Context, eventID string, ep dispatchrecord.EpisodeKey, ds []dispatchrecord.Delivery) (skipped map[string]bool, err error) {
	err = s.Write(ctx, func(tx *sql.Tx) error {
		var err error
		skipped, err = queueDeliveries(tx, eventID, ep, ds, false)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("queue notifications of event %s: %w", eventID, err)
	}
	return skipped, nil
}

// queueDeliveries is QueueDeliveries' transaction; dueNow stores every
// delivery as due at once (next_at 0: the cluster outbox, whose workers
// compare with PostgreSQL's clock) instead of at its NextAt.
func queueDeliveries(tx *sql.Tx, eventID string, ep dispatchrecord.EpisodeKey, ds []dispatchrecord.Delivery, dueNow bool) (map[string]bool, error) {
	now := time.Now().UnixNano()
	skipped := map[string]bool{}
	queued := 0
	for _, d := range ds {
		res, err := tx.Exec(`INSERT OR IGNORE INTO notify_sent (event_id, channel, delivery, created) VALUES (?, ?, ?, ?)`,
			eventID, d.Channel, d.ID, now)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			skipped[d.ID] = true
			continue
		}
		next := d.NextAt.UnixNano()
		if dueNow {
			next = 0
		}
		if _, err := tx.Exec(`INSERT OR REPLACE INTO notify_queue (id, channel, event, attempts, next_at, created) VALUES (?, ?, ?, ?, ?, ?)`,
			d.ID, d.Channel, string(d.Event), d.Attempts, next, d.Created.UnixNano()); err != nil {
			return nil, err
		}
		queued++
	}
	if queued == 0 {
		return skipped, nil
	}
	_, err := tx.Exec(`INSERT INTO notify_episodes (host, metric, start_ms, queued, updated) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (host, metric, start_ms) DO UPDATE SET queued = notify_episodes.queued + excluded.queued, updated = excluded.updated`,
		ep.Host, ep.Metric, ep.StartMs, queued, now)
	return skipped, err
}

// CompleteDelivery removes a delivery from the queue and counts its
// outcome (delivered, or failed for good) in ep, and returns once
// committed: after a crash, a delivery whose outcome was committed is not
// attempted again.
func (s *Store) CompleteDelivery(ctx context.Context, id string, ep dispatchrecord.EpisodeKey, delivered bool) error {
	err := s.Write(ctx, func(tx *sql.Tx) error { return completeDelivery(tx, id, ep, delivered) })
	if err != nil {
		return fmt.Errorf("complete notification %s: %w", id, err)
	}
	return nil
}

// DropDelivery queues the removal of a delivery that will not be attempted
// (queue overflow, channel deleted), counted as failed in ep, without
// waiting for the commit.
func (s *Store) DropDelivery(id string, ep dispatchrecord.EpisodeKey) {
	s.Go(func(tx *sql.Tx) error { return completeDelivery(tx, id, ep, false) })
}

func completeDelivery(tx *sql.Tx, id string, ep dispatchrecord.EpisodeKey, delivered bool) error {
	if _, err := tx.Exec(`DELETE FROM notify_queue WHERE id = ?`, id); err != nil {
		return err
	}
	return countOutcome(tx, ep, delivered)
}

// countOutcome counts a delivery of ep as delivered or failed.
func countOutcome(tx *sql.Tx, ep dispatchrecord.EpisodeKey, delivered bool) error {
	col := "failed"
	if delivered {
		col = "delivered"
	}
	_, err := tx.Exec(`UPDATE notify_episodes SET `+col+` = `+col+` + 1, updated = ? WHERE host = ? AND metric = ? AND start_ms = ?`,
		time.Now().UnixNano(), ep.Host, ep.Metric, ep.StartMs)
	return err
}

// MarkNoChannel queues the note that an event of ep reached no channel.
func (s *Store) MarkNoChannel(ep dispatchrecord.EpisodeKey) {
	now := time.Now().UnixNano()
	s.Go(func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO notify_episodes (host, metric, start_ms, no_channel, updated) VALUES (?, ?, ?, 1, ?)
			ON CONFLICT (host, metric, start_ms) DO UPDATE SET no_channel = 1, updated = excluded.updated`,
			ep.Host, ep.Metric, ep.StartMs, now)
		return err
	})
}

// EpisodeDeliveryCounts returns the delivery counts of the limit most
// recently updated episodes, newest first.
func (s *Store) EpisodeDeliveryCounts(ctx context.Context, limit int) ([]dispatchrecord.EpisodeDeliveries, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT host, metric, start_ms, queued, delivered, failed, no_channel, updated
		FROM notify_episodes ORDER BY updated DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read notification episodes: %w", err)
	}
	defer rows.Close()
	var out []dispatchrecord.EpisodeDeliveries
	for rows.Next() {
		var e dispatchrecord.EpisodeDeliveries
		var updated int64
		if err := rows.Scan(&e.Host, &e.Metric, &e.StartMs, &e.Queued, &e.Delivered, &e.Failed, &e.NoChannel, &updated); err != nil {
			return nil, fmt.Errorf("read notification episodes: %w", err)
		}
		e.Updated = time.Unix(0, updated)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read notification episodes: %w", err)
	}
	return out, nil
}

// SentPairs returns the limit most recent (event, channel) pairs, newest
// first.
func (s *Store) SentPairs(ctx context.Context, limit int) ([]dispatchrecord.SentPair, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT event_id, channel, created FROM notify_sent ORDER BY created DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read queued notification pairs: %w", err)
	}
	defer rows.Close()
	var out []dispatchrecord.SentPair
	for rows.Next() {
		var p dispatchrecord.SentPair
		var created int64
		if err := rows.Scan(&p.EventID, &p.Channel, &created); err != nil {
			return nil, fmt.Errorf("read queued notification pairs: %w", err)
		}
		p.Created = time.Unix(0, created)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read queued notification pairs: %w", err)
	}
	return out, nil
}

// TrimDeliveryRecords deletes the episode counts last updated before
// before, and the (event, channel) pairs recorded before it whose delivery
// is no longer queued, and returns how many rows went.
func (s *Store) TrimDeliveryRecords(ctx context.Context, before time.Time) (int64, error) {
	cut := before.UnixNano()
	var total int64
	err := s.Write(ctx, func(tx *sql.Tx) error {
		total = 0
		res, err := tx.Exec(`DELETE FROM notify_episodes WHERE updated < ?`, cut)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		total += n
		res, err = tx.Exec(`DELETE FROM notify_sent WHERE created < ? AND NOT EXISTS (SELECT 1 FROM notify_queue q WHERE q.id = notify_sent.delivery)`, cut)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		total += n
		return nil
	})
	if err != nil {
		return total, fmt.Errorf("trim notification records: %w", err)
	}
	return total, nil
}
