package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// StaticPrefix is where the web UI's assets are served.
const StaticPrefix = "/static/"

// PageOptions configure the web pages.
type PageOptions struct {
	// WSPort and WSSPort are ws_port and wss_port, 0 when not served. The
	// pages open the live feed there (falling back to /hbd on their own
	// origin) and the Content-Security-Policy allows exactly those ports.
	WSPort  int
	WSSPort int
}

// uiPage is one page of the web UI: pages/<name>.html served at /<name>.
type uiPage struct {
	name    string
	path    string // where it is served; "/<name>" when empty
	title   string
	access  Access
	scripts []string // page scripts under static/, after the shared hbd.js
	styles  []string // stylesheets under static/, after hbd.css
}

// uplot is the chart library (vendored from npm, webui/vendor/refresh.sh)
// and the page scripts' wrapper around it.
var (
	uplotScripts = []string{"vendor/uplot/uPlot.iife.min.js", "charts.js"}
	uplotStyles  = []string{"vendor/uplot/uPlot.min.css"}
)

// uiPages is the web UI. Every page is a browser page (HTML), so the guard
// sends visitors without a session to the login page.
var uiPages = []uiPage{
	{name: "login", title: "Log in", access: Public, scripts: []string{"login.js"}},
	{name: "live", title: "Live", access: Authenticated, scripts: []string{"live.js"}},
	{name: "plugins", title: "Plugins", access: Authenticated, scripts: append(uplotScripts[:len(uplotScripts):len(uplotScripts)], "plugins.js"), styles: uplotStyles},
	{name: "host", path: "/hosts/:hostname", title: "Host", access: HostMonitor, scripts: append(uplotScripts[:len(uplotScripts):len(uplotScripts)], "plugins.js", "host.js"), styles: uplotStyles},
	{name: "alerts", title: "Alerts", access: Authenticated, scripts: []string{"alerts.js", "silences.js"}},
	{name: "channels", title: "Notification channels", access: Authenticated, scripts: []string{"channels.js"}},
	{name: "profile", title: "Profile", access: Authenticated, scripts: []string{"profile.js"}},
	// The admin config editor (config.go); off in open mode.
	{name: "config", title: "Config", access: Admin, scripts: []string{"config.js"}},
	// The cluster's daemons and leader (/api/0/cluster), for administrators.
	{name: "cluster", title: "Cluster", access: Admin, scripts: []string{"cluster.js"}},
	// The public status page (status.go): no session, no navigation, a 404
	// unless status_page.hosts lists hosts.
	{name: "status", title: "Status", access: Public, scripts: []string{"status.js"}},
}

// asset is one static file, read once at start.
type asset struct {
	body    []byte
	ctype   string
	version string // content hash, also the ETag
}

// pageData is what the page templates see.
type pageData struct {
	Name    string
	Title   string
	Nav     bool
	Scripts []string
	Styles  []string
	WSPort  int
	WSSPort int
}

// PageRoutes returns the web UI's routes, built from fsys (webui.FS():
// pages/layout.html, pages/<name>.html and static/...): the pages, GET /
// redirecting to /live, and the assets under /static/. Pages are rendered
// once here, so a broken template fails the start instead of a request.
// The daemon adds the result with Add.
func (s *Server) PageRoutes(fsys fs.FS, opts PageOptions) ([]Route, error) {
	assets, err := loadAssets(fsys)
	if err != nil {
		return nil, err
	}
	funcs := template.FuncMap{
		"asset": func(name string) (string, error) {
			a, ok := assets[name]
			if !ok {
				return "", fmt.Errorf("no static asset %q", name)
			}
			return StaticPrefix + name + "?v=" + a.version, nil
		},
	}
	routes := []Route{{
		Method: http.MethodGet, Path: "/", Access: Public, HTML: true,
		Handler: func(c echo.Context) error { return c.Redirect(http.StatusFound, "/live") },
	}}
	for _, p := range uiPages {
		t, err := template.New(p.name).Funcs(funcs).ParseFS(fsys, "pages/layout.html", "pages/"+p.name+".html")
		if err != nil {
			return nil, fmt.Errorf("web UI page %s: %w", p.name, err)
		}
		var buf bytes.Buffer
		data := pageData{Name: p.name, Title: p.title, Nav: p.name != "login" && p.name != "status", Scripts: p.scripts, Styles: p.styles, WSPort: opts.WSPort, WSSPort: opts.WSSPort}
		if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
			return nil, fmt.Errorf("web UI page %s: %w", p.name, err)
		}
		path := p.path
		if path == "" {
			path = "/" + p.name
		}
		h := pageHandler(buf.Bytes(), opts)
		if strings.Contains(path, ":hostname") {
			// A page of one host: an unknown or invalid name is a 404
			// like the API's, not an empty page.
			page := h
			h = func(c echo.Context) error {
				if _, err := s.hostParam(c); err != nil {
					return err
				}
				return page(c)
			}
		}
		if p.name == "status" {
			page := h
			h = func(c echo.Context) error {
				if !s.statusPageEnabled() {
					return Errorf(http.StatusNotFound, "No status page is configured")
				}
				return page(c)
			}
		}
		routes = append(routes, Route{
			Method: http.MethodGet, Path: path, Access: p.access, HTML: true,
			Handler: h,
		})
	}
	routes = append(routes, Route{
		Method: http.MethodGet, Path: StaticPrefix + "*", Access: Public,
		Handler: assetHandler(assets),
	})
	return routes, nil
}

func loadAssets(fsys fs.FS) (map[string]asset, error) {
	assets := map[string]asset{}
	err := fs.WalkDir(fsys, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		assets[strings.TrimPrefix(p, "static/")] = asset{body: body, ctype: contentType(p), version: hex.EncodeToString(sum[:8])}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web UI assets: %w", err)
	}
	return assets, nil
}

// contentType names the types of our assets itself: the system's MIME
// table varies between hosts and must not decide how scripts are served.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/vnd.microsoft.icon"
	case ".json":
		return "application/json"
	case ".woff2":
		return "font/woff2"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func securityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
}

func pageHandler(body []byte, opts PageOptions) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		securityHeaders(h)
		h.Set("Content-Security-Policy", opts.ContentSecurityPolicy(c.Request().Host))
		h.Set("Cache-Control", "no-store")
		return c.Blob(http.StatusOK, "text/html; charset=utf-8", body)
	}
}

func assetHandler(assets map[string]asset) echo.HandlerFunc {
	return func(c echo.Context) error {
		name := c.Param("*")
		a, ok := assets[name]
		if !ok {
			return Errorf(http.StatusNotFound, "Not found: %s", clipName(c.Request().URL.Path))
		}
		h := c.Response().Header()
		securityHeaders(h)
		h.Set("Content-Type", a.ctype)
		h.Set("ETag", strconv.Quote(a.version))
		if c.QueryParam("v") == a.version {
			// The pages link assets with their content hash: a changed
			// file gets a new URL, so this one never changes.
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		http.ServeContent(c.Response(), c.Request(), name, time.Time{}, bytes.NewReader(a.body))
		return nil
	}
}

var (
	cspHostname = regexp.MustCompile(`^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])$`)
	cspPort     = regexp.MustCompile(`^[0-9]{1,5}$`)
)

// ContentSecurityPolicy is the policy of the pages requested with Host
// host: only this server's own scripts, styles and images, no inline code,
// no framing, and connections to this origin plus the WebSocket ports on
// the same host name.
func (o PageOptions) ContentSecurityPolicy(host string) string {
	connect := []string{"'self'"}
	name, port := host, ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		name, port = host[:i], host[i+1:]
	}
	// The Host header is client input: only a plain host name or address
	// (and port) may reach the header.
	if cspHostname.MatchString(name) && (port == "" || cspPort.MatchString(port)) {
		// 'self' covers ws: to this origin in CSP 3; older browsers need it spelled out.
		connect = append(connect, "ws://"+host, "wss://"+host)
		if o.WSPort > 0 {
			connect = append(connect, "ws://"+name+":"+strconv.Itoa(o.WSPort))
		}
		if o.WSSPort > 0 {
			connect = append(connect, "wss://"+name+":"+strconv.Itoa(o.WSSPort))
		}
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self'",
		"font-src 'self'",
		"connect-src " + strings.Join(connect, " "),
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}, "; ")
}
