package api_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth"
	"github.com/hbdmon/hbd/core/auth/authtest"
	"github.com/hbdmon/hbd/core/store"
)

const (
	loginPath = "/api/0/auth/login"
	mePath    = "/api/0/users/me"
)

func newEnv(t *testing.T) *authtest.Env { return authtest.New(t, authtest.Config(false)) }

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %q: %v", rec.Body, err)
	}
	return v
}

func wantStatus(t *testing.T, rec *httptest.ResponseRecorder, want int) {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body)
	}
}

func wantError(t *testing.T, rec *httptest.ResponseRecorder, status int, msg string) {
	t.Helper()
	wantStatus(t, rec, status)
	body := decode[map[string]string](t, rec)
	if !strings.Contains(body["error"], msg) {
		t.Fatalf("error %q does not contain %q", body["error"], msg)
	}
}

func login(env *authtest.Env, user, password string, header map[string]string) *httptest.ResponseRecorder {
	return env.Do(authtest.Request{Method: http.MethodPost, Path: loginPath, Body: map[string]string{"username": user, "password": password}, Header: header})
}

func journal(t *testing.T, env *authtest.Env) string {
	t.Helper()
	// Journal lines are queued; a synchronous write behind them flushes them.
	if err := env.Store.JournalSync(context.Background(), "", "-- flush --"); err != nil {
		t.Fatal(err)
	}
	msgs, err := env.Store.Messages(context.Background(), store.MessageQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.Msg + "\n")
	}
	return b.String()
}

func TestLoginAnswersTokenAndSessionCookie(t *testing.T) {
	env := newEnv(t)
	rec := login(env, "monitor", authtest.Password("monitor"), nil)
	wantStatus(t, rec, http.StatusOK)
	out := decode[struct {
		Token   string `json:"token"`
		Expires int64  `json:"expires"`
	}](t, rec)
	if len(out.Token) != 43 {
		t.Fatalf("token %q is not 256 bits of base64url", out.Token)
	}
	if want := env.Clock.Now().Add(24 * time.Hour).Unix(); out.Expires != want {
		t.Fatalf("expires %d, want %d", out.Expires, want)
	}
	c := rec.Result().Cookies()[0]
	if c.Name != api.CookieName || c.Value != out.Token || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
		t.Fatalf("cookie %+v", c)
	}
	if strings.Contains(journal(t, env), authtest.Password("monitor")) {
		t.Fatal("password journaled")
	}

	// Over TLS the cookie is Secure.
	r := httptest.NewRequest(http.MethodPost, loginPath, strings.NewReader(`{"username":"monitor","password":"monitor-password"}`))
	r.TLS = &tls.ConnectionState{}
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	env.API.Echo.ServeHTTP(w, r)
	if w.Code != http.StatusOK || !w.Result().Cookies()[0].Secure {
		t.Fatalf("TLS login: %d %v", w.Code, w.Result().Cookies())
	}

	wantError(t, login(env, "monitor", "wrong", nil), http.StatusUnauthorized, "Invalid username or password")
	wantError(t, login(env, "nobody", "wrong", nil), http.StatusUnauthorized, "Invalid username or password")
	wantError(t, env.Do(authtest.Request{Method: http.MethodPost, Path: loginPath, Body: `{"username":"a","password":"b","x":1}`}), http.StatusBadRequest, "unknown field")
	wantError(t, env.Do(authtest.Request{Method: http.MethodPost, Path: loginPath, Body: `{"username":"a"}`}), http.StatusBadRequest, "required")
	big := `{"username":"` + strings.Repeat("a", api.MaxAccountBodyBytes) + `"}`
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodPost, Path: loginPath, Body: big}), http.StatusRequestEntityTooLarge)

	j := journal(t, env)
	if !strings.Contains(j, "login of monitor from 192.0.2.1") || !strings.Contains(j, "login failed for monitor from 192.0.2.1") || !strings.Contains(j, "login failed for unknown user from 192.0.2.1") {
		t.Fatalf("journal:\n%s", j)
	}
	if strings.Contains(j, "nobody") || strings.Contains(j, "wrong") {
		t.Fatalf("journal holds what was typed:\n%s", j)
	}
}

func TestLoginInOpenModeIsRefusedWithAReason(t *testing.T) {
	env := authtest.New(t, authtest.Config(true))
	wantError(t, login(env, "alice", "whatever", nil), http.StatusBadRequest, "open mode")
	me := decode[api.ProfileJSON](t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath}))
	if !me.Open || !me.Admin {
		t.Fatalf("open-mode profile %+v", me)
	}
	wantError(t, env.Do(authtest.Request{Method: http.MethodPut, Path: mePath, Body: map[string]string{"display_name": "x"}}), http.StatusBadRequest, "open mode")
}

func TestTokenIsAcceptedFromBearerHeaderAndCookie(t *testing.T) {
	env := newEnv(t)
	tok, _ := env.Login("owner")
	for name, req := range map[string]authtest.Request{
		"bearer": {Token: tok},
		"header": {Header: map[string]string{api.HeaderToken: tok}},
		"cookie": {Cookie: authtest.Cookie(tok)},
	} {
		req.Method, req.Path = http.MethodGet, mePath
		rec := env.Do(req)
		wantStatus(t, rec, http.StatusOK)
		me := decode[api.ProfileJSON](t, rec)
		if me.Name != "owner" || me.Admin || me.CSRFToken == "" || me.Email != "owner@example.com" {
			t.Fatalf("%s: %+v", name, me)
		}
	}
	wantError(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath}), http.StatusUnauthorized, "Authentication required")
	wantError(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: "garbage"}), http.StatusUnauthorized, "Invalid or expired")
	forged := strings.Repeat("A", 43)
	rec := env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: forged})
	wantError(t, rec, http.StatusUnauthorized, "Invalid or expired")
	if rec.Header().Get("WWW-Authenticate") == "" {
		t.Fatal("401 without WWW-Authenticate")
	}
}

func TestSessionExpiresAfterTTL(t *testing.T) {
	env := newEnv(t)
	tok, _ := env.Login("other")
	env.Clock.Advance(24*time.Hour - time.Second)
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: tok}), http.StatusOK)
	env.Clock.Advance(time.Second)
	wantError(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: tok}), http.StatusUnauthorized, "expired")
	// Nor does it come back after a restart.
	env.Restart()
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: tok}), http.StatusUnauthorized)
}

func TestSessionTTLComesFromConfig(t *testing.T) {
	cfg := authtest.Config(false)
	cfg.Auth.SessionTTL = time.Hour
	env := authtest.New(t, cfg)
	tok, c := env.Login("other")
	if want := env.Clock.Now().Add(time.Hour); !c.Expires.Equal(want) || c.MaxAge != 3600 {
		t.Fatalf("cookie expires %v max-age %d", c.Expires, c.MaxAge)
	}
	env.Clock.Advance(time.Hour)
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: tok}), http.StatusUnauthorized)
}

func TestLogoutEndsTheSession(t *testing.T) {
	env := newEnv(t)
	tok, _ := env.Login("manager")
	other, _ := env.Login("manager")
	rec := env.Do(authtest.Request{Method: http.MethodPost, Path: "/api/0/auth/logout", Token: tok})
	wantStatus(t, rec, http.StatusOK)
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: tok}), http.StatusUnauthorized)
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: other}), http.StatusOK)
	env.Restart()
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: tok}), http.StatusUnauthorized)

	// The browser's logout page clears the cookie and goes to /login.
	rec = env.Do(authtest.Request{Method: http.MethodGet, Path: "/logout", Cookie: authtest.Cookie(other)})
	wantStatus(t, rec, http.StatusFound)
	if loc := rec.Header().Get("Location"); loc != api.LoginPath {
		t.Fatalf("logout goes to %q", loc)
	}
	c := rec.Result().Cookies()
	if len(c) != 1 || c[0].Name != api.CookieName || c[0].Value != "" || c[0].MaxAge >= 0 {
		t.Fatalf("logout cookie %+v", c)
	}
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Cookie: authtest.Cookie(other)}), http.StatusUnauthorized)
	// Without a session it still just goes to /login.
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: "/logout"}), http.StatusFound)
}

func TestSessionsAndProfilesSurviveRestart(t *testing.T) {
	env := newEnv(t)
	tok, _ := env.Login("monitor")
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodPut, Path: mePath, Token: tok, Body: map[string]any{"display_name": "Mona", "channels": []string{"ops"}}}), http.StatusOK)
	env.Restart()
	rec := env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: tok})
	wantStatus(t, rec, http.StatusOK)
	me := decode[api.ProfileJSON](t, rec)
	if me.DisplayName != "Mona" || len(me.Channels) != 1 || me.Channels[0] != "ops" || me.Email != "monitor@example.com" {
		t.Fatalf("after restart: %+v", me)
	}
	// And reloads.
	env.Reload(authtest.Config(false))
	me = decode[api.ProfileJSON](t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: tok}))
	if me.DisplayName != "Mona" {
		t.Fatalf("after reload: %+v", me)
	}
}

func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	env := newEnv(t)
	mine, _ := env.Login("owner")
	other, _ := env.Login("owner")
	bystander, _ := env.Login("manager")
	put := func(body any) *httptest.ResponseRecorder {
		return env.Do(authtest.Request{Method: http.MethodPut, Path: mePath, Token: mine, Body: body})
	}
	wantError(t, put(map[string]string{"new_password": "long-enough-1"}), http.StatusBadRequest, "both")
	wantError(t, put(map[string]string{"current_password": "nope", "new_password": "long-enough-1"}), http.StatusBadRequest, "current_password is wrong")
	wantError(t, put(map[string]string{"current_password": authtest.Password("owner"), "new_password": "short"}), http.StatusBadRequest, "at least 8")
	wantError(t, put(map[string]string{"current_password": authtest.Password("owner"), "new_password": strings.Repeat("x", 73)}), http.StatusBadRequest, "at most 72")
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: other}), http.StatusOK)

	wantStatus(t, put(map[string]string{"current_password": authtest.Password("owner"), "new_password": "long-enough-1"}), http.StatusOK)
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: mine}), http.StatusOK)
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: other}), http.StatusUnauthorized)
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: bystander}), http.StatusOK)
	wantStatus(t, login(env, "owner", authtest.Password("owner"), nil), http.StatusUnauthorized)
	wantStatus(t, login(env, "owner", "long-enough-1", nil), http.StatusOK)

	// The new password survives restart and reload...
	env.Restart()
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: other}), http.StatusUnauthorized)
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: mine}), http.StatusOK)
	env.Reload(authtest.Config(false))
	wantStatus(t, login(env, "owner", "long-enough-1", nil), http.StatusOK)

	// ...until an operator resets it in the file: then the file's password
	// is in force and the user's sessions end.
	cfg := authtest.Config(false)
	u := cfg.Users["owner"]
	u.PasswordHash = authtest.Hash("extra")
	cfg.Users["owner"] = u
	env.Reload(cfg)
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: mine}), http.StatusUnauthorized)
	wantStatus(t, login(env, "owner", "long-enough-1", nil), http.StatusUnauthorized)
	wantStatus(t, login(env, "owner", authtest.Password("extra"), nil), http.StatusOK)
	if j := journal(t, env); !strings.Contains(j, "password of owner changed; 1 other sessions ended") || strings.Contains(j, "long-enough-1") {
		t.Fatalf("journal:\n%s", j)
	}
}

func TestRepeatedFailedLoginsAreSlowedThenRefused(t *testing.T) {
	env := newEnv(t)
	var codes []int
	var rec *httptest.ResponseRecorder
	for i := 0; i < 6; i++ {
		rec = login(env, "other", "wrong", nil)
		codes = append(codes, rec.Code)
	}
	if want := []int{401, 401, 401, 401, 401, 429}; !equalInts(codes, want) {
		t.Fatalf("statuses %v, want %v", codes, want)
	}
	if got := env.Sleeps(); len(got) != 2 || got[0] != time.Second || got[1] != 2*time.Second {
		t.Fatalf("delays %v, want [1s 2s]", got)
	}
	retry, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	if err != nil || retry != 30 {
		t.Fatalf("Retry-After %q", rec.Header().Get("Retry-After"))
	}
	wantError(t, rec, http.StatusTooManyRequests, "try again in 30 seconds")
	// Refused even with the right password while locked...
	wantStatus(t, login(env, "other", authtest.Password("other"), nil), http.StatusTooManyRequests)
	// ...other users are not affected...
	wantStatus(t, login(env, "monitor", authtest.Password("monitor"), nil), http.StatusOK)
	// ...and after Retry-After the right password works and clears the count.
	env.Clock.Advance(time.Duration(retry) * time.Second)
	wantStatus(t, login(env, "other", authtest.Password("other"), nil), http.StatusOK)
	wantStatus(t, login(env, "other", "wrong", nil), http.StatusUnauthorized)
	if j := journal(t, env); !strings.Contains(j, "logins for other from 192.0.2.1 refused for 30s") {
		t.Fatalf("journal:\n%s", j)
	}

	// One address guessing many names is throttled on its own.
	env2 := newEnv(t)
	var last int
	for i := 0; i < 25 && last != http.StatusTooManyRequests; i++ {
		last = login(env2, "guess"+strconv.Itoa(i), "wrong", nil).Code
	}
	if last != http.StatusTooManyRequests {
		t.Fatal("address never throttled")
	}
}

// A stolen session must not become a way to guess the password: wrong
// current passwords are throttled like logins, and the refusal is a 429
// with Retry-After (it was an internal error before the one error
// handler knew auth's errors).
func TestRepeatedWrongCurrentPasswordsAreRefused(t *testing.T) {
	env := newEnv(t)
	tok, _ := env.Login("owner")
	var codes []int
	var rec *httptest.ResponseRecorder
	for i := 0; i < 6; i++ {
		rec = env.Do(authtest.Request{Method: http.MethodPut, Path: mePath, Token: tok, Body: map[string]string{"current_password": "wrong", "new_password": "long-enough-1"}})
		codes = append(codes, rec.Code)
	}
	if want := []int{400, 400, 400, 400, 400, 429}; !equalInts(codes, want) {
		t.Fatalf("statuses %v, want %v", codes, want)
	}
	if got := rec.Header().Get("Retry-After"); got != "30" {
		t.Fatalf("Retry-After %q", got)
	}
	wantError(t, rec, http.StatusTooManyRequests, "try again in 30 seconds")
	// The session itself is not ended.
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: tok}), http.StatusOK)
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNextOnlyHonoursLocalPaths(t *testing.T) {
	for next, want := range map[string]string{
		"/live":                 "/live",
		"/plugins?host=web01#x": "/plugins?host=web01#x",
		"":                      "/",
		"//evil.com":            "/",
		"https://evil.com":      "/",
		"/\\evil.com":           "/",
		"\\\\evil.com":          "/",
		"/%5Cevil.com":          "/",
		"javascript:alert(1)":   "/",
		"/ok\r\nSet-Cookie: x":  "/",
		"evil.com":              "/",
		"http:/evil.com":        "/",
		"/%2F%2Fevil.com":       "/",
	} {
		if got := api.SafeNext(next); got != want {
			t.Errorf("SafeNext(%q) = %q, want %q", next, got, want)
		}
	}

	env := newEnv(t)
	form := func(next string) *httptest.ResponseRecorder {
		body := url.Values{"username": {"monitor"}, "password": {authtest.Password("monitor")}, "next": {next}}.Encode()
		return env.Do(authtest.Request{Method: http.MethodPost, Path: loginPath, Body: body, Header: map[string]string{"Content-Type": echo.MIMEApplicationForm}})
	}
	for next, want := range map[string]string{
		"/alerts?level=CRITICAL": "/alerts?level=CRITICAL",
		"//evil.com":             "/",
		"https://evil.com":       "/",
		"/\\evil.com":            "/",
	} {
		rec := form(next)
		wantStatus(t, rec, http.StatusSeeOther)
		if loc := rec.Header().Get("Location"); loc != want {
			t.Errorf("form login with next %q goes to %q, want %q", next, loc, want)
		}
		if len(rec.Result().Cookies()) != 1 {
			t.Errorf("form login sets no cookie")
		}
	}
	// A failed form login goes back to the login page, keeping a safe next.
	body := url.Values{"username": {"monitor"}, "password": {"wrong"}, "next": {"/live"}}.Encode()
	rec := env.Do(authtest.Request{Method: http.MethodPost, Path: loginPath, Body: body, Header: map[string]string{"Content-Type": echo.MIMEApplicationForm}})
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != "/login?error=invalid&next=%2Flive" {
		t.Fatalf("failed form login: %d %q", rec.Code, loc)
	}
	// JSON logins get the safe next back.
	rec = env.Do(authtest.Request{Method: http.MethodPost, Path: loginPath, Body: map[string]string{"username": "monitor", "password": authtest.Password("monitor"), "next": "//evil.com"}})
	if out := decode[map[string]any](t, rec); out["next"] != "/" {
		t.Fatalf("JSON login next = %v", out["next"])
	}

	// Pages without a session redirect to the login page with the path.
	env.API.Add(api.Route{Method: http.MethodGet, Path: "/test-page", Access: api.Authenticated, HTML: true, Handler: func(c echo.Context) error { return c.String(http.StatusOK, "page") }})
	rec = env.Do(authtest.Request{Method: http.MethodGet, Path: "/test-page?host=web01&x=%2F"})
	wantStatus(t, rec, http.StatusFound)
	if loc := rec.Header().Get("Location"); loc != "/login?next=%2Ftest-page%3Fhost%3Dweb01%26x%3D%252F" {
		t.Fatalf("page redirect to %q", loc)
	}
	_, c := env.Login("other")
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: "/test-page", Cookie: c}), http.StatusOK)
	// A write to a page without a session is a plain 401.
	env.API.Add(api.Route{Method: http.MethodPost, Path: "/test-page", Access: api.Authenticated, HTML: true, Handler: func(c echo.Context) error { return c.NoContent(http.StatusOK) }})
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodPost, Path: "/test-page"}), http.StatusUnauthorized)
}

func TestCookieWritesNeedSameOriginOrCSRFToken(t *testing.T) {
	env := newEnv(t)
	tok, cookie := env.Login("monitor")
	me := decode[api.ProfileJSON](t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Cookie: cookie}))
	body := map[string]string{"display_name": "M"}
	for _, tc := range []struct {
		name   string
		header map[string]string
		bearer bool
		want   int
	}{
		{"cookie without origin", nil, false, http.StatusForbidden},
		{"cookie cross-site origin", map[string]string{"Origin": "https://evil.example"}, false, http.StatusForbidden},
		{"cookie origin with other port", map[string]string{"Origin": "http://hbd.example:8080"}, false, http.StatusForbidden},
		{"cookie null origin", map[string]string{"Origin": "null"}, false, http.StatusForbidden},
		{"cookie same origin", map[string]string{"Origin": "http://" + authtest.ServerHost}, false, http.StatusOK},
		{"cookie same origin behind TLS proxy", map[string]string{"Origin": "https://" + authtest.ServerHost}, false, http.StatusOK},
		{"cookie same-site referer", map[string]string{"Referer": "http://" + authtest.ServerHost + "/profile"}, false, http.StatusOK},
		{"cookie cross-site referer", map[string]string{"Referer": "http://evil.example/" + authtest.ServerHost}, false, http.StatusForbidden},
		{"cookie csrf token", map[string]string{api.HeaderCSRF: me.CSRFToken}, false, http.StatusOK},
		{"cookie wrong csrf token", map[string]string{api.HeaderCSRF: "x" + me.CSRFToken}, false, http.StatusForbidden},
		{"bearer without origin", nil, true, http.StatusOK},
		{"bearer cross-site origin", map[string]string{"Origin": "https://evil.example"}, true, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := authtest.Request{Method: http.MethodPut, Path: mePath, Body: body, Header: tc.header}
			if tc.bearer {
				req.Token = tok
			} else {
				req.Cookie = cookie
			}
			rec := env.Do(req)
			wantStatus(t, rec, tc.want)
			if tc.want == http.StatusForbidden && !strings.Contains(rec.Body.String(), "CSRF") {
				t.Fatalf("403 without reason: %s", rec.Body)
			}
		})
	}
	// Cookie reads need nothing.
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Cookie: cookie}), http.StatusOK)
	// Logins from another site are refused; without Origin (curl) they work.
	wantError(t, login(env, "monitor", authtest.Password("monitor"), map[string]string{"Origin": "https://evil.example"}), http.StatusForbidden, "Cross-site")
	wantStatus(t, login(env, "monitor", authtest.Password("monitor"), map[string]string{"Origin": "http://" + authtest.ServerHost}), http.StatusOK)
}

func TestUserRemovedFromConfigLosesSessions(t *testing.T) {
	env := newEnv(t)
	tok, _ := env.Login("other")
	keep, _ := env.Login("monitor")
	cfg := authtest.Config(false)
	delete(cfg.Users, "other")
	env.Reload(cfg)
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: tok}), http.StatusUnauthorized)
	wantStatus(t, login(env, "other", authtest.Password("other"), nil), http.StatusUnauthorized)
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: keep}), http.StatusOK)
	// Put back, the old session stays gone.
	env.Reload(authtest.Config(false))
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: tok}), http.StatusUnauthorized)
	env.Restart()
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: tok}), http.StatusUnauthorized)
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: keep}), http.StatusOK)
	// Losing admin on reload takes effect at once.
	admin, _ := env.Login("admin")
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: "/api/0/users", Token: admin}), http.StatusOK)
	cfg = authtest.Config(false)
	u := cfg.Users["admin"]
	u.Admin = false
	cfg.Users["admin"] = u
	env.Reload(cfg)
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: "/api/0/users", Token: admin}), http.StatusForbidden)
}

// channelsExcept is the channel registry of a test: every channel exists
// and may be seen but the one named.
type channelsExcept string

func (c channelsExcept) ChannelVisible(_, channel string) bool { return channel != string(c) }

func TestProfileUpdateModes(t *testing.T) {
	env := newEnv(t)
	env.Auth.SetChannels(channelsExcept("private-of-someone"))
	tok, _ := env.Login("manager")
	put := func(body string) *httptest.ResponseRecorder {
		return env.Do(authtest.Request{Method: http.MethodPut, Path: mePath, Token: tok, Body: body})
	}
	rec := put(`{"display_name": "  Mag Manager ", "email": "mag@example.org"}`)
	wantStatus(t, rec, http.StatusOK)
	if me := decode[api.ProfileJSON](t, rec); me.DisplayName != "Mag Manager" || me.Email != "mag@example.org" || me.Name != "manager" {
		t.Fatalf("identity: %+v", me)
	}
	rec = put(`{"channels": ["ops", "pager", "ops"]}`)
	wantStatus(t, rec, http.StatusOK)
	if me := decode[api.ProfileJSON](t, rec); len(me.Channels) != 2 || me.DisplayName != "Mag Manager" {
		t.Fatalf("channels: %+v", me)
	}
	rec = put(`{"email": ""}`)
	if me := decode[api.ProfileJSON](t, rec); me.Email != "" || len(me.Channels) != 2 {
		t.Fatalf("clear email: %+v", me)
	}
	for body, msg := range map[string]string{
		`{}`:                                    "Nothing to change",
		`{"email": "not-an-address"}`:           "email",
		`{"email": "Mag <mag@example.org>"}`:    "email",
		`{"email": "a@b.c\r\nBcc: x@evil.com"}`: "email",
		`{"display_name": "` + strings.Repeat("é", 101) + `"}`: "at most 100",
		`{"display_name": "bell\u0007"}`:                       "printable",
		`{"display_name": "next\u0085line"}`:                   "printable",
		`{"display_name": "evil\u202Eexe.txt"}`:                "printable",
		`{"channels": ["private-of-someone"]}`:                 "not found",
		`{"channels": ["bad name!"]}`:                          "not found",
		`{"channels": "ops"}`:                                  "invalid JSON",
		`{"admin": true}`:                                      "unknown field",
		`{"display_name": "x"} {"admin": true}`:                "one JSON object",
		``:                                                     "JSON object",
	} {
		wantError(t, put(body), http.StatusBadRequest, msg)
	}
	// A failed update changes nothing, even the valid parts.
	wantStatus(t, put(`{"display_name": "Changed", "email": "bad"}`), http.StatusBadRequest)
	if me := decode[api.ProfileJSON](t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: tok})); me.DisplayName != "Mag Manager" {
		t.Fatalf("partial update stored: %+v", me)
	}

	// The admin list shows the changes and no secrets.
	admin, _ := env.Login("admin")
	rec = env.Do(authtest.Request{Method: http.MethodGet, Path: "/api/0/users", Token: admin})
	wantStatus(t, rec, http.StatusOK)
	users := decode[[]api.UserJSON](t, rec)
	if len(users) != len(authtest.Users) || users[0].Name != "admin" || !users[0].Admin {
		t.Fatalf("users: %+v", users)
	}
	for _, u := range users {
		if u.Name == "manager" && (u.DisplayName != "Mag Manager" || len(u.Channels) != 2) {
			t.Fatalf("manager listed as %+v", u)
		}
	}
	if strings.Contains(rec.Body.String(), "$2") || strings.Contains(rec.Body.String(), "password") {
		t.Fatalf("users list leaks hashes: %s", rec.Body)
	}
}

func TestHostAccessCanBeChangedUntilReload(t *testing.T) {
	env := newEnv(t)
	tokens := map[string]string{}
	for _, u := range authtest.Users {
		tokens[u], _ = env.Login(u)
	}
	path := "/api/0/hosts/" + authtest.Host + "/access"
	get := func(user string) *httptest.ResponseRecorder {
		return env.Do(authtest.Request{Method: http.MethodGet, Path: path, Token: tokens[user]})
	}
	put := func(user, body string) *httptest.ResponseRecorder {
		return env.Do(authtest.Request{Method: http.MethodPut, Path: path, Token: tokens[user], Body: body})
	}
	rec := get("monitor")
	wantStatus(t, rec, http.StatusOK)
	if got := strings.TrimSpace(rec.Body.String()); got != `{"owner":"owner","managers":["manager"],"monitors":["monitor"]}` {
		t.Fatalf("access: %s", got)
	}
	plugins := "/api/0/hosts/" + authtest.Host + "/plugins"
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: plugins, Token: tokens["other"]}), http.StatusForbidden)

	wantStatus(t, put("manager", `{"monitors": []}`), http.StatusForbidden)
	wantError(t, put("owner", `{"monitors": ["ghost"]}`), http.StatusBadRequest, "Unknown user 'ghost'")
	wantError(t, put("owner", `{"owner": 3}`), http.StatusBadRequest, "owner")
	wantError(t, put("owner", `{"monitors": ["other"], "extra": 1}`), http.StatusBadRequest, "unknown field")
	rec = put("owner", `{"monitors": ["other", "other"]}`)
	wantStatus(t, rec, http.StatusOK)
	if got := strings.TrimSpace(rec.Body.String()); got != `{"owner":"owner","managers":["manager"],"monitors":["other"]}` {
		t.Fatalf("after PUT: %s", got)
	}
	// Effective at once: for the guard, CanSee and the hosts list.
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: plugins, Token: tokens["other"]}), http.StatusOK)
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: plugins, Token: tokens["monitor"]}), http.StatusForbidden)
	hosts := decode[[]api.HostJSON](t, env.Do(authtest.Request{Method: http.MethodGet, Path: "/api/0/hosts", Token: tokens["other"]}))
	if len(hosts) != 1 || hosts[0].Name != authtest.Host || hosts[0].Monitors[0] != "other" {
		t.Fatalf("hosts of other: %+v", hosts)
	}
	// The owner can give the host away (null removes the owner).
	wantStatus(t, put("owner", `{"owner": null}`), http.StatusOK)
	if got := strings.TrimSpace(get("admin").Body.String()); got != `{"owner":null,"managers":["manager"],"monitors":["other"]}` {
		t.Fatalf("after owner null: %s", got)
	}
	wantStatus(t, put("owner", `{"owner": "owner"}`), http.StatusForbidden)
	wantStatus(t, put("admin", `{"owner": "manager"}`), http.StatusOK)
	wantStatus(t, put("manager", `{"managers": ["owner"]}`), http.StatusOK)

	// Unknown hosts: 404 for administrators, 403 for everyone else.
	wantError(t, env.Do(authtest.Request{Method: http.MethodGet, Path: "/api/0/hosts/ghost/access", Token: tokens["admin"]}), http.StatusNotFound, "Host 'ghost' not found")
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: "/api/0/hosts/ghost/access", Token: tokens["owner"]}), http.StatusForbidden)

	// A reload (SIGHUP) restores the file's values.
	env.Reload(authtest.Config(false))
	if got := strings.TrimSpace(get("monitor").Body.String()); got != `{"owner":"owner","managers":["manager"],"monitors":["monitor"]}` {
		t.Fatalf("after reload: %s", got)
	}
	if j := journal(t, env); !strings.Contains(j, "access of web01 changed by owner") {
		t.Fatalf("journal:\n%s", j)
	}
}

func TestAuthenticateServesPagesAndWebSockets(t *testing.T) {
	env := newEnv(t)
	tok, _ := env.Login("monitor")
	r := httptest.NewRequest(http.MethodGet, "/hbd", nil)
	r.AddCookie(authtest.Cookie(tok))
	p, ok := env.API.Authenticate(r)
	if !ok || p.User != "monitor" || p.Admin || p.Open {
		t.Fatalf("Authenticate = %+v %v", p, ok)
	}
	if !env.Auth.Policy().CanSee(p, authtest.Host) || env.Auth.Policy().CanSee(p, authtest.OtherHost) {
		t.Fatal("CanSee wrong for monitor")
	}
	if _, ok := env.API.Authenticate(httptest.NewRequest(http.MethodGet, "/hbd", nil)); ok {
		t.Fatal("anonymous request authenticated")
	}
	open := authtest.New(t, authtest.Config(true))
	if p, ok := open.API.Authenticate(httptest.NewRequest(http.MethodGet, "/hbd", nil)); !ok || !p.Admin || !p.Open {
		t.Fatalf("open mode Authenticate = %+v %v", p, ok)
	}
	// Switching to users by SIGHUP ends open mode.
	open.Reload(authtest.Config(false))
	if _, ok := open.API.Authenticate(httptest.NewRequest(http.MethodGet, "/hbd", nil)); ok {
		t.Fatal("still open after users were configured")
	}
	wantStatus(t, open.Do(authtest.Request{Method: http.MethodGet, Path: "/api/0/hosts"}), http.StatusUnauthorized)
}

func TestOldestSessionsEndBeyondTheLimit(t *testing.T) {
	env := newEnv(t)
	first, _ := env.Login("other")
	var last string
	for i := 0; i < auth.MaxSessionsPerUser; i++ {
		env.Clock.Advance(time.Millisecond)
		last, _ = env.Login("other")
	}
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: first}), http.StatusUnauthorized)
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: last}), http.StatusOK)
	env.Restart()
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: first}), http.StatusUnauthorized)
}

func TestConcurrentLoginsRequestsAndReloads(t *testing.T) {
	env := newEnv(t)
	tok, _ := env.Login("monitor")
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				switch (i + j) % 4 {
				case 0:
					login(env, "manager", authtest.Password("manager"), nil)
				case 1:
					login(env, "other", "wrong", nil)
				case 2:
					env.Do(authtest.Request{Method: http.MethodGet, Path: "/api/0/hosts", Token: tok})
				case 3:
					env.Do(authtest.Request{Method: http.MethodPut, Path: mePath, Token: tok, Body: map[string]string{"display_name": strconv.Itoa(j)}})
				}
			}
		}(i)
	}
	go func() {
		defer close(done)
		for i := 0; i < 10; i++ {
			env.Reload(authtest.Config(false))
		}
	}()
	wg.Wait()
	<-done
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: mePath, Token: tok}), http.StatusOK)
}

// TestMessagesHostFilterDoesNotRevealHosts: a caller who may not read a
// host gets 403 whether or not it exists; an admin gets 404 for unknown
// hosts.
func TestMessagesHostFilterDoesNotRevealHosts(t *testing.T) {
	env := newEnv(t)
	other, _ := env.Login("other")
	for _, host := range []string{authtest.Host, "no-such-host"} {
		wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: "/api/0/messages?host=" + host, Token: other}), http.StatusForbidden)
	}
	admin, _ := env.Login("admin")
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: "/api/0/messages?host=no-such-host", Token: admin}), http.StatusNotFound)
	monitor, _ := env.Login("monitor")
	wantStatus(t, env.Do(authtest.Request{Method: http.MethodGet, Path: "/api/0/messages?host=" + authtest.Host, Token: monitor}), http.StatusOK)
}
