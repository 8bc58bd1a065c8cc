package dispatch_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/dispatch"
	"github.com/hbdmon/hbd/core/pluginhost"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
)

// Channels are routed by name, and a name freed by a delete can be taken
// by anyone: these tests make sure a name alone never hands a host's
// alerts to a user who may not see the host, or to a channel the
// subscriber may not see.

const nameRoutingYAML = `
users:
  alice: {password_hash: "HASH", channels: [oncall, team, bob_private, shared]}
  bob: {password_hash: "HASH"}
  mallory: {password_hash: "HASH"}
watchhosts:
  web01:
    key: "` + testutil.Key + `"
    monitors: [alice, bob]
    notify: [pager, team_pager, ops]
# The receivers are local; users who are not admins reach them only so.
channel_destinations: {allow: [127.0.0.0/8]}
notification_channels:
  ops: {type: webhook, url: "RCV_ops"}
  shared: {type: webhook, url: "RCV_shared"}
`

// createHook creates a webhook channel reached only by name (its hosts
// glob matches no host).
func createHook(t *testing.T, e *env, who, name, url string, private bool) {
	t.Helper()
	hosts := []string{noHost}
	err := e.reg.CreateChannel(context.Background(), access.Principal{User: who}, channels.Input{
		Name: name, Type: "webhook", Private: &private, Hosts: &hosts, Fields: map[string]string{"url": url}})
	if err != nil {
		t.Fatalf("%s creates %s: %v", who, name, err)
	}
}

func deleteChannel(t *testing.T, e *env, who, name string) {
	t.Helper()
	if err := e.reg.DeleteChannel(context.Background(), access.Principal{User: who}, name); err != nil {
		t.Fatalf("%s deletes %s: %v", who, name, err)
	}
}

func TestDanglingSubscriptionIsNotRoutedToAChannelThatTookTheName(t *testing.T) {
	e := newEnv(t, strings.ReplaceAll(nameRoutingYAML, "HASH", hash), "ops", "shared", "bob", "team", "evil")
	// bob (a monitor of web01) owns two channels alice subscribes to.
	createHook(t, e, "bob", "oncall", e.rcv["bob"].URL, false)
	createHook(t, e, "bob", "team", e.rcv["team"].URL, false)
	want := []string{"oncall", "ops", "shared", "team"}
	if got := e.d.Route(crit("web01")); !slices.Equal(got, want) {
		t.Fatalf("before the delete: Route = %v, want %v", got, want)
	}

	// bob deletes oncall; alice's subscription to the name stays.
	deleteChannel(t, e, "bob", "oncall")
	want = []string{"ops", "shared", "team"}
	if got := e.d.Route(crit("web01")); !slices.Equal(got, want) {
		t.Fatalf("after the delete: Route = %v, want %v", got, want)
	}

	// mallory, who cannot see web01, claims the name: privately, then
	// publicly. Neither brings her web01's alerts.
	for _, private := range []bool{true, false} {
		createHook(t, e, "mallory", "oncall", e.rcv["evil"].URL, private)
		if got := e.d.Route(crit("web01")); !slices.Equal(got, want) {
			t.Errorf("oncall re-created by mallory (private %v): Route = %v, want %v", private, got, want)
		}
		if got := e.d.Dispatch(crit("web01")); !slices.Equal(got, want) {
			t.Errorf("oncall re-created by mallory (private %v): Dispatch = %v, want %v", private, got, want)
		}
		deleteChannel(t, e, "mallory", "oncall")
	}

	// A private channel of someone who can see web01 is still not routed
	// by the subscription of a user who may not see the channel.
	createHook(t, e, "bob", "bob_private", e.rcv["bob"].URL, true)
	if got := e.d.Route(crit("web01")); !slices.Equal(got, want) {
		t.Errorf("bob's private channel reached through alice's subscription: Route = %v, want %v", got, want)
	}

	// The legitimate subscriptions (a config channel, a public channel of
	// a user who can see web01) are delivered; mallory's hook got nothing.
	e.rcv["team"].Wait(t, 2, 5*time.Second)
	e.rcv["shared"].Wait(t, 2, 5*time.Second)
	time.Sleep(200 * time.Millisecond)
	if n := e.rcv["evil"].Count(); n != 0 {
		t.Errorf("mallory's webhook received %d notifications", n)
	}
	if n := e.rcv["bob"].Count(); n != 0 {
		t.Errorf("bob's private webhook received %d notifications through alice's subscription", n)
	}
}

func TestNotifyListNameClaimedByAUserWhoCannotSeeTheHostIsNotRouted(t *testing.T) {
	e := newEnv(t, strings.ReplaceAll(nameRoutingYAML, "HASH", hash), "ops", "shared", "evil", "team")
	// web01's notify list names pager and team_pager, which do not exist.
	createHook(t, e, "mallory", "pager", e.rcv["evil"].URL, true)
	createHook(t, e, "bob", "team_pager", e.rcv["team"].URL, false)
	want := []string{"ops", "shared", "team_pager"}
	if got := e.d.Dispatch(crit("web01")); !slices.Equal(got, want) {
		t.Fatalf("Dispatch = %v, want %v (mallory cannot see web01; bob can)", got, want)
	}
	// A public channel of mallory's is not routed either.
	deleteChannel(t, e, "mallory", "pager")
	createHook(t, e, "mallory", "pager", e.rcv["evil"].URL, false)
	if got := e.d.Route(crit("web01")); !slices.Equal(got, want) {
		t.Fatalf("Route = %v, want %v", got, want)
	}
	e.rcv["team"].Wait(t, 1, 5*time.Second)
	e.rcv["ops"].Wait(t, 1, 5*time.Second)
	time.Sleep(200 * time.Millisecond)
	if n := e.rcv["evil"].Count(); n != 0 {
		t.Errorf("mallory's webhook received %d notifications", n)
	}
}

func TestSubscribersOptionIsCheckedPerUser(t *testing.T) {
	e := newEnv(t, strings.ReplaceAll(nameRoutingYAML, "HASH", hash), "ops", "shared")
	e.close()
	// The daemon's Subscribers (package auth) returns (user, channel)
	// pairs; each is checked against the user's view of the channel.
	e.open(t, dispatch.Options{Subscribers: subscriptions{{User: "alice", Channel: "bob_private"}, {User: "bob", Channel: "bob_own"}, {User: "alice", Channel: "gone"}}})
	createHook(t, e, "bob", "bob_private", "http://127.0.0.1:1/", true)
	createHook(t, e, "bob", "bob_own", "http://127.0.0.1:1/", true)
	// ops (notify list) and shared (a config channel without hosts covers
	// every host) are routed whoever subscribes.
	want := []string{"bob_own", "ops", "shared"}
	if got := e.d.Route(crit("web01")); !slices.Equal(got, want) {
		t.Fatalf("Route = %v, want %v", got, want)
	}
}

// subscriptions is a fixed dispatch.Subscribers.
type subscriptions []dispatch.Subscription

func (s subscriptions) Subscriptions() []dispatch.Subscription { return slices.Clone(s) }

// A delivery queued for a config channel that a reload removes must not go
// to a user channel that takes the name while it waits for its retry.
func TestQueuedDeliveryIsNotHandedToAChannelThatTookTheName(t *testing.T) {
	old := pht.NewReceiver(t)
	evil := pht.NewReceiver(t)
	old.Respond(http.StatusServiceUnavailable, "")
	base := strings.NewReplacer("HASH", hash, "RCV_ops", "http://127.0.0.1:1/", "RCV_shared", "http://127.0.0.1:1/").Replace(nameRoutingYAML)
	var cfg atomic.Pointer[config.Config]
	cfg.Store(testutil.Config(t, base+`  old: {type: webhook, url: "`+old.URL+`", hosts: ["*"]}
`))
	host, _ := pht.Start(t, pht.Dir(t, pht.Webhook), pluginhost.Options{})
	st := testutil.Store(t, 10)
	policy := access.NewPolicy(cfg.Load, access.NewHosts(cfg.Load()))
	reg := newRegistry(t, cfg.Load, st, host, policy, nil)
	d, err := dispatch.New(dispatch.Options{Config: cfg.Load, Store: st, Plugins: host, Channels: reg, Policy: policy,
		RetryBase: 700 * time.Millisecond, RetryMax: 700 * time.Millisecond, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	d.Dispatch(crit("web01"))
	old.Wait(t, 1, 5*time.Second)
	// The reload removes old; mallory takes its name before the retry.
	cfg.Store(testutil.Config(t, base))
	priv := false
	if err := reg.CreateChannel(context.Background(), access.Principal{User: "mallory"}, channels.Input{
		Name: "old", Type: "webhook", Private: &priv, Fields: map[string]string{"url": evil.URL}}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the delivery dropped", 5*time.Second, func() bool {
		msgs, _ := st.Messages(context.Background(), store.MessageQuery{Limit: 100})
		return slices.ContainsFunc(msgs, func(m store.Message) bool {
			return strings.HasSuffix(m.Msg, "dropped: the channel's owner may not see the host")
		})
	})
	if n := evil.Count(); n != 0 {
		t.Errorf("mallory's webhook received %d notifications", n)
	}
}

// messages returns the journal entries, oldest first.
func (e *env) messages(t *testing.T) []store.Message {
	t.Helper()
	msgs, err := e.st.Messages(context.Background(), store.MessageQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(msgs)
	return msgs
}

func TestPrivateChannelDeliveriesAreJournaledWithoutNameUnderTheHost(t *testing.T) {
	e := newEnv(t, strings.ReplaceAll(nameRoutingYAML, "HASH", hash), "ops", "shared", "mine")
	e.rcv["mine"].Script(http.StatusServiceUnavailable)
	e.rcv["ops"].Script(http.StatusServiceUnavailable)
	priv, hosts := true, []string{"web01"}
	if err := e.reg.CreateChannel(context.Background(), access.Principal{User: "bob"}, channels.Input{
		Name: "bob_pager", Type: "webhook", Private: &priv, Hosts: &hosts,
		Fields: map[string]string{"url": e.rcv["mine"].URL}}); err != nil {
		t.Fatal(err)
	}
	e.d.Dispatch(crit("web01"))
	e.waitJournal(t, "notify bob_pager web01 cpu_monitor.cpu_percent CRITICAL: delivered (attempt 2)")
	e.waitJournal(t, "notify ops web01 cpu_monitor.cpu_percent CRITICAL: delivered (attempt 2)")

	var host, wide []string
	for _, m := range e.messages(t) {
		if !strings.HasPrefix(m.Msg, "notify ") {
			continue
		}
		switch m.Host {
		case "web01":
			host = append(host, m.Msg)
		case "":
			wide = append(wide, m.Msg)
		}
	}
	hasPrefix := func(lines []string, p string) bool {
		return slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, p) })
	}
	for _, l := range host {
		if strings.Contains(l, "bob_pager") {
			t.Errorf("web01's journal names the private channel: %s", l)
		}
		if strings.HasPrefix(l, "notify private channel") && strings.Contains(l, "HTTP 503") {
			t.Errorf("web01's journal holds the private channel's error: %s", l)
		}
	}
	for _, w := range []string{
		"notify private channel web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 1); retrying in ",
		"notify private channel web01 cpu_monitor.cpu_percent CRITICAL: delivered (attempt 2)",
		// Config and public channels are journaled as before.
		"notify ops web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 1): HTTP 503",
		"notify ops web01 cpu_monitor.cpu_percent CRITICAL: delivered (attempt 2)",
		"notify shared web01 cpu_monitor.cpu_percent CRITICAL: delivered",
	} {
		if !hasPrefix(host, w) {
			t.Errorf("web01's journal lacks %q:\n%s", w, strings.Join(host, "\n"))
		}
	}
	for _, w := range []string{
		"notify bob_pager web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 1): HTTP 503",
		"notify bob_pager web01 cpu_monitor.cpu_percent CRITICAL: delivered (attempt 2)",
	} {
		if !hasPrefix(wide, w) {
			t.Errorf("the daemon-wide journal lacks %q:\n%s", w, strings.Join(wide, "\n"))
		}
	}
	if hasPrefix(wide, "notify ops ") || hasPrefix(wide, "notify shared ") {
		t.Errorf("config channel lines copied daemon-wide:\n%s", strings.Join(wide, "\n"))
	}
}
