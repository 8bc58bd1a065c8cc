package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/auth"
)

// Accounts is the user and session side of the API: login, logout,
// profiles and host access. Package auth provides it (*auth.Service); its
// errors (*auth.Error, *auth.ThrottledError) are answered by handleError.
type Accounts interface {
	// Login checks credentials and opens a session.
	Login(ctx context.Context, c auth.Credentials) (auth.Session, error)
	// Logout ends the session of token (if any).
	Logout(ctx context.Context, token string) error
	// Users lists every configured user, sorted by name.
	Users() []auth.User
	// Me returns p's profile; token is the one the request carried.
	Me(p access.Principal, token string) (auth.Profile, error)
	// UpdateMe changes p's profile, subscriptions or password, keeping
	// token's session.
	UpdateMe(ctx context.Context, p access.Principal, token string, u auth.ProfileUpdate) (auth.Profile, error)
	// SetAccess changes the access of host at runtime (not in the file).
	SetAccess(ctx context.Context, p access.Principal, host string, ch auth.AccessChange) (access.HostRoles, error)
}

// LoginRequest is the body of POST /api/0/auth/login (JSON, or a form with
// the same field names).
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Next is where a browser wants to go after login; only local paths are
	// honoured (see SafeNext).
	Next string `json:"next,omitempty"`
}

// UserJSON is a user as the API shows it. Password hashes never leave the
// auth package.
type UserJSON struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"display_name"`
	Email       string   `json:"email"`
	Admin       bool     `json:"admin"`
	Channels    []string `json:"channels"`
}

// ProfileJSON is the answer of GET/PUT /api/0/users/me.
type ProfileJSON struct {
	UserJSON
	// Open is true when no users are configured (everyone is an admin).
	Open bool `json:"open"`
	// CSRFToken must be sent as X-CSRF-Token by cookie-authenticated
	// writes that carry no same-origin Origin or Referer header.
	CSRFToken string `json:"csrf_token,omitempty"`
	// SessionExpires is the unix time the caller's session ends.
	SessionExpires int64 `json:"session_expires,omitempty"`
}

func userJSON(u auth.User) UserJSON {
	return UserJSON{Name: u.Name, DisplayName: u.DisplayName, Email: u.Email, Admin: u.Admin, Channels: u.Channels}
}

func profileJSON(p auth.Profile) ProfileJSON {
	out := ProfileJSON{UserJSON: userJSON(p.User), Open: p.Open, CSRFToken: p.CSRFToken}
	if !p.SessionExpires.IsZero() {
		out.SessionExpires = p.SessionExpires.Unix()
	}
	return out
}

// ProfileUpdate is the body of PUT /api/0/users/me. Absent (or null)
// fields are left unchanged. Its three modes may be combined: identity
// (DisplayName, Email), subscriptions (Channels), password
// (CurrentPassword and NewPassword together).
type ProfileUpdate struct {
	DisplayName     *string   `json:"display_name"`
	Email           *string   `json:"email"`
	Channels        *[]string `json:"channels"`
	CurrentPassword *string   `json:"current_password"`
	NewPassword     *string   `json:"new_password"`
}

// HostAccessJSON is the answer of GET/PUT /api/0/hosts/:hostname/access.
type HostAccessJSON struct {
	Owner    *string  `json:"owner"`
	Managers []string `json:"managers"`
	Monitors []string `json:"monitors"`
}

func hostAccessJSON(h access.HostRoles) HostAccessJSON {
	out := HostAccessJSON{Managers: h.Managers, Monitors: h.Monitors}
	if h.Owner != "" {
		owner := h.Owner
		out.Owner = &owner
	}
	if out.Managers == nil {
		out.Managers = []string{}
	}
	if out.Monitors == nil {
		out.Monitors = []string{}
	}
	return out
}

// MaxAccountBodyBytes bounds the request bodies of the account endpoints.
const MaxAccountBodyBytes = 64 << 10

// LoginPath is the login page that HTML requests without a session are
// sent to.
const LoginPath = "/login"

func (s *Server) authRoutes() []Route {
	return []Route{
		{Method: http.MethodPost, Path: "/api/0/auth/login", Access: Public, Handler: s.authLogin},
		{Method: http.MethodPost, Path: "/api/0/auth/logout", Access: Authenticated, Handler: s.authLogout},
		{Method: http.MethodGet, Path: "/logout", Access: Public, Handler: s.authLogoutPage, HTML: true},
		{Method: http.MethodGet, Path: "/api/0/users", Access: Admin, Handler: s.authUsers},
		{Method: http.MethodGet, Path: "/api/0/users/me", Access: Authenticated, Handler: s.authMe},
		{Method: http.MethodPut, Path: "/api/0/users/me", Access: Authenticated, Handler: s.authUpdateMe},
		{Method: http.MethodGet, Path: "/api/0/hosts/:hostname/access", Access: HostMonitor, Handler: s.authGetAccess},
		{Method: http.MethodPut, Path: "/api/0/hosts/:hostname/access", Access: HostOwner, Handler: s.authSetAccess},
	}
}

// authLogin accepts JSON (answered with the token) or an HTML form
// (answered with a redirect to the safe next page, or back to the login
// page with an error code).
func (s *Server) authLogin(c echo.Context) error {
	var req LoginRequest
	form := isForm(c.Request())
	if form {
		r := c.Request()
		r.Body = http.MaxBytesReader(c.Response(), r.Body, MaxAccountBodyBytes)
		if err := r.ParseForm(); err != nil {
			return Errorf(http.StatusBadRequest, "invalid form body")
		}
		req = LoginRequest{Username: r.PostForm.Get("username"), Password: r.PostForm.Get("password"), Next: r.PostForm.Get("next")}
	} else if err := decodeAccountBody(c, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		if form {
			return loginAgain(c, "missing", req.Next)
		}
		return Errorf(http.StatusBadRequest, "username and password are required")
	}
	next := SafeNext(req.Next)
	r := c.Request()
	o := r.Header.Get("Origin")
	res, err := s.deps.Accounts.Login(r.Context(), auth.Credentials{
		Username: req.Username, Password: req.Password, Client: s.clientAddr(c),
		CrossSite: o != "" && !sameOrigin(o, r),
	})
	if err != nil {
		var te *auth.ThrottledError
		if form && errors.As(err, &te) {
			c.Response().Header().Set("Retry-After", strconv.Itoa(te.RetrySeconds()))
			return loginAgain(c, "throttled", req.Next)
		}
		if form && errors.Is(err, auth.ErrUnauthenticated) {
			return loginAgain(c, "invalid", req.Next)
		}
		return err
	}
	c.SetCookie(s.cookie(r, res.Token, res.Lifetime, res.Expires))
	if form {
		return c.Redirect(http.StatusSeeOther, next)
	}
	return c.JSON(http.StatusOK, map[string]any{"token": res.Token, "expires": res.Expires.Unix(), "next": next})
}

// cookie returns the session cookie for tok, which lasts lifetime (until
// expires), or one that clears the cookie when tok is empty.
func (s *Server) cookie(r *http.Request, tok string, lifetime time.Duration, expires time.Time) *http.Cookie {
	c := &http.Cookie{
		Name:     CookieName,
		Value:    tok,
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   r.TLS != nil || s.deps.SecureCookie,
	}
	if tok == "" {
		c.MaxAge = -1
		c.Expires = time.Unix(0, 0)
	} else {
		c.Expires = expires
		c.MaxAge = max(1, int(lifetime/time.Second))
	}
	return c
}

// logout ends the session of the request's token and clears the cookie.
func (s *Server) logout(c echo.Context) error {
	tok, _ := tokenOf(c.Request())
	if err := s.deps.Accounts.Logout(c.Request().Context(), tok); err != nil {
		return err
	}
	c.SetCookie(s.cookie(c.Request(), "", 0, time.Time{}))
	return nil
}

// loginAgain sends a form login back to the login page.
func loginAgain(c echo.Context, code, next string) error {
	q := url.Values{"error": {code}}
	if n := SafeNext(next); n != "/" {
		q.Set("next", n)
	}
	return c.Redirect(http.StatusSeeOther, LoginPath+"?"+q.Encode())
}

func isForm(r *http.Request) bool {
	ct := strings.ToLower(r.Header.Get(echo.HeaderContentType))
	return strings.HasPrefix(ct, echo.MIMEApplicationForm) || strings.HasPrefix(ct, echo.MIMEMultipartForm)
}

func (s *Server) authLogout(c echo.Context) error {
	if err := s.logout(c); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": true})
}

// authLogoutPage is the browser's logout: it ends the session, clears the
// cookie and goes to the login page.
func (s *Server) authLogoutPage(c echo.Context) error {
	if err := s.logout(c); err != nil {
		return err
	}
	return c.Redirect(http.StatusFound, LoginPath)
}

func (s *Server) authUsers(c echo.Context) error {
	users := s.deps.Accounts.Users()
	out := make([]UserJSON, len(users))
	for i, u := range users {
		out[i] = userJSON(u)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) authMe(c echo.Context) error {
	tok, _ := tokenOf(c.Request())
	me, err := s.deps.Accounts.Me(PrincipalOf(c), tok)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, profileJSON(me))
}

func (s *Server) authUpdateMe(c echo.Context) error {
	var u ProfileUpdate
	if err := decodeAccountBody(c, &u); err != nil {
		return err
	}
	tok, _ := tokenOf(c.Request())
	me, err := s.deps.Accounts.UpdateMe(c.Request().Context(), PrincipalOf(c), tok, auth.ProfileUpdate(u))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, profileJSON(me))
}

func (s *Server) authGetAccess(c echo.Context) error {
	host, err := s.hostParam(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, hostAccessJSON(s.policy.HostRoles(host)))
}

func (s *Server) authSetAccess(c echo.Context) error {
	host, err := s.hostParam(c)
	if err != nil {
		return err
	}
	var body struct {
		Owner    json.RawMessage `json:"owner"`
		Managers *[]string       `json:"managers"`
		Monitors *[]string       `json:"monitors"`
	}
	if err := decodeAccountBody(c, &body); err != nil {
		return err
	}
	ch := auth.AccessChange{Managers: body.Managers, Monitors: body.Monitors}
	if len(body.Owner) > 0 {
		owner := ""
		if string(body.Owner) != "null" {
			if err := json.Unmarshal(body.Owner, &owner); err != nil {
				return Errorf(http.StatusBadRequest, "owner must be a user name or null")
			}
		}
		ch.Owner = &owner
	}
	out, err := s.deps.Accounts.SetAccess(c.Request().Context(), PrincipalOf(c), host, ch)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, hostAccessJSON(out))
}

// clientAddr is the caller's address: the Echo IPExtractor's answer when
// the daemon configured one (trusted reverse proxies), else the TCP peer.
// Forwarding headers are not trusted by default, so they cannot be used to
// dodge login throttling.
func (s *Server) clientAddr(c echo.Context) string {
	if s.Echo.IPExtractor != nil {
		return c.RealIP()
	}
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		return c.Request().RemoteAddr
	}
	return host
}

// decodeAccountBody decodes a bounded JSON object into v, refusing unknown
// fields and trailing data.
func decodeAccountBody(c echo.Context, v any) error {
	body, err := readJSONObject(c, MaxAccountBodyBytes, fmt.Sprintf("request body larger than %d bytes", MaxAccountBodyBytes))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		if dec.Decode(&json.RawMessage{}) != io.EOF {
			return Errorf(http.StatusBadRequest, "request body must hold one JSON object")
		}
		return nil
	}
	if errors.Is(err, io.EOF) {
		return Errorf(http.StatusBadRequest, "request body must be a JSON object")
	}
	return Errorf(http.StatusBadRequest, "invalid JSON body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// SafeNext returns next when it is a local path of this server (starting
// with one "/", no scheme, host, backslash or control character), else "/".
// It keeps redirects after login from leaving the site.
func SafeNext(next string) string {
	if next == "" || len(next) > 2048 || next[0] != '/' || strings.HasPrefix(next, "//") {
		return "/"
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || strings.Contains(u.Path, "\\") {
		return "/"
	}
	return next
}
