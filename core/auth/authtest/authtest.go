// Package authtest builds a real auth.Service and api.Server over a store in
// a temporary directory, with the users of the role-matrix tests, a fake
// clock and recorded login delays. It is for tests only.
package authtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/store"
)

// Users of the fixture: "admin" is an administrator; on host Host "owner"
// is the owner, "manager" a manager, "monitor" a monitor; "other" has no
// role anywhere.
var Users = []string{"admin", "owner", "manager", "monitor", "other"}

// Hosts of the fixture: Host has the roles above, OtherHost nobody.
const (
	Host      = "web01"
	OtherHost = "db01"
	// ServerHost is the Host of requests made by Env.Do.
	ServerHost = "hbd.example"
)

// Password returns the password of a fixture user.
func Password(user string) string { return user + "-password" }

var (
	hashesOnce sync.Once
	hashes     map[string]string
)

// Hash returns the bcrypt hash (minimum cost) of a fixture user's password.
func Hash(user string) string {
	hashesOnce.Do(func() {
		hashes = map[string]string{}
		for _, u := range append(Users, "extra") {
			h, err := bcrypt.GenerateFromPassword([]byte(Password(u)), bcrypt.MinCost)
			if err != nil {
				panic(err)
			}
			hashes[u] = string(h)
		}
	})
	return hashes[user]
}

// Config returns a valid config with the fixture's hosts, and its users
// unless open.
func Config(open bool) *config.Config {
	key := config.Secret(strings.Repeat("k", config.MinKeyBytes))
	cfg := &config.Config{
		DataDir:       "unused",
		SampleHistory: 10,
		Auth:          config.Auth{SessionTTL: config.DefaultSessionTTL, MinPasswordLength: 8},
		Watchhosts: map[string]config.WatchHost{
			OtherHost: {Key: key},
		},
		Users: map[string]config.User{},
		// The fixture's requests name ServerHost (Env.Do) or, made with
		// httptest.NewRequest alone, example.com.
		AllowedHosts: []string{ServerHost, "example.com"},
	}
	if open {
		cfg.Watchhosts[Host] = config.WatchHost{Key: key}
		return cfg
	}
	cfg.Watchhosts[Host] = config.WatchHost{Key: key, Owner: "owner", Managers: []string{"manager"}, Monitors: []string{"monitor"}}
	for _, u := range Users {
		cfg.Users[u] = config.User{PasswordHash: Hash(u), Admin: u == "admin", DisplayName: strings.ToUpper(u[:1]) + u[1:], Email: u + "@example.com"}
	}
	return cfg
}

// Clock is a settable clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Env is a running fixture: store, auth service and API server.
type Env struct {
	T     testing.TB
	Dir   string
	Clock *Clock
	Store *store.Store
	Auth  *auth.Service
	API   *api.Server

	cfg    atomic.Pointer[config.Config]
	sleepM sync.Mutex
	sleeps []time.Duration
}

// New starts a fixture with cfg; it is closed when the test ends.
func New(t testing.TB, cfg *config.Config) *Env {
	t.Helper()
	e := &Env{T: t, Dir: t.TempDir(), Clock: &Clock{t: time.Unix(1_800_000_000, 0)}}
	e.cfg.Store(cfg)
	e.start()
	t.Cleanup(func() { e.Store.Close() })
	return e
}

func (e *Env) start() {
	e.T.Helper()
	st, err := store.Open(context.Background(), e.Dir, store.Options{SampleHistory: 10})
	if err != nil {
		e.T.Fatal(err)
	}
	svc, err := auth.New(context.Background(), auth.Options{
		Store:      st,
		Config:     e.cfg.Load(),
		Now:        e.Clock.Now,
		Sleep:      e.sleep,
		BcryptCost: bcrypt.MinCost,
	})
	if err != nil {
		st.Close()
		e.T.Fatal(err)
	}
	e.Store, e.Auth = st, svc
	e.API = api.New(api.Deps{
		Config:   e.cfg.Load,
		Store:    st,
		Policy:   svc.Policy(),
		Sessions: svc,
		Accounts: svc,
	})
}

func (e *Env) sleep(_ context.Context, d time.Duration) error {
	e.sleepM.Lock()
	e.sleeps = append(e.sleeps, d)
	e.sleepM.Unlock()
	return nil
}

// Sleeps returns the login delays asked for so far (none really slept).
func (e *Env) Sleeps() []time.Duration {
	e.sleepM.Lock()
	defer e.sleepM.Unlock()
	return append([]time.Duration(nil), e.sleeps...)
}

// Restart closes the store and opens everything again on the same data
// directory, as a daemon restart does.
func (e *Env) Restart() {
	e.T.Helper()
	if err := e.Store.Close(); err != nil {
		e.T.Fatal(err)
	}
	e.start()
}

// Reload swaps in a new config as a SIGHUP does.
func (e *Env) Reload(cfg *config.Config) {
	e.cfg.Store(cfg)
	e.Auth.Reload(cfg)
}

// Config returns the config in force.
func (e *Env) Config() *config.Config { return e.cfg.Load() }

// Request is one request to the fixture's server.
type Request struct {
	Method string
	Path   string
	Body   any // marshalled as JSON unless a string ("" for none)
	Header map[string]string
	Token  string       // sent as Authorization: Bearer
	Cookie *http.Cookie // sent as is
}

// Do serves r and returns the response. Requests come from 192.0.2.1 to
// ServerHost unless headers say otherwise.
func (e *Env) Do(r Request) *httptest.ResponseRecorder {
	e.T.Helper()
	var body io.Reader
	switch b := r.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.T.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(r.Method, r.Path, body)
	req.Host = ServerHost
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	if r.Cookie != nil {
		req.AddCookie(r.Cookie)
	}
	rec := httptest.NewRecorder()
	e.API.Echo.ServeHTTP(rec, req)
	return rec
}

// Login logs user in with the fixture password and returns the token and
// the session cookie.
func (e *Env) Login(user string) (string, *http.Cookie) {
	e.T.Helper()
	rec := e.Do(Request{Method: http.MethodPost, Path: "/api/0/auth/login", Body: map[string]string{"username": user, "password": Password(user)}})
	if rec.Code != http.StatusOK {
		e.T.Fatalf("login %s: %d %s", user, rec.Code, rec.Body)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Token == "" {
		e.T.Fatalf("login %s: %s", user, rec.Body)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == api.CookieName {
			return out.Token, c
		}
	}
	e.T.Fatalf("login %s: no session cookie", user)
	return "", nil
}

// Cookie returns a request cookie carrying token.
func Cookie(token string) *http.Cookie { return &http.Cookie{Name: api.CookieName, Value: token} }
