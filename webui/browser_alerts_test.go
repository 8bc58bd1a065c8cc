package webui_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/dispatch"
	"github.com/hbdmon/hbd/core/pluginhost"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/ws"
	"github.com/hbdmon/hbd/webui"
)

const cpuPath = "cpu_monitor.cpu_percent"

// alertSite serves the pages and the alert API from a real store, a real
// evaluator and a real dispatcher without any channel, so every alert
// reaches nobody.
type alertSite struct {
	url  string
	st   *store.Store
	ev   *alert.Evaluator
	disp *dispatch.Dispatcher
}

// newAlertSite serves the alert site; channelsYAML (optional) adds
// notification_channels served by the real webhook notifier.
func newAlertSite(t *testing.T, channelsYAML ...string) *alertSite {
	t.Helper()
	cfg := testutil.Config(t, `
watchhosts:
  web01:
    key: "`+testutil.Key+`"
  db02:
    key: "`+testutil.Key+`"
thresholds:
  "cpu_monitor.cpu_percent": {warning: 80, critical: 90}
`+strings.Join(channelsYAML, ""))
	s := &alertSite{st: testutil.Store(t, 100)}
	cfgFn := func() *config.Config { return cfg }
	pluginDir := t.TempDir()
	if len(channelsYAML) > 0 {
		pluginDir = pht.Dir(t, pht.Webhook)
	}
	plugins, _ := pht.Start(t, pluginDir, pluginhost.Options{})
	policy := access.NewPolicy(cfgFn, access.NewHosts(cfg))
	reg, err := channels.New(channels.Options{Config: cfgFn, Store: s.st, Journal: s.st, Plugins: plugins, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	disp, err := dispatch.New(dispatch.Options{Config: cfgFn, Store: s.st, Plugins: plugins, Channels: reg, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	if err := disp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disp.Close() })
	s.disp = disp
	ev, err := alert.New(cfg, s.st, nil, disp)
	if err != nil {
		t.Fatal(err)
	}
	s.st.FeedAlerts(ev)
	if err := ev.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Stop(context.Background()) })
	s.ev = ev

	hub := ws.New(ws.Options{
		Authenticate: func(*http.Request) (access.Principal, bool) { return access.Principal{Admin: true, Open: true}, true },
		Policy:       access.NewPolicy(func() *config.Config { return cfg }, access.NewHosts(cfg)),
	})
	wsSrv := httptest.NewServer(hub.PortHandler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Shutdown(ctx)
		wsSrv.Close()
	})
	wsURL, _ := url.Parse(wsSrv.URL)
	srv := api.New(api.Deps{Config: cfgFn, Store: s.st, Connections: connections{}})
	routes, err := srv.PageRoutes(webui.FS(), api.PageOptions{WSPort: atoi(t, wsURL.Port())})
	if err != nil {
		t.Fatal(err)
	}
	srv.Add(routes...)
	srv.Add(srv.AlertRoutes(ev, disp)...)
	srv.Echo.GET(ws.Path, echo.WrapHandler(hub))
	httpSrv := httptest.NewServer(srv.Echo)
	t.Cleanup(httpSrv.Close)
	s.url = httpSrv.URL
	return s
}

// cpu stores one cpu sample of host taken at ts; the evaluator sees it.
func (s *alertSite) cpu(t *testing.T, host string, ts time.Time, v float64) {
	t.Helper()
	ps := sample("cpu_monitor", float64(ts.UnixNano())/1e9, "cpu_percent", v)
	if err := s.st.AppendSamples(context.Background(), host, []store.PluginSample{ps}); err != nil {
		t.Fatal(err)
	}
}

// TestAlertsPageInBrowser shows an active alert nobody was told about and,
// in the Recent view, a resolved episode with its worst level, duration,
// peak, acknowledgement and deliveries.
func TestAlertsPageInBrowser(t *testing.T) {
	s := newAlertSite(t)
	ctx := context.Background()
	now := time.Now()
	// web01: CRITICAL for 40s, acknowledged by alice, then OK again.
	s.cpu(t, "web01", now.Add(-100*time.Second), 95)
	s.cpu(t, "web01", now.Add(-90*time.Second), 97.5)
	if _, err := s.ev.Ack(ctx, "web01", cpuPath, "alice"); err != nil {
		t.Fatal(err)
	}
	s.cpu(t, "web01", now.Add(-60*time.Second), 40)
	// db02: WARNING now.
	s.cpu(t, "db02", now.Add(-5*time.Second), 85)
	testutil.Eventually(t, "the dispatcher to find no channel for db02", 30*time.Second, func() bool {
		st := s.ev.HostAlerts("db02")
		if len(st) != 1 || st[0].EpisodeStart == 0 {
			return false
		}
		sec, frac := math.Modf(st[0].EpisodeStart) // as the evaluator turns it into alert.Event.EpisodeStart
		_, status := s.disp.EpisodeStatus("db02", cpuPath, time.Unix(int64(sec), int64(frac*1e9)))
		return status == dispatch.EpisodeNoChannel
	})
	if err := s.st.JournalSync(ctx, "", "barrier"); err != nil { // the history rows are committed
		t.Fatal(err)
	}

	browser := startBrowser(t)
	tc := tab(t, browser)
	do(t, tc, chromedp.Navigate(s.url+"/alerts"))
	waitJS(t, tc, "the active alert", `document.querySelector('#alerts-body tr[data-host="db02"]') !== null`)
	row := evalJS[string](t, tc, `document.querySelector('#alerts-body tr[data-host="db02"]').innerText`)
	text := s.ev.HostAlerts("db02")[0].Text
	for _, want := range []string{"WARNING", text, cpuPath, "no channel — nobody was told"} {
		if !strings.Contains(row, want) {
			t.Errorf("active row %q lacks %q", row, want)
		}
	}
	if n := evalJS[string](t, tc, `document.querySelector('#alerts-body tr[data-host="db02"] .notified').textContent`); n != "0" {
		t.Errorf("Notified %q, want 0: nothing reached a channel", n)
	}
	if evalJS[bool](t, tc, `document.querySelector('#alerts-body tr[data-host="web01"]') !== null`) {
		t.Error("the resolved web01 alert is listed as active")
	}
	if !evalJS[bool](t, tc, `document.getElementById("recent-view").hidden`) {
		t.Error("the Recent view shows before it is chosen")
	}

	do(t, tc, chromedp.Click(chromedp.ID("tab-recent")))
	waitJS(t, tc, "the resolved episode", `document.querySelector('#recent-body tr[data-host="web01"]') !== null`)
	if !evalJS[bool](t, tc, `document.getElementById("active-view").hidden`) {
		t.Error("the Active view still shows")
	}
	cells := evalJS[[]string](t, tc, `[...document.querySelectorAll('#recent-body tr[data-host="web01"] td')].map(td => td.innerText.trim())`)
	if len(cells) != 8 {
		t.Fatalf("recent row cells %q", cells)
	}
	for i, want := range []string{"CRITICAL", "web01", cpuPath, "", "40s", "97.5 %", "alice", "no channel — nobody was told"} {
		if !strings.Contains(cells[i], want) {
			t.Errorf("recent cell %d is %q, want it to hold %q", i, cells[i], want)
		}
	}
	// Only resolved episodes: db02's open one is not in the list.
	if n := evalJS[int](t, tc, `document.querySelectorAll("#recent-body tr").length`); n != 1 {
		t.Errorf("%d recent rows, want 1", n)
	}
	audit(t, tc, "alerts-recent")

	// The view is in the address, so a reload (or a link) opens it.
	do(t, tc, chromedp.Reload())
	waitJS(t, tc, "the Recent view after reload", `!document.getElementById("recent-view").hidden && document.querySelectorAll("#recent-body tr").length === 1`)
}
