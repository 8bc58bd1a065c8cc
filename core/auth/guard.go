package auth

import (
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/config"
)

// Guard is the api.Guard of a Service. In open mode it allows everything.
// Otherwise:
//   - Public routes pass (with the caller when a valid token is sent);
//     Agent routes pass untouched (their handler checks the signature).
//   - No valid token: 401 JSON, or for HTML routes (GET/HEAD) a 302 to
//     /login?next=<path and query>.
//   - Cookie-authenticated writes (POST, PUT, PATCH, DELETE) must carry a
//     same-origin Origin (or Referer) or the session's X-CSRF-Token: 403.
//   - Too weak a role: 403 JSON. Host routes take the role on :hostname;
//     administrators pass on to the handler, which answers 404 for an
//     unknown host, while other users get 403 for any host they cannot
//     use, known or not, so the answer does not tell which hosts exist.
type Guard struct {
	s *Service
}

// Check authenticates the request and checks it against the route.
func (g *Guard) Check(c echo.Context, rt api.Route) (api.Principal, error) {
	s := g.s
	if rt.Access == api.Agent {
		return api.Principal{}, nil
	}
	if s.OpenMode() {
		if err := s.checkOpen(c.Request()); err != nil {
			return api.Principal{}, api.Errorf(http.StatusForbidden, "Open mode: %v", err)
		}
		return openPrincipal, nil
	}
	r := c.Request()
	a := s.authenticate(r)
	if rt.Access == api.Public {
		return a.p, nil
	}
	if !a.ok {
		if rt.HTML && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			if err := c.Redirect(http.StatusFound, api.LoginPath+"?next="+url.QueryEscape(r.URL.RequestURI())); err != nil {
				return api.Principal{}, err
			}
			// The redirect is written; the error only stops the handler.
			return api.Principal{}, api.Errorf(http.StatusFound, "Login required")
		}
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="hbd"`)
		if a.src == srcNone {
			return api.Principal{}, api.Errorf(http.StatusUnauthorized, "Authentication required: log in with POST /api/0/auth/login and send the token as Authorization: Bearer")
		}
		return api.Principal{}, api.Errorf(http.StatusUnauthorized, "Invalid or expired session token: log in again")
	}
	if a.src == srcCookie && unsafeMethod(r.Method) {
		if err := checkCSRF(r, a.token); err != nil {
			return api.Principal{}, api.Errorf(http.StatusForbidden, "CSRF check failed: %v", err)
		}
	}
	p := a.p
	switch rt.Access {
	case api.Authenticated:
		return p, nil
	case api.Admin:
		if p.Admin {
			return p, nil
		}
		return api.Principal{}, api.Errorf(http.StatusForbidden, "Only administrators may %s %s", r.Method, rt.Path)
	case api.HostMonitor, api.HostManager, api.HostOwner:
		if p.Admin {
			return p, nil
		}
		need := map[api.Access]Role{api.HostMonitor: RoleMonitor, api.HostManager: RoleManager, api.HostOwner: RoleOwner}[rt.Access]
		host := c.Param("hostname")
		if s.access.Role(p.User, host) >= need {
			return p, nil
		}
		return api.Principal{}, api.Errorf(http.StatusForbidden, "You need the %s role on host '%s' for this", need, hostLabel(host))
	}
	return api.Principal{}, api.Errorf(http.StatusForbidden, "Access denied")
}

// CanSee reports whether p may read host's data: monitor or above.
func (g *Guard) CanSee(p api.Principal, host string) bool {
	if p.Open || p.Admin {
		return true
	}
	return p.User != "" && g.s.access.Role(p.User, host) >= RoleMonitor
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
// this site: X-CSRF-Token equal to the session's token, or else an Origin
// (or, without Origin, a Referer) naming this server's host.
func checkCSRF(r *http.Request, tok string) error {
	if h := r.Header.Get(HeaderCSRF); h != "" {
		if subtle.ConstantTimeCompare([]byte(h), []byte(csrfToken(tok))) == 1 {
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
