package webui_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/dispatch"
	"github.com/hbdmon/hbd/core/pluginhost"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/webui"
)

// TestChannelsPageShowsCoverage drives the Channels page against a real
// dispatcher with the webhook plugin (open mode): each channel says which
// hosts it covers, and a channel created in the form with an empty Hosts
// field covers every host.
func TestChannelsPageShowsCoverage(t *testing.T) {
	cfg := testutil.Config(t, `
watchhosts:
  web01:
    key: "`+testutil.Key+`"
  web02:
    key: "`+testutil.Key+`"
notification_channels:
  everyone: {type: webhook, url: "http://127.0.0.1:1/"}
  nothing: {type: webhook, url: "http://127.0.0.1:1/", hosts: ["zz*"]}
`)
	cfgFn := func() *config.Config { return cfg }
	st := testutil.Store(t, 10)
	plugins, _ := pht.Start(t, pht.Dir(t, pht.Webhook), pluginhost.Options{})
	policy := access.NewPolicy(cfgFn, access.NewHosts(cfg))
	reg, err := channels.New(channels.Options{Config: cfgFn, Store: st, Journal: st, Plugins: plugins, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	disp, err := dispatch.New(dispatch.Options{Config: cfgFn, Store: st, Plugins: plugins, Channels: reg, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	if err := disp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disp.Close() })
	srv := api.New(api.Deps{Config: cfgFn, Store: st, Connections: connections{}})
	routes, err := srv.PageRoutes(webui.FS(), api.PageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Add(routes...)
	srv.AddChannels(reg, disp)
	httpSrv := httptest.NewServer(srv.Echo)
	t.Cleanup(httpSrv.Close)

	browser := startBrowser(t)
	ctx := tab(t, browser)
	do(t, ctx, chromedp.Navigate(httpSrv.URL+"/channels"))
	waitJS(t, ctx, "channel rows", `document.querySelectorAll("#channels-body tr").length === 2`)
	cell := func(name string) string {
		return evalJS[string](t, ctx, `document.querySelector('tr[data-channel="`+name+`"] td.hosts').innerText`)
	}
	if c := cell("everyone"); !strings.Contains(c, "all hosts") || !strings.Contains(c, "covers 2 hosts: web01, web02") {
		t.Errorf("everyone's hosts cell = %q", c)
	}
	if c := cell("nothing"); !strings.Contains(c, "zz*") || !strings.Contains(c, "covers no host yet") {
		t.Errorf("nothing's hosts cell = %q", c)
	}

	// A new channel with the Hosts field left empty.
	do(t, ctx, chromedp.Click("#new-channel"))
	waitJS(t, ctx, "the form", `!document.getElementById("editor").hidden && document.getElementById("f-url") !== null`)
	if ph := evalJS[string](t, ctx, `document.getElementById("ch-hosts").placeholder`); !strings.HasPrefix(ph, "all hosts you can see") {
		t.Errorf("hosts placeholder = %q", ph)
	}
	do(t, ctx,
		chromedp.SendKeys("#ch-name", "from_form"),
		chromedp.SendKeys("#f-url", "http://127.0.0.1:1/hook"),
		chromedp.Click("#ch-save"),
	)
	waitJS(t, ctx, "the new row", `document.querySelector('tr[data-channel="from_form"]') !== null`)
	if c := cell("from_form"); !strings.Contains(c, "covers 2 hosts: web01, web02") {
		t.Errorf("from_form's hosts cell = %q", c)
	}
	chans := reg.Channels()
	for _, ch := range chans {
		if ch.Name == "from_form" && len(ch.Hosts) != 0 {
			t.Errorf("the form sent hosts %v for an empty field", ch.Hosts)
		}
	}
	audit(t, ctx, "channels")
}
