package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/config"
)

func TestSameOriginComparesHostAndPort(t *testing.T) {
	for _, tc := range []struct {
		origin, host string
		want         bool
	}{
		{"http://hbd.example", "hbd.example", true},
		{"http://HBD.example:80", "hbd.example", true},
		{"https://hbd.example", "hbd.example", true}, // TLS ends at a proxy
		{"https://hbd.example", "hbd.example:443", true},
		{"http://hbd.example:50004", "hbd.example:50004", true},
		{"http://hbd.example/some/page?x=1", "hbd.example", true},
		{"http://[::1]:50004", "[::1]:50004", true},
		{"http://[::1]", "[::1]", true},
		{"http://hbd.example:8080", "hbd.example", false},
		{"http://hbd.example", "hbd.example:50004", false},
		{"http://evil.example", "hbd.example", false},
		{"http://hbd.example.evil.example", "hbd.example", false},
		{"http://hbd.example@evil.example", "hbd.example", false},
		{"null", "hbd.example", false},
		{"file:///etc/passwd", "hbd.example", false},
		{"//hbd.example", "hbd.example", false},
		{"", "hbd.example", false},
		{"http://hbd.example", "", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Host = tc.host
		if got := sameOrigin(tc.origin, r); got != tc.want {
			t.Errorf("sameOrigin(%q, Host %q) = %v, want %v", tc.origin, tc.host, got, tc.want)
		}
	}
}

func TestTokensAreRandomWellFormedAndReadInOrder(t *testing.T) {
	a, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newToken()
	if a == b || !wellFormed(a) || len(a) != 43 {
		t.Fatalf("tokens %q %q", a, b)
	}
	for _, bad := range []string{"", a[:42], a + "A", strings.Repeat("+", 43), strings.Repeat("=", 43)} {
		if wellFormed(bad) {
			t.Errorf("wellFormed(%q)", bad)
		}
	}
	if len(hashToken(a)) != 64 || hashToken(a) == hashToken(b) || csrfToken(a) == hashToken(a) {
		t.Fatal("hashes")
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: "cookie"})
	if tok, src := tokenOf(r); tok != "cookie" || src != srcCookie {
		t.Fatalf("cookie: %q %v", tok, src)
	}
	r.Header.Set(HeaderToken, "header")
	if tok, src := tokenOf(r); tok != "header" || src != srcHeader {
		t.Fatalf("header: %q %v", tok, src)
	}
	r.Header.Set("Authorization", "bearer  bearer ")
	if tok, src := tokenOf(r); tok != "bearer" || src != srcBearer {
		t.Fatalf("bearer: %q %v", tok, src)
	}
	r.Header.Set("Authorization", "Basic eDp5")
	if _, src := tokenOf(r); src != srcHeader {
		t.Fatalf("basic auth taken as a token: %v", src)
	}
}

func TestAccessRolesNestAndOverridesResetOnReload(t *testing.T) {
	cfg := &config.Config{Watchhosts: map[string]config.WatchHost{
		"web01": {Owner: "olga", Managers: []string{"max"}, Monitors: []string{"mia", "max"}},
	}}
	a := NewAccess(cfg)
	for user, want := range map[string]Role{"olga": RoleOwner, "max": RoleManager, "mia": RoleMonitor, "eve": RoleNone, "": RoleNone} {
		if got := a.Role(user, "web01"); got != want {
			t.Errorf("Role(%s) = %s, want %s", user, got, want)
		}
	}
	if a.Role("olga", "db01") != RoleNone {
		t.Error("role on a host without access list")
	}
	owner, managers, monitors := a.Lookup("web01")
	managers[0] = "mutated"
	if _, m, _ := a.Lookup("web01"); owner != "olga" || m[0] != "max" || len(monitors) != 2 {
		t.Fatal("Lookup shares its slices")
	}
	a.Set("web01", HostRoles{Monitors: []string{"eve"}})
	if a.Role("eve", "web01") != RoleMonitor || a.Role("olga", "web01") != RoleNone {
		t.Fatal("override not in force")
	}
	a.Set("dyn-host", HostRoles{Owner: "eve"})
	if a.Role("eve", "dyn-host") != RoleOwner {
		t.Fatal("override of a host outside watchhosts")
	}
	a.Reset(cfg)
	if a.Role("eve", "web01") != RoleNone || a.Role("olga", "web01") != RoleOwner || a.Role("eve", "dyn-host") != RoleNone {
		t.Fatal("Reset kept overrides")
	}
}

func TestEmailAndDisplayNameChecks(t *testing.T) {
	for v, ok := range map[string]bool{
		"alice@example.com":                true,
		" alice@example.com ":              true,
		"":                                 true,
		"alice":                            false,
		"alice@":                           false,
		"@example.com":                     false,
		"Alice <alice@example.com>":        false,
		"alice@example.com, b@c.d":         false,
		"al ice@example.com":               false,
		"alice@example.com\n":              true, // trimmed
		"a\x00@example.com":                false,
		strings.Repeat("a", 250) + "@x.io": false,
	} {
		if _, err := checkEmail(v); (err == nil) != ok {
			t.Errorf("checkEmail(%q) error %v, want ok=%v", v, err, ok)
		}
	}
	if v, err := checkDisplayName("  Zoë Ops  "); err != nil || v != "Zoë Ops" {
		t.Errorf("display name %q %v", v, err)
	}
	if _, err := checkDisplayName("a\u202eb\x1b"); err == nil {
		t.Error("control characters accepted")
	}
}

func TestHostRoleOfPrincipals(t *testing.T) {
	s := &Service{access: NewAccess(&config.Config{Watchhosts: map[string]config.WatchHost{"web01": {Managers: []string{"max"}}}})}
	for _, tc := range []struct {
		p    api.Principal
		want Role
	}{
		{api.Principal{Open: true, Admin: true}, RoleAdmin},
		{api.Principal{User: "root", Admin: true}, RoleAdmin},
		{api.Principal{User: "max"}, RoleManager},
		{api.Principal{User: "eve"}, RoleNone},
		{api.Principal{}, RoleNone},
	} {
		if got := s.HostRole(tc.p, "web01"); got != tc.want {
			t.Errorf("HostRole(%+v) = %s, want %s", tc.p, got, tc.want)
		}
	}
}
