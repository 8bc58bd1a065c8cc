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
)

// Accounts is the user and session side of the API: login, logout,
// profiles and host access. Package auth provides it (auth imports api, so
// the interface lives here, at its consumer). Errors returned are
// *echo.HTTPError with the status to answer, or *ThrottledError.
type Accounts interface {
	// Login checks credentials and opens a session. client is the caller's
	// address, used for throttling and the journal.
	Login(ctx context.Context, r *http.Request, client string, req LoginRequest) (LoginResult, error)
	// Logout ends the session that authenticated r (if any) and returns the
	// cookie that clears it in the browser.
	Logout(ctx context.Context, r *http.Request) (*http.Cookie, error)
	// Users lists every configured user, sorted by name.
	Users() []UserJSON
	// Me returns the caller's profile.
	Me(r *http.Request, p Principal) (ProfileJSON, error)
	// UpdateMe changes the caller's profile, subscriptions or password.
	UpdateMe(ctx context.Context, r *http.Request, p Principal, u ProfileUpdate) (ProfileJSON, error)
	// GetAccess returns the current owner, managers and monitors of host.
	GetAccess(host string) HostAccessJSON
	// SetAccess changes the access of host at runtime (not in the file).
	SetAccess(ctx context.Context, p Principal, host string, ch AccessChange) (HostAccessJSON, error)
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

// LoginResult is an opened session.
type LoginResult struct {
	Token   string
	Expires time.Time
	Cookie  *http.Cookie // the session cookie to set
}

// ThrottledError refuses a login after repeated failures.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("Too many failed logins: try again in %d seconds", retrySeconds(e.RetryAfter))
}

func retrySeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
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

// AccessChange is a decoded PUT /api/0/hosts/:hostname/access. Nil fields
// are left unchanged; an Owner of "" removes the owner (JSON null).
type AccessChange struct {
	Owner    *string
	Managers *[]string
	Monitors *[]string
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
	res, err := s.deps.Accounts.Login(c.Request().Context(), c.Request(), s.clientAddr(c), req)
	if err != nil {
		var te *ThrottledError
		if errors.As(err, &te) {
			c.Response().Header().Set("Retry-After", strconv.Itoa(retrySeconds(te.RetryAfter)))
			if form {
				return loginAgain(c, "throttled", req.Next)
			}
			return Errorf(http.StatusTooManyRequests, "%s", te.Error())
		}
		var he *echo.HTTPError
		if form && errors.As(err, &he) && he.Code == http.StatusUnauthorized {
			return loginAgain(c, "invalid", req.Next)
		}
		return err
	}
	c.SetCookie(res.Cookie)
	if form {
		return c.Redirect(http.StatusSeeOther, next)
	}
	return c.JSON(http.StatusOK, map[string]any{"token": res.Token, "expires": res.Expires.Unix(), "next": next})
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
	cookie, err := s.deps.Accounts.Logout(c.Request().Context(), c.Request())
	if err != nil {
		return err
	}
	c.SetCookie(cookie)
	return c.JSON(http.StatusOK, map[string]any{"ok": true})
}

// authLogoutPage is the browser's logout: it ends the session, clears the
// cookie and goes to the login page.
func (s *Server) authLogoutPage(c echo.Context) error {
	cookie, err := s.deps.Accounts.Logout(c.Request().Context(), c.Request())
	if err != nil {
		return err
	}
	c.SetCookie(cookie)
	return c.Redirect(http.StatusFound, LoginPath)
}

func (s *Server) authUsers(c echo.Context) error {
	return c.JSON(http.StatusOK, s.deps.Accounts.Users())
}

func (s *Server) authMe(c echo.Context) error {
	me, err := s.deps.Accounts.Me(c.Request(), PrincipalOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, me)
}

func (s *Server) authUpdateMe(c echo.Context) error {
	var u ProfileUpdate
	if err := decodeAccountBody(c, &u); err != nil {
		return err
	}
	me, err := s.deps.Accounts.UpdateMe(c.Request().Context(), c.Request(), PrincipalOf(c), u)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, me)
}

func (s *Server) authGetAccess(c echo.Context) error {
	host, err := s.hostParam(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.deps.Accounts.GetAccess(host))
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
	ch := AccessChange{Managers: body.Managers, Monitors: body.Monitors}
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
	return c.JSON(http.StatusOK, out)
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
