package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth/authtest"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/webui"
)

func pageServer(t *testing.T, opts api.PageOptions) (*api.Server, *httptest.Server) {
	t.Helper()
	cfg := testutil.Config(t, "")
	s := api.New(api.Deps{Config: func() *config.Config { return cfg }, Store: testutil.Store(t, 10)})
	routes, err := s.PageRoutes(webui.FS(), opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Add(routes...)
	srv := httptest.NewServer(s.Echo)
	t.Cleanup(srv.Close)
	return s, srv
}

func fetch(t *testing.T, url string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestPageRoutesAreBrowserPagesBehindLogin(t *testing.T) {
	s, _ := pageServer(t, api.PageOptions{})
	byPath := map[string]api.Route{}
	for _, r := range s.Routes() {
		byPath[r.Method+" "+r.Path] = r
	}
	for _, name := range webui.Pages {
		r, ok := byPath["GET /"+name]
		if !ok {
			t.Errorf("page %s has no route", name)
			continue
		}
		want := api.Authenticated
		if name == "login" {
			want = api.Public
		}
		if !r.HTML || r.Access != want {
			t.Errorf("GET /%s: HTML=%v access=%v, want HTML page with %v", name, r.HTML, r.Access, want)
		}
	}
	if r := byPath["GET /static/*"]; r.Access != api.Public || r.HTML {
		t.Errorf("static assets: %+v", r)
	}
	if r := byPath["GET /"]; r.Access != api.Public {
		t.Errorf("root: %+v", r)
	}
}

func TestPageRoutesPassTheAccessMatrix(t *testing.T) {
	for _, open := range []bool{false, true} {
		env := authtest.New(t, authtest.Config(open))
		routes, err := env.API.PageRoutes(webui.FS(), api.PageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		env.API.Add(routes...)
		authtest.AccessMatrix(t, env)
	}
}

var (
	inlineScript  = regexp.MustCompile(`<script(\s[^>]*)?>`)
	inlineHandler = regexp.MustCompile(`\son[a-z]+\s*=`)
	styleAttr     = regexp.MustCompile(`\sstyle\s*=`)
	assetLink     = regexp.MustCompile(`/static/([a-z0-9_.-]+)\?v=([0-9a-f]+)`)
)

func TestPagesAreServedWithAStrictPolicy(t *testing.T) {
	_, srv := pageServer(t, api.PageOptions{WSPort: 50005, WSSPort: 50006})
	for _, name := range webui.Pages {
		resp, body := fetch(t, srv.URL+"/"+name, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/%s: %d %s", name, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("/%s content type %q", name, ct)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		host := strings.TrimPrefix(srv.URL, "http://")
		hostname := host[:strings.LastIndex(host, ":")]
		for _, want := range []string{"default-src 'self'", "script-src 'self';", "style-src 'self';", "frame-ancestors 'none'",
			"connect-src 'self' ws://" + host + " wss://" + host + " ws://" + hostname + ":50005 wss://" + hostname + ":50006;"} {
			if !strings.Contains(csp, want) {
				t.Errorf("/%s CSP %q lacks %q", name, csp, want)
			}
		}
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("/%s %s = %q", name, k, got)
			}
		}
		// The policy forbids inline code, so the pages must have none.
		for _, m := range inlineScript.FindAllStringSubmatch(body, -1) {
			if !strings.Contains(m[1], "src=") {
				t.Errorf("/%s has an inline script: %s", name, m[0])
			}
		}
		if inlineHandler.MatchString(body) || styleAttr.MatchString(body) {
			t.Errorf("/%s has inline handlers or style attributes", name)
		}
		if !strings.Contains(body, `data-ws-port="50005"`) || !strings.Contains(body, `data-page="`+name+`"`) {
			t.Errorf("/%s lacks its data attributes", name)
		}
		if nav := strings.Contains(body, `class="topbar"`); nav == (name == "login") {
			t.Errorf("/%s nav bar shown=%v", name, nav)
		}
	}
}

func TestPolicyKeepsHostileHostHeadersOut(t *testing.T) {
	o := api.PageOptions{WSPort: 50005}
	for _, host := range []string{"evil.example; script-src *", "a b", "x'y", "example.org:50004\r\nX: y", "[::1]:abc"} {
		csp := o.ContentSecurityPolicy(host)
		if strings.Contains(csp, "evil") || strings.Contains(csp, "*") || strings.Contains(csp, "'y") || strings.Contains(csp, "\n") || strings.Contains(csp, "abc") {
			t.Errorf("host %q leaked into %q", host, csp)
		}
		if !strings.Contains(csp, "connect-src 'self';") {
			t.Errorf("host %q: %q", host, csp)
		}
	}
	if csp := o.ContentSecurityPolicy("[::1]:50004"); !strings.Contains(csp, "ws://[::1]:50005") {
		t.Errorf("IPv6 host: %q", csp)
	}
}

func TestRootRedirectsToLive(t *testing.T) {
	_, srv := pageServer(t, api.PageOptions{})
	resp, _ := fetch(t, srv.URL+"/", nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/live" {
		t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestAssetsAreVersionedAndCached(t *testing.T) {
	_, srv := pageServer(t, api.PageOptions{})
	_, page := fetch(t, srv.URL+"/plugins", nil)
	links := assetLink.FindAllStringSubmatch(page, -1)
	if len(links) < 4 { // icon, css, hbd.js, chart.js, plugins.js
		t.Fatalf("asset links: %v", links)
	}
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	for _, l := range links {
		name, version := l[1], l[2]
		resp, body := fetch(t, srv.URL+l[0], nil)
		if resp.StatusCode != 200 || body == "" {
			t.Fatalf("%s: %d", l[0], resp.StatusCode)
		}
		ext := name[strings.LastIndex(name, "."):]
		if got := resp.Header.Get("Content-Type"); got != types[ext] {
			t.Errorf("%s: content type %q", name, got)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("%s: versioned cache control %q", name, cc)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", name)
		}
		etag := resp.Header.Get("ETag")
		if etag != `"`+version+`"` {
			t.Errorf("%s: etag %q, version %s", name, etag, version)
		}
		resp, _ = fetch(t, srv.URL+"/static/"+name, http.Header{"If-None-Match": {etag}})
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s: revalidation got %d", name, resp.StatusCode)
		}
		resp, _ = fetch(t, srv.URL+"/static/"+name, nil)
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s unversioned: cache control %q", name, cc)
		}
	}
	for _, p := range []string{"/static/nope.js", "/static/../pages/layout.html", "/static/", "/static/%2e%2e/webui.go"} {
		resp, body := fetch(t, srv.URL+p, nil)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
}
