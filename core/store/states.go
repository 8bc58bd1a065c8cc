package store

import (
	"context"
	"database/sql"
	"fmt"
)

// The heartbeat state history: every change of a host's state (family "")
// and of its connections ("ipv4", "ipv6"), for the uptime figures and
// strips of the web UI. Rows older than StateRetention are deleted, except
// the newest of each host and family, which says what held since.

func init() {
	register(migration{Version: 3, Name: "heartbeat state history", SQL: `
CREATE TABLE host_states (
	host   TEXT NOT NULL,
	family TEXT NOT NULL,
	ts     REAL NOT NULL,
	state  TEXT NOT NULL
);
CREATE INDEX host_states_by_host ON host_states (host, family, ts);
`})
}

// StateRetention is how long the state history is kept, in seconds: the
// longest uptime figure (30 days) and a margin.
const StateRetention = 35 * 86400

// maxStateRows bounds what one history read returns.
const maxStateRows = 100000

// StateChange is one recorded state change.
type StateChange struct {
	// Family is "ipv4" or "ipv6" for a connection, "" for the host.
	Family string  `json:"family"`
	Time   float64 `json:"time"`
	State  string  `json:"state"`
}

// RecordState queues a state change of host (family "" for the host's
// own state) through the writer without waiting: the caller is the
// heartbeat path. Old rows of the same host and family go in the same
// transaction.
func (s *Store) RecordState(host, family, state string, ts float64) {
	s.Go(func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO host_states (host, family, ts, state) VALUES (?, ?, ?, ?)`, host, family, ts, state); err != nil {
			return fmt.Errorf("record state of %s: %w", host, err)
		}
		if _, err := tx.Exec(`DELETE FROM host_states WHERE host = ? AND family = ? AND ts < ?
			AND ts < (SELECT MAX(ts) FROM host_states WHERE host = ? AND family = ?)`,
			host, family, ts-StateRetention, host, family); err != nil {
			return fmt.Errorf("trim states of %s: %w", host, err)
		}
		return nil
	})
}

// States returns the state changes of host's family since since, oldest
// first, preceded by the last change before since (what held at since)
// when there is one.
func (s *Store) States(ctx context.Context, host, family string, since float64) ([]StateChange, error) {
	var out []StateChange
	var prior StateChange
	err := s.rdb.QueryRowContext(ctx, `SELECT ts, state FROM host_states WHERE host = ? AND family = ? AND ts < ? ORDER BY ts DESC LIMIT 1`,
		host, family, since).Scan(&prior.Time, &prior.State)
	switch {
	case err == nil:
		prior.Family = family
		out = append(out, prior)
	case err != sql.ErrNoRows:
		return nil, fmt.Errorf("read states of %s: %w", host, err)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT ts, state FROM host_states WHERE host = ? AND family = ? AND ts >= ? ORDER BY ts LIMIT ?`,
		host, family, since, maxStateRows)
	if err != nil {
		return nil, fmt.Errorf("read states of %s: %w", host, err)
	}
	defer rows.Close()
	for rows.Next() {
		c := StateChange{Family: family}
		if err := rows.Scan(&c.Time, &c.State); err != nil {
			return nil, fmt.Errorf("read states of %s: %w", host, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
