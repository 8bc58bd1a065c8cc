package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func countRows(t *testing.T, path, query string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s on %s: %v", query, path, err)
	}
	return n
}

// `hbd backup` copies the database while the daemon writes to it; the
// copy is complete, passes the integrity check and never replaces a file.
func TestBackupOfALiveDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := 0; i < 50; i++ {
		if err := st.JournalSync(ctx, "web01", "before the backup"); err != nil {
			t.Fatal(err)
		}
	}
	dest := filepath.Join(t.TempDir(), "hbd-backup.db")
	if err := Backup(ctx, dir, dest); err != nil {
		t.Fatal(err)
	}
	if err := st.JournalSync(ctx, "web01", "after the backup"); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, dest, `SELECT count(*) FROM journal WHERE msg = 'before the backup'`); n != 50 {
		t.Errorf("backup holds %d of the 50 journal lines", n)
	}
	if n := countRows(t, dest, `SELECT count(*) FROM journal WHERE msg = 'after the backup'`); n != 0 {
		t.Errorf("backup holds %d lines written after it", n)
	}
	db, _ := sql.Open("sqlite", "file:"+dest+"?mode=ro")
	var ok string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Errorf("integrity_check of the backup: %q, %v", ok, err)
	}
	db.Close()
	if st, err := os.Stat(dest); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("backup mode: %v, %v; want 0600", st.Mode(), err)
	}
	if err := Backup(ctx, dir, dest); !errors.Is(err, ErrBackupExists) {
		t.Errorf("a second backup to the same file: %v, want ErrBackupExists", err)
	}
	if err := Backup(ctx, t.TempDir(), filepath.Join(t.TempDir(), "x.db")); err == nil {
		t.Errorf("backup of a directory without a database succeeded")
	}
}

// A schema change is preceded by a copy of the database as it was, so an
// upgrade can be undone; a new database is not copied.
func TestMigrationBacksUpFirst(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.JournalSync(ctx, "web01", "kept in the backup"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if baks, _ := filepath.Glob(filepath.Join(dir, "*.bak")); len(baks) != 0 {
		t.Fatalf("a new database was backed up: %v", baks)
	}

	const version = 9990
	register(migration{Version: version, Name: "backup test", SQL: `CREATE TABLE backup_probe (x INTEGER)`})
	t.Cleanup(func() {
		migrationsMu.Lock()
		delete(migrations, version)
		migrationsMu.Unlock()
	})
	st, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	baks, _ := filepath.Glob(filepath.Join(dir, FileName+".pre-migration-9990-*.bak"))
	if len(baks) != 1 {
		t.Fatalf("backups before migration 9990: %v, want one", baks)
	}
	if n := countRows(t, baks[0], `SELECT count(*) FROM journal WHERE msg = 'kept in the backup'`); n != 1 {
		t.Errorf("the backup lacks the journal line (%d)", n)
	}
	if n := countRows(t, baks[0], `SELECT count(*) FROM schema_migrations WHERE version = 9990`); n != 0 {
		t.Errorf("the backup was taken after the migration")
	}
	if n := countRows(t, filepath.Join(dir, FileName), `SELECT count(*) FROM schema_migrations WHERE version = 9990`); n != 1 {
		t.Errorf("the migration was not applied after the backup")
	}
}
