package auth

import (
	"context"
	"time"

	"github.com/hbdmon/hbd/core/auth/authrecord"
)

// The Service's storage. The Service keeps users' overlays and open
// sessions in memory and hands their persisted forms (package authrecord)
// to a Repository; *store.Store (SQLite) implements it, and a second
// backend implements the same interfaces without touching this package.
// The Service relies on the promises stated on each method: a method that
// "returns once committed" has made its change durable when it returns
// nil, and queued writes apply in the order they were queued, after every
// write queued or committed before them.

// SessionStore keeps the sessions, by the hash of their token.
type SessionStore interface {
	// CreateSession stores a new session and returns once committed: a
	// token is handed out only after its session survives a restart.
	CreateSession(ctx context.Context, se authrecord.Session) error
	// Sessions returns every session that has not expired at now, oldest
	// (by Created) first.
	Sessions(ctx context.Context, now time.Time) ([]authrecord.Session, error)
	// DeleteSessions ends sessions by token hash and returns once
	// committed; no hash is not an error.
	DeleteSessions(ctx context.Context, hashes ...string) error
	// DeleteUserSessions ends every session of the given users and returns
	// once committed.
	DeleteUserSessions(ctx context.Context, users ...string) error
	// DeleteExpiredSessions queues the removal of the sessions expired at
	// now without waiting (the Service refuses expired sessions whether or
	// not their row is gone).
	DeleteExpiredSessions(now time.Time)
	// TouchSession queues an update of a session's last use and client
	// address without waiting.
	TouchSession(hash string, lastUsed time.Time, client string)
}

// OverlayStore keeps what users changed about their own accounts.
type OverlayStore interface {
	// UserOverlays returns every stored overlay by user name.
	UserOverlays(ctx context.Context) (map[string]authrecord.UserOverlay, error)
	// PutUserOverlay stores o, replacing the user's previous overlay, and
	// returns once committed.
	PutUserOverlay(ctx context.Context, o authrecord.UserOverlay) error
	// ChangePassword stores o (which carries the new password hash) and
	// ends every session of the user except the one whose hash is keep, in
	// one transaction: both happen or neither. It returns once committed.
	ChangePassword(ctx context.Context, o authrecord.UserOverlay, keep string) error
}

// Journal records the account events users read (logins, password
// changes, ended sessions, access changes).
type Journal interface {
	// Journal records msg about host ("" for daemon-wide entries) without
	// waiting for the commit.
	Journal(host, msg string)
}

// Repository is everything the Service stores.
type Repository interface {
	SessionStore
	OverlayStore
	Journal
}
