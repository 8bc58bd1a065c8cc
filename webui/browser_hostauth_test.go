package webui_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth/authtest"
	"github.com/hbdmon/hbd/webui"
)

// TestHostPageByRole logs in through the login page: the host's owner
// sees the agent's key in the hbc.yaml of a host without data and may edit
// its managers and monitors; a monitor sees a placeholder instead of the
// key and no form.
func TestHostPageByRole(t *testing.T) {
	env := authtest.New(t, authtest.Config(false))
	routes, err := env.API.PageRoutes(webui.FS(), api.PageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env.API.Add(routes...)
	web := httptest.NewServer(env.API.Echo)
	t.Cleanup(web.Close)
	key := strings.Repeat("k", 32)

	browser := startBrowser(t)
	// This site serves no alert routes and no live feed.
	ctx := tab(t, browser, "/alerts)", "status of 401", "WebSocket connection to")
	login := func(user string) {
		t.Helper()
		do(t, ctx,
			chromedp.Navigate(web.URL+"/logout"),
			chromedp.Navigate(web.URL+"/login?next="+"/hosts/"+authtest.Host),
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), user),
			chromedp.SendKeys(chromedp.ID("password"), authtest.Password(user)),
			chromedp.Click(chromedp.ID("login-submit")),
		)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if p, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname`)); p == "/hosts/"+authtest.Host {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s: the login did not reach the host page", user)
	}

	login("owner")
	waitJS(t, ctx, "connect with key", `!document.getElementById("connect").hidden && document.getElementById("connect-yaml").textContent.includes("key:")`)
	if yaml := evalJS[string](t, ctx, `document.getElementById("connect-yaml").textContent`); !strings.Contains(yaml, `key: "`+key+`"`) {
		t.Errorf("the owner's hbc.yaml lacks the key: %q", yaml)
	}
	waitJS(t, ctx, "access form", `!document.getElementById("access-form").hidden && document.getElementById("acc-managers").value === "manager"`)
	do(t, ctx, chromedp.SetValue(chromedp.ID("acc-managers"), "manager, other"), chromedp.Click(chromedp.ID("acc-save")))
	waitJS(t, ctx, "saved", `document.getElementById("access").innerText.includes("manager, other")`)
	if roles := env.Auth.Policy().HostRoles(authtest.Host); strings.Join(roles.Managers, ",") != "manager,other" {
		t.Errorf("managers after the form: %v", roles.Managers)
	}
	audit(t, ctx, "host-owner")

	login("monitor")
	waitJS(t, ctx, "connect without key", `!document.getElementById("connect").hidden && document.getElementById("connect-note").textContent.includes("Only the host's owner")`)
	if yaml := evalJS[string](t, ctx, `document.getElementById("connect-yaml").textContent`); strings.Contains(yaml, key) {
		t.Errorf("a monitor sees the key: %q", yaml)
	}
	if !evalJS[bool](t, ctx, `document.getElementById("access-form").hidden`) {
		t.Error("a monitor sees the access form")
	}
}
