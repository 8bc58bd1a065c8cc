package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hbdmon/hbd/core/auth/authrecord"
)

// Tables of package auth (migration range 30–39). Users themselves live in
// the config file; user_overlay keeps what a user changed about their own
// account, so it survives restarts and reloads. Sessions are stored by the
// SHA-256 of their token only: a copy of the database opens no session.
func init() {
	register(migration{Version: 30, Name: "users and sessions", SQL: `
CREATE TABLE user_overlay (
	name          TEXT PRIMARY KEY,
	display_name  TEXT,
	email         TEXT,
	channels      TEXT,
	password_hash TEXT,
	base_hash     TEXT,
	updated       REAL NOT NULL
);
CREATE TABLE sessions (
	token_hash TEXT PRIMARY KEY,
	user       TEXT NOT NULL,
	created    REAL NOT NULL,
	expires    REAL NOT NULL,
	last_used  REAL NOT NULL,
	client     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user);
CREATE INDEX sessions_expires ON sessions (expires);
`})
}

// UserOverlays returns every stored overlay by user name.
func (s *Store) UserOverlays(ctx context.Context) (map[string]authrecord.UserOverlay, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT name, display_name, email, channels, password_hash, base_hash, updated FROM user_overlay`)
	if err != nil {
		return nil, fmt.Errorf("read user overlays: %w", err)
	}
	defer rows.Close()
	out := map[string]authrecord.UserOverlay{}
	for rows.Next() {
		var (
			o                    authrecord.UserOverlay
			dn, em, ch, ph, base sql.NullString
			updated              float64
		)
		if err := rows.Scan(&o.Name, &dn, &em, &ch, &ph, &base, &updated); err != nil {
			return nil, fmt.Errorf("read user overlays: %w", err)
		}
		if dn.Valid {
			o.DisplayName = &dn.String
		}
		if em.Valid {
			o.Email = &em.String
		}
		if ch.Valid {
			var list []string
			if err := json.Unmarshal([]byte(ch.String), &list); err != nil {
				return nil, fmt.Errorf("read user overlay of %s: channels: %w", o.Name, err)
			}
			if list == nil {
				list = []string{}
			}
			o.Channels = &list
		}
		o.PasswordHash, o.BaseHash = ph.String, base.String
		o.Updated = fromUnix(updated)
		out[o.Name] = o
	}
	return out, rows.Err()
}

// PutUserOverlay stores o, replacing the user's previous overlay, and
// returns once it is committed.
func (s *Store) PutUserOverlay(ctx context.Context, o authrecord.UserOverlay) error {
	return s.Write(ctx, func(tx *sql.Tx) error { return putOverlay(tx, o) })
}

// ChangePassword stores o (which carries the new password hash) and ends
// every session of the user except the one whose hash is keep, in one
// transaction.
func (s *Store) ChangePassword(ctx context.Context, o authrecord.UserOverlay, keep string) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		if err := putOverlay(tx, o); err != nil {
			return err
		}
		_, err := tx.Exec(`DELETE FROM sessions WHERE user = ? AND token_hash <> ?`, o.Name, keep)
		return err
	})
}

func putOverlay(tx *sql.Tx, o authrecord.UserOverlay) error {
	var ch sql.NullString
	if o.Channels != nil {
		list := *o.Channels
		if list == nil {
			list = []string{}
		}
		b, err := json.Marshal(list)
		if err != nil {
			return err
		}
		ch = sql.NullString{String: string(b), Valid: true}
	}
	nullable := func(p *string) sql.NullString {
		if p == nil {
			return sql.NullString{}
		}
		return sql.NullString{String: *p, Valid: true}
	}
	_, err := tx.Exec(`INSERT INTO user_overlay (name, display_name, email, channels, password_hash, base_hash, updated)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET display_name = excluded.display_name, email = excluded.email,
	channels = excluded.channels, password_hash = excluded.password_hash,
	base_hash = excluded.base_hash, updated = excluded.updated`,
		o.Name, nullable(o.DisplayName), nullable(o.Email), ch,
		sql.NullString{String: o.PasswordHash, Valid: o.PasswordHash != ""},
		sql.NullString{String: o.BaseHash, Valid: o.BaseHash != ""},
		toUnix(o.Updated))
	return err
}

// CreateSession stores a new session and returns once it is committed.
func (s *Store) CreateSession(ctx context.Context, se authrecord.Session) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO sessions (token_hash, user, created, expires, last_used, client) VALUES (?, ?, ?, ?, ?, ?)`,
			se.Hash, se.User, toUnix(se.Created), toUnix(se.Expires), toUnix(se.LastUsed), se.Client)
		return err
	})
}

// Sessions returns every session that has not expired at now.
func (s *Store) Sessions(ctx context.Context, now time.Time) ([]authrecord.Session, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT token_hash, user, created, expires, last_used, client FROM sessions WHERE expires > ? ORDER BY created, token_hash`, toUnix(now))
	if err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	defer rows.Close()
	var out []authrecord.Session
	for rows.Next() {
		var (
			se                         authrecord.Session
			created, expires, lastUsed float64
		)
		if err := rows.Scan(&se.Hash, &se.User, &created, &expires, &lastUsed, &se.Client); err != nil {
			return nil, fmt.Errorf("read sessions: %w", err)
		}
		se.Created, se.Expires, se.LastUsed = fromUnix(created), fromUnix(expires), fromUnix(lastUsed)
		out = append(out, se)
	}
	return out, rows.Err()
}

// DeleteSessions ends sessions by token hash and returns once committed.
func (s *Store) DeleteSessions(ctx context.Context, hashes ...string) error {
	if len(hashes) == 0 {
		return nil
	}
	return s.Write(ctx, func(tx *sql.Tx) error {
		for _, h := range hashes {
			if _, err := tx.Exec(`DELETE FROM sessions WHERE token_hash = ?`, h); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteUserSessions ends every session of the given users and returns
// once committed.
func (s *Store) DeleteUserSessions(ctx context.Context, users ...string) error {
	if len(users) == 0 {
		return nil
	}
	return s.Write(ctx, func(tx *sql.Tx) error {
		for _, u := range users {
			if _, err := tx.Exec(`DELETE FROM sessions WHERE user = ?`, u); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteExpiredSessions queues the removal of sessions expired at now
// without waiting: expired sessions are refused whether or not their row is
// gone.
func (s *Store) DeleteExpiredSessions(now time.Time) {
	cut := toUnix(now)
	s.Go(func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM sessions WHERE expires <= ?`, cut)
		return err
	})
}

// TouchSession queues an update of a session's last use and client address
// without waiting.
func (s *Store) TouchSession(hash string, lastUsed time.Time, client string) {
	ts := toUnix(lastUsed)
	s.Go(func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE sessions SET last_used = ?, client = ? WHERE token_hash = ?`, ts, client, hash)
		return err
	})
}

func fromUnix(f float64) time.Time {
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}
