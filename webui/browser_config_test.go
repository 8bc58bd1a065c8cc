package webui_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth/authtest"
	"github.com/hbdmon/hbd/core/daemon"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/webui"
)

// editorEnroll is a secret of the editor's config: the page must never
// hold it.
const editorEnroll = "enroll-secret-for-the-browser-0123456789"

// TestConfigEditorInBrowser edits the config file of a real daemon (in
// process) through /config as an administrator: secrets show as "•••",
// an invalid edit is refused with its line marked and selected, a good
// one is saved with the secret preserved and is in force after the
// reload. A user who is not an admin has no nav link and gets 403.
func TestConfigEditorInBrowser(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hbd.yaml")
	text := fmt.Sprintf(`hbd_host: 127.0.0.1
hbd_port: %d
ws_port: %d
hb_port: %d
data_dir: %s
# Keys are secrets: the editor shows them as "•••".
enroll_key: "%s"
alerting:
  renotify: 1h
watchhosts:
  web01:
    key: "%s"
    owner: admin
users:
  admin:
    password_hash: "%s"
    admin: true
  other:
    password_hash: "%s"
`, testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t), filepath.Join(dir, "data"), editorEnroll, testutil.Key, authtest.Hash("admin"), authtest.Hash("other"))
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(context.Background(), path, daemon.Options{Environ: []string{}, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	web := httptest.NewServer(d.API.Echo)
	t.Cleanup(web.Close)

	browser := startBrowser(t)
	// The refused save (422) and the other user's 403 are logged by the
	// browser as failed loads, and the 403 answer (JSON, no icon link)
	// makes it ask for /favicon.ico.
	ctx := tab(t, browser, "status of 422", "status of 403", "favicon.ico")
	login := func(user, next string) {
		t.Helper()
		do(t, ctx,
			chromedp.Navigate(web.URL+"/logout"),
			chromedp.Navigate(web.URL+"/login?next="+next),
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), user),
			chromedp.SendKeys(chromedp.ID("password"), authtest.Password(user)),
			chromedp.Click(chromedp.ID("login-submit")),
		)
		// The login navigates: evaluations fail while it does.
		cond := `location.pathname === "` + next + `" && !!document.getElementById("nav-logout") && !document.getElementById("nav-logout").hidden`
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](cond)); ok {
				return
			}
		}
		t.Fatalf("%s: the login did not reach %s", user, next)
	}
	noSecret := func(when string) {
		t.Helper()
		page := evalJS[string](t, ctx, `document.documentElement.outerHTML + document.getElementById("cfg-text").value`)
		for _, s := range []string{editorEnroll, testutil.Key, authtest.Hash("admin")} {
			if strings.Contains(page, s) {
				t.Fatalf("%s: the page holds a secret", when)
			}
		}
	}
	// edit replaces a piece of the textarea's text as typing would.
	edit := func(from, to string) {
		t.Helper()
		evalJS[bool](t, ctx, fmt.Sprintf(`(() => { const ta = document.getElementById("cfg-text"); ta.value = ta.value.replace(%q, %q); ta.dispatchEvent(new Event("input")); return true })()`, from, to))
	}

	login("admin", "/config")
	waitJS(t, ctx, "editor loaded", `document.getElementById("cfg-text").value.includes('enroll_key: "•••"')`)
	if !evalJS[bool](t, ctx, `!document.getElementById("nav-config").hidden`) {
		t.Error("an admin has no Config link in the nav")
	}
	if v := evalJS[string](t, ctx, `document.getElementById("cfg-text").value`); !strings.Contains(v, `key: "•••"`) || !strings.Contains(v, "# Keys are secrets") {
		t.Fatalf("editor text:\n%s", v)
	}
	noSecret("loaded")
	audit(t, ctx, "config")

	// An invalid edit: Check names the line and key and selects the line.
	edit("renotify: 1h", "renotify: soon")
	badLine := strings.Count(text[:strings.Index(text, "renotify:")], "\n") + 1
	do(t, ctx, chromedp.Click(chromedp.ID("cfg-check")))
	waitJS(t, ctx, "check result", `document.querySelectorAll("#cfg-errors li").length === 1`)
	if msg := evalJS[string](t, ctx, `document.getElementById("cfg-errors").innerText`); !strings.Contains(msg, fmt.Sprintf("Line %d, alerting.renotify", badLine)) {
		t.Errorf("check error: %q", msg)
	}
	if mark := evalJS[string](t, ctx, `(document.querySelector("#cfg-gutter .bad") || {}).textContent || ""`); mark != fmt.Sprint(badLine) {
		t.Errorf("gutter marks line %q, want %d", mark, badLine)
	}
	sel := evalJS[string](t, ctx, `(() => { const ta = document.getElementById("cfg-text"); return ta.value.slice(ta.selectionStart, ta.selectionEnd) })()`)
	if strings.TrimSpace(sel) != "renotify: soon" {
		t.Errorf("selected %q, want the bad line", sel)
	}
	if diff := evalJS[string](t, ctx, `document.getElementById("cfg-diff").innerText`); !strings.Contains(diff, "+  renotify: soon") || !strings.Contains(diff, "-  renotify: 1h") {
		t.Errorf("diff:\n%s", diff)
	}
	audit(t, ctx, "config-invalid")
	// Save refuses it too, and the file stays as it was.
	do(t, ctx, chromedp.Click(chromedp.ID("cfg-save")))
	waitJS(t, ctx, "save refused", `document.getElementById("notice").textContent.includes("not saved")`)
	if now, _ := os.ReadFile(path); string(now) != text {
		t.Fatal("a refused save changed the file")
	}

	// A good edit with the secrets left masked: saved, secrets kept,
	// in force after the reload.
	edit("renotify: soon", "renotify: 2h")
	do(t, ctx, chromedp.Click(chromedp.ID("cfg-check")))
	waitJS(t, ctx, "valid check", `document.getElementById("result-h").textContent.includes("would accept")`)
	do(t, ctx, chromedp.Click(chromedp.ID("cfg-save")))
	waitJS(t, ctx, "saved", `document.getElementById("notice").textContent.includes("reloaded hbd")`)
	saved, _ := os.ReadFile(path)
	if !strings.Contains(string(saved), "renotify: 2h") || !strings.Contains(string(saved), `key: "`+testutil.Key+`"`) || !strings.Contains(string(saved), editorEnroll) {
		t.Fatalf("saved file:\n%s", saved)
	}
	if bak, _ := os.ReadFile(path + ".bak"); string(bak) != text {
		t.Error("hbd.yaml.bak is not the previous file")
	}
	if got := d.Config().Alerting.Renotify; got != 2*time.Hour {
		t.Errorf("renotify in force after the save: %v", got)
	}
	if d.Config().Watchhosts["web01"].Key.Reveal() != testutil.Key {
		t.Error("web01's key was not preserved")
	}
	noSecret("saved")
	audit(t, ctx, "config-saved")

	// A user who is not an admin: no link, and the page is refused.
	login("other", "/live")
	if !evalJS[bool](t, ctx, `document.getElementById("nav-config").hidden`) {
		t.Error("a user who is not an admin sees the Config link")
	}
	do(t, ctx, chromedp.Navigate(web.URL+"/config"))
	waitJS(t, ctx, "403", `document.body.innerText.includes("error")`)
	if body := evalJS[string](t, ctx, `document.body.innerText`); strings.Contains(body, "enroll_key") {
		t.Errorf("a user who is not an admin sees the config: %s", body)
	}
}

// TestConfigEditorOpenModeSaysHowToTurnUsersOn: in open mode /config
// explains how to turn users on instead of showing the file.
func TestConfigEditorOpenModeSaysHowToTurnUsersOn(t *testing.T) {
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
	do(t, ctx, chromedp.Navigate(web.URL+"/config"))
	waitJS(t, ctx, "open-mode help", `!document.getElementById("open-mode").hidden`)
	if !evalJS[bool](t, ctx, `document.getElementById("editor").hidden`) {
		t.Error("the editor shows in open mode")
	}
	help := evalJS[string](t, ctx, `document.getElementById("open-mode").innerText`)
	for _, want := range []string{"users:", "hbd hash-password", "admin: true"} {
		if !strings.Contains(help, want) {
			t.Errorf("open-mode help lacks %q", want)
		}
	}
	audit(t, ctx, "config-open")
}
