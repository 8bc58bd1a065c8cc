package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Moving one daemon's SQLite store into PostgreSQL (`hbd migrate-store`),
// for an operator going from one machine to several daemons on one
// database (docs/HA.md). The copy is one PostgreSQL transaction reading
// one SQLite read transaction, streamed table by table with COPY: a
// failure leaves the target as it was, and the source is never written.

var (
	// ErrTargetNotEmpty is returned by MigrateToPostgres when the
	// PostgreSQL database already holds data: the copy never merges.
	ErrTargetNotEmpty = errors.New("the PostgreSQL database is not empty")
	// ErrOlderSchema is returned by MigrateToPostgres for a SQLite
	// database that this hbd's daemon has not migrated yet.
	ErrOlderSchema = errors.New("database schema is older than this hbd")
)

// copyTables are the tables MigrateToPostgres copies, in this order
// (series before samples: samples reference them). Their columns are the
// SQLite table's; PostgreSQL-only columns (samples.xid, alert_states.xid
// and epoch, notify_queue's claim columns) take their defaults, as for a
// row written by a daemon.
var copyTables = []string{
	"hosts", "series", "samples", "journal",
	"host_heartbeats", "host_states", "plugin_units",
	"alert_states", "alert_silences", "alert_history",
	"notification_channels", "notify_queue", "notify_sent", "notify_episodes",
	"user_overlay", "sessions",
}

// clusterTables exist only for several daemons (PostgreSQL migrations
// 40–49); MigrateToPostgres copies nothing into them, refuses a target
// where they hold rows, and leaves them empty. channel_version, the other
// one, must still hold its initial row (version 0).
var clusterTables = []string{
	"leader_lease", "cluster_nodes", "cluster_epochs",
	"heartbeat_liveness", "heartbeat_sessions", "fenced_writes",
	"alert_state_tombstones", "alert_commands",
}

// ClusterTables names the PostgreSQL tables MigrateToPostgres leaves in
// their initial state (for its summary).
func ClusterTables() []string {
	return append(append([]string(nil), clusterTables...), "channel_version")
}

// MigrateOptions tune MigrateToPostgres.
type MigrateOptions struct {
	// Password replaces the DSN's (the config's store.password_file).
	Password string
	// Logger receives the target's migration messages; nil discards them.
	Logger hclog.Logger
	// Copied, when set, is called after each table is copied (before the
	// final COMMIT), so a long copy shows its progress.
	Copied func(TableCopy)
}

// TableCopy is one table's part of a copy.
type TableCopy struct {
	Table    string
	Rows     int64
	Duration time.Duration
}

// MigrateResult describes a finished copy.
type MigrateResult struct {
	Source string // the SQLite database file
	Target string // the PostgreSQL database: host, port and name, no user or password
	Tables []TableCopy
}

// MigrateToPostgres copies the SQLite store in dataDir into the empty
// PostgreSQL database at dsn. The SQLite database is opened read-only and
// must be at this hbd's schema (ErrOlderSchema, ErrNewerSchema otherwise);
// the target is migrated to the newest schema by the store's own
// migrations, then, in one transaction that locks hbd's tables, checked
// to hold no data (ErrTargetNotEmpty, naming a table), filled with COPY
// from one SQLite read transaction, its identity sequences set past every
// copied id (and past ids SQLite had used for rows since deleted), its row
// counts checked against the source's, and committed. A daemon must not
// run on dataDir (the caller checks): what it writes after the read
// transaction began would not be copied. Errors name the table and row,
// never a value or the password.
func MigrateToPostgres(ctx context.Context, dataDir, dsn string, opts MigrateOptions) (*MigrateResult, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	src, err := openSource(ctx, dataDir)
	if err != nil {
		return nil, err
	}
	defer src.close()

	cfg, err := pgConfig(dsn, opts.Password, "hbd migrate-store")
	if err != nil {
		return nil, err
	}
	res := &MigrateResult{Source: src.path, Target: describePG(cfg)}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: cannot connect to %s: %w", res.Target, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	// Before the migrations touch it: a database holding data, at any
	// schema, is refused unchanged.
	if err := checkEmpty(ctx, conn, res.Target); err != nil {
		return nil, err
	}
	st, err := OpenPostgres(ctx, dsn, Options{SampleHistory: 1, Logger: opts.Logger, Password: opts.Password})
	if err != nil {
		return nil, err
	}
	if err := st.Close(); err != nil {
		return nil, fmt.Errorf("database %s: %w", res.Target, err)
	}

	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", res.Target, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // a no-op once committed
	locked := append(append(append([]string(nil), copyTables...), clusterTables...), "channel_version")
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
		return nil, fmt.Errorf("database %s: %w", res.Target, err)
	}
	// Writers wait (or time out) until the copy commits; a second copy
	// running at once finds this one's rows once it gets the locks.
	if _, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(locked, ", ")+` IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return nil, fmt.Errorf("database %s: lock hbd's tables (is a daemon running on it?): %w", res.Target, err)
	}
	if err := checkEmpty(ctx, tx, res.Target); err != nil {
		return nil, err
	}
	for _, table := range copyTables {
		start := time.Now()
		n, err := src.copyTable(ctx, tx, table)
		if err != nil {
			return nil, err
		}
		tc := TableCopy{Table: table, Rows: n, Duration: time.Since(start)}
		res.Tables = append(res.Tables, tc)
		if opts.Copied != nil {
			opts.Copied(tc)
		}
	}
	if err := src.setSequences(ctx, tx); err != nil {
		return nil, fmt.Errorf("database %s: %w", res.Target, err)
	}
	for _, tc := range res.Tables {
		var n int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+tc.Table).Scan(&n); err != nil {
			return nil, fmt.Errorf("database %s: count %s: %w", res.Target, tc.Table, err)
		}
		if n != tc.Rows || n != src.counts[tc.Table] {
			return nil, fmt.Errorf("database %s: table %s has %d rows after the copy, the source %d: nothing was copied", res.Target, tc.Table, n, src.counts[tc.Table])
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("database %s: commit the copy: %w", res.Target, err)
	}
	// Fresh statistics for the planner: without them the first queries on
	// millions of rows may choose badly until autovacuum comes by.
	if _, err := conn.Exec(ctx, `ANALYZE `+strings.Join(copyTables, ", ")); err != nil {
		opts.Logger.Warn("analyze after the copy failed", "error", err)
	}
	return res, nil
}

// querier is what checkEmpty needs of a connection or transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// checkEmpty returns ErrTargetNotEmpty, naming the first table that holds
// rows, unless every hbd table that exists in the database is empty (and
// channel_version still at 0).
func checkEmpty(ctx context.Context, q querier, where string) error {
	for _, table := range append(append([]string(nil), copyTables...), clusterTables...) {
		var has bool
		err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&has)
		if err == nil && has {
			err = q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+table+`)`).Scan(&has)
			if err == nil && has {
				return notEmpty(where, table)
			}
		}
		if err != nil {
			return fmt.Errorf("database %s: %s: %w", where, table, err)
		}
	}
	var has bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('channel_version') IS NOT NULL`).Scan(&has); err != nil {
		return fmt.Errorf("database %s: %w", where, err)
	}
	if has {
		var moved bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM channel_version WHERE version <> 0)`).Scan(&moved); err != nil {
			return fmt.Errorf("database %s: channel_version: %w", where, err)
		}
		if moved {
			return notEmpty(where, "channel_version")
		}
	}
	return nil
}

func notEmpty(where, table string) error {
	return fmt.Errorf("%w: %s: table %s has rows; migrate-store copies only into an empty database and never merges (create a new one, e.g. createdb -O hbd hbd, or empty this one)", ErrTargetNotEmpty, where, table)
}

// source is the SQLite side of a copy: one read transaction, so every
// table is read from the same snapshot.
type source struct {
	path   string
	db     *sql.DB
	tx     *sql.Tx
	counts map[string]int64 // rows per copied table, in the snapshot
	seqs   map[string]int64 // sqlite_sequence: the largest id ever used
}

func (s *source) close() {
	if s.tx != nil {
		s.tx.Rollback()
	}
	s.db.Close()
}

// openSource opens the database in dataDir read-only, checks it and its
// schema, and begins the read transaction the copy reads from.
func openSource(ctx context.Context, dataDir string) (*source, error) {
	st, err := os.Stat(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data_dir %s: %w", dataDir, unwrapPath(err))
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("data_dir %s: not a directory", dataDir)
	}
	path := filepath.Join(dataDir, FileName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("database %s: %w", path, unwrapPath(err))
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	s := &source{path: path, db: db, counts: map[string]int64{}, seqs: map[string]int64{}}
	if err := s.open(ctx); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *source) open(ctx context.Context) error {
	var ok string
	if err := s.db.QueryRowContext(ctx, `PRAGMA quick_check(1)`).Scan(&ok); err != nil {
		return damaged(s.path, err.Error())
	}
	if ok != "ok" {
		return damaged(s.path, ok)
	}
	applied, found, err := appliedMigrations(ctx, s.db)
	if err != nil {
		return fmt.Errorf("database %s: %w", s.path, err)
	}
	if !found {
		return fmt.Errorf("%w: %s has no schema_migrations table", ErrNotABackup, s.path)
	}
	if err := checkKnownSchema(s.path, applied); err != nil {
		return err
	}
	migrationsMu.Lock()
	var missing []int
	newest := 0
	for v := range migrations {
		newest = max(newest, v)
		if !applied[v] {
			missing = append(missing, v)
		}
	}
	migrationsMu.Unlock()
	if len(missing) > 0 {
		sort.Ints(missing)
		return fmt.Errorf("%w: %s lacks schema migrations %v (this hbd's go up to %d): start this hbd on it once (it migrates the database at start), stop it, then run migrate-store again", ErrOlderSchema, s.path, missing, newest)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("database %s: %w", s.path, err)
	}
	s.tx = tx
	// The first read fixes the snapshot every later one sees.
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations'`)
	if err != nil {
		return fmt.Errorf("database %s: %w", s.path, err)
	}
	known := map[string]bool{}
	for _, t := range copyTables {
		known[t] = true
	}
	var unknown []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fmt.Errorf("database %s: %w", s.path, err)
		}
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("database %s: %w", s.path, err)
	}
	if len(unknown) > 0 {
		return fmt.Errorf("database %s: tables %v are not known to migrate-store: nothing was copied", s.path, unknown)
	}
	for _, t := range copyTables {
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return fmt.Errorf("database %s: table %s: %w", s.path, t, err)
		}
		s.counts[t] = n
	}
	var hasSeq int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'`).Scan(&hasSeq); err != nil {
		return fmt.Errorf("database %s: %w", s.path, err)
	}
	if hasSeq > 0 {
		rows, err := tx.QueryContext(ctx, `SELECT name, seq FROM sqlite_sequence`)
		if err != nil {
			return fmt.Errorf("database %s: %w", s.path, err)
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var seq int64
			if err := rows.Scan(&name, &seq); err != nil {
				return fmt.Errorf("database %s: %w", s.path, err)
			}
			s.seqs[name] = seq
		}
		return rows.Err()
	}
	return nil
}

// columns returns the SQLite table's columns and, for each, the type of
// the PostgreSQL column of that name (every one must exist there).
func (s *source) columns(ctx context.Context, tx pgx.Tx, table string) (cols, types []string, err error) {
	rows, err := s.tx.QueryContext(ctx, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return nil, nil, err
		}
		cols = append(cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	pgTypes := map[string]string{}
	prows, err := tx.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`, table)
	if err != nil {
		return nil, nil, err
	}
	for prows.Next() {
		var c, t string
		if err := prows.Scan(&c, &t); err != nil {
			prows.Close()
			return nil, nil, err
		}
		pgTypes[c] = t
	}
	prows.Close()
	if err := prows.Err(); err != nil {
		return nil, nil, err
	}
	for _, c := range cols {
		t, ok := pgTypes[c]
		if !ok {
			return nil, nil, fmt.Errorf("column %s has no PostgreSQL twin", c)
		}
		types = append(types, t)
	}
	return cols, types, nil
}

// copyTable streams one table into PostgreSQL with COPY.
func (s *source) copyTable(ctx context.Context, tx pgx.Tx, table string) (int64, error) {
	cols, types, err := s.columns(ctx, tx, table)
	if err != nil {
		return 0, fmt.Errorf("table %s: %w", table, err)
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = `"` + c + `"`
	}
	rows, err := s.tx.QueryContext(ctx, `SELECT `+strings.Join(quoted, ", ")+` FROM `+table)
	if err != nil {
		return 0, fmt.Errorf("database %s: table %s: %w", s.path, table, err)
	}
	defer rows.Close()
	rs := &rowSource{rows: rows, table: table, cols: cols, types: types, vals: make([]any, len(cols)), ptrs: make([]any, len(cols))}
	for i := range rs.vals {
		rs.ptrs[i] = &rs.vals[i]
	}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, rs)
	if err != nil {
		if rs.err != nil {
			return 0, rs.err
		}
		return 0, copyError(table, rs.n, err)
	}
	return n, nil
}

var copyLine = regexp.MustCompile(`line (\d+)`)

// copyError names the table and the row PostgreSQL refused, with its
// reason and constraint, without the row's values (PostgreSQL's detail may
// quote them, and some are secrets).
func copyError(table string, read int64, err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return fmt.Errorf("copy table %s (after row %d): %w", table, read, err)
	}
	row := strconv.FormatInt(read, 10)
	if m := copyLine.FindStringSubmatch(pe.Where); m != nil {
		row = m[1]
	}
	msg := fmt.Sprintf("copy table %s, row %s: PostgreSQL refused it: %s (SQLSTATE %s", table, row, pe.Message, pe.Code)
	if pe.ConstraintName != "" {
		msg += ", constraint " + pe.ConstraintName
	}
	return errors.New(msg + "); nothing was copied")
}

// rowSource feeds SQLite rows to pgx's COPY one at a time, converting each
// value to its PostgreSQL column's type (SQLite keeps what it was given).
type rowSource struct {
	rows  *sql.Rows
	table string
	cols  []string
	types []string
	vals  []any
	ptrs  []any
	n     int64 // rows read
	err   error
}

func (r *rowSource) Next() bool {
	if r.err != nil || !r.rows.Next() {
		return false
	}
	r.n++
	for i := range r.vals {
		r.vals[i] = nil
	}
	if err := r.rows.Scan(r.ptrs...); err != nil {
		r.err = fmt.Errorf("copy table %s, row %d: read: %w", r.table, r.n, err)
		return false
	}
	for i, v := range r.vals {
		c, err := pgValue(v, r.types[i])
		if err != nil {
			r.err = fmt.Errorf("copy table %s, row %d, column %s: %w; nothing was copied", r.table, r.n, r.cols[i], err)
			return false
		}
		r.vals[i] = c
	}
	return true
}

func (r *rowSource) Values() ([]any, error) { return r.vals, nil }

func (r *rowSource) Err() error {
	if r.err != nil {
		return r.err
	}
	if err := r.rows.Err(); err != nil {
		return fmt.Errorf("copy table %s, after row %d: read: %w", r.table, r.n, err)
	}
	return nil
}

// pgValue converts a value read from SQLite to what PostgreSQL's column
// type takes. The error never quotes the value.
func pgValue(v any, typ string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case "double precision":
		switch v := v.(type) {
		case float64:
			return v, nil
		case int64:
			return float64(v), nil
		}
	case "bigint", "integer", "smallint":
		switch v := v.(type) {
		case int64:
			return v, nil
		case float64:
			if v == math.Trunc(v) && math.Abs(v) < 1<<62 {
				return int64(v), nil
			}
		case bool:
			if v {
				return int64(1), nil
			}
			return int64(0), nil
		}
	case "text":
		switch v := v.(type) {
		case string:
			return v, nil
		case []byte:
			return string(v), nil
		}
	case "bytea":
		switch v := v.(type) {
		case []byte:
			return v, nil
		case string:
			return []byte(v), nil
		}
	default:
		return nil, fmt.Errorf("PostgreSQL type %s is not supported", typ)
	}
	return nil, fmt.Errorf("a %T value does not fit PostgreSQL type %s", v, typ)
}

// setSequences sets every identity column of a copied table to continue
// past the largest id copied, and past the largest SQLite ever gave
// (sqlite_sequence, for AUTOINCREMENT tables: the journal), so a row
// written after the copy never takes an id a reader already saw.
func (s *source) setSequences(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = current_schema() AND is_identity = 'YES' AND table_name = ANY($1)`, copyTables)
	if err != nil {
		return err
	}
	type ident struct{ table, col string }
	var ids []ident
	for rows.Next() {
		var id ident
		if err := rows.Scan(&id.table, &id.col); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		var top int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(max("`+id.col+`"), 0) FROM `+id.table).Scan(&top); err != nil {
			return fmt.Errorf("table %s: %w", id.table, err)
		}
		top = max(top, s.seqs[id.table])
		if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence($1, $2), $3, false)`, id.table, id.col, top+1); err != nil {
			return fmt.Errorf("table %s: set the sequence of %s: %w", id.table, id.col, err)
		}
	}
	return nil
}
