package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/hbdmon/hbd/core/alert/record"
)

// The alert-state mirror (issue 15; PostgreSQL only): a follower's
// evaluator decides nothing, but serves the alert states and silences
// the leader committed. Every alert_states row carries the id of the
// transaction that last wrote it (xid, set by a trigger on insert and
// update), and a deleted row leaves a tombstone with the deleting
// transaction's id (alert_state_tombstones, kept TombstoneRetention). A
// follower reads the rows and tombstones whose xid lies between its
// cursor and pg_snapshot_xmin of a fresh snapshot, as TailSamples does:
// every transaction it reads past has ended, so none still in flight is
// skipped. Silences are few: every read returns all of them. Migration 46
// belongs to it.
func init() {
	registerPG(migration{Version: 46, Name: "alert state mirror", SQL: `
ALTER TABLE alert_states ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX alert_states_xid ON alert_states (xid);
CREATE FUNCTION hbd_alert_states_xid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.xid := pg_current_xact_id();
	RETURN NEW;
END $$;
CREATE TRIGGER alert_states_xid BEFORE INSERT OR UPDATE ON alert_states
	FOR EACH ROW EXECUTE FUNCTION hbd_alert_states_xid();
CREATE TABLE alert_state_tombstones (
	host   TEXT COLLATE "C" NOT NULL,
	metric TEXT COLLATE "C" NOT NULL,
	xid    xid8 NOT NULL DEFAULT pg_current_xact_id(),
	at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX alert_state_tombstones_xid ON alert_state_tombstones (xid);
CREATE INDEX alert_state_tombstones_at ON alert_state_tombstones (at);
CREATE FUNCTION hbd_alert_states_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO alert_state_tombstones (host, metric) VALUES (OLD.host, OLD.metric);
	RETURN NULL;
END $$;
CREATE TRIGGER alert_states_tombstone AFTER DELETE ON alert_states
	FOR EACH ROW EXECUTE FUNCTION hbd_alert_states_tombstone();
`})
}

// TombstoneRetention is how long, in seconds, a deleted alert state's
// tombstone is kept: a mirror that did not read for longer must read
// everything again (the evaluator's mirror does so every few minutes).
const TombstoneRetention = 3600

// AlertStateCursor is a position in the transaction order of alert-state
// writes. The zero value asks for a full read.
type AlertStateCursor struct {
	xid   uint64
	valid bool
}

// AlertStateChanges is one read of the alert-state mirror.
type AlertStateChanges struct {
	// Full is set when States holds every stored state (a zero cursor):
	// the mirror replaces what it holds.
	Full bool
	// States are the states written since the cursor (or all of them).
	States []record.SavedState
	// Deleted are states deleted since the cursor and not written again.
	Deleted []record.Key
	// Silences are every stored silence.
	Silences []record.Silence
	// Next is the cursor after this read.
	Next AlertStateCursor
}

// AlertStateChanges reads what the alert-state writers committed since c
// (everything, for the zero cursor) in one snapshot.
func (s *Store) AlertStateChanges(ctx context.Context, c AlertStateCursor) (AlertStateChanges, error) {
	var out AlertStateChanges
	if !s.pg {
		return out, ErrNoLease
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return out, fmt.Errorf("alert mirror: %w", err)
	}
	defer tx.Rollback()
	var xs string
	if err := tx.QueryRowContext(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&xs); err != nil {
		return out, fmt.Errorf("alert mirror: %w", err)
	}
	xmin, err := strconv.ParseUint(xs, 10, 64)
	if err != nil {
		return out, fmt.Errorf("alert mirror: xmin %q: %w", xs, err)
	}
	const cols = `host, metric, level, since, last_value, last_check,
		notification_count, last_notified, notified_level, acknowledged, ack_by, flapping, detail, episode_start,
		prev_level, last_kind, last_episode`
	var rows *sql.Rows
	if c.valid {
		rows, err = tx.QueryContext(ctx, `SELECT `+cols+` FROM alert_states
			WHERE xid >= $1::text::xid8 AND xid < $2::text::xid8 ORDER BY host, metric`,
			strconv.FormatUint(c.xid, 10), xs)
	} else {
		out.Full = true
		rows, err = tx.QueryContext(ctx, `SELECT `+cols+` FROM alert_states ORDER BY host, metric`)
	}
	if err != nil {
		return out, fmt.Errorf("alert mirror: %w", err)
	}
	out.States = []record.SavedState{}
	for rows.Next() {
		var a record.SavedState
		if err := rows.Scan(&a.Host, &a.Metric, &a.Level, &a.Since, &a.LastValue, &a.LastCheck,
			&a.NotificationCount, &a.LastNotified, &a.NotifiedLevel, &a.Acknowledged, &a.AckBy, &a.Flapping, &a.Detail, &a.EpisodeStart,
			&a.PrevLevel, &a.LastKind, &a.LastEpisode); err != nil {
			rows.Close()
			return out, fmt.Errorf("alert mirror: %w", err)
		}
		out.States = append(out.States, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("alert mirror: %w", err)
	}
	if c.valid {
		// A key written again after its deletion is live: its row wins.
		rows, err = tx.QueryContext(ctx, `SELECT DISTINCT t.host, t.metric FROM alert_state_tombstones t
			WHERE t.xid >= $1::text::xid8 AND t.xid < $2::text::xid8
			AND NOT EXISTS (SELECT 1 FROM alert_states s WHERE s.host = t.host AND s.metric = t.metric)`,
			strconv.FormatUint(c.xid, 10), xs)
		if err != nil {
			return out, fmt.Errorf("alert mirror: %w", err)
		}
		for rows.Next() {
			var k record.Key
			if err := rows.Scan(&k.Host, &k.Metric); err != nil {
				rows.Close()
				return out, fmt.Errorf("alert mirror: %w", err)
			}
			out.Deleted = append(out.Deleted, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return out, fmt.Errorf("alert mirror: %w", err)
		}
	}
	rows, err = tx.QueryContext(ctx, `SELECT id, host, metric, created, starts, until, created_by, comment
		FROM alert_silences ORDER BY created, id`)
	if err != nil {
		return out, fmt.Errorf("alert mirror: %w", err)
	}
	defer rows.Close()
	out.Silences = []record.Silence{}
	for rows.Next() {
		var sl record.Silence
		if err := rows.Scan(&sl.ID, &sl.Host, &sl.Metric, &sl.Created, &sl.Starts, &sl.Until, &sl.CreatedBy, &sl.Comment); err != nil {
			return out, fmt.Errorf("alert mirror: %w", err)
		}
		out.Silences = append(out.Silences, sl)
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("alert mirror: %w", err)
	}
	out.Next = AlertStateCursor{xid: xmin, valid: true}
	return out, nil
}
