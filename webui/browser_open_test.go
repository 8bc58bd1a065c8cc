package webui_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth/authtest"
	"github.com/hbdmon/hbd/webui"
)

// TestOpenModeSaysHowToTurnUsersOn: in open mode the profile page shows how
// to configure users instead of disabled forms; the login page and the
// profile pass axe-core at desktop, 375 px and dark.
func TestOpenModeSaysHowToTurnUsersOn(t *testing.T) {
	env := authtest.New(t, authtest.Config(true))
	routes, err := env.API.PageRoutes(webui.FS(), api.PageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env.API.Add(routes...)
	web := httptest.NewServer(env.API.Echo)
	t.Cleanup(web.Close)

	browser := startBrowser(t)
	ctx := tab(t, browser)
	do(t, ctx, chromedp.Navigate(web.URL+"/profile"))
	waitJS(t, ctx, "open-mode help", `!document.getElementById("open-mode").hidden`)
	if !evalJS[bool](t, ctx, `document.getElementById("profile-forms").hidden`) {
		t.Error("the profile forms still show in open mode")
	}
	help := evalJS[string](t, ctx, `document.getElementById("open-mode").innerText`)
	for _, want := range []string{"users:", "password_hash", "hbd hash-password", "admin: true"} {
		if !strings.Contains(help, want) {
			t.Errorf("open-mode help lacks %q", want)
		}
	}
	if who := evalJS[string](t, ctx, `document.getElementById("nav-user").textContent`); who != "open mode" {
		t.Errorf("nav says %q", who)
	}
	audit(t, ctx, "profile-open")

	do(t, ctx, chromedp.Navigate(web.URL+"/login"))
	waitJS(t, ctx, "login form", `document.getElementById("username") !== null`)
	audit(t, ctx, "login")
}
