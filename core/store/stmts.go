package store

import (
	"context"
	"database/sql"
	"strings"
)

// insertSampleSQL stores one sample row; a row with the same series and
// timestamp is replaced, so a resent batch is stored once.
const (
	insertSampleSQL = `INSERT OR REPLACE INTO samples (series, ts, vals) VALUES `
	sampleRowSQL    = `(?, ?, ?)`
	touchHostSQL    = `UPDATE hosts SET last_seen = ? WHERE name = ?`
)

// sampleChunks are the row counts of the prepared multi-row sample
// inserts, largest first: a batch of n samples is stored in at most
// n/64 + 3 + 3 + 3 statements instead of n.
var sampleChunks = [...]int{64, 16, 4, 1}

// hotStmts are the ingestion path's statements, prepared once on the
// writer's connection: parsing the SQL of every batch cost more than
// storing its rows. A transaction uses them through tx.Stmt, which reuses
// the connection's prepared statement.
type hotStmts struct {
	inserts   [len(sampleChunks)]*sql.Stmt
	touchHost *sql.Stmt
}

func (h *hotStmts) prepare(ctx context.Context, db *sql.DB) error {
	for i, n := range sampleChunks {
		q := insertSampleSQL + strings.TrimSuffix(strings.Repeat(sampleRowSQL+", ", n), ", ")
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			h.close()
			return err
		}
		h.inserts[i] = st
	}
	st, err := db.PrepareContext(ctx, touchHostSQL)
	if err != nil {
		h.close()
		return err
	}
	h.touchHost = st
	return nil
}

func (h *hotStmts) close() {
	for _, st := range append(h.inserts[:], h.touchHost) {
		if st != nil {
			st.Close()
		}
	}
}

// insertSamples stores rows (series, ts, vals triples, in order: a later
// row of the same series and timestamp replaces an earlier one) in tx.
func (h *hotStmts) insertSamples(tx *sql.Tx, rows []any) error {
	for i, n := range sampleChunks {
		st := (*sql.Stmt)(nil)
		for len(rows) >= 3*n {
			if st == nil {
				st = tx.Stmt(h.inserts[i])
			}
			if _, err := st.Exec(rows[:3*n]...); err != nil {
				return err
			}
			rows = rows[3*n:]
		}
	}
	return nil
}
