package store

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// migration is one versioned schema change. Each feature file registers
// its own from an init function. Versions are applied in ascending order,
// each exactly once, inside one transaction. Ranges keep feature files
// apart: 1–9 core, 10–19 alerting, 20–29 notifications, 30–39 users and
// sessions, 40–49 the cluster (PostgreSQL only). PostgreSQL has its own
// list with the same versions (migrations_postgres.go).
type migration struct {
	Version int
	Name    string
	SQL     string
}

var (
	migrationsMu sync.Mutex
	migrations   = map[int]migration{}
)

// register adds a migration; call it from an init function. A duplicate
// version is a programming error and panics.
func register(m migration) {
	migrationsMu.Lock()
	defer migrationsMu.Unlock()
	if _, dup := migrations[m.Version]; dup {
		panic(fmt.Sprintf("store: migration %d registered twice", m.Version))
	}
	migrations[m.Version] = m
}

func init() {
	register(migration{Version: 1, Name: "core", SQL: `
CREATE TABLE hosts (
	name       TEXT PRIMARY KEY,
	dyn        INTEGER NOT NULL DEFAULT 0,
	first_seen REAL NOT NULL,
	last_seen  REAL NOT NULL
);
CREATE TABLE series (
	id     INTEGER PRIMARY KEY,
	host   TEXT NOT NULL,
	plugin TEXT NOT NULL,
	paths  TEXT NOT NULL,
	UNIQUE (host, plugin, paths)
);
CREATE TABLE samples (
	series INTEGER NOT NULL REFERENCES series(id),
	ts     REAL NOT NULL,
	vals   BLOB NOT NULL,
	PRIMARY KEY (series, ts)
) WITHOUT ROWID;
CREATE TABLE journal (
	id   INTEGER PRIMARY KEY AUTOINCREMENT,
	ts   REAL NOT NULL,
	host TEXT NOT NULL DEFAULT '',
	msg  TEXT NOT NULL
);
CREATE INDEX journal_host ON journal (host, id);
CREATE INDEX journal_ts ON journal (ts);
`})
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.wdb.ExecContext(ctx, s.schemaMigrationsDDL()); err != nil {
		return err
	}
	applied := map[int]bool{}
	rows, err := s.wdb.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	known := s.knownMigrations()
	if err := checkSchemaVersions(s.path, applied, known); err != nil {
		return err
	}
	list := make([]migration, 0, len(known))
	for _, m := range known {
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Version < list[j].Version })
	backedUp := len(applied) == 0 // a new database has nothing to keep
	for _, m := range list {
		if applied[m.Version] {
			continue
		}
		if !backedUp {
			bak, err := s.backupBeforeMigration(ctx, m.Version)
			if err != nil {
				return fmt.Errorf("backup before migration %d (%s): %w", m.Version, m.Name, err)
			}
			s.log.Info("backed up the database before a schema migration", "backup", bak, "version", m.Version)
			backedUp = true
		}
		if err := s.apply(ctx, m); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
		s.log.Info("applied schema migration", "version", m.Version, "name", m.Name)
	}
	return nil
}

func (s *Store) apply(ctx context.Context, m migration) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		tx.Rollback()
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`, m.Version, m.Name, toUnix(time.Now())); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
