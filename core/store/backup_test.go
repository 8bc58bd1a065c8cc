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

// Restore puts a backup in place of the database of a stopped daemon: the
// backup is checked first (a SQLite database that passes the integrity
// check, a schema this hbd knows), the database it replaces is kept as a
// copy (WAL content included), and no -wal or -shm of the old one stays.
func TestRestoreReplacesTheDatabaseAndKeepsThePrevious(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if err := st.JournalSync(ctx, "web01", "before the backup"); err != nil {
			t.Fatal(err)
		}
	}
	bak := filepath.Join(t.TempDir(), "hbd-backup.db")
	if err := Backup(ctx, dir, bak); err != nil {
		t.Fatal(err)
	}
	if err := st.JournalSync(ctx, "web01", "after the backup"); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, FileName)

	// Refused backups leave the database alone.
	junk := filepath.Join(t.TempDir(), "junk.db")
	os.WriteFile(junk, []byte("not a database at all, not even close to one"), 0o600)
	newer := filepath.Join(t.TempDir(), "newer.db")
	if err := Backup(ctx, dir, newer); err != nil {
		t.Fatal(err)
	}
	ndb, _ := sql.Open("sqlite", newer)
	if _, err := ndb.Exec(`INSERT INTO schema_migrations (version, name, applied) VALUES (9999, 'from the future', 0)`); err != nil {
		t.Fatal(err)
	}
	ndb.Close()
	for _, c := range []struct {
		src  string
		want error
	}{
		{junk, ErrNotABackup},
		{filepath.Join(t.TempDir(), "missing.db"), os.ErrNotExist},
		{newer, ErrNewerSchema},
	} {
		if _, err := Restore(ctx, dir, c.src); !errors.Is(err, c.want) {
			t.Errorf("Restore(%s) = %v, want %v", filepath.Base(c.src), err, c.want)
		}
	}
	if n := countRows(t, db, `SELECT count(*) FROM journal WHERE msg = 'after the backup'`); n != 1 {
		t.Fatalf("a refused restore changed the database: %d lines written after the backup", n)
	}

	// The daemon stops (its WAL may still hold the last commits).
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	prev, err := Restore(ctx, dir, bak)
	if err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, prev, `SELECT count(*) FROM journal WHERE msg = 'after the backup'`); n != 1 {
		t.Errorf("the kept previous database %s lacks the line written after the backup (%d)", prev, n)
	}
	if filepath.Dir(prev) != dir {
		t.Errorf("the previous database was kept at %s, not in data_dir", prev)
	}
	for _, side := range sideFiles {
		if _, err := os.Stat(db + side); !os.IsNotExist(err) {
			t.Errorf("%s of the replaced database is still there (%v)", side, err)
		}
	}
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != fileMode {
		t.Errorf("restored database: %v, mode want %v", err, os.FileMode(fileMode))
	}
	st, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatalf("open the restored database: %v", err)
	}
	defer st.Close()
	if n := countRows(t, db, `SELECT count(*) FROM journal WHERE msg = 'before the backup'`); n != 20 {
		t.Errorf("restored database holds %d of the 20 lines of the backup", n)
	}
	if n := countRows(t, db, `SELECT count(*) FROM journal WHERE msg = 'after the backup'`); n != 0 {
		t.Errorf("restored database holds %d lines written after the backup", n)
	}
}
