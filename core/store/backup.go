package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrBackupExists is returned by Backup when the destination exists: a
// backup never replaces a file.
var ErrBackupExists = errors.New("backup file exists")

// Backup writes a consistent copy of the database in dataDir to dest with
// VACUUM INTO, while a daemon may be running on it (WAL readers do not
// block the writer, and the copy is one read transaction). The database
// is opened read-only, so a backup run by another user never creates
// files the daemon cannot open. The copy is written beside dest under a
// temporary name and renamed when complete, mode 0600; dest must not
// exist.
func Backup(ctx context.Context, dataDir, dest string) error {
	src := filepath.Join(dataDir, FileName)
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("database %s: %w", src, unwrapPath(err))
	}
	dsn := "file:" + src + "?mode=ro&_pragma=busy_timeout(10000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("database %s: %w", src, err)
	}
	defer db.Close()
	return vacuumInto(ctx, db, dest)
}

// vacuumInto copies db into dest through a temporary file in dest's
// directory.
func vacuumInto(ctx context.Context, db *sql.DB, dest string) error {
	if _, err := os.Lstat(dest); err == nil {
		return fmt.Errorf("%w: %s", ErrBackupExists, dest)
	}
	tmp := filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+".partial")
	os.Remove(tmp)
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	// Link, not rename: a dest created meanwhile is never replaced.
	if err := os.Link(tmp, dest); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup to %s: %w", dest, unwrapPath(err))
	}
	os.Remove(tmp)
	return nil
}

// backupBeforeMigration copies the database to
// hbd.db.pre-migration-<version>-<time>.bak beside it before pending
// migrations change a schema that already has some applied: a failed or
// unwanted upgrade is undone by restoring it (docs/INSTALL.md).
func (s *Store) backupBeforeMigration(ctx context.Context, next int) (string, error) {
	dest := fmt.Sprintf("%s.pre-migration-%d-%s.bak", s.path, next, time.Now().UTC().Format("20060102T150405Z"))
	if err := vacuumInto(ctx, s.wdb, dest); err != nil {
		return "", err
	}
	return dest, nil
}

// ErrNotABackup is returned by Restore for a file that is not an hbd
// SQLite database.
var ErrNotABackup = errors.New("not an hbd database")

// Restore replaces the database in dataDir with the backup src (made by
// `hbd backup` or before a migration) while no daemon runs on it: the
// caller makes sure of that. src must be a SQLite database that passes
// the integrity check and holds a schema this hbd knows (else
// ErrNotABackup, ErrNewerSchema). It is copied with VACUUM INTO to a
// temporary file in dataDir (mode 0600, owned like dataDir), so nothing
// changes until the copy is complete; then the database it replaces is
// renamed, with its -wal and -shm, to previous
// (hbd.db.pre-restore-<time>.bak, "" when there was none) and the copy
// renamed into place. A restored older schema is migrated forward at the
// next start, as any.
func Restore(ctx context.Context, dataDir, src string) (previous string, err error) {
	if err := CheckDataDir(dataDir); err != nil {
		return "", err
	}
	if _, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("backup %s: %w", src, err)
	}
	db, err := sql.Open("sqlite", "file:"+src+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return "", fmt.Errorf("backup %s: %w", src, err)
	}
	defer db.Close()
	if err := checkBackup(ctx, db, src); err != nil {
		return "", err
	}
	path := filepath.Join(dataDir, FileName)
	stamp := time.Now().UTC().Format("20060102T150405Z")
	tmp := filepath.Join(dataDir, "."+FileName+".restoring-"+stamp)
	if err := vacuumInto(ctx, db, tmp); err != nil {
		return "", err
	}
	defer os.Remove(tmp) // gone once renamed; left by a failure
	if err := chownLike(tmp, dataDir); err != nil {
		return "", fmt.Errorf("restore to %s: %w", path, err)
	}
	if _, err := os.Stat(path); err == nil {
		previous = path + ".pre-restore-" + stamp + ".bak"
		for _, suffix := range append([]string{""}, sideFiles...) {
			if _, err := os.Lstat(previous + suffix); err == nil {
				return "", fmt.Errorf("restore: %s exists; try again in a second", previous+suffix)
			}
		}
		// The database first: once it is moved, a -wal left beside
		// hbd.db could never be applied to the restored copy.
		for _, suffix := range append([]string{""}, sideFiles...) {
			if err := os.Rename(path+suffix, previous+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("restore: keep the current database as %s: %w", previous, unwrapPath(err))
			}
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return previous, fmt.Errorf("restore to %s: %w", path, unwrapPath(err))
	}
	return previous, nil
}

// checkBackup refuses src (open read-only as db) unless it is an hbd
// database this binary can run on: the integrity check passes and its
// schema migrations are known.
func checkBackup(ctx context.Context, db *sql.DB, src string) error {
	var ok string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check(1)`).Scan(&ok); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotABackup, src, err)
	}
	if ok != "ok" {
		return fmt.Errorf("%w: %s fails the integrity check: %s", ErrNotABackup, src, ok)
	}
	applied, found, err := appliedMigrations(ctx, db)
	if err != nil {
		return fmt.Errorf("backup %s: %w", src, err)
	}
	if !found {
		return fmt.Errorf("%w: %s has no schema_migrations table", ErrNotABackup, src)
	}
	return checkKnownSchema(src, applied)
}

// chownLike gives path the owner and group of dir when running as root,
// so a restore run with sudo leaves a database the daemon's user opens.
func chownLike(path, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return os.Chown(path, int(sys.Uid), int(sys.Gid))
}
