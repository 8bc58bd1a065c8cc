package webui_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/pluginhost"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/webui"
)

// hostPlugins adapts the real plugin host to the API's plugin list, as the
// daemon does.
type hostPlugins struct{ h *pluginhost.Host }

func (p hostPlugins) NotifierPlugins() []api.NotifierPluginJSON {
	var out []api.NotifierPluginJSON
	for _, pl := range p.h.Stats().Plugins {
		state := "running"
		if !pl.Running && pl.Failing != "" {
			state = "failing"
		}
		out = append(out, api.NotifierPluginJSON{Binary: pl.Binary, Type: pl.Type, State: state, Error: pl.Failing, Failures: pl.Failures})
	}
	return out
}

// TestChannelFormRendersChoiceAndMultilineAndProblems drives the Channels
// page (open mode) with the real pushover, webhook and chat plugins: a
// choice field is a select of its options, a multiline field a text area;
// a channel its replaced plugin no longer accepts says so in its row; a
// plugin that does not start is listed above the channels; a save the
// API refuses puts the cursor in the field it names.
func TestChannelFormRendersChoiceAndMultilineAndProblems(t *testing.T) {
	cfg := testutil.Config(t, "watchhosts:\n  web01:\n    key: \""+testutil.Key+"\"\n")
	cfgFn := func() *config.Config { return cfg }
	st := testutil.Store(t, 10)
	dir := pht.Dir(t, pht.Webhook, pht.Pushover)
	pht.Install(t, dir, "./core/channels/testdata/chat", "hbd-notifier-chat")
	broken := filepath.Join(dir, ".tmp")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'panic: no libfoo' >&2\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(broken, filepath.Join(dir, "hbd-notifier-broken")); err != nil {
		t.Fatal(err)
	}
	plugins, _ := pht.Start(t, dir, pluginhost.Options{})
	policy := access.NewPolicy(cfgFn, access.NewHosts(cfg))
	reg, err := channels.New(channels.Options{Config: cfgFn, Store: st, Journal: st, Plugins: plugins, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	open := access.Principal{Open: true}
	if err := reg.CreateChannel(context.Background(), open, channels.Input{Name: "team", Type: "chat", Fields: map[string]string{"room": "ops"}}); err != nil {
		t.Fatal(err)
	}
	pht.Install(t, dir, "./core/channels/testdata/chatstrict", "hbd-notifier-chat")
	plugins.OnTypeChange(func(typ string) { reg.Revalidate(context.Background(), typ) })
	pht.Eventually(t, "the channel flagged", 30*time.Second, func() bool {
		for _, v := range reg.ListChannels(open, nil) {
			if v.Name == "team" && v.Problem != nil {
				return true
			}
		}
		return false
	})
	// The real account service in open mode, so the page knows the caller
	// may see the plugin list (GET /api/0/users/me).
	accounts, err := auth.New(context.Background(), auth.Options{Store: st, Config: cfg, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Deps{Config: cfgFn, Store: st, Connections: connections{}, Policy: accounts.Policy(), Sessions: accounts, Accounts: accounts})
	routes, err := srv.PageRoutes(webui.FS(), api.PageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Add(routes...)
	srv.AddChannels(reg, nil)
	srv.AddNotifierPlugins(hostPlugins{plugins})
	httpSrv := httptest.NewServer(srv.Echo)
	t.Cleanup(httpSrv.Close)

	browser := startBrowser(t)
	// The last save is refused on purpose (400).
	ctx := tab(t, browser, "status of 400 (Bad Request) ("+httpSrv.URL+"/api/0/notification_channels)")
	do(t, ctx, chromedp.Navigate(httpSrv.URL+"/channels"))
	waitJS(t, ctx, "the channel row", `document.querySelector('tr[data-channel="team"]') !== null`)
	waitJS(t, ctx, "the problem note", `document.querySelector('tr[data-channel="team"] .problem') !== null`)
	if note := evalJS[string](t, ctx, `document.querySelector('tr[data-channel="team"] .problem').innerText`); !strings.Contains(note, `room id starting with "!"`) {
		t.Errorf("problem note = %q", note)
	}
	waitJS(t, ctx, "the failing plugin", `!document.getElementById("plugin-problems").hidden`)
	if li := evalJS[string](t, ctx, `document.getElementById("plugin-problems-list").innerText`); !strings.Contains(li, "hbd-notifier-broken does not start") || !strings.Contains(li, "panic: no libfoo") {
		t.Errorf("plugin problems = %q", li)
	}

	do(t, ctx, chromedp.Click("#new-channel"))
	do(t, ctx, chromedp.SetValue("#ch-type", "pushover"))
	evalJS[bool](t, ctx, `document.getElementById("ch-type").dispatchEvent(new Event("change"))`)
	waitJS(t, ctx, "the pushover fields", `document.getElementById("f-priority") !== null`)
	if tag := evalJS[string](t, ctx, `document.getElementById("f-priority").tagName`); tag != "SELECT" {
		t.Fatalf("priority rendered as %s", tag)
	}
	if opts := evalJS[string](t, ctx, `[...document.getElementById("f-priority").options].map(o => o.value + "=" + o.text).join("|")`); !strings.HasPrefix(opts, "=—|-2=Lowest") || !strings.Contains(opts, "2=Emergency") {
		t.Errorf("priority options %q", opts)
	}
	if tag := evalJS[string](t, ctx, `document.getElementById("f-body_template").tagName`); tag != "TEXTAREA" {
		t.Errorf("body_template rendered as %s", tag)
	}
	// Saved with a choice and a multi-line template: the values arrive.
	do(t, ctx,
		chromedp.SendKeys("#ch-name", "phone"),
		chromedp.SendKeys("#f-token", "tok"),
		chromedp.SendKeys("#f-user", "usr"),
		chromedp.SetValue("#f-priority", "1"),
		chromedp.SendKeys("#f-body_template", "{{.Text}}\n{{.URL}}"),
		chromedp.Click("#ch-save"),
	)
	waitJS(t, ctx, "the new row", `document.querySelector('tr[data-channel="phone"]') !== null`)
	for _, ch := range reg.Channels() {
		if ch.Name == "phone" && (ch.Fields["priority"] != "1" || ch.Fields["body_template"] != "{{.Text}}\n{{.URL}}") {
			t.Errorf("saved fields %q", ch.Fields)
		}
	}
	// A template that does not parse: refused, the cursor in that field.
	do(t, ctx, chromedp.Click("#new-channel"))
	do(t, ctx, chromedp.SetValue("#ch-type", "pushover"))
	evalJS[bool](t, ctx, `document.getElementById("ch-type").dispatchEvent(new Event("change"))`)
	waitJS(t, ctx, "the pushover fields again", `document.getElementById("f-title_template") !== null`)
	do(t, ctx,
		chromedp.SendKeys("#ch-name", "broken_tpl"),
		chromedp.SendKeys("#f-token", "tok"),
		chromedp.SendKeys("#f-user", "usr"),
		chromedp.SendKeys("#f-title_template", "{{.Host"),
		chromedp.Click("#ch-save"),
	)
	waitJS(t, ctx, "focus on the bad template", `document.activeElement && document.activeElement.id === "f-title_template"`)
	audit(t, ctx, "channel-form")
}
