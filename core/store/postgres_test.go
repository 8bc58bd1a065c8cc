package store

import (
	"context"
	"errors"
	"math"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

func TestPGRewrite(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT id FROM series WHERE id > ? ORDER BY id LIMIT ?`, `SELECT id FROM series WHERE id > $1 ORDER BY id LIMIT $2`},
		{`DELETE FROM samples WHERE series = ?1 AND ts IN (SELECT ts FROM samples WHERE series = ?1 AND ts < ?2 LIMIT ?3)`,
			`DELETE FROM samples WHERE series = $1 AND ts IN (SELECT ts FROM samples WHERE series = $1 AND ts < $2 LIMIT $3)`},
		{`SELECT ?2, ?, ?`, `SELECT $2, $3, $4`}, // SQLite: a bare ? follows the highest number so far
		{`SELECT '?', "a?b", x -- what?
FROM t WHERE y = ? /* ? */`, `SELECT '?', "a?b", x -- what?
FROM t WHERE y = $1 /* ? */`},
		{`INSERT OR IGNORE INTO hosts (name, dyn) VALUES (?, ?)`, `INSERT INTO hosts (name, dyn) VALUES ($1, $2) ON CONFLICT DO NOTHING`},
		{`INSERT OR REPLACE INTO samples (series, ts, vals) VALUES (?, ?, ?), (?, ?, ?)`,
			`INSERT INTO samples (series, ts, vals) VALUES ($1, $2, $3), ($4, $5, $6) ON CONFLICT (series, ts) DO UPDATE SET vals = EXCLUDED.vals`},
		{`DELETE FROM sessions WHERE user = ? AND token_hash <> ?`, `DELETE FROM sessions WHERE "user" = $1 AND token_hash <> $2`},
		{`SELECT s.user, user_overlay.name, "user" FROM x`, `SELECT s.user, user_overlay.name, "user" FROM x`},
	} {
		got, err := pgSQL(c.in)
		if err != nil || got != c.want {
			t.Errorf("pgSQL(%q)\n got %q, %v\nwant %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{
		`PRAGMA quick_check`,
		`INSERT OR REPLACE INTO unknown_table (a, b) VALUES (?, ?)`,
		`INSERT OR REPLACE INTO samples VALUES (?, ?, ?)`,
		`SELECT 'unterminated`,
	} {
		if got, err := pgSQL(bad); err == nil {
			t.Errorf("pgSQL(%q) = %q, want an error", bad, got)
		}
	}
}

// Every SQLite migration has its PostgreSQL twin (same version and name)
// and no twin lacks its original: a new migration must be written for
// both.
func TestPostgresMigrationsMatch(t *testing.T) {
	sqlite := (&Store{}).knownMigrations()
	pg := (&Store{pg: true}).knownMigrations()
	var versions []int
	for v := range sqlite {
		versions = append(versions, v)
	}
	for v := range pg {
		if _, ok := sqlite[v]; !ok {
			versions = append(versions, v)
		}
	}
	sort.Ints(versions)
	for _, v := range versions {
		a, b := sqlite[v], pg[v]
		if pgOnlyMigration(v) {
			if a.Name != "" || b.Name == "" {
				t.Errorf("migration %d is in the PostgreSQL-only range (cluster tables): SQLite %q, PostgreSQL %q", v, a.Name, b.Name)
			}
			continue
		}
		if a.Name == "" || b.Name == "" || a.Name != b.Name {
			t.Errorf("migration %d: SQLite %q, PostgreSQL %q: write both, with the same name", v, a.Name, b.Name)
		}
	}
}

// dbName is the database a test DSN names.
func dbName(t *testing.T, dsn string) string {
	m := regexp.MustCompile(`dbname=(\S+)`).FindStringSubmatch(dsn)
	if m == nil {
		t.Fatalf("no dbname in %q", dsn)
	}
	return m[1]
}

// The server ending the store's sessions (a restart, a failover,
// pg_terminate_backend) costs no read and no write: the next ones run on
// new connections.
func TestPostgresWriterSurvivesATerminatedSession(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s := postgresBackend.openAt(t, dsn, 10)
	if err := s.AppendSamples(ctx, "web01", []PluginSample{sample("p", 1, "v", 1.0)}); err != nil {
		t.Fatal(err)
	}
	srv := pgtest.Shared(t)
	if err := srv.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '`+dbName(t, dsn)+`' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	if hist, err := s.History(ctx, "web01", "p", 0, math.MaxFloat64, 10); err != nil || len(hist) != 1 {
		t.Fatalf("read after the sessions were terminated: %+v, %v", hist, err)
	}
	if err := s.AppendSamples(ctx, "web01", []PluginSample{sample("p", 2, "v", 2.0)}); err != nil {
		t.Fatalf("write after the session was terminated: %v", err)
	}
	hist, err := s.History(ctx, "web01", "p", 0, math.MaxFloat64, 10)
	if err != nil || len(hist) != 2 {
		t.Fatalf("history = %+v, %v; want both samples", hist, err)
	}
}

// A database that cannot take writes (here: read-only, as a standby
// promoted away from) makes writes fail with ErrStorage and Health report
// it, until a write commits again; the message never holds the DSN's
// credentials.
func TestPostgresReadOnlyDatabaseIsAStorageFailure(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s := postgresBackend.openAt(t, dsn+" password=not-in-messages", 10)
	srv := pgtest.Shared(t)
	db := dbName(t, dsn)
	readOnly := func(on bool) {
		t.Helper()
		q := `ALTER DATABASE ` + db + ` SET default_transaction_read_only = on`
		if !on {
			q = `ALTER DATABASE ` + db + ` RESET default_transaction_read_only`
		}
		if err := srv.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
		if err := srv.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '`+db+`' AND pid <> pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
	}
	readOnly(true)
	err := s.JournalSync(ctx, "web01", "refused")
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("writing to a read-only database: %v, want ErrStorage", err)
	}
	herr := s.Health()
	if !errors.Is(herr, ErrStorage) || strings.Contains(herr.Error(), "not-in-messages") || !strings.Contains(herr.Error(), "database "+db) {
		t.Fatalf("Health = %v, want the storage failure naming the database without credentials", herr)
	}
	readOnly(false)
	if err := s.JournalSync(ctx, "web01", "accepted"); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(); err != nil {
		t.Fatalf("Health after a commit = %v", err)
	}
}

// A DSN that does not parse is refused without repeating it.
func TestPostgresBadDSNIsNotRepeated(t *testing.T) {
	_, err := OpenPostgres(context.Background(), "postgres://hbd:hunter2@db:notaport/hbd", Options{})
	if !errors.Is(err, ErrBadDSN) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
}

// An unreachable server is refused at start, naming where, never the
// password.
func TestPostgresUnreachableIsRefusedWithoutThePassword(t *testing.T) {
	_, err := OpenPostgres(context.Background(), "host="+t.TempDir()+" port=1 user=hbd password=hunter2 dbname=hbd connect_timeout=5", Options{})
	if err == nil || !strings.Contains(err.Error(), "cannot connect to postgres") || !strings.Contains(err.Error(), "database hbd") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
}
