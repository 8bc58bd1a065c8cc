package channels_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/pluginhost"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
)

var hash = "$2a$10$" + strings.Repeat("a", 53)

const yaml = `
users:
  root: {password_hash: "HASH", admin: true}
  alice: {password_hash: "HASH"}
  bob: {password_hash: "HASH"}
watchhosts:
  web01: {key: "KEY", monitors: [alice]}
notification_channels:
  ops: {type: webhook, url: "http://127.0.0.1:1/", secret: "CFG-SECRET-1", hosts: ["*"]}
`

// watcher records what the registry tells it.
type watcher struct {
	mu       sync.Mutex
	deleted  []string
	reloaded int
}

func (w *watcher) ChannelDeleted(name string) {
	w.mu.Lock()
	w.deleted = append(w.deleted, name)
	w.mu.Unlock()
}

func (w *watcher) ChannelsReloaded() {
	w.mu.Lock()
	w.reloaded++
	w.mu.Unlock()
}

func start(t *testing.T, dir string) (*channels.Registry, *store.Store) {
	t.Helper()
	st, err := testutil.OpenStore(context.Background(), dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return startWith(t, st, st), st
}

// startWith starts a registry on repo (the test's config, the webhook
// plugin), journaling to j.
func startWith(t *testing.T, repo channels.Repository, j channels.Journal) *channels.Registry {
	t.Helper()
	cfg := testutil.Config(t, strings.NewReplacer("HASH", hash, "KEY", testutil.Key).Replace(yaml))
	conf := func() *config.Config { return cfg }
	host, _ := pht.Start(t, pht.Dir(t, pht.Webhook), pluginhost.Options{})
	reg, err := channels.New(channels.Options{Config: conf, Store: repo, Journal: j, Plugins: host,
		Policy: access.NewPolicy(conf, access.NewHosts(cfg))})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestRegistryOwnershipVisibilityMaskingAndPersistence(t *testing.T) {
	dir := testutil.StorePlace(t)
	reg, st := start(t, dir)
	w := &watcher{}
	reg.Watch(w)
	ctx := context.Background()
	alice, bob, root := access.Principal{User: "alice"}, access.Principal{User: "bob"}, access.Principal{User: "root", Admin: true}
	priv := true
	if err := reg.CreateChannel(ctx, alice, channels.Input{Name: "mine", Type: "webhook", Private: &priv,
		Fields: map[string]string{"url": "http://127.0.0.1:1/a", "secret": "USER-SECRET-2"}}); err != nil {
		t.Fatal(err)
	}
	if err := reg.CreateChannel(ctx, bob, channels.Input{Name: "mine", Type: "webhook", Fields: map[string]string{"url": "http://x/"}}); !errors.Is(err, channels.ErrExists) {
		t.Errorf("a taken name: %v, want ErrExists", err)
	}
	// Visibility: a private channel is seen by its owner and admins only.
	if !reg.ChannelVisible("alice", "mine") || reg.ChannelVisible("bob", "mine") || !reg.ChannelVisible("root", "mine") {
		t.Error("ChannelVisible of a private channel is wrong")
	}
	if !reg.ChannelVisible("bob", "ops") || reg.ChannelVisible("bob", "gone") {
		t.Error("ChannelVisible of a public or missing channel is wrong")
	}
	names := func(pr access.Principal) (out []string) {
		for _, v := range reg.ListChannels(pr, nil) {
			out = append(out, v.Name)
			for _, f := range v.Fields {
				if strings.Contains(f.Value, "SECRET") {
					t.Errorf("%s's field %s shows its secret", v.Name, f.Key)
				}
			}
		}
		return out
	}
	if got := strings.Join(names(bob), ","); got != "ops" {
		t.Errorf("bob sees %s, want ops", got)
	}
	if got := strings.Join(names(alice), ","); got != "mine,ops" {
		t.Errorf("alice sees %s", got)
	}
	// Ownership: bob may not see it (404), a config channel is read-only.
	if err := reg.DeleteChannel(ctx, bob, "mine"); !errors.Is(err, channels.ErrNotFound) {
		t.Errorf("bob deleting alice's private channel: %v, want ErrNotFound", err)
	}
	if err := reg.UpdateChannel(ctx, root, "ops", channels.Input{}); !errors.Is(err, channels.ErrReadOnly) {
		t.Errorf("changing a config channel: %v, want ErrReadOnly", err)
	}
	// The mask keeps the stored secret.
	if err := reg.UpdateChannel(ctx, alice, "mine", channels.Input{Fields: map[string]string{"secret": channels.Mask}}); err != nil {
		t.Fatal(err)
	}
	if ch, _ := reg.Channel("mine"); ch.Fields["secret"] != "USER-SECRET-2" || ch.Source != channels.SourceUser || ch.Owner != "alice" {
		t.Errorf("after a masked update: %+v", ch)
	}
	// A restart reads the channel back from the store.
	st.Close()
	reg2, _ := start(t, dir)
	if ch, ok := reg2.Channel("mine"); !ok || ch.Fields["secret"] != "USER-SECRET-2" || !ch.Private {
		t.Errorf("after a restart: %+v %v", ch, ok)
	}
	if err := reg2.DeleteChannel(ctx, root, "mine"); err != nil {
		t.Fatal(err)
	}
	if len(w.deleted) != 0 {
		t.Errorf("a watcher of another registry was told %v", w.deleted)
	}
	reg2.Watch(w)
	reg2.Reload(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reloaded != 1 {
		t.Errorf("watcher told of %d reloads, want 1", w.reloaded)
	}
}

func TestDeleteTellsWatchersOnceStored(t *testing.T) {
	reg, st := start(t, testutil.StorePlace(t))
	ctx := context.Background()
	var lines []string
	w := &journalWatcher{st: st, seen: &lines}
	reg.Watch(w)
	alice := access.Principal{User: "alice"}
	if err := reg.CreateChannel(ctx, alice, channels.Input{Name: "c1", Type: "webhook", Fields: map[string]string{"url": "http://127.0.0.1:1/"}}); err != nil {
		t.Fatal(err)
	}
	if err := reg.DeleteChannel(ctx, alice, "c1"); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || lines[0] != "c1" {
		t.Fatalf("watcher calls = %v", lines)
	}
	if _, ok := reg.Channel("c1"); ok {
		t.Error("the deleted channel is still there")
	}
}

// journalWatcher records deletions and checks that, when told, the
// channel is already gone from the registry's store.
type journalWatcher struct {
	st   *store.Store
	seen *[]string
}

func (w *journalWatcher) ChannelDeleted(name string) {
	chans, _ := w.st.UserChannels(context.Background())
	for _, c := range chans {
		if c.Name == name {
			return // not yet deleted: the name is not recorded
		}
	}
	*w.seen = append(*w.seen, name)
}

func (w *journalWatcher) ChannelsReloaded() {}

// The SQLite store is a channel Repository.
var _ channels.Repository = (*store.Store)(nil)
