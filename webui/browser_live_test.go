package webui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/ws"
	"github.com/hbdmon/hbd/webui"
)

// runHeartbeats runs a real agent for host against srv, its clock shifted
// by skew.
func runHeartbeats(t *testing.T, srv *heartbeat.Server, host string, skew time.Duration) {
	t.Helper()
	c, err := heartbeat.NewClient(heartbeat.ClientConfig{
		Host: host, Key: []byte(testutil.Key), Interval: time.Second,
		Addr4: srv.Addr(heartbeat.IPv4).String(),
		Now:   func() time.Time { return time.Now().Add(skew) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestLivePageShowsSilentHosts drives the live page against the API served
// from a real tracker and real heartbeats: a configured host never heard
// from is DOWN "never heard from", one just added waits for its first
// heartbeat, a dynamic host is "not watched" while watch_dynamic is off, a
// host whose clock is 2 s ahead shows it, and one 10 minutes ahead is DOWN
// with that reason.
func TestLivePageShowsSilentHosts(t *testing.T) {
	key := `    key: "` + testutil.Key + `"` + "\n"
	cfg := testutil.Config(t, "watch_dynamic: false\nwatchhosts:\n"+
		"  silent01:\n"+key+"  waiting01:\n"+key+"  skewed01:\n"+key+"  ahead01:\n"+key)
	st := testutil.Store(t, 10)
	if _, err := st.EnsureHost(context.Background(), "dyn01", true); err != nil {
		t.Fatal(err)
	}
	tr := heartbeat.NewTracker(heartbeat.TrackerConfig{Timeout: cfg.HostTimeout})
	started := time.Now().Add(-31 * time.Second) // the daemon started 31 s ago
	tr.Expect(heartbeat.Expectation{Host: "silent01", From: started})
	tr.Expect(heartbeat.Expectation{Host: "ahead01", From: started})
	tr.Expect(heartbeat.Expectation{Host: "skewed01", From: started})
	tr.Expect(heartbeat.Expectation{Host: "waiting01", From: time.Now()}) // added by a reload just now

	hb, err := heartbeat.NewServer(heartbeat.ServerConfig{
		Addr4:   "127.0.0.1:0",
		Keys:    heartbeat.KeysFrom(map[string][]byte{"skewed01": []byte(testutil.Key), "ahead01": []byte(testutil.Key)}, nil),
		Tracker: tr,
	})
	if err != nil {
		t.Fatal(err)
	}
	hbCtx, hbCancel := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	go func() { hb.Serve(hbCtx); close(hbDone) }()
	t.Cleanup(func() { hbCancel(); <-hbDone })
	runHeartbeats(t, hb, "skewed01", 2*time.Second)
	runHeartbeats(t, hb, "ahead01", 10*time.Minute)
	testutil.Eventually(t, "skewed01 heard and ahead01 refused", 30*time.Second, func() bool {
		s, _ := tr.Snapshot("skewed01")
		a, _ := tr.Snapshot("ahead01")
		return s.State == heartbeat.StateUp && s.ClockOffsetMS != nil && a.Reason != ""
	})
	tr.Sweep(time.Now())

	hub := ws.New(ws.Options{
		Authenticate: func(*http.Request) (access.Principal, bool) { return access.Principal{Admin: true, Open: true}, true },
		Policy:       access.NewPolicy(func() *config.Config { return cfg }, access.NewHosts(cfg)),
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Shutdown(ctx)
	})
	srv := api.New(api.Deps{Config: func() *config.Config { return cfg }, Store: st, Connections: api.TrackerSource{Tracker: tr}})
	routes, err := srv.PageRoutes(webui.FS(), api.PageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Add(routes...)
	srv.Echo.GET(ws.Path, echo.WrapHandler(hub))
	web := httptest.NewServer(srv.Echo)
	t.Cleanup(web.Close)

	browser := startBrowser(t)
	ctx := tab(t, browser, noAlertRoutes)
	do(t, ctx, chromedp.Navigate(web.URL+"/live"))
	waitJS(t, ctx, "five host rows", `document.querySelectorAll("#hosts-body tr").length === 5`)
	row := func(host string) (state, text string) {
		t.Helper()
		sel := `document.querySelector('tr[data-host="` + host + `"]')`
		return evalJS[string](t, ctx, sel+`.dataset.state`), evalJS[string](t, ctx, sel+`.innerText`)
	}
	checks := []struct {
		host, state string
		want        []string
		not         []string
	}{
		{"silent01", "DOWN", []string{"never heard from", "never"}, []string{" ms", "not watched", "clock"}},
		{"waiting01", "UNKNOWN", []string{"waiting for first heartbeat"}, []string{"never heard from"}},
		{"dyn01", "UNKNOWN", []string{"not watched", "dynamic"}, nil},
		{"skewed01", "UP", []string{"clock +2 s"}, []string{"not watched"}},
		{"ahead01", "DOWN", []string{"clock 10m0s ahead of hbd", "clock +10m 0s"}, []string{"never heard from"}},
	}
	for _, c := range checks {
		state, text := row(c.host)
		if state != c.state {
			t.Errorf("%s: state %q, want %q (row %q)", c.host, state, c.state, text)
		}
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: row %q lacks %q", c.host, text, w)
			}
		}
		for _, n := range c.not {
			if strings.Contains(text, n) {
				t.Errorf("%s: row %q shows %q", c.host, text, n)
			}
		}
	}
	if down := evalJS[string](t, ctx, `document.getElementById("host-summary").innerText`); !strings.Contains(strings.ToLower(down), "down\n2") {
		t.Errorf("summary %q: want 2 down", down)
	}
	audit(t, ctx, "live-silent")
}
