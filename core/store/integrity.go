package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
)

// Files hbd's database consists of, beside FileName: SQLite's write-ahead
// log and its shared-memory index. They hold the same data (user channel
// secrets, session hashes) and get the same mode.
var sideFiles = []string{"-wal", "-shm"}

// fileMode is the mode of the database files: they hold secrets.
const fileMode = 0o600

// secureFiles creates the database file with mode 0600 when it does not
// exist yet (SQLite gives its -wal and -shm files the main file's mode) and
// takes group and other permissions away from existing ones. It warns when
// the data directory itself is open to others.
func (s *Store) secureFiles(dir string) error {
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return fmt.Errorf("database %s: %w", s.path, unwrapPath(err))
	}
	f.Close()
	for _, suffix := range append([]string{""}, sideFiles...) {
		p := s.path + suffix
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("database %s: %w", p, unwrapPath(err))
		}
		if st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, fileMode); err != nil {
				return fmt.Errorf("database %s: mode %v readable by others and cannot be changed: %w", p, st.Mode().Perm(), unwrapPath(err))
			}
			s.log.Warn("database file was readable by other users; mode set to 0600", "file", p, "was", st.Mode().Perm().String())
		}
	}
	if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o077 != 0 {
		s.log.Warn("data_dir is open to other users; it holds the database and its secrets: chmod 700 it", "data_dir", dir, "mode", st.Mode().Perm().String())
	}
	return nil
}

// checkIntegrity runs SQLite's quick_check, so a damaged file is reported
// at start, naming the file, instead of as a 500 on some later read.
func (s *Store) checkIntegrity(ctx context.Context) error {
	rows, err := s.wdb.QueryContext(ctx, `PRAGMA quick_check(5)`)
	if err != nil {
		return damaged(s.path, err.Error())
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return damaged(s.path, err.Error())
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return damaged(s.path, err.Error())
	}
	if len(problems) > 0 {
		return damaged(s.path, strings.Join(problems, "; "))
	}
	return nil
}

// ErrDamaged is returned by Open for a database file that fails SQLite's
// integrity check.
var ErrDamaged = errors.New("database file is damaged")

func damaged(path, detail string) error {
	return fmt.Errorf("%w: %s: %s (stop hbd, move the file and its -wal and -shm aside and restore a backup; see docs/CONFIG.md)", ErrDamaged, path, detail)
}

// ErrNewerSchema is returned by Open for a database written by a newer hbd.
var ErrNewerSchema = errors.New("database schema is newer than this hbd")

// checkSchemaVersions refuses a database that holds migrations this binary
// does not know: it was written by a newer hbd, and running an older one on
// it could damage data.
func checkSchemaVersions(path string, applied map[int]bool, migrations map[int]migration) error {
	var unknown []int
	for v := range applied {
		if _, ok := migrations[v]; !ok {
			unknown = append(unknown, v)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Ints(unknown)
	maxKnown := 0
	for v := range migrations {
		maxKnown = max(maxKnown, v)
	}
	return fmt.Errorf("%w: %s has schema migrations %v that this hbd (migrations up to %d) does not know: run the hbd that wrote it, or restore a backup made before it", ErrNewerSchema, path, unknown, maxKnown)
}
