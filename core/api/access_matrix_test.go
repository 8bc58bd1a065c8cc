package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth/authtest"
)

// matrixRoles are the callers of the matrix: "" is anonymous; the others
// are authtest's users (roles on authtest.Host).
var matrixRoles = []string{"", "monitor", "manager", "owner", "other", "admin"}

// hostRank is each user's rank on authtest.Host (admin above all).
var hostRank = map[string]int{"monitor": 1, "manager": 2, "owner": 3, "admin": 4}

// allowed is the access rule, written from the roles' definitions and not
// from the route list, so a route added later is checked too.
func allowed(a api.Access, user, host string) bool {
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
	return host == authtest.Host && hostRank[user] >= need
}

// matrixPath fills a route's parameters with plausible values.
func matrixPath(p, host string) string {
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

func isHostRoute(r api.Route) bool { return strings.Contains(r.Path, ":hostname") }

// TestAccessMatrix sends every registered route as every role, in auth
// mode and open mode, and checks the guard's answer: never 401/403 when
// allowed, exactly 401 (or the login redirect for pages) for anonymous
// callers and 403 for too weak a role otherwise. Host routes are tried on
// the host with roles, on a host without, and on an unknown host.
func TestAccessMatrix(t *testing.T) {
	for _, mode := range []string{"auth", "open"} {
		open := mode == "open"
		env := authtest.New(t, authtest.Config(open))
		routes := env.API.Routes()
		if len(routes) < 10 {
			t.Fatalf("only %d routes registered", len(routes))
		}
		for _, rt := range routes {
			hosts := []string{authtest.Host}
			if isHostRoute(rt) {
				hosts = append(hosts, authtest.OtherHost, "no-such-host")
			}
			for _, host := range hosts {
				for _, user := range matrixRoles {
					name := user
					if name == "" {
						name = "anonymous"
					}
					t.Run(mode+"/"+rt.Method+" "+rt.Path+"/"+host+"/"+name, func(t *testing.T) {
						checkRoute(t, env, rt, host, user, open)
					})
				}
			}
		}
	}
}

func checkRoute(t *testing.T, env *authtest.Env, rt api.Route, host, user string, open bool) {
	req := authtest.Request{Method: rt.Method, Path: matrixPath(rt.Path, host)}
	switch {
	case user != "" && open:
		// Open mode ignores tokens, even invalid ones.
		req.Token = "not-a-valid-token"
	case user != "":
		req.Token, _ = env.Login(user)
	}
	if rt.Method == http.MethodPost || rt.Method == http.MethodPut || rt.Method == http.MethodPatch {
		req.Body = "{}"
		req.Header = map[string]string{"Content-Type": "application/json"}
	}
	if rt.Access == api.Agent {
		// Agent routes are authenticated by their signature, in the
		// handler; the guard must let every caller through.
		r := httptest.NewRequest(req.Method, req.Path, strings.NewReader("{}"))
		if req.Token != "" {
			r.Header.Set("Authorization", "Bearer "+req.Token)
		}
		c := env.API.Echo.NewContext(r, httptest.NewRecorder())
		if _, err := env.Auth.Guard().Check(c, rt); err != nil {
			t.Fatalf("guard refused an agent route: %v", err)
		}
		return
	}
	rec := env.Do(req)
	ok := open || allowed(rt.Access, user, host)
	if ok {
		if rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden || isLoginRedirect(rec) {
			t.Fatalf("%s may %s %s (access %s), got %d %s", label(user), req.Method, req.Path, rt.Access, rec.Code, rec.Body)
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
		t.Fatalf("%s must not %s %s (access %s): got %d %s, want %d", label(user), req.Method, req.Path, rt.Access, rec.Code, rec.Body, want)
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

func label(user string) string {
	if user == "" {
		return "anonymous"
	}
	return user
}
