package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Alert commands (issue 15; PostgreSQL only): an acknowledgement or a
// silence asked of a follower is applied by the leader. The follower
// inserts a row into alert_commands and waits for its result; the
// leader's daemon claims the oldest pending row (FOR UPDATE SKIP LOCKED,
// in a transaction that checks its fence), applies it through its
// evaluator and records the result in that same transaction, so a
// command is applied once, by a daemon that leads. A follower that waits
// in vain withdraws its command (done with no leader's result) before it
// answers; the withdrawal waits for a leader applying it meanwhile, so
// the answer is never "no leader" for a command that was applied. The
// leader skips, and withdraws, commands older than their wait. Migration
// 47 belongs to it.
func init() {
	registerPG(migration{Version: 47, Name: "alert commands", SQL: `
CREATE TABLE alert_commands (
	id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind         TEXT NOT NULL,
	args         TEXT NOT NULL,
	requested_by TEXT NOT NULL DEFAULT '',
	created      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
	done         BOOLEAN NOT NULL DEFAULT false,
	result       TEXT,
	applied_by   TEXT NOT NULL DEFAULT '',
	epoch        BIGINT NOT NULL DEFAULT 0,
	finished     TIMESTAMPTZ
);
CREATE INDEX alert_commands_pending ON alert_commands (id) WHERE NOT done;
CREATE INDEX alert_commands_created ON alert_commands (created);
`})
}

// ErrNoAnswer is returned by RunAlertCommand when no leader applied the
// command within the wait; the command was withdrawn and will not be.
var ErrNoAnswer = errors.New("no leader applied the command in time")

// AlertCommand is one row of alert_commands as the leader applies it.
type AlertCommand struct {
	ID          int64
	Kind        string
	Args        []byte
	RequestedBy string
}

// Tunables of the command path.
const (
	// commandPoll is how often a waiting follower looks for the result.
	commandPoll = 50 * time.Millisecond
	// CommandRetention is how long done commands are kept (seconds).
	CommandRetention = 600
)

// RunAlertCommand stores a command for the leader and waits up to wait
// for its result (the bytes the leader's apply returned). Past the wait
// the command is withdrawn and ErrNoAnswer returned, unless a leader
// applied it meanwhile.
func (s *Store) RunAlertCommand(ctx context.Context, kind string, args []byte, by string, wait time.Duration) ([]byte, error) {
	if !s.pg {
		return nil, ErrNoLease
	}
	var id int64
	if err := s.cdb.QueryRowContext(ctx, `INSERT INTO alert_commands (kind, args, requested_by) VALUES ($1, $2, $3) RETURNING id`,
		kind, string(args), by).Scan(&id); err != nil {
		return nil, fmt.Errorf("alert command: %w", err)
	}
	deadline := time.Now().Add(wait)
	t := time.NewTicker(commandPoll)
	defer t.Stop()
	for {
		var res sql.NullString
		var done bool
		err := s.cdb.QueryRowContext(ctx, `SELECT done, result FROM alert_commands WHERE id = $1`, id).Scan(&done, &res)
		switch {
		case err != nil && ctx.Err() == nil:
			return nil, fmt.Errorf("alert command: %w", err)
		case err == nil && done && res.Valid:
			return []byte(res.String), nil
		case ctx.Err() != nil || time.Now().After(deadline):
			return s.withdrawAlertCommand(id)
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// withdrawAlertCommand marks a pending command done without a result;
// when a leader finished it first, its result is returned.
func (s *Store) withdrawAlertCommand(id int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var res sql.NullString
	err := s.cdb.QueryRowContext(ctx, `
WITH w AS (UPDATE alert_commands SET done = true, finished = clock_timestamp() WHERE id = $1 AND NOT done RETURNING id)
SELECT result FROM alert_commands WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM w)`, id).Scan(&res)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, ErrNoAnswer // withdrawn by us
	case err != nil:
		return nil, fmt.Errorf("alert command: withdraw: %w", err)
	case !res.Valid:
		return nil, ErrNoAnswer // withdrawn before (a leader skipped it as too old)
	}
	return []byte(res.String), nil
}

// ApplyAlertCommands applies pending commands one at a time, oldest
// first, each in a transaction that checks f, claims the row and records
// apply's result, so each is applied once and only while f holds. Rows
// older than maxAge are withdrawn unapplied (their requester has stopped
// waiting). It returns how many it applied; ErrNotLeader when the lease
// moved on.
func (s *Store) ApplyAlertCommands(ctx context.Context, f Fence, maxAge time.Duration, limit int, apply func(ctx context.Context, c AlertCommand) []byte) (int, error) {
	if !s.pg {
		return 0, ErrNoLease
	}
	if _, err := s.cdb.ExecContext(ctx, `UPDATE alert_commands SET done = true, finished = clock_timestamp()
		WHERE NOT done AND created < clock_timestamp() - $1::float8 * interval '1 second'`, maxAge.Seconds()); err != nil {
		return 0, fmt.Errorf("alert commands: %w", err)
	}
	n := 0
	for n < limit {
		ok, err := s.applyAlertCommand(ctx, f, apply)
		if err != nil || !ok {
			return n, err
		}
		n++
	}
	return n, nil
}

func (s *Store) applyAlertCommand(ctx context.Context, f Fence, apply func(ctx context.Context, c AlertCommand) []byte) (bool, error) {
	tx, err := s.cdb.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("alert commands: %w", err)
	}
	defer tx.Rollback()
	if err := f.Check(tx); err != nil {
		return false, err
	}
	var c AlertCommand
	var args string
	err = tx.QueryRowContext(ctx, `SELECT id, kind, args, requested_by FROM alert_commands WHERE NOT done
		ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`).Scan(&c.ID, &c.Kind, &args, &c.RequestedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("alert commands: %w", err)
	}
	c.Args = []byte(args)
	res := apply(ctx, c)
	if _, err := tx.ExecContext(ctx, `UPDATE alert_commands SET done = true, result = $2, applied_by = $3, epoch = $4, finished = clock_timestamp() WHERE id = $1`,
		c.ID, string(res), f.Holder, f.Epoch); err != nil {
		return false, fmt.Errorf("alert commands: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("alert commands: %w", err)
	}
	return true, nil
}

// TrimAlertCommands deletes done commands older than CommandRetention
// and alert-state tombstones older than TombstoneRetention.
func (s *Store) TrimAlertCommands(ctx context.Context) error {
	if !s.pg {
		return ErrNoLease
	}
	if _, err := s.cdb.ExecContext(ctx, `DELETE FROM alert_commands WHERE done AND created < clock_timestamp() - $1::float8 * interval '1 second'`,
		float64(CommandRetention)); err != nil {
		return fmt.Errorf("trim alert commands: %w", err)
	}
	if _, err := s.cdb.ExecContext(ctx, `DELETE FROM alert_state_tombstones WHERE at < clock_timestamp() - $1::float8 * interval '1 second'`,
		float64(TombstoneRetention)); err != nil {
		return fmt.Errorf("trim alert state tombstones: %w", err)
	}
	return nil
}
