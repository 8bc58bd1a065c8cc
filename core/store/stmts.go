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
	// pgInsertSamplesSQL stores any number of sample rows in one
	// PostgreSQL statement: three arrays, unnested row by row. (Not
	// INSERT OR REPLACE: the dialect rewrite knows only VALUES lists.)
	pgInsertSamplesSQL = `INSERT INTO samples (series, ts, vals)
SELECT * FROM unnest(?::bigint[], ?::double precision[], ?::bytea[])
ON CONFLICT (series, ts) DO UPDATE SET vals = excluded.vals`
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
	// pgInsert, on PostgreSQL, replaces inserts: one statement per batch
	// whatever its size, where the chunks cost up to n/64 + 9 round
	// trips to the server.
	pgInsert *sql.Stmt
}

func (h *hotStmts) prepare(ctx context.Context, db *sql.DB, pg bool) error {
	if pg {
		st, err := db.PrepareContext(ctx, pgInsertSamplesSQL)
		if err != nil {
			return err
		}
		h.pgInsert = st
	}
	for i, n := range sampleChunks {
		if pg {
			break
		}
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
	for _, st := range append(h.inserts[:], h.touchHost, h.pgInsert) {
		if st != nil {
			st.Close()
		}
	}
}

// insertSamples stores rows (series, ts, vals triples, in order: a later
// row of the same series and timestamp replaces an earlier one) in tx.
func (h *hotStmts) insertSamples(tx *sql.Tx, rows []any) error {
	if h.pgInsert != nil {
		// rows never repeat a series and timestamp (lastOfEachKey): one
		// statement may not upsert a row twice in PostgreSQL.
		n := len(rows) / 3
		series, ts, vals := make([]int64, n), make([]float64, n), make([][]byte, n)
		for i := range n {
			series[i], ts[i], vals[i] = rows[3*i].(int64), rows[3*i+1].(float64), rows[3*i+2].([]byte)
		}
		_, err := tx.Stmt(h.pgInsert).Exec(series, ts, vals)
		return err
	}
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
