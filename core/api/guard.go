package api

import (
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/auth"
	"github.com/hbdmon/hbd/core/config"
)

// Where a session token is read from, in this order: Authorization:
// Bearer, HeaderToken, the CookieName cookie.
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

// Sessions authenticates session tokens. Package auth provides it
// (*auth.Service); the API extracts the token from the request.
type Sessions interface {
	// OpenMode reports whether no users are configured: every caller is
	// then an administrator and no token is looked at.
	OpenMode() bool
	// Authenticate returns the principal of a session token; ok is false
	// when the token names no session in force. client is the caller's
	// address, recorded as the session's last client.
	Authenticate(token, client string) (p access.Principal, ok bool)
}

// Policy is the access policy the API asks (*access.Policy): the guard
// for each route, the handlers for every host they list, filter or act
// on. It must be cheap and must not block.
type Policy interface {
	IsAdmin(p access.Principal) bool
	Role(p access.Principal, host string) access.Role
	CanSee(p access.Principal, host string) bool
	CanManage(p access.Principal, host string) bool
	// HostRoles returns the access list of host in force.
	HostRoles(host string) access.HostRoles
}

// Guard authenticates a request and decides whether it may reach its
// route, returning the caller or an *echo.HTTPError (401, 403, or the
// login redirect's 302 once the redirect is written). The server builds
// the real one from Deps.Sessions and Deps.Policy; tests may give their
// own in Deps.Guard.
type Guard interface {
	Check(c echo.Context, r Route) (access.Principal, error)
}

// openPrincipal is the caller of every request in open mode.
var openPrincipal = access.Principal{Admin: true, Open: true}

// openGuard is the guard of a server without Sessions: every caller is an
// administrator.
type openGuard struct{}

func (openGuard) Check(echo.Context, Route) (access.Principal, error) { return openPrincipal, nil }

// sessionGuard is the guard of a server with Sessions. In open mode it
// allows everything a browser attack cannot have sent (checkOpen).
// Otherwise:
//   - Public routes pass (with the caller when a valid token is sent);
//     Agent routes pass untouched (their handler checks the signature).
//   - No valid token: 401 JSON, or for HTML routes (GET/HEAD) a 302 to
//     /login?next=<path and query>.
//   - Cookie-authenticated writes (POST, PUT, PATCH, DELETE) must carry a
//     same-origin Origin (or Referer) or the session's X-CSRF-Token: 403.
//   - Too weak a role (the Policy's answer): 403 JSON. Host routes take
//     the role on :hostname; administrators pass on to the handler, which
//     answers 404 for an unknown host, while other users get 403 for any
//     host they cannot use, known or not, so the answer does not tell
//     which hosts exist.
type sessionGuard struct {
	s *Server
}

// hostRole is the role each host access level needs on :hostname.
var hostRole = map[Access]access.Role{HostMonitor: access.RoleMonitor, HostManager: access.RoleManager, HostOwner: access.RoleOwner}

func (g sessionGuard) Check(c echo.Context, rt Route) (access.Principal, error) {
	s := g.s
	if rt.Access == Agent {
		return access.Principal{}, nil
	}
	r := c.Request()
	if s.deps.Sessions.OpenMode() {
		if err := s.checkOpen(r); err != nil {
			return access.Principal{}, Errorf(http.StatusForbidden, "Open mode: %v", err)
		}
		return openPrincipal, nil
	}
	tok, src := tokenOf(r)
	var p access.Principal
	ok := false
	if src != srcNone {
		p, ok = s.deps.Sessions.Authenticate(tok, peerAddr(r))
	}
	if rt.Access == Public {
		return p, nil
	}
	if !ok {
		if rt.HTML && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			if err := c.Redirect(http.StatusFound, LoginPath+"?next="+url.QueryEscape(r.URL.RequestURI())); err != nil {
				return access.Principal{}, err
			}
			// The redirect is written; the error only stops the handler.
			return access.Principal{}, Errorf(http.StatusFound, "Login required")
		}
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="hbd"`)
		if src == srcNone {
			return access.Principal{}, Errorf(http.StatusUnauthorized, "Authentication required: log in with POST /api/0/auth/login and send the token as Authorization: Bearer")
		}
		return access.Principal{}, Errorf(http.StatusUnauthorized, "Invalid or expired session token: log in again")
	}
	if src == srcCookie && unsafeMethod(r.Method) {
		if err := checkCSRF(r, tok); err != nil {
			return access.Principal{}, Errorf(http.StatusForbidden, "CSRF check failed: %v", err)
		}
	}
	switch rt.Access {
	case Authenticated:
		return p, nil
	case Admin:
		if s.policy.IsAdmin(p) {
			return p, nil
		}
		return access.Principal{}, Errorf(http.StatusForbidden, "Only administrators may %s %s", r.Method, rt.Path)
	case HostMonitor, HostManager, HostOwner:
		need := hostRole[rt.Access]
		host := c.Param("hostname")
		if s.policy.Role(p, host) >= need {
			return p, nil
		}
		return access.Principal{}, Errorf(http.StatusForbidden, "You need the %s role on host '%s' for this", need, hostLabel(host))
	}
	return access.Principal{}, Errorf(http.StatusForbidden, "Access denied")
}

// Authenticate returns the caller of r for the live feed: in open mode an
// administrator when r's Host names this daemon (checkOpen's DNS
// rebinding check), else the session of the token r carries. It does no
// CSRF check: WebSocket upgrades check Origin themselves. Without
// Sessions every caller is an administrator.
func (s *Server) Authenticate(r *http.Request) (access.Principal, bool) {
	if s.deps.Sessions == nil {
		return openPrincipal, true
	}
	if s.deps.Sessions.OpenMode() {
		return openPrincipal, s.hostAllowed(r.Host)
	}
	tok, src := tokenOf(r)
	if src == srcNone {
		return access.Principal{}, false
	}
	return s.deps.Sessions.Authenticate(tok, peerAddr(r))
}

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

// peerAddr is the TCP peer of r, without port.
func peerAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func hostLabel(h string) string {
	if config.ValidHostName(h) {
		return h
	}
	return "(invalid name)"
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// checkCSRF accepts a cookie-authenticated write that proves it comes from
// this site: X-CSRF-Token equal to the session's (auth.CSRFToken), or
// else an Origin (or, without Origin, a Referer) naming this server's
// host.
func checkCSRF(r *http.Request, tok string) error {
	if h := r.Header.Get(HeaderCSRF); h != "" {
		if subtle.ConstantTimeCompare([]byte(h), []byte(auth.CSRFToken(tok))) == 1 {
			return nil
		}
		return errors.New("X-CSRF-Token does not match the session")
	}
	if o := r.Header.Get("Origin"); o != "" {
		if sameOrigin(o, r) {
			return nil
		}
		return errors.New("the Origin header names another site")
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		if sameOrigin(ref, r) {
			return nil
		}
		return errors.New("the Referer header names another site")
	}
	return errors.New("a cookie-authenticated write needs a same-origin Origin header or X-CSRF-Token (csrf_token of GET /api/0/users/me)")
}

// sameOrigin reports whether the origin (or URL) raw names the host r was
// sent to. A port left out on either side is the default of raw's scheme,
// so a TLS-terminating proxy in front does not break the check.
func sameOrigin(raw string, r *http.Request) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || r.Host == "" {
		return false
	}
	return hostPort(u.Scheme, u.Host) == hostPort(u.Scheme, r.Host)
}

func hostPort(scheme, hp string) string {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		h, p = strings.Trim(hp, "[]"), ""
	}
	if p == "" {
		p = "80"
		if scheme == "https" {
			p = "443"
		}
	}
	return strings.ToLower(net.JoinHostPort(h, p))
}
