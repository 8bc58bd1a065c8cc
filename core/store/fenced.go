package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/hbdmon/hbd/core/alert/record"
)

// Fenced leader writes (issue 15; PostgreSQL only). Every alert-state
// write of a clustered leader checks its lease in its own transaction
// (Fence.Check, FOR SHARE on the lease row, so a takeover waits for it
// and it fails after one), records the epoch it was written under on the
// rows it saves and adds one fenced_writes row stamped with the
// database's clock. Because the check holds the lease row until COMMIT,
// every write of an epoch is stamped before the next epoch's takeover
// commits, and every write of the next epoch after: the stamps of two
// epochs never interleave, which is what the cluster tests assert.
// Migration 45 belongs to it.
func init() {
	registerPG(migration{Version: 45, Name: "epochs on leader writes", SQL: `
ALTER TABLE alert_states ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
CREATE TABLE fenced_writes (
	epoch  BIGINT NOT NULL,
	holder TEXT NOT NULL,
	what   TEXT NOT NULL,
	n      INTEGER NOT NULL,
	at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX fenced_writes_at ON fenced_writes (at);
CREATE INDEX fenced_writes_epoch ON fenced_writes (epoch);
`})
}

// FencedWrite is one row of fenced_writes.
type FencedWrite struct {
	Epoch  int64
	Holder string
	What   string
	N      int
	At     sql.NullTime
}

// fencedAlertTx is alertTx behind f: nothing is written unless f holds.
func fencedAlertTx(tx *sql.Tx, f Fence, save []record.SavedState, del []record.Key) error {
	if err := f.Check(tx); err != nil {
		return err
	}
	if err := alertTx(tx, save, del); err != nil {
		return err
	}
	if !f.Clustered() {
		return nil
	}
	if len(save) > 0 {
		hosts, metrics := make([]string, len(save)), make([]string, len(save))
		for i, a := range save {
			hosts[i], metrics[i] = a.Host, a.Metric
		}
		if _, err := tx.Exec(`UPDATE alert_states SET epoch = $1 WHERE (host, metric) IN (SELECT * FROM unnest($2::text[], $3::text[]))`,
			f.Epoch, hosts, metrics); err != nil {
			return fmt.Errorf("alert states epoch: %w", err)
		}
	}
	_, err := tx.Exec(`INSERT INTO fenced_writes (epoch, holder, what, n) VALUES ($1, $2, 'alert_states', $3)`, f.Epoch, f.Holder, len(save)+len(del))
	return err
}

// SaveAlertStatesFenced is SaveAlertStates as a leader write behind f
// (see above). done, when not nil, gets the outcome on the writer's
// goroutine (ErrNotLeader when the lease moved on); it must not block.
func (s *Store) SaveAlertStatesFenced(f Fence, save []record.SavedState, del []record.Key, done func(error)) {
	if len(save) == 0 && len(del) == 0 {
		return
	}
	op := writeOp{fn: func(tx *sql.Tx) error { return fencedAlertTx(tx, f, save, del) }, after: done}
	if err := s.enqueue(context.Background(), op); err != nil {
		s.log.Warn("queued write dropped", "error", err)
		if done != nil {
			done(err)
		}
	}
}

// SaveAlertStatesIn is SaveAlertStatesFenced as a write of b, behind
// its fence: it commits with the batch's other writes or not at all.
func (s *Store) SaveAlertStatesIn(b *Batch, save []record.SavedState, del []record.Key, done func(error)) {
	if len(save) == 0 && len(del) == 0 {
		return
	}
	f := b.Fence()
	b.add(writeOp{fn: func(tx *sql.Tx) error { return fencedAlertTx(tx, f, save, del) }, after: done})
}

// SaveAlertStatesFencedSync is SaveAlertStatesFenced waiting for the
// commit.
func (s *Store) SaveAlertStatesFencedSync(ctx context.Context, f Fence, save []record.SavedState, del []record.Key) error {
	if len(save) == 0 && len(del) == 0 {
		return nil
	}
	return s.Write(ctx, func(tx *sql.Tx) error { return fencedAlertTx(tx, f, save, del) })
}

// FencedWrites returns the fenced_writes rows in the order of their
// stamps (tests and diagnostics).
func (s *Store) FencedWrites(ctx context.Context) ([]FencedWrite, error) {
	if !s.pg {
		return nil, ErrNoLease
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT epoch, holder, what, n, at FROM fenced_writes ORDER BY at`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FencedWrite
	for rows.Next() {
		var w FencedWrite
		if err := rows.Scan(&w.Epoch, &w.Holder, &w.What, &w.N, &w.At); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// trimFencedWrites deletes the fenced_writes rows stamped before before,
// in chunks, as part of retention (leader only, fenced like the rest).
func (s *Store) trimFencedWrites(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.trimStep(ctx, func(tx *sql.Tx) error {
			res, err := tx.Exec(`DELETE FROM fenced_writes WHERE ctid IN (SELECT ctid FROM fenced_writes WHERE at < $1 LIMIT $2)`, before, trimChunk)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil || n < int64(trimChunk) {
			return total, err
		}
	}
}
