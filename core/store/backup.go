package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
