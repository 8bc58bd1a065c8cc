package store

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrStorage marks a write that failed because the database cannot be
// written at all (disk full, I/O error, read-only or vanished file), as
// opposed to a write refused for its content. Callers answer it with 503:
// the data was not stored, and trying later may succeed.
var ErrStorage = errors.New("storage unavailable")

// health remembers the last storage failure and the last commit.
type health struct {
	lastOK   atomic.Int64 // unix nanoseconds of the last committed transaction
	lastFail atomic.Int64 // unix nanoseconds of the last storage failure
	failMsg  atomic.Pointer[string]
}

// storageFailure reports whether err means the database cannot be written.
func storageFailure(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// noteTx records the outcome of a write transaction and returns err,
// wrapped with ErrStorage when it is a storage failure.
func (s *Store) noteTx(err error) error {
	now := time.Now().UnixNano()
	if err == nil {
		s.health.lastOK.Store(now)
		return nil
	}
	if !s.storageFailure(err) {
		return err
	}
	msg := err.Error()
	s.health.failMsg.Store(&msg)
	s.health.lastFail.Store(now)
	return fmt.Errorf("%w: %s: %w", ErrStorage, s.path, err)
}

// Health returns nil while the database can be written, and the last
// storage failure (wrapping ErrStorage) while no write has committed since
// it. /healthz reports it.
func (s *Store) Health() error {
	fail := s.health.lastFail.Load()
	if fail == 0 || s.health.lastOK.Load() > fail {
		return nil
	}
	msg := ""
	if m := s.health.failMsg.Load(); m != nil {
		msg = *m
	}
	return fmt.Errorf("%w: writes to %s are failing since %s: %s", ErrStorage, s.path,
		time.Unix(0, fail).UTC().Format(time.RFC3339), msg)
}
