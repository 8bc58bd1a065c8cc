package webui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/ws"
	"github.com/hbdmon/hbd/webui"
)

// chromiumPath is Debian's chromium, which CI installs.
const chromiumPath = "/usr/bin/chromium"

// xssMessage is a journal line written by an agent; the page must show it
// as text and never run it.
const xssMessage = `<img src=x onerror="window.pwned=1"><b>bold</b>`

// connections stands in for the heartbeat tracker.
type connections struct{}

func (connections) HostConnections(host string) (heartbeat.State, []heartbeat.ConnectionStatus) {
	switch host {
	case "web01":
		return heartbeat.StateUp, []heartbeat.ConnectionStatus{
			{Family: heartbeat.IPv4, State: heartbeat.StateUp, LatencyMS: 1.25, LossPercent: 0.0, LastSeen: float64(time.Now().Unix())},
			{Family: heartbeat.IPv6, State: heartbeat.StateUp, LatencyMS: 1.75, LossPercent: 2.0, LastSeen: float64(time.Now().Unix())},
		}
	case "db02":
		return heartbeat.StateDegraded, []heartbeat.ConnectionStatus{
			{Family: heartbeat.IPv4, State: heartbeat.StateUp, LatencyMS: 3.5, LossPercent: 0.0},
			{Family: heartbeat.IPv6, State: heartbeat.StateDown, LatencyMS: 0.0, LossPercent: 100.0},
		}
	}
	return "", nil
}

type site struct {
	url       string
	api       *api.Server
	hub       *ws.Hub
	store     *store.Store
	wsUpgrade atomic.Int32 // upgrades that reached the ws_port listener
	wsBatched atomic.Int32 // of them, those asking for multi-message frames
	logins    chan map[string]string
}

func newSite(t *testing.T) *site {
	t.Helper()
	ctx := context.Background()
	cfg := testutil.Config(t, `
watchhosts:
  web01:
    key: "`+testutil.Key+`"
  db02:
    key: "`+testutil.Key+`"
thresholds:
  "cpu_monitor.cpu_percent": {warning: 40, critical: 90}
  "disk_monitor.*.percent": {warning: 70, critical: 85}
`)
	st := testutil.Store(t, 100)
	now := float64(time.Now().Unix())
	for i := 12; i >= 0; i-- {
		ts := now - float64(i*300)
		batch := []store.PluginSample{
			sample("cpu_monitor", ts, "cpu_percent", 45.2-float64(i), "load_1min", 2.5),
			sample("memory_monitor", ts, "available_mb", 4096, "percent", 65.4, "total_mb", 16384),
			sample("disk_monitor", ts, "/.percent", 71.5, "/.used_gb", 143.2, "/home.percent", 12.5, "/home.used_gb", 52),
		}
		if err := st.AppendSamples(ctx, "web01", batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.JournalSync(ctx, "web01", xssMessage); err != nil {
		t.Fatal(err)
	}
	if err := st.JournalSync(ctx, "db02", "db02 ipv6 DOWN"); err != nil {
		t.Fatal(err)
	}

	s := &site{logins: make(chan map[string]string, 10), store: st}
	s.hub = ws.New(ws.Options{
		Authenticate: func(*http.Request) (access.Principal, bool) { return access.Principal{Admin: true, Open: true}, true },
		Policy:       access.NewPolicy(func() *config.Config { return cfg }, access.NewHosts(cfg)),
	})
	port := s.hub.PortHandler()
	wsSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.wsUpgrade.Add(1)
		if r.URL.Query().Get("batch") == "1" {
			s.wsBatched.Add(1)
		}
		port.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.hub.Shutdown(ctx)
		wsSrv.Close()
	})
	wsURL, _ := url.Parse(wsSrv.URL)

	srv := api.New(api.Deps{Config: func() *config.Config { return cfg }, Store: st, Connections: connections{},
		HostKey: func(h string) ([]byte, bool, bool) { k, ok := cfg.HostKey(h); return k, false, ok }})
	routes, err := srv.PageRoutes(webui.FS(), api.PageOptions{WSPort: atoi(t, wsURL.Port())})
	if err != nil {
		t.Fatal(err)
	}
	srv.Add(routes...)
	// The auth package answers logins in the daemon; this stand-in records
	// what the login page posts.
	srv.Add(api.Route{Method: http.MethodPost, Path: "/api/0/auth/login", Access: api.Public, Handler: func(c echo.Context) error {
		var body map[string]string
		if c.Request().Header.Get("Content-Type") != "application/json" {
			return api.Errorf(http.StatusUnsupportedMediaType, "want JSON")
		}
		if err := json.NewDecoder(c.Request().Body).Decode(&body); err != nil {
			return api.Errorf(http.StatusBadRequest, "bad JSON")
		}
		s.logins <- body
		if body["password"] != "secret" {
			return api.Errorf(http.StatusUnauthorized, "Invalid username or password")
		}
		c.SetCookie(&http.Cookie{Name: "hbd_session", Value: "t0k3n", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		return c.JSON(http.StatusOK, map[string]any{"token": "t0k3n", "expires": time.Now().Add(24 * time.Hour).Unix()})
	}})
	srv.Echo.GET(ws.Path, echo.WrapHandler(s.hub))
	httpSrv := httptest.NewServer(srv.Echo)
	t.Cleanup(httpSrv.Close)
	s.url = httpSrv.URL
	s.api = srv
	return s
}

func sample(plugin string, ts float64, kv ...any) store.PluginSample {
	ps := store.PluginSample{Plugin: plugin, Sample: store.Sample{Timestamp: ts}}
	for i := 0; i < len(kv); i += 2 {
		ps.Paths = append(ps.Paths, kv[i].(string))
		switch v := kv[i+1].(type) {
		case int:
			ps.Values = append(ps.Values, float64(v))
		default:
			ps.Values = append(ps.Values, v.(float64))
		}
	}
	return ps
}

func atoi(t *testing.T, s string) int {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// startBrowser starts one headless chromium for the whole test. A missing
// chromium fails the test: CI installs it, and skipping would hide the UI.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("browser tests need Debian's chromium at %s (apt-get install -y chromium): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		allocCancel()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// tab opens a new tab that fails the test on page exceptions and console
// errors (CSP violations among them) other than the expected ones. The
// site has no accounts endpoint, so the nav bar's profile request answers
// 404: the pages must live with that.
func tab(t *testing.T, browser context.Context, allowed ...string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var problems []string
	done := make(chan struct{})
	msgs := chromedp.Console(ctx)
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				mu.Lock()
				problems = append(problems, m.String()+" ("+m.URL+")")
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
	next:
		for _, p := range problems {
			if strings.Contains(p, "status of 404") && strings.HasSuffix(p, "/api/0/users/me)") {
				continue
			}
			for _, a := range allowed {
				if strings.Contains(p, a) {
					continue next
				}
			}
			t.Errorf("browser console: %s", p)
		}
	})
	tctx, tcancel := context.WithTimeout(ctx, 180*time.Second)
	t.Cleanup(tcancel)
	return tctx
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// waitJS polls a JavaScript condition until it holds.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		dom, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main") ? document.querySelector("main").innerText : document.body.innerText`))
		t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, expr, err, dom)
	}
}

func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// TestPagesInBrowser drives the real pages in headless chromium against an
// API server with a real store and the live feed on its own port.
func TestPagesInBrowser(t *testing.T) {
	s := newSite(t)
	browser := startBrowser(t)

	t.Run("live shows hosts and follows the feed", func(t *testing.T) {
		ctx := tab(t, browser, noAlertRoutes)
		do(t, ctx, chromedp.Navigate(s.url+"/live"))
		waitJS(t, ctx, "host rows", `document.querySelectorAll("#hosts-body tr").length === 2`)
		row := evalJS[string](t, ctx, `document.querySelector('tr[data-host="web01"]').innerText`)
		for _, want := range []string{"web01", "UP", "1.3 ms", "2 %"} {
			if !strings.Contains(row, want) {
				t.Errorf("web01 row %q lacks %q", row, want)
			}
		}
		if st := evalJS[string](t, ctx, `document.querySelector('tr[data-host="db02"]').dataset.state`); st != "DEGRADED" {
			t.Errorf("db02 state %q", st)
		}

		// Agent text is shown as text, never as markup.
		waitJS(t, ctx, "messages", `document.querySelectorAll("#messages li").length === 2`)
		if txt := evalJS[string](t, ctx, `document.getElementById("messages").innerText`); !strings.Contains(txt, xssMessage) {
			t.Errorf("messages %q lack the raw text", txt)
		}
		if evalJS[bool](t, ctx, `document.querySelector("#messages b, #messages img") !== null || window.pwned === 1`) {
			t.Error("a message was rendered as HTML")
		}

		// Sorting by the host column.
		do(t, ctx, chromedp.Click(chromedp.CSS(`th[data-key="name"]`)))
		if first := evalJS[string](t, ctx, `document.querySelector("#hosts-body tr").dataset.host`); first != "web01" {
			t.Errorf("after sorting by name descending, first row is %q", first)
		}

		// The feed connects cross-port to ws_port, and a pushed host
		// message changes the table without a reload.
		waitJS(t, ctx, "live feed", `document.getElementById("feed-status").classList.contains("live")`)
		if s.wsUpgrade.Load() == 0 {
			t.Error("the page did not connect to the ws_port listener")
		}
		// The page reads multi-message frames (arrays): what follows
		// arrives that way.
		if s.wsBatched.Load() == 0 {
			t.Error("the page did not ask for multi-message frames (batch=1)")
		}
		s.hub.PublishHost(ws.Host{Name: "web01", State: "DOWN", Connections: []heartbeat.ConnectionStatus{
			{Family: heartbeat.IPv4, State: heartbeat.StateDown}, {Family: heartbeat.IPv6, State: heartbeat.StateLate, LatencyMS: 9.5},
		}})
		waitJS(t, ctx, "pushed state", `document.querySelector('tr[data-host="web01"]').dataset.state === "DOWN"`)
		row = evalJS[string](t, ctx, `document.querySelector('tr[data-host="web01"]').innerText`)
		if !strings.Contains(row, "LATE") || !strings.Contains(row, "9.5 ms") {
			t.Errorf("pushed row %q", row)
		}
		s.hub.PublishMessage("web01", store.Message{Time: float64(time.Now().Unix()), Host: "web01", Msg: "web01 ipv4 DOWN"})
		waitJS(t, ctx, "pushed message", `document.querySelector("#messages li").innerText.includes("web01 ipv4 DOWN")`)
		// The pushed row flashes (1.2 s); contrast is checked on the
		// settled page, not mid-animation.
		waitJS(t, ctx, "row flash over", `document.getAnimations().length === 0`)
		audit(t, ctx, "live-feed")
	})

	t.Run("plugins shows cards and history", func(t *testing.T) {
		ctx := tab(t, browser)
		do(t, ctx, chromedp.Navigate(s.url+"/plugins?host=web01&plugin=disk_monitor"))
		waitJS(t, ctx, "disk groups", `document.querySelectorAll("#cards .group").length === 2`)
		groups := evalJS[[]string](t, ctx, `[...document.querySelectorAll("#cards .group h3")].map(h => h.textContent)`)
		if strings.Join(groups, ",") != "/,/home" {
			t.Errorf("disk groups %v", groups)
		}
		cards := evalJS[string](t, ctx, `document.getElementById("cards").innerText`)
		for _, want := range []string{"71.5 %", "143 GB", "12.5 %", "52 GB"} {
			if !strings.Contains(cards, want) {
				t.Errorf("disk cards %q lack %q", cards, want)
			}
		}

		do(t, ctx, chromedp.Navigate(s.url+"/plugins?host=web01&plugin=memory_monitor"))
		waitJS(t, ctx, "memory cards", `document.getElementById("cards").innerText.includes("65.4 %")`)
		cards = evalJS[string](t, ctx, `document.getElementById("cards").innerText`)
		for _, want := range []string{"4 GB", "16 GB", "available mb"} {
			if !strings.Contains(cards, want) {
				t.Errorf("memory cards %q lack %q", cards, want)
			}
		}

		do(t, ctx, chromedp.Navigate(s.url+"/plugins?host=web01&plugin=cpu_monitor&metric=cpu_percent"))
		waitJS(t, ctx, "cpu card", `document.getElementById("cards").innerText.includes("45.2 %")`)
		waitJS(t, ctx, "history chart", `document.querySelector("#chart")._uplot && document.querySelector("#chart").dataset.metric === "cpu_percent"`)
		// 13 samples over the last hour, read back through ?since=&until=.
		if n := evalJS[int](t, ctx, `document.querySelector("#chart")._uplot.data[0].length`); n != 13 {
			t.Errorf("chart has %d points, want 13", n)
		}
		if lbl := evalJS[string](t, ctx, `document.querySelector("#chart")._uplot.axes[1]._values.join(" ")`); !strings.Contains(lbl, "%") {
			t.Errorf("axis labels %q lack units", lbl)
		}
		// A percent metric spans 0–100, and the default range is the hour
		// that has data, not 6 hours with a sliver of it.
		if y := evalJS[[]float64](t, ctx, `(u => [u.scales.y.min, u.scales.y.max])(document.querySelector("#chart")._uplot)`); y[0] != 0 || y[1] != 100 {
			t.Errorf("percent y axis %v, want [0 100]", y)
		}
		if span := evalJS[float64](t, ctx, `(u => u.scales.x.max - u.scales.x.min)(document.querySelector("#chart")._uplot)`); span < 3600 || span > 3700 {
			t.Errorf("default range spans %v s, want the hour of data", span)
		}
		// The configured thresholds (40, 90) are drawn where the y axis
		// puts those values.
		lines := evalJS[[]map[string]any](t, ctx, `(c => c.drawnThresholds.map(d => ({level: d.level, value: d.value, y: d.y, want: Math.round(c._uplot.valToPos(d.value, "y", true))})))(document.querySelector("#chart"))`)
		if len(lines) != 2 || lines[0]["level"] != "warning" || lines[0]["value"] != 40.0 || lines[1]["level"] != "critical" || lines[1]["value"] != 90.0 {
			t.Errorf("threshold lines %v, want warning 40 and critical 90", lines)
		}
		for _, l := range lines {
			if l["y"] != l["want"] {
				t.Errorf("threshold line %v drawn off its value", l)
			}
		}
		// The card's color follows the configured warning (40), not a
		// fixed 75/90, and the card has a sparkline of the hour.
		if lvl := evalJS[string](t, ctx, `document.querySelector('.metric[data-metric="cpu_percent"]').dataset.level`); lvl != "WARNING" {
			t.Errorf("cpu card level %q, want WARNING (45.2 >= 40)", lvl)
		}
		waitJS(t, ctx, "sparkline", `document.querySelector('.metric[data-metric="cpu_percent"] .spark canvas') !== null`)
		if n := evalJS[string](t, ctx, `document.querySelector('.metric[data-metric="cpu_percent"] .spark').dataset.points`); n != "12" && n != "13" {
			t.Errorf("sparkline has %s points, want the hour's 12 or 13", n)
		}
		// Hovering shows the value and time in a tooltip; a drag zooms.
		box := evalJS[[]float64](t, ctx, `(r => [r.left, r.top, r.width, r.height])(document.querySelector("#chart .u-over").getBoundingClientRect())`)
		midY := box[1] + box[3]/2
		do(t, ctx, chromedp.MouseEvent(chromedp.MouseMoved, box[0]+box[2]*0.5, midY))
		waitJS(t, ctx, "tooltip", `(t => t && !t.hidden && t.innerText.includes("%"))(document.querySelector("#chart .chart-tip"))`)
		do(t, ctx,
			chromedp.MouseEvent(chromedp.MousePressed, box[0]+box[2]*0.2, midY, chromedp.ButtonLeft),
			chromedp.MouseEvent(chromedp.MouseMoved, box[0]+box[2]*0.6, midY, chromedp.ButtonLeft),
			chromedp.MouseEvent(chromedp.MouseReleased, box[0]+box[2]*0.6, midY, chromedp.ButtonLeft),
		)
		waitJS(t, ctx, "zoomed", `document.querySelector("#chart").dataset.zoomed === "true"`)
		if span := evalJS[float64](t, ctx, `(u => u.scales.x.max - u.scales.x.min)(document.querySelector("#chart")._uplot)`); span > 2000 {
			t.Errorf("after a drag over 40%% of the chart it spans %v s", span)
		}
		do(t, ctx, chromedp.MouseClickXY(box[0]+box[2]*0.5, midY, chromedp.ClickCount(2)))
		waitJS(t, ctx, "zoomed out", `(u => u.scales.x.max - u.scales.x.min >= 3600)(document.querySelector("#chart")._uplot)`)
		if sel := evalJS[string](t, ctx, `document.getElementById("host-select").value + "/" + document.getElementById("plugin-select").value`); sel != "web01/cpu_monitor" {
			t.Errorf("selection %q", sel)
		}
		audit(t, ctx, "plugins")

		// Several series on one chart: every partition's percent.
		do(t, ctx, chromedp.Navigate(s.url+"/plugins?host=web01&plugin=disk_monitor&metric=*.percent"))
		waitJS(t, ctx, "partition chart", `document.querySelector("#chart").dataset.series === "2"`)
		if labels := evalJS[string](t, ctx, `document.querySelector("#chart .u-legend").textContent`); !strings.Contains(labels, "/home") {
			t.Errorf("legend %q lacks /home", labels)
		}
		if lines := evalJS[int](t, ctx, `document.querySelector("#chart").drawnThresholds.length`); lines != 2 {
			t.Errorf("shared disk thresholds drew %d lines, want 2", lines)
		}
		audit(t, ctx, "plugins-disks")
	})

	t.Run("login posts JSON and follows only local next", func(t *testing.T) {
		ctx := tab(t, browser, "status of 401", noAlertRoutes)
		cases := []struct{ next, want string }{
			{"/plugins?host=web01", "/plugins?host=web01"},
			{"//evil.example/x", "/live"},
			{"https://evil.example/", "/live"},
			{"/\\evil.example", "/live"},
			{"javascript:alert(1)", "/live"},
		}
		login := func(next, password string) {
			t.Helper()
			do(t, ctx,
				chromedp.Navigate(s.url+"/login?next="+url.QueryEscape(next)),
				chromedp.WaitVisible(chromedp.ID("username")),
				chromedp.SendKeys(chromedp.ID("username"), "alice"),
				chromedp.SendKeys(chromedp.ID("password"), password),
				chromedp.Click(chromedp.ID("login-submit")),
			)
			select {
			case body := <-s.logins:
				if body["username"] != "alice" || body["password"] != password {
					t.Errorf("login posted %v", body)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the login page posted nothing")
			}
		}
		login("/plugins", "wrong")
		waitJS(t, ctx, "error notice", `document.getElementById("notice").innerText.includes("Wrong user name or password")`)
		if p := evalJS[string](t, ctx, `location.pathname`); p != "/login" {
			t.Errorf("failed login left for %s", p)
		}
		for _, tc := range cases {
			login(tc.next, "secret")
			// The page navigates away, so poll from here rather than in it.
			got, deadline := "", time.Now().Add(10*time.Second)
			for time.Now().Before(deadline) {
				got, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`location.origin === `+jsString(s.url)+` ? location.pathname + location.search : location.href`))
				if got != "" && !strings.HasPrefix(got, "/login") {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got != tc.want {
				t.Errorf("next=%q: went to %q, want %q", tc.next, got, tc.want)
			}
		}
	})
}

// noAlertRoutes is the console error of the live page's alert request on
// a site that serves no alert routes.
const noAlertRoutes = "/api/0/alerts?limit=1000)"

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
