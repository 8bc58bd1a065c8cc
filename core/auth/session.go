package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/store"
)

// Where a session token is read from, in this order.
const (
	// CookieName is the session cookie (HttpOnly, SameSite=Lax, Path=/,
	// Secure on TLS).
	CookieName = "hbd_session"
	// HeaderToken is the alternative to Authorization: Bearer.
	HeaderToken = "X-Auth-Token"
	// HeaderCSRF carries the session's CSRF token on cookie-authenticated
	// writes from pages that cannot rely on Origin.
	HeaderCSRF = "X-CSRF-Token"
)

// tokenBytes is the entropy of a session token (256 bits).
const tokenBytes = 32

// tokenLen is the length of an encoded token.
var tokenLen = base64.RawURLEncoding.EncodedLen(tokenBytes)

type tokenSource int

const (
	srcNone tokenSource = iota
	srcBearer
	srcHeader
	srcCookie
)

// tokenOf returns the token a request carries and where it came from.
func tokenOf(r *http.Request) (string, tokenSource) {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:]), srcBearer
	}
	if t := r.Header.Get(HeaderToken); t != "" {
		return strings.TrimSpace(t), srcHeader
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		return c.Value, srcCookie
	}
	return "", srcNone
}

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

// csrfToken is the session's CSRF token: derived from the session token,
// so it needs no storage and survives restarts, and one-way, so it does
// not reveal the token.
func csrfToken(tok string) string {
	sum := sha256.Sum256([]byte("hbd-csrf\x00" + tok))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authResult is a request's authentication.
type authResult struct {
	p       api.Principal
	ok      bool
	token   string
	hash    string
	src     tokenSource
	expires time.Time
}

// authenticate checks the token a request carries (not in open mode).
func (s *Service) authenticate(r *http.Request) authResult {
	tok, src := tokenOf(r)
	a := authResult{src: src, token: tok}
	if src == srcNone || !wellFormed(tok) {
		return a
	}
	a.hash = hashToken(tok)
	now := s.now()
	s.mu.RLock()
	se, found := s.sessions[a.hash]
	var (
		user               api.UserJSON
		exists             bool
		expires, lastUsed  time.Time
		sessUser, sessAddr string
	)
	if found {
		user, _, exists = s.userLocked(se.user)
		expires, lastUsed, sessUser, sessAddr = se.expires, se.lastUsed, se.user, se.client
	}
	s.mu.RUnlock()
	if !found || !exists {
		return a
	}
	if !now.Before(expires) {
		s.mu.Lock()
		delete(s.sessions, a.hash)
		s.mu.Unlock()
		s.st.DeleteExpiredSessions(now)
		return a
	}
	if client := peerAddr(r); now.Sub(lastUsed) >= touchEvery || client != sessAddr {
		s.mu.Lock()
		if se, ok := s.sessions[a.hash]; ok {
			se.lastUsed, se.client = now, client
		}
		s.mu.Unlock()
		s.st.TouchSession(a.hash, now, client)
	}
	a.p = api.Principal{User: sessUser, Admin: user.Admin, Expires: expires}
	a.ok, a.expires = true, expires
	return a
}

// sessionTTL is the life of a new session.
func sessionTTL(cfg *config.Config) time.Duration {
	if cfg.Auth.SessionTTL > 0 {
		return cfg.Auth.SessionTTL
	}
	return config.DefaultSessionTTL
}

// openSession creates and stores a session for user.
func (s *Service) openSession(ctx context.Context, user, client string) (string, time.Time, error) {
	tok, err := newToken()
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	se := store.Session{Hash: hashToken(tok), User: user, Created: now, Expires: now.Add(sessionTTL(s.config())), LastUsed: now, Client: client}
	if err := s.st.CreateSession(ctx, se); err != nil {
		return "", time.Time{}, err
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
	return tok, se.Expires, nil
}

// cookie returns the session cookie for tok, or one that clears it when
// tok is empty.
func (s *Service) cookie(r *http.Request, tok string, expires time.Time) *http.Cookie {
	c := &http.Cookie{
		Name:     CookieName,
		Value:    tok,
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   r.TLS != nil || s.secureCookie,
	}
	if tok == "" {
		c.MaxAge = -1
		c.Expires = time.Unix(0, 0)
	} else {
		c.Expires = expires
		c.MaxAge = max(1, int(expires.Sub(s.now())/time.Second))
	}
	return c
}

// Logout ends the session that authenticated r (if any) and returns the
// cookie that clears it.
func (s *Service) Logout(ctx context.Context, r *http.Request) (*http.Cookie, error) {
	clear := s.cookie(r, "", time.Time{})
	tok, src := tokenOf(r)
	if src == srcNone || !wellFormed(tok) {
		return clear, nil
	}
	h := hashToken(tok)
	s.mu.RLock()
	se, ok := s.sessions[h]
	s.mu.RUnlock()
	if !ok {
		return clear, nil
	}
	if err := s.st.DeleteSessions(ctx, h); err != nil {
		return nil, err
	}
	s.mu.Lock()
	delete(s.sessions, h)
	s.mu.Unlock()
	s.log.Info("logout", "user", se.user)
	s.sessionsEnded()
	return clear, nil
}
