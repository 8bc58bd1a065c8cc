package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Driver names the two backends (the config's store.driver).
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// ErrBadDSN is returned by OpenPostgres for a connection string it cannot
// parse. The message never repeats the string: it may hold a password.
var ErrBadDSN = errors.New("store.dsn: not a valid PostgreSQL connection string (a URL postgres://user@host:5432/db?sslmode=... or key=value pairs); its value is not shown")

// OpenPostgres opens the store in a PostgreSQL database (dsn is a libpq
// connection string: URL or key=value; the password may also come from
// PGPASSWORD or a .pgpass file, as with libpq), migrates it and loads the
// recent samples into memory. Everything above the SQL is shared with the
// SQLite store: one writer connection group-commits every write, and a
// write returns once PostgreSQL has committed it. The database must exist;
// hbd creates its tables in the connection's default schema.
func OpenPostgres(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.SampleHistory <= 0 {
		opts.SampleHistory = 100
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	cfg, err := pgConfig(dsn, opts.Password, "hbd")
	if err != nil {
		return nil, err
	}
	where := describePG(cfg)
	rcfg := cfg.Copy()
	// Readers cannot write, as SQLite's query_only readers.
	rcfg.RuntimeParams["default_transaction_read_only"] = "on"
	wdb := sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg), false})
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	rdb := sql.OpenDB(pgConnector{stdlib.GetConnector(*rcfg), true})
	rdb.SetMaxOpenConns(4)
	rdb.SetMaxIdleConns(4)
	if err := wdb.PingContext(ctx); err != nil {
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("store: cannot connect to %s: %w", where, err)
	}
	s := newStore(where, wdb, rdb, opts)
	s.pg = true
	// The lease has a connection of its own: a renewal must never queue
	// behind the writer's group commits.
	s.ldb = sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg.Copy()), false})
	s.ldb.SetMaxOpenConns(1)
	// So do the heartbeat flushes and session claims: the UDP path's
	// hand-off must not wait behind sample commits.
	s.hdb = sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg.Copy()), false})
	s.hdb.SetMaxOpenConns(2)
	s.odb = openOutboxDB(cfg)
	// Alert commands: a leader's claim transaction stays open while its
	// evaluator applies the command, and followers wait on results.
	s.cdb = sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg.Copy()), false})
	s.cdb.SetMaxOpenConns(4)
	s.cdb.SetMaxIdleConns(2)
	if err := s.start(ctx); err != nil {
		wdb.Close()
		rdb.Close()
		s.ldb.Close()
		s.hdb.Close()
		s.odb.Close()
		s.cdb.Close()
		if errors.Is(err, ErrNewerSchema) {
			return nil, err
		}
		return nil, fmt.Errorf("database %s: %w", where, err)
	}
	return s, nil
}

// pgConfig parses dsn (ErrBadDSN, never quoting it), with password
// replacing its own when set, a 10 s connect timeout unless it names one,
// and app as application_name unless it names one.
func pgConfig(dsn, password, app string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, ErrBadDSN
	}
	if password != "" {
		cfg.Password = password
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = app
	}
	return cfg, nil
}

// CheckDSN reports whether dsn is a PostgreSQL connection string
// OpenPostgres can use, without connecting (check-config). The error
// never repeats the string.
func CheckDSN(dsn string) error {
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return ErrBadDSN
	}
	return nil
}

// describePG names a database for messages: host, port and database, no
// user or password.
func describePG(cfg *pgx.ConnConfig) string {
	host := cfg.Host
	if len(host) > 0 && host[0] == '/' {
		return fmt.Sprintf("postgres %s/.s.PGSQL.%d database %s", host, cfg.Port, cfg.Database)
	}
	return fmt.Sprintf("postgres %s database %s", net.JoinHostPort(host, strconv.Itoa(int(cfg.Port))), cfg.Database)
}

// pgStorageFailure reports whether err means PostgreSQL cannot take
// writes now (server gone or shutting down, disk full, read-only,
// connection lost), as opposed to a write refused for its content.
func pgStorageFailure(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) >= 2 && (pe.Code[:2] == "08" || pe.Code[:2] == "53" || pe.Code[:2] == "58"):
			return true // connection exception, insufficient resources (disk full), system error
		case pe.Code == "25006": // read_only_sql_transaction (a standby)
			return true
		case len(pe.Code) >= 3 && pe.Code[:3] == "57P": // admin shutdown, crash shutdown, cannot connect now
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) || pgconn.Timeout(err)
}

// sessionLost reports whether a statement of a write transaction failed
// because the database session ended (PostgreSQL restarted or failed
// over, the backend terminated): the transaction cannot have committed,
// so the writer runs it once more on a new connection. SQLite has no
// sessions to lose.
func (s *Store) sessionLost(err error) bool { return s.pg && pgSessionLost(err) }

func pgSessionLost(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Severity == "FATAL" || pe.Severity == "PANIC" || (len(pe.Code) >= 2 && pe.Code[:2] == "08") ||
			pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &ne)
}

// pgConnector wraps pgx's database/sql connector so that every statement
// the store prepares or runs is rewritten from SQLite's dialect (pgSQL)
// and bool arguments are stored as 0 and 1, as in SQLite's INTEGER flags.
//
// A session the server ended while the connection sat idle (a restart, a
// failover, pg_terminate_backend) shows only when the next statement
// reads the answer. When that statement is a BEGIN, or any query on the
// read-only readers, nothing was done yet: the wrapper answers
// driver.ErrBadConn and database/sql retries on a new connection, so the
// write or read goes through instead of failing once per pooled
// connection. A statement inside a transaction is never retried here: the
// writer's group-commit retry decides, and a failed write is answered as
// not stored.
type pgConnector struct {
	inner    driver.Connector
	readOnly bool
}

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &pgConn{conn.(*stdlib.Conn), c.readOnly}, nil
}

func (c pgConnector) Driver() driver.Driver { return c.inner.Driver() }

type pgConn struct {
	c        *stdlib.Conn
	readOnly bool
}

// lost turns err into driver.ErrBadConn when the session is gone.
func (c *pgConn) lost(err error) error {
	if err != nil && (c.c.Conn().IsClosed() || pgSessionLost(err)) {
		return driver.ErrBadConn
	}
	return err
}

func (c *pgConn) Prepare(q string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), q)
}

func (c *pgConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	pq, err := pgSQL(q)
	if err != nil {
		return nil, err
	}
	return c.c.PrepareContext(ctx, pq)
}

func (c *pgConn) Close() error { return c.c.Close() }
func (c *pgConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}
func (c *pgConn) Ping(ctx context.Context) error { return c.c.Ping(ctx) }

func (c *pgConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.c.BeginTx(ctx, opts)
	return tx, c.lost(err)
}

func (c *pgConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	pq, err := pgSQL(q)
	if err != nil {
		return nil, err
	}
	return c.c.ExecContext(ctx, pq, args)
}

func (c *pgConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	pq, err := pgSQL(q)
	if err != nil {
		return nil, err
	}
	rows, err := c.c.QueryContext(ctx, pq, args)
	if c.readOnly {
		err = c.lost(err)
	}
	return rows, err
}

func (c *pgConn) ResetSession(ctx context.Context) error { return c.c.ResetSession(ctx) }

// CheckNamedValue stores a bool as 0 or 1: the flag columns are integers,
// as in the SQLite schema, and read back into bool the same way.
func (c *pgConn) CheckNamedValue(nv *driver.NamedValue) error {
	if b, ok := nv.Value.(bool); ok {
		nv.Value = int64(0)
		if b {
			nv.Value = int64(1)
		}
		return nil
	}
	return c.c.CheckNamedValue(nv)
}
