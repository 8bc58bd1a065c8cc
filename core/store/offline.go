package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
)

// CheckDataDir reports why Open would refuse dir: it must exist, be a
// directory and be writable by this process. `hbd check-config` asks it
// too, so a file that passes the check does not fail at start.
func CheckDataDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data_dir %s: %w", dir, unwrapPath(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("data_dir %s: not a directory", dir)
	}
	probe, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("data_dir %s: not writable: %w", dir, unwrapPath(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}

// StoredChannelNames lists the notification channels created through the
// API in the database in dataDir, read-only and without a running
// daemon's help; none when there is no database yet. `hbd check-config`
// resolves watchhosts.*.notify names against them and the file's.
func StoredChannelNames(ctx context.Context, dataDir string) ([]string, error) {
	path := filepath.Join(dataDir, FileName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	defer db.Close()
	var exists int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'notification_channels'`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	if exists == 0 {
		return nil, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT name FROM notification_channels ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// CheckSchema reports what Open would say of the schema version of the
// database in dataDir (ErrNewerSchema for one written by a newer hbd),
// read-only: it migrates nothing and creates no database where there is
// none. `hbd check-config` asks it so a binary downgrade is caught before
// a restart.
func CheckSchema(ctx context.Context, dataDir string) error {
	path := filepath.Join(dataDir, FileName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("database %s: %w", path, err)
	}
	defer db.Close()
	applied, found, err := appliedMigrations(ctx, db)
	if err != nil {
		return fmt.Errorf("database %s: %w", path, err)
	}
	if !found {
		return nil
	}
	return checkKnownSchema(path, applied)
}

// appliedMigrations reads the versions in schema_migrations of a SQLite
// database; found is false when it has no such table.
func appliedMigrations(ctx context.Context, db *sql.DB) (applied map[int]bool, found bool, err error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return nil, false, err
	}
	if n == 0 {
		return nil, false, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	applied = map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, false, err
		}
		applied[v] = true
	}
	return applied, true, rows.Err()
}

// checkKnownSchema is checkSchemaVersions against this binary's SQLite
// migrations.
func checkKnownSchema(path string, applied map[int]bool) error {
	migrationsMu.Lock()
	known := maps.Clone(migrations)
	migrationsMu.Unlock()
	return checkSchemaVersions(path, applied, known)
}
