package auth

import (
	"context"
	"fmt"
	"net/mail"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/safetext"
)

// Limits of what users may set.
const (
	MaxDisplayName   = 100 // characters
	MaxEmail         = 254 // bytes
	MaxSubscriptions = 64
	MaxAccessList    = 1000
	// maxPasswordBytes is bcrypt's limit: longer passwords are refused
	// rather than silently cut.
	maxPasswordBytes = 72
)

var errBadLogin = errorf(ErrUnauthenticated, "Invalid username or password")

// Credentials is a login attempt.
type Credentials struct {
	Username string
	Password string
	// Client is the caller's address, for throttling and the journal.
	Client string
	// CrossSite is true when the request named another site as its origin
	// (a login form of a hostile page): it is refused.
	CrossSite bool
}

// Session is a session opened by Login.
type Session struct {
	Token   string
	Expires time.Time
	// Lifetime is how long the session lasts from its opening, by the
	// Service's clock (Expires less the opening time).
	Lifetime time.Duration
}

// Login checks a user name and password and opens a session. Failures are
// throttled per user and per client address, first delayed, then refused
// with *ThrottledError; every outcome is journaled (never the password,
// nor the name typed when it is no user's, as it may be a password typed
// in the wrong field). Wrong credentials are ErrUnauthenticated, a login
// in open mode ErrInvalid, a cross-site one ErrForbidden.
func (s *Service) Login(ctx context.Context, req Credentials) (Session, error) {
	cfg := s.config()
	if cfg.OpenMode() {
		return Session{}, errorf(ErrInvalid, "No users are configured: the server runs in open mode and needs no login")
	}
	if req.CrossSite {
		return Session{}, errorf(ErrForbidden, "Cross-site login refused: the Origin header names another site")
	}
	client := printable(req.Client, 64)
	_, known := cfg.Users[req.Username]
	who := "unknown user"
	// Names that are no user's are throttled like users' names, so the
	// answers (delay, 429) do not tell which names exist.
	keys := []throttleKey{addrKey(client), nameKey(req.Username)}
	if known {
		who = req.Username
		keys[1] = userKey(req.Username)
	}
	tk, delay, retry, locked := s.throttle.attempt(s.now(), keys...)
	if retry > 0 {
		return Session{}, &ThrottledError{RetryAfter: retry}
	}
	if delay > 0 {
		if err := s.sleep(ctx, delay); err != nil {
			return Session{}, err
		}
	}
	s.mu.RLock()
	_, hash, exists := s.userLocked(req.Username)
	s.mu.RUnlock()
	if !s.passwordOK(hash, exists, req.Password) {
		s.st.Journal("", fmt.Sprintf("login failed for %s from %s", who, client))
		s.log.Info("login failed", "user", who, "client", client)
		if locked > 0 {
			s.st.Journal("", fmt.Sprintf("logins for %s from %s refused for %s after repeated failures", who, client, locked))
			s.log.Warn("login throttled", "user", who, "client", client, "for", locked)
		}
		return Session{}, errBadLogin
	}
	s.throttle.succeeded(tk)
	se, err := s.openSession(ctx, req.Username, client)
	if err != nil {
		return Session{}, fmt.Errorf("open session: %w", err)
	}
	s.st.Journal("", fmt.Sprintf("login of %s from %s", req.Username, client))
	s.log.Info("login", "user", req.Username, "client", client)
	return se, nil
}

// passwordOK compares a password with a bcrypt hash. For unknown users it
// still runs bcrypt, against a hash of the same cost, so the answer time
// does not tell which users exist.
func (s *Service) passwordOK(hash string, exists bool, password string) bool {
	if len(password) > maxPasswordBytes || !exists {
		// The same bcrypt cost whatever the input, so neither a missing
		// user nor an over-long password makes a cheap, fast attempt.
		// bcrypt refuses over-long input before hashing: cut it.
		pw := []byte(password)
		bcrypt.CompareHashAndPassword(s.dummyHash(), pw[:min(len(pw), maxPasswordBytes)])
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

func (s *Service) dummyHash() []byte {
	cost := s.cost
	cfg := s.config()
	names := make([]string, 0, len(cfg.Users))
	for n := range cfg.Users {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 0 {
		if c, err := bcrypt.Cost([]byte(cfg.Users[names[0]].PasswordHash)); err == nil {
			cost = c
		}
	}
	s.dummyMu.Lock()
	defer s.dummyMu.Unlock()
	if h, ok := s.dummy[cost]; ok {
		return h
	}
	h, err := bcrypt.GenerateFromPassword([]byte("hbd-no-such-user"), cost)
	if err != nil {
		return nil
	}
	s.dummy[cost] = h
	return h
}

// Profile is the caller's view of their own account.
type Profile struct {
	User
	// Open is true when no users are configured (everyone is an admin).
	Open bool
	// CSRFToken is the CSRF token of the caller's session (see CSRFToken);
	// empty when the profile was not asked for with the session's token.
	CSRFToken string
	// SessionExpires is when the caller's session ends; zero with
	// CSRFToken empty.
	SessionExpires time.Time
}

// ProfileUpdate is a change of the caller's own account. Nil fields are
// left unchanged. Its three modes may be combined: identity (DisplayName,
// Email), subscriptions (Channels), password (CurrentPassword and
// NewPassword together).
type ProfileUpdate struct {
	DisplayName     *string
	Email           *string
	Channels        *[]string
	CurrentPassword *string
	NewPassword     *string
}

var errSessionGone = errorf(ErrUnauthenticated, "Invalid or expired session token: log in again")

// Me returns p's profile; tok, the token the request carried, adds the
// session's CSRF token and end when it is p's session.
func (s *Service) Me(p access.Principal, tok string) (Profile, error) {
	if p.Open {
		return Profile{User: User{Admin: true, Channels: []string{}}, Open: true}, nil
	}
	u, ok := s.user(p.User)
	if !ok {
		return Profile{}, errSessionGone
	}
	me := Profile{User: u}
	if cur, ok := s.lookup(tok); ok && cur.user.Name == p.User {
		me.CSRFToken = CSRFToken(tok)
		me.SessionExpires = cur.expires
	}
	return me, nil
}

// UpdateMe changes the caller's display name and e-mail, channel
// subscriptions, and/or password. Everything is checked before anything
// is stored. A password change needs the current password and ends the
// user's other sessions, keeping tok's (the token the request carried).
// A wrong current password is ErrInvalid, and repeated ones are throttled
// like logins (*ThrottledError).
func (s *Service) UpdateMe(ctx context.Context, p access.Principal, tok string, u ProfileUpdate) (Profile, error) {
	if p.Open {
		return Profile{}, errorf(ErrInvalid, "No users are configured (open mode): there is no profile to change")
	}
	if u.DisplayName == nil && u.Email == nil && u.Channels == nil && u.CurrentPassword == nil && u.NewPassword == nil {
		return Profile{}, errorf(ErrInvalid, "Nothing to change: send display_name and/or email, channels, or current_password with new_password")
	}
	cfg := s.config()
	s.mu.RLock()
	_, hash, ok := s.userLocked(p.User)
	s.mu.RUnlock()
	if !ok {
		return Profile{}, errSessionGone
	}
	var displayName, email *string
	var channels *[]string
	if u.DisplayName != nil {
		dn, err := checkDisplayName(*u.DisplayName)
		if err != nil {
			return Profile{}, err
		}
		displayName = &dn
	}
	if u.Email != nil {
		em, err := checkEmail(*u.Email)
		if err != nil {
			return Profile{}, err
		}
		email = &em
	}
	if u.Channels != nil {
		list, err := s.checkChannels(p.User, *u.Channels)
		if err != nil {
			return Profile{}, err
		}
		channels = &list
	}
	passwordChange := u.CurrentPassword != nil || u.NewPassword != nil
	var newHash string
	if passwordChange {
		var err error
		if newHash, err = s.checkPasswordChange(ctx, cfg, p.User, hash, u); err != nil {
			return Profile{}, err
		}
	}
	keep := ""
	if cur, ok := s.lookup(tok); ok && cur.user.Name == p.User {
		keep = cur.hash
	}

	// Read, change and store the overlay under one lock so concurrent
	// updates of different fields do not undo each other.
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	s.mu.RLock()
	o := s.overlays[p.User]
	s.mu.RUnlock()
	o.Name = p.User
	if displayName != nil {
		o.DisplayName = displayName
	}
	if email != nil {
		o.Email = email
	}
	if channels != nil {
		o.Channels = channels
	}
	if passwordChange {
		o.PasswordHash, o.BaseHash = newHash, cfg.Users[p.User].PasswordHash
	}
	o.Updated = s.now()
	if passwordChange {
		if err := s.st.ChangePassword(ctx, o, keep); err != nil {
			return Profile{}, fmt.Errorf("store password of %s: %w", p.User, err)
		}
	} else if err := s.st.PutUserOverlay(ctx, o); err != nil {
		return Profile{}, fmt.Errorf("store profile of %s: %w", p.User, err)
	}
	s.mu.Lock()
	s.overlays[p.User] = o
	ended := 0
	if passwordChange {
		for h, se := range s.sessions {
			if se.user == p.User && h != keep {
				delete(s.sessions, h)
				ended++
			}
		}
	}
	s.mu.Unlock()
	if ended > 0 {
		s.sessionsEnded()
	}
	if passwordChange {
		s.st.Journal("", fmt.Sprintf("password of %s changed; %d other sessions ended", p.User, ended))
		s.log.Info("password changed", "user", p.User, "sessions_ended", ended)
	}
	if u.DisplayName != nil || u.Email != nil || u.Channels != nil {
		s.st.Journal("", fmt.Sprintf("profile of %s updated", p.User))
	}
	return s.Me(p, tok)
}

func (s *Service) checkPasswordChange(ctx context.Context, cfg *config.Config, user, hash string, u ProfileUpdate) (string, error) {
	if u.CurrentPassword == nil || u.NewPassword == nil {
		return "", errorf(ErrInvalid, "A password change needs both current_password and new_password")
	}
	// A stolen session must not become a way to guess the password.
	key := userKey(user)
	tk, delay, retry, _ := s.throttle.attempt(s.now(), key)
	if retry > 0 {
		return "", &ThrottledError{RetryAfter: retry}
	}
	if delay > 0 {
		if err := s.sleep(ctx, delay); err != nil {
			return "", err
		}
	}
	if !s.passwordOK(hash, true, *u.CurrentPassword) {
		s.st.Journal("", fmt.Sprintf("password change of %s refused: wrong current password", user))
		return "", errorf(ErrInvalid, "current_password is wrong")
	}
	s.throttle.succeeded(tk)
	pw := *u.NewPassword
	if n := utf8.RuneCountInString(pw); n < cfg.Auth.MinPasswordLength {
		return "", errorf(ErrInvalid, "new_password must be at least %d characters", cfg.Auth.MinPasswordLength)
	}
	if len(pw) > maxPasswordBytes {
		return "", errorf(ErrInvalid, "new_password must be at most %d bytes", maxPasswordBytes)
	}
	if pw == *u.CurrentPassword {
		return "", errorf(ErrInvalid, "new_password must differ from current_password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), s.cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

func checkDisplayName(v string) (string, error) {
	v = strings.TrimSpace(v)
	if !safetext.Valid(v) {
		return "", errorf(ErrInvalid, "display_name must be printable text (no control or bidirectional formatting characters)")
	}
	if utf8.RuneCountInString(v) > MaxDisplayName {
		return "", errorf(ErrInvalid, "display_name must be at most %d characters", MaxDisplayName)
	}
	return v, nil
}

// checkEmail accepts a bare address (alice@example.com) or "" to clear.
func checkEmail(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	if len(v) > MaxEmail {
		return "", errorf(ErrInvalid, "email must be at most %d characters", MaxEmail)
	}
	a, err := mail.ParseAddress(v)
	at := strings.LastIndexByte(v, '@')
	if err != nil || a.Name != "" || a.Address != v || at < 1 || at == len(v)-1 ||
		strings.ContainsAny(v, " \t\r\n<>\"") || strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return "", errorf(ErrInvalid, "email must be an address like alice@example.com")
	}
	return v, nil
}

func (s *Service) checkChannels(user string, in []string) ([]string, error) {
	if len(in) > MaxSubscriptions {
		return nil, errorf(ErrInvalid, "channels: at most %d subscriptions", MaxSubscriptions)
	}
	channels := *s.channels.Load()
	out := make([]string, 0, len(in))
	for _, ch := range in {
		if !config.ValidChannelName(ch) || !channels.ChannelVisible(user, ch) {
			return nil, errorf(ErrInvalid, "channels: notification channel '%s' not found", printable(ch, 64))
		}
		if !slices.Contains(out, ch) {
			out = append(out, ch)
		}
	}
	return out, nil
}

// AccessChange is a change of a host's access list. Nil fields are left
// unchanged; an Owner of "" removes the owner.
type AccessChange struct {
	Owner    *string
	Managers *[]string
	Monitors *[]string
}

// SetAccess changes host's access list until the next Reload or restart
// and returns the new list. Only the host's owner or an administrator may
// (else ErrForbidden); every named user must exist (else ErrInvalid).
func (s *Service) SetAccess(ctx context.Context, p access.Principal, host string, ch AccessChange) (access.HostRoles, error) {
	if !s.policy.Owns(p, host) {
		return access.HostRoles{}, errorf(ErrForbidden, "Only the owner of host '%s' or an administrator may change its access", hostLabel(host))
	}
	cfg := s.config()
	exists := func(u string) error {
		if _, ok := cfg.Users[u]; !ok {
			return errorf(ErrInvalid, "Unknown user '%s'", printable(u, 64))
		}
		return nil
	}
	h := s.policy.Hosts().Roles(host)
	if ch.Owner != nil {
		if *ch.Owner != "" {
			if err := exists(*ch.Owner); err != nil {
				return access.HostRoles{}, err
			}
		}
		h.Owner = *ch.Owner
	}
	for _, l := range []struct {
		field string
		in    *[]string
		out   *[]string
	}{{"managers", ch.Managers, &h.Managers}, {"monitors", ch.Monitors, &h.Monitors}} {
		if l.in == nil {
			continue
		}
		if len(*l.in) > MaxAccessList {
			return access.HostRoles{}, errorf(ErrInvalid, "%s: at most %d users", l.field, MaxAccessList)
		}
		list := []string{}
		for _, u := range *l.in {
			if err := exists(u); err != nil {
				return access.HostRoles{}, err
			}
			if !slices.Contains(list, u) {
				list = append(list, u)
			}
		}
		*l.out = list
	}
	s.policy.Hosts().Set(host, h)
	by := p.User
	if p.Open {
		by = "(open mode)"
	}
	s.st.Journal(host, fmt.Sprintf("access of %s changed by %s until the next reload: owner %q, managers %v, monitors %v", host, by, h.Owner, h.Managers, h.Monitors))
	return h, nil
}

func hostLabel(h string) string {
	if config.ValidHostName(h) {
		return h
	}
	return "(invalid name)"
}

// printable keeps user-supplied text for logs and errors short and free of
// control characters.
func printable(v string, n int) string {
	v = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, v)
	if len(v) > n {
		v = v[:n]
		for !utf8.ValidString(v) {
			v = v[:len(v)-1]
		}
		v += "…"
	}
	return v
}
