package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"sort"
	"time"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/auth/authrecord"
	"github.com/hbdmon/hbd/core/config"
)

// tokenBytes is the entropy of a session token (256 bits).
const tokenBytes = 32

// tokenLen is the length of an encoded token.
var tokenLen = base64.RawURLEncoding.EncodedLen(tokenBytes)

func newToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// wellFormed rejects what cannot be a token before it is hashed.
func wellFormed(tok string) bool {
	if len(tok) != tokenLen {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// hashToken is what the store keeps of a token.
func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// CSRFToken is the CSRF token of a session token: derived from it, so it
// needs no storage and survives restarts, and one-way, so it does not
// reveal the token. A cookie-authenticated write that carries no
// same-origin Origin proves it comes from a page of the session with it.
func CSRFToken(tok string) string {
	sum := sha256.Sum256([]byte("hbd-csrf\x00" + tok))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// current is the session a token names, when it is in force.
type current struct {
	hash     string
	user     User
	expires  time.Time
	lastUsed time.Time
	client   string
}

// lookup returns the session tok names when it is well formed, known,
// unexpired and its user still configured. An expired session is ended.
func (s *Service) lookup(tok string) (current, bool) {
	if !wellFormed(tok) {
		return current{}, false
	}
	cur := current{hash: hashToken(tok)}
	now := s.now()
	s.mu.RLock()
	se, found := s.sessions[cur.hash]
	exists := false
	if found {
		cur.user, _, exists = s.userLocked(se.user)
		cur.expires, cur.lastUsed, cur.client = se.expires, se.lastUsed, se.client
	}
	s.mu.RUnlock()
	if !found || !exists {
		return current{}, false
	}
	if !now.Before(cur.expires) {
		s.mu.Lock()
		delete(s.sessions, cur.hash)
		s.mu.Unlock()
		s.st.DeleteExpiredSessions(now)
		return current{}, false
	}
	return cur, true
}

// Authenticate returns the principal of the session token tok (not in
// open mode: see OpenMode), with the session's end as Expires; ok is
// false, and the principal zero, when tok names no session in force.
// client is the caller's address; the session's last use and client are
// written back (at most every minute, or when the client changes).
func (s *Service) Authenticate(tok, client string) (p access.Principal, ok bool) {
	cur, ok := s.lookup(tok)
	if !ok {
		return access.Principal{}, false
	}
	if now := s.now(); now.Sub(cur.lastUsed) >= touchEvery || client != cur.client {
		s.mu.Lock()
		if se, ok := s.sessions[cur.hash]; ok {
			se.lastUsed, se.client = now, client
		}
		s.mu.Unlock()
		s.st.TouchSession(cur.hash, now, client)
	}
	return access.Principal{User: cur.user.Name, Admin: cur.user.Admin, Expires: cur.expires}, true
}

// sessionTTL is the life of a new session.
func sessionTTL(cfg *config.Config) time.Duration {
	if cfg.Auth.SessionTTL > 0 {
		return cfg.Auth.SessionTTL
	}
	return config.DefaultSessionTTL
}

// openSession creates and stores a session for user.
func (s *Service) openSession(ctx context.Context, user, client string) (Session, error) {
	tok, err := newToken()
	if err != nil {
		return Session{}, err
	}
	now := s.now()
	ttl := sessionTTL(s.config())
	se := authrecord.Session{Hash: hashToken(tok), User: user, Created: now, Expires: now.Add(ttl), LastUsed: now, Client: client}
	if err := s.st.CreateSession(ctx, se); err != nil {
		return Session{}, err
	}
	s.mu.Lock()
	s.sessions[se.Hash] = &session{user: user, created: now, expires: se.Expires, lastUsed: now, client: client}
	var expired, mine []string
	for h, x := range s.sessions {
		switch {
		case !now.Before(x.expires):
			expired = append(expired, h)
		case x.user == user:
			mine = append(mine, h)
		}
	}
	for _, h := range expired {
		delete(s.sessions, h)
	}
	var excess []string
	if len(mine) > MaxSessionsPerUser {
		sort.Slice(mine, func(i, j int) bool { return s.sessions[mine[i]].created.Before(s.sessions[mine[j]].created) })
		excess = mine[:len(mine)-MaxSessionsPerUser]
		for _, h := range excess {
			delete(s.sessions, h)
		}
	}
	s.mu.Unlock()
	if len(expired) > 0 {
		s.st.DeleteExpiredSessions(now)
	}
	if len(excess) > 0 {
		s.sessionsEnded()
		if err := s.st.DeleteSessions(ctx, excess...); err != nil {
			s.log.Error("cannot end oldest sessions", "user", user, "error", err)
		}
	}
	return Session{Token: tok, Expires: se.Expires, Lifetime: ttl}, nil
}

// Logout ends the session of tok, if any.
func (s *Service) Logout(ctx context.Context, tok string) error {
	if !wellFormed(tok) {
		return nil
	}
	h := hashToken(tok)
	s.mu.RLock()
	se, ok := s.sessions[h]
	s.mu.RUnlock()
	if !ok {
		return nil
	}
	if err := s.st.DeleteSessions(ctx, h); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.sessions, h)
	s.mu.Unlock()
	s.log.Info("logout", "user", se.user)
	s.sessionsEnded()
	return nil
}
