package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hbdmon/hbd/core/auth"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/testutil"
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

func TestTokensAreReadInOrder(t *testing.T) {
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

// Open mode refuses what a hostile page in the operator's browser could
// send: cross-site writes (a text/plain POST with a foreign Origin made a
// 366-day silence) and requests to a rebound DNS name (issue 10).
func TestOpenModeRefusesCrossSiteWritesAndForeignHosts(t *testing.T) {
	cfg := &config.Config{HBDHost: "0.0.0.0", AllowedHosts: []string{"hbd.example.net"}}
	st := testutil.Store(t, 10)
	sessions, err := auth.New(context.Background(), auth.Options{Store: st, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Deps{Config: func() *config.Config { return cfg }, Store: st, Sessions: sessions})
	req := func(method, host, origin, ctype, body string) *http.Request {
		r := httptest.NewRequest(method, "/api/0/silences", strings.NewReader(body))
		r.Host = host
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		return r
	}
	cases := []struct {
		name string
		r    *http.Request
		want error
	}{
		{"read on loopback", req("GET", "127.0.0.1:50004", "", "", ""), nil},
		{"read as localhost", req("GET", "localhost:50004", "", "", ""), nil},
		{"read as an allowed name", req("GET", "HBD.example.net.", "", "", ""), nil},
		{"JSON write from the page", req("POST", "127.0.0.1:50004", "http://127.0.0.1:50004", "application/json", "{}"), nil},
		{"JSON write from curl", req("POST", "[::1]:50004", "", "application/json; charset=utf-8", "{}"), nil},
		{"delete without body", req("DELETE", "127.0.0.1:50004", "", "", ""), nil},
		{"cross-site text/plain write", req("POST", "127.0.0.1:50004", "http://evil.example", "text/plain", "{}"), errForeignOrigin},
		{"same-site text/plain write", req("POST", "127.0.0.1:50004", "", "text/plain", "{}"), errNotJSON},
		{"form write", req("POST", "127.0.0.1:50004", "", "application/x-www-form-urlencoded", "a=b"), errNotJSON},
		{"rebound name, read", req("GET", "evil.example:50004", "", "", ""), errForeignHost},
		{"rebound name, write", req("POST", "evil.example", "http://evil.example", "application/json", "{}"), errForeignHost},
	}
	for _, c := range cases {
		if got := s.checkOpen(c.r); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if _, ok := s.Authenticate(req("GET", "evil.example", "", "", "")); ok {
		t.Error("the live feed accepts a rebound Host in open mode")
	}
	cfg = &config.Config{AllowedHosts: []string{"*"}}
	if err := s.checkOpen(req("GET", "anything.example", "", "", "")); err != nil {
		t.Errorf(`allowed_hosts "*": %v`, err)
	}
}
