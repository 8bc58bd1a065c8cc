// Package api serves hbd's REST API with Echo. Every route is declared once
// in the route table (Routes) together with the access it needs, so the
// access guard and the role-matrix test see every endpoint; every failure is
// answered as JSON {"error": "..."} by one error handler.
//
// HTTP stays here: the guard (guard.go) reads the session token from the
// request, asks package auth who it is (Sessions) and the access policy
// (Policy, *access.Policy) what they may do, and chooses the status code;
// handleError maps auth's errors to status codes; the session cookie is
// built here. auth and access know nothing of HTTP.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/auth"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/safetext"
	"github.com/hbdmon/hbd/core/store"
)

// Access is what a route requires of its caller.
type Access int

// Access levels, from least to most demanding. Host levels apply to the
// route's :hostname parameter.
const (
	Public        Access = iota // anyone, no session needed
	Agent                       // a signed agent request (checked by the handler)
	Authenticated               // any logged-in user
	HostMonitor                 // monitor, manager, owner of the host, or admin
	HostManager                 // manager, owner of the host, or admin
	HostOwner                   // owner of the host, or admin
	Admin                       // administrators only
)

func (a Access) String() string {
	return [...]string{"public", "agent", "authenticated", "host monitor", "host manager", "host owner", "admin"}[a]
}

// Route is one endpoint of the table.
type Route struct {
	Method  string
	Path    string // Echo syntax, :hostname for the host
	Access  Access
	Handler echo.HandlerFunc
	HTML    bool // a page: unauthenticated browsers are redirected to /login
}

// ConnectionSource reports the heartbeat state of a host: its own state
// (UP, DEGRADED, DOWN or "" when never heard) and its per-family
// connections.
type ConnectionSource interface {
	HostConnections(host string) (state heartbeat.State, connections []heartbeat.ConnectionStatus)
}

// Deps is everything the API reads from. Fields left nil are optional
// features not wired in (their routes answer 503 or empty lists).
type Deps struct {
	Config func() *config.Config
	// Store is the storage the API reads and writes (the daemon's
	// *store.Store; see repository.go for the promises relied on).
	Store       Store
	Connections ConnectionSource
	// Policy answers who may see and manage which host (*access.Policy,
	// the daemon's one instance). Nil: a policy of Config's users and the
	// watchhosts of the config in force at New.
	Policy Policy
	// HostKey returns the signing key of a host for agent requests; dynamic
	// is true for hosts that register themselves with the enroll key.
	HostKey func(host string) (key []byte, dynamic bool, ok bool)
	// ClockOffset, when set, receives the clock offset of a host whose
	// signed batch was refused for clock skew (refused is then true).
	ClockOffset func(host string, offset time.Duration, refused bool, at time.Time)
	// Sessions authenticates session tokens (*auth.Service). Nil: every
	// caller is an administrator, unchecked (tests without accounts).
	Sessions Sessions
	// Guard, when set, replaces the guard built from Sessions and Policy
	// (tests with callers of their own).
	Guard Guard
	// Accounts serves login, logout, profiles and host access (package
	// auth); its routes are registered only when it is set.
	Accounts Accounts
	// SecureCookie marks the session cookie Secure even on plain HTTP
	// requests (TLS terminated by a reverse proxy); it is always Secure on
	// TLS requests.
	SecureCookie bool
	// ConfigFile is the config file the admin config editor edits (the
	// daemon). Nil: the editor's routes answer 503.
	ConfigFile ConfigFile
	Logger     hclog.Logger
}

// Server is the HTTP API.
type Server struct {
	Echo   *echo.Echo
	deps   Deps
	policy Policy
	guard  Guard
	routes []Route
	log    hclog.Logger

	replays  replayGuard // signed ingestion requests already applied
	refusals refusalLog  // log lines of refused ingestion requests
	agents   agentBook   // each host's newest agent health sample
	status   statusCache // the public status page's answer (status.go)
	editor   configEditor
}

// principalKey is the echo.Context key holding the caller's Principal.
const principalKey = "hbd.principal"

// New builds the server and registers the core routes. Feature packages
// add theirs with Add before the server starts.
func New(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = hclog.NewNullLogger()
	}
	if d.Policy == nil {
		d.Policy = access.NewPolicy(d.Config, access.NewHosts(d.Config()))
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	s := &Server{Echo: e, deps: d, policy: d.Policy, guard: d.Guard, log: d.Logger.Named("api")}
	if s.guard == nil {
		s.guard = openGuard{}
		if d.Sessions != nil {
			s.guard = sessionGuard{s}
		}
	}
	e.HTTPErrorHandler = s.handleError
	e.Use(s.recoverer)
	s.Add(s.coreRoutes()...)
	s.Add(s.uptimeRoutes()...)
	s.Add(s.statusRoutes()...)
	s.Add(s.configRoutes()...)
	if d.Accounts != nil {
		s.Add(s.authRoutes()...)
	}
	return s
}

// Add registers routes behind the guard.
func (s *Server) Add(routes ...Route) {
	for _, r := range routes {
		r := r
		s.routes = append(s.routes, r)
		s.Echo.Add(r.Method, r.Path, func(c echo.Context) error {
			p, err := s.guard.Check(c, r)
			if err != nil {
				return err
			}
			c.Set(principalKey, p)
			return r.Handler(c)
		})
	}
}

// Routes returns the route table (for the access guard's tests and docs).
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// Guard returns the guard every route passes through (for the role-matrix
// test, which checks Agent routes on the guard alone).
func (s *Server) Guard() Guard { return s.guard }

// Deps returns the dependencies the server was built with.
func (s *Server) Deps() Deps { return s.deps }

// PrincipalOf returns the caller of a request that passed the guard.
func PrincipalOf(c echo.Context) access.Principal {
	p, _ := c.Get(principalKey).(access.Principal)
	return p
}

// Errorf builds an API error with a status and a message for the caller.
func Errorf(status int, format string, a ...any) *echo.HTTPError {
	return echo.NewHTTPError(status, fmt.Sprintf(format, a...))
}

// errorBody is the shape of every API error. Field names the request
// field at fault when the error is about one (a channel setting, say).
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	// Line and Key place a refused config edit (config.go).
	Line int    `json:"line,omitempty"`
	Key  string `json:"key,omitempty"`
}

// FieldError is an API error about one field of the request: the answer
// carries it as "field" next to "error".
type FieldError struct {
	*echo.HTTPError
	Field string
}

// Unwrap returns the HTTP error, which sets the status and message.
func (e *FieldError) Unwrap() error { return e.HTTPError }

// authStatus is the status of each kind of auth.Error.
var authStatus = map[error]int{
	auth.ErrInvalid:         http.StatusBadRequest,
	auth.ErrUnauthenticated: http.StatusUnauthorized,
	auth.ErrForbidden:       http.StatusForbidden,
}

// handleError is the one place errors become HTTP responses. Internal
// errors are logged and answered without their details.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status := http.StatusInternalServerError
	msg := "Internal server error"
	var (
		he *echo.HTTPError
		ae *auth.Error
		te *auth.ThrottledError
	)
	switch {
	case errors.As(err, &ae) && authStatus[ae.Kind] != 0:
		status, msg = authStatus[ae.Kind], ae.Msg
	case errors.As(err, &te):
		c.Response().Header().Set("Retry-After", strconv.Itoa(te.RetrySeconds()))
		status, msg = http.StatusTooManyRequests, te.Error()
	case errors.As(err, &he):
		status = he.Code
		switch m := he.Message.(type) {
		case string:
			msg = m
		default:
			msg = http.StatusText(status)
		}
		if he == echo.ErrNotFound {
			msg = "Not found: " + clipName(c.Request().URL.Path)
		}
		if he == echo.ErrMethodNotAllowed {
			msg = fmt.Sprintf("Method %s not allowed on %s", clipName(c.Request().Method), clipName(c.Request().URL.Path))
		}
		if status >= 500 && he.Internal != nil {
			s.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "error", he.Internal)
		}
	case errors.Is(err, context.Canceled):
		status, msg = 499, "Request canceled"
	case errors.Is(err, alert.ErrNoLeader):
		// A follower's acknowledgement or silence nobody applied: no
		// daemon leads now (a failover in progress); nothing changed.
		status, msg = http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, store.ErrStorage):
		// Nothing was stored; trying again later may succeed (an agent
		// keeps its batch and sends it again).
		s.log.Error("request failed: storage unavailable", "method", c.Request().Method, "path", c.Path(), "error", err)
		status, msg = http.StatusServiceUnavailable, "hbd cannot store data now (database writes fail: disk full or I/O error); nothing was stored, try again later"
	default:
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "error", err)
	}
	if c.Request().Method == http.MethodHead {
		c.NoContent(status)
		return
	}
	body := errorBody{Error: cleanMessage(msg)}
	var fe *FieldError
	if errors.As(err, &fe) {
		body.Field = clipName(fe.Field)
	}
	var pe *problemError
	if errors.As(err, &pe) {
		body.Line, body.Key = pe.Line, clipName(pe.Key)
	}
	c.JSON(status, body)
}

// maxErrorMessage bounds the error messages sent to clients.
const maxErrorMessage = 1024

// cleanMessage makes an error message safe to show whatever input it
// quotes: control and bidirectional formatting characters and invalid
// UTF-8 are replaced, and it is cut to maxErrorMessage bytes.
func cleanMessage(msg string) string {
	msg = safetext.Clean(msg)
	if len(msg) > maxErrorMessage {
		cut := maxErrorMessage - len("…")
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

func (s *Server) recoverer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("handler panic", "path", c.Path(), "panic", r)
				err = echo.NewHTTPError(http.StatusInternalServerError, "Internal server error")
			}
		}()
		return next(c)
	}
}

// knownHost reports whether a host is configured or has reported.
func (s *Server) knownHost(name string) bool {
	if _, ok := s.deps.Config().Watchhosts[name]; ok {
		return true
	}
	_, ok := s.deps.Store.Host(name)
	return ok
}

// hostParam returns the :hostname of a request, or a 404 naming it.
func (s *Server) hostParam(c echo.Context) (string, error) {
	h := c.Param("hostname")
	if !config.ValidHostName(h) || !s.knownHost(h) {
		return "", Errorf(http.StatusNotFound, "Host '%s' not found", clipName(h))
	}
	return h, nil
}

// clipName keeps names echoed in errors short and printable: control and
// bidirectional formatting characters and invalid UTF-8 become U+FFFD.
func clipName(s string) string {
	if len(s) > 64 {
		cut := 64
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return safetext.Clean(s)
}

// readJSONObject reads a request body of at most limit bytes that must be
// one JSON object sent as Content-Type application/json, in valid UTF-8,
// naming no key twice in an object (decoders keep the last value, a proxy
// or log may have checked the first). tooLarge is the 413 message. Syntax
// and type errors are left to the caller's decoder, which names them.
func readJSONObject(c echo.Context, limit int64, tooLarge string) ([]byte, error) {
	r := c.Request()
	if mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationJSON {
		return nil, Errorf(http.StatusUnsupportedMediaType, "Request body must be sent as Content-Type: application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, Errorf(http.StatusRequestEntityTooLarge, "%s", tooLarge)
		}
		return nil, Errorf(http.StatusBadRequest, "cannot read body")
	}
	if !utf8.Valid(body) {
		return nil, Errorf(http.StatusBadRequest, "Request body is not valid UTF-8")
	}
	if err := checkObjectKeys(body); err != nil {
		return nil, err
	}
	return body, nil
}

// checkObjectKeys refuses a body whose first JSON value is not an object,
// or that names a key twice in one object. A syntax error ends the check
// without an error: the caller's decoder reports it.
func checkObjectKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		keys    map[string]bool // nil for an array
		wantKey bool
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err != nil {
			if len(stack) == 0 && errors.Is(err, io.EOF) {
				return Errorf(http.StatusBadRequest, "Request body must be a JSON object")
			}
			return nil
		}
		if len(stack) == 0 {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return Errorf(http.StatusBadRequest, "Request body must be a JSON object")
			}
		}
		top := len(stack) - 1
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, frame{keys: map[string]bool{}, wantKey: true})
			case '[':
				stack = append(stack, frame{})
			default:
				stack = stack[:top]
				if len(stack) == 0 {
					return nil
				}
				if f := &stack[len(stack)-1]; f.keys != nil {
					f.wantKey = true
				}
			}
			continue
		case string:
			if f := &stack[top]; f.keys != nil && f.wantKey {
				if f.keys[t] {
					return Errorf(http.StatusBadRequest, "Request body names '%s' twice", clipName(t))
				}
				f.keys[t] = true
				f.wantKey = false
				continue
			}
		}
		// A scalar value: the next token of an object is a key.
		if f := &stack[top]; f.keys != nil {
			f.wantKey = true
		}
	}
}
