package webui_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth/authtest"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/webui"
)

// TestStatusPageWithoutSession opens the public status page of a daemon
// in auth mode without logging in: it shows the chosen host (web01) with
// its state and uptime strip and nothing of the other host (db01), and the
// pages behind it still send the visitor to the login page.
func TestStatusPageWithoutSession(t *testing.T) {
	cfg := authtest.Config(false)
	cfg.StatusPage = config.StatusPage{Title: "Shop status", Hosts: []string{authtest.Host}}
	env := authtest.New(t, cfg)
	routes, err := env.API.PageRoutes(webui.FS(), api.PageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env.API.Add(routes...)
	now := float64(time.Now().Unix())
	env.Store.RecordState(authtest.Host, "", "DOWN", now-7200)
	env.Store.RecordState(authtest.Host, "", "UP", now-3600)
	env.Store.RecordState(authtest.OtherHost, "", "DOWN", now-600)
	web := httptest.NewServer(env.API.Echo)
	t.Cleanup(web.Close)
	cfg.AllowedHosts = append(cfg.AllowedHosts, strings.TrimPrefix(web.URL, "http://"))

	browser := startBrowser(t)
	ctx := tab(t, browser, "status of 401")
	do(t, ctx, chromedp.Navigate(web.URL+"/status"))
	waitJS(t, ctx, "status card", `document.querySelectorAll("#status-hosts .status-host").length === 1 && document.getElementById("status-summary").textContent !== "Loading…"`)
	card := evalJS[string](t, ctx, `document.querySelector("#status-hosts .status-host").innerText`)
	for _, want := range []string{authtest.Host, "Operational", "24 h", "7 days", "30 days"} {
		if !strings.Contains(card, want) {
			t.Errorf("status card %q lacks %q", card, want)
		}
	}
	if page := evalJS[string](t, ctx, `document.body.innerText`); strings.Contains(page, authtest.OtherHost) || strings.Contains(page, "Log out") {
		t.Errorf("the status page shows more than its host: %q", page)
	}
	if title := evalJS[string](t, ctx, `document.title + "|" + document.querySelector("main h1").textContent`); title != "Shop status|Shop status" {
		t.Errorf("title %q", title)
	}
	if n := evalJS[int](t, ctx, `document.querySelectorAll("#status-hosts .strip .cell.UP").length`); n < 1 {
		t.Errorf("%d UP cells in the strip", n)
	}
	if p := evalJS[string](t, ctx, `location.pathname`); p != "/status" {
		t.Fatalf("the status page went to %s", p)
	}
	audit(t, ctx, "status")

	// The pages behind it need a session.
	do(t, ctx, chromedp.Navigate(web.URL+"/hosts/"+authtest.Host))
	waitJS(t, ctx, "login page", `location.pathname === "/login"`)
}
