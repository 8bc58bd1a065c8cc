package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hbdmon/hbd/core/config"
)

// Open mode refuses what a hostile page in the operator's browser could
// send: cross-site writes (a text/plain POST with a foreign Origin made a
// 366-day silence) and requests to a rebound DNS name (issue 10).
func TestOpenModeRefusesCrossSiteWritesAndForeignHosts(t *testing.T) {
	s := &Service{cfg: &config.Config{HBDHost: "0.0.0.0", AllowedHosts: []string{"hbd.example.net"}}}
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
	s.cfg = &config.Config{AllowedHosts: []string{"*"}}
	if err := s.checkOpen(req("GET", "anything.example", "", "", "")); err != nil {
		t.Errorf(`allowed_hosts "*": %v`, err)
	}
}
