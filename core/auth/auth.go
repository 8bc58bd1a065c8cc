// Package auth is hbd's users and sessions: accounts, login throttling,
// profiles and the host access lists users change at runtime. It knows
// nothing of HTTP: it takes what a request carries as plain values (a
// token, the client's address) and returns its own model types and
// errors (Error, ThrottledError), which package api turns into status
// codes and JSON. Who may see or manage what is package access's
// Policy, which the Service changes (host access lists) but does not
// decide.
//
// Users are configured in the config file; what a user changes about their
// own account (display name, e-mail, subscriptions, password) is kept in an
// overlay in the store, so it survives restarts and SIGHUP. Sessions are
// random 256-bit tokens stored only as SHA-256 hashes; they expire after
// auth.session_ttl and end at logout, at a password change (the user's
// other sessions), and when the user is removed from the config or their
// configured password hash changes.
//
// Service is the whole of it: Authenticate (a session token to its
// access.Principal), the account operations (Login, Logout, Me, UpdateMe,
// Users, SetAccess) and Policy (the access policy whose host access lists
// it resets on Reload). With no users configured it runs in open mode:
// every caller is an administrator.
//
// Lifecycle: New once the store is open, Reload on every SIGHUP with the
// new config; nothing to stop (the Service owns no goroutine).
package auth

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/bcrypt"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/auth/authrecord"
	"github.com/hbdmon/hbd/core/config"
)

// Limits of accounts and sessions.
const (
	// MaxSessionsPerUser bounds the open sessions of one user; the oldest
	// end first.
	MaxSessionsPerUser = 100
	// touchEvery is how often a session's last use is written back.
	touchEvery = time.Minute
)

// Options configure a Service. Store and Config are required.
type Options struct {
	Store  Repository
	Config *config.Config
	Logger hclog.Logger
	// Now is the clock (time.Now when nil); tests inject one.
	Now func() time.Time
	// Sleep waits d or until ctx ends; it slows repeated failed logins.
	// Tests inject one that does not sleep.
	Sleep func(ctx context.Context, d time.Duration) error
	// BcryptCost is the cost of password hashes users set (bcrypt.DefaultCost
	// when 0).
	BcryptCost int
	// Policy is the access policy whose host access lists the Service
	// changes (SetAccess) and resets (Reload). Nil: a policy of its own,
	// over Config's watchhosts. The daemon passes the one policy every
	// service asks.
	Policy *access.Policy
	// Channels checks channel subscriptions. Nil accepts every well-formed
	// name until SetChannels installs one.
	Channels ChannelChecker
}

// ChannelChecker is what the Service needs of the notification channels:
// whether user may subscribe to channel (it exists and user may see it).
// It must not call back into the Service.
type ChannelChecker interface {
	ChannelVisible(user, channel string) bool
}

// anyChannel is the ChannelChecker of a Service without channels.
type anyChannel struct{}

func (anyChannel) ChannelVisible(string, string) bool { return true }

// Service is hbd's users, sessions and access control. It is safe for
// concurrent use.
type Service struct {
	st       Repository
	log      hclog.Logger
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
	cost     int
	policy   *access.Policy
	throttle *throttle
	channels atomic.Pointer[ChannelChecker]
	ended    atomic.Pointer[func()]

	updateMu sync.Mutex // serializes profile updates (read-modify-write of overlays)

	mu       sync.RWMutex
	cfg      *config.Config
	overlays map[string]authrecord.UserOverlay
	sessions map[string]*session // by token hash

	dummyMu sync.Mutex
	dummy   map[int][]byte // bcrypt hashes checked for unknown users, by cost
}

type session struct {
	user                       string
	created, expires, lastUsed time.Time
	client                     string
}

// OnSessionsEnded sets fn to be called (outside every lock) after sessions
// end before their time: logout, password change, users removed or
// re-keyed on reload, a user's oldest sessions pushed out. The live feed
// re-checks its clients then, so a logged-out session stops receiving at
// once.
func (s *Service) OnSessionsEnded(fn func()) { s.ended.Store(&fn) }

func (s *Service) sessionsEnded() {
	if fn := s.ended.Load(); fn != nil {
		(*fn)()
	}
}

// New loads the user overlays and open sessions from the store.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	if o.BcryptCost == 0 {
		o.BcryptCost = bcrypt.DefaultCost
	}
	s := &Service{
		st: o.Store, log: o.Logger.Named("auth"), now: o.Now, sleep: o.Sleep,
		cost: o.BcryptCost, policy: o.Policy, throttle: newThrottle(),
		cfg: o.Config, sessions: map[string]*session{}, dummy: map[int][]byte{},
	}
	if s.policy == nil {
		s.policy = access.NewPolicy(s.config, access.NewHosts(o.Config))
	}
	s.SetChannels(o.Channels)
	var err error
	if s.overlays, err = s.st.UserOverlays(ctx); err != nil {
		return nil, err
	}
	now := s.now()
	list, err := s.st.Sessions(ctx, now)
	if err != nil {
		return nil, err
	}
	for _, se := range list {
		s.sessions[se.Hash] = &session{user: se.User, created: se.Created, expires: se.Expires, lastUsed: se.LastUsed, client: se.Client}
	}
	s.st.DeleteExpiredSessions(now)
	s.warnOpen(o.Config)
	return s, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) warnOpen(cfg *config.Config) {
	if cfg.OpenMode() {
		s.log.Warn("no users configured: OPEN MODE, every endpoint is open to anyone who can reach the daemon")
	}
}

// SetChannels installs the check of channel subscriptions (nil accepts
// every well-formed name). The daemon builds the notification channels
// after the Service and installs them with it; Options.Channels does the
// same at construction.
func (s *Service) SetChannels(c ChannelChecker) {
	if c == nil {
		c = anyChannel{}
	}
	s.channels.Store(&c)
}

// Reload applies a new config (SIGHUP): users removed from it, and users
// whose configured password hash changed, lose their sessions; runtime
// access overrides are dropped, so every host's access is the file's
// again.
func (s *Service) Reload(cfg *config.Config) {
	s.mu.Lock()
	old := s.cfg
	s.cfg = cfg
	var revoke []string
	for name, u := range old.Users {
		if nu, ok := cfg.Users[name]; !ok || nu.PasswordHash != u.PasswordHash {
			revoke = append(revoke, name)
		}
	}
	sort.Strings(revoke)
	for h, se := range s.sessions {
		if slices.Contains(revoke, se.user) {
			delete(s.sessions, h)
		}
	}
	s.mu.Unlock()
	s.policy.Hosts().Reset(cfg)
	s.warnOpen(cfg)
	if len(revoke) == 0 {
		return
	}
	s.sessionsEnded()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.st.DeleteUserSessions(ctx, revoke...); err != nil {
		s.log.Error("cannot delete sessions of removed users", "users", revoke, "error", err)
	}
	s.st.Journal("", "sessions ended by config reload (user removed or password reset): "+strings.Join(revoke, ", "))
}

// Policy returns the access policy whose host access lists the Service
// changes.
func (s *Service) Policy() *access.Policy { return s.policy }

func (s *Service) config() *config.Config {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cfg
}

// OpenMode reports whether no users are configured.
func (s *Service) OpenMode() bool { return s.config().OpenMode() }

// user returns a configured user with their own changes applied.
func (s *Service) user(name string) (User, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, _, ok := s.userLocked(name)
	return u, ok
}

// userLocked returns the user's view and password hash in force. s.mu
// must be held.
func (s *Service) userLocked(name string) (User, string, bool) {
	cu, ok := s.cfg.Users[name]
	if !ok {
		return User{}, "", false
	}
	u := User{Name: name, DisplayName: cu.DisplayName, Email: cu.Email, Admin: cu.Admin, Channels: slices.Clone(cu.Channels)}
	hash := cu.PasswordHash
	if o, ok := s.overlays[name]; ok {
		if o.DisplayName != nil {
			u.DisplayName = *o.DisplayName
		}
		if o.Email != nil {
			u.Email = *o.Email
		}
		if o.Channels != nil {
			u.Channels = slices.Clone(*o.Channels)
		}
		if o.PasswordHash != "" && o.BaseHash == cu.PasswordHash {
			hash = o.PasswordHash
		}
	}
	if u.Channels == nil {
		u.Channels = []string{}
	}
	return u, hash, true
}

// Users lists every configured user with their own changes applied,
// sorted by name; never password hashes.
func (s *Service) Users() []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]User, 0, len(s.cfg.Users))
	for name := range s.cfg.Users {
		u, _, _ := s.userLocked(name)
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// User is a configured user with their own changes applied. Password
// hashes never leave the package.
type User struct {
	Name        string
	DisplayName string
	Email       string
	Admin       bool
	Channels    []string // subscribed notification channels, never nil
}
