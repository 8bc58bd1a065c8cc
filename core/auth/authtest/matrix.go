package authtest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hbdmon/hbd/core/api"
)

// MatrixCallers are the callers of the access matrix: "" is anonymous; the
// others are the fixture's users.
var MatrixCallers = []string{"", "monitor", "manager", "owner", "other", "admin"}

// hostRank is each user's rank on Host (admin above all).
var hostRank = map[string]int{"monitor": 1, "manager": 2, "owner": 3, "admin": 4}

// Allowed is the access rule of the roles, written from their definitions
// and not from a route list, so that any route, whoever adds it, is checked:
// may user (one of Users, "" for anonymous) call a route needing a on host?
func Allowed(a api.Access, user, host string) bool {
	if user == "" {
		return a == api.Public || a == api.Agent
	}
	need := 0
	switch a {
	case api.Public, api.Agent, api.Authenticated:
		return true
	case api.Admin:
		return user == "admin"
	case api.HostMonitor:
		need = 1
	case api.HostManager:
		need = 2
	case api.HostOwner:
		need = 3
	default:
		return false
	}
	if user == "admin" {
		return true
	}
	return host == Host && hostRank[user] >= need
}

// MatrixPath fills a route path's parameters with plausible values, host
// for :hostname.
func MatrixPath(p, host string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		switch {
		case s == "*":
			segs[i] = "x"
		case strings.HasPrefix(s, ":"):
			switch s[1:] {
			case "hostname":
				segs[i] = host
			case "plugin_name", "plugin":
				segs[i] = "cpu_monitor"
			case "user", "username":
				segs[i] = "other"
			default:
				segs[i] = "test"
			}
		}
	}
	return strings.Join(segs, "/")
}

// AccessMatrix sends every route of env.API (add feature routes to it
// first) as every caller of MatrixCallers and checks the guard's answer:
// never 401/403 (nor the login redirect) when Allowed, else exactly 401 for
// anonymous callers (302 to the login page for HTML GET routes) and 403 for
// too weak a role. In open mode (a config without users) everything is
// allowed, even with an invalid token. Host routes are tried on Host, on
// OtherHost (no roles) and on an unknown host. Agent routes are checked on
// the guard alone: their handler answers by signature.
func AccessMatrix(t *testing.T, env *Env) {
	open := env.Config().OpenMode()
	for _, rt := range env.API.Routes() {
		hosts := []string{Host}
		if strings.Contains(rt.Path, ":hostname") {
			hosts = append(hosts, OtherHost, "no-such-host")
		}
		for _, host := range hosts {
			for _, user := range MatrixCallers {
				t.Run(rt.Method+" "+rt.Path+"/"+host+"/"+callerName(user), func(t *testing.T) {
					checkRoute(t, env, rt, host, user, open)
				})
			}
		}
	}
}

func checkRoute(t *testing.T, env *Env, rt api.Route, host, user string, open bool) {
	req := Request{Method: rt.Method, Path: MatrixPath(rt.Path, host)}
	switch {
	case user != "" && open:
		req.Token = "not-a-valid-token"
	case user != "":
		req.Token, _ = env.Login(user)
	}
	if rt.Method == http.MethodPost || rt.Method == http.MethodPut || rt.Method == http.MethodPatch {
		req.Body = "{}"
		req.Header = map[string]string{"Content-Type": "application/json"}
	}
	if rt.Access == api.Agent {
		r := httptest.NewRequest(req.Method, req.Path, strings.NewReader("{}"))
		if req.Token != "" {
			r.Header.Set("Authorization", "Bearer "+req.Token)
		}
		c := env.API.Echo.NewContext(r, httptest.NewRecorder())
		if _, err := env.API.Guard().Check(c, rt); err != nil {
			t.Fatalf("guard refused an agent route: %v", err)
		}
		return
	}
	rec := env.Do(req)
	if open || Allowed(rt.Access, user, host) {
		if rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden || isLoginRedirect(rec) {
			t.Fatalf("%s may %s %s (access %s), got %d %s", callerName(user), req.Method, req.Path, rt.Access, rec.Code, rec.Body)
		}
		return
	}
	want := http.StatusForbidden
	if user == "" {
		want = http.StatusUnauthorized
		if rt.HTML && (rt.Method == http.MethodGet || rt.Method == http.MethodHead) {
			want = http.StatusFound
		}
	}
	if rec.Code != want {
		t.Fatalf("%s must not %s %s (access %s): got %d %s, want %d", callerName(user), req.Method, req.Path, rt.Access, rec.Code, rec.Body, want)
	}
	if want == http.StatusFound && !isLoginRedirect(rec) {
		t.Fatalf("page redirect goes to %q", rec.Header().Get("Location"))
	}
	if want != http.StatusFound && !strings.Contains(rec.Body.String(), `"error"`) {
		t.Fatalf("denial is not a JSON error: %s", rec.Body)
	}
}

func isLoginRedirect(rec *httptest.ResponseRecorder) bool {
	return rec.Code == http.StatusFound && strings.HasPrefix(rec.Header().Get("Location"), api.LoginPath+"?next=")
}

func callerName(user string) string {
	if user == "" {
		return "anonymous"
	}
	return user
}
