package channels_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// countingRepo is a PostgreSQL store that counts the counter reads and
// the channel loads of the registry on it.
type countingRepo struct {
	*store.Store
	versions, loads atomic.Int64
}

func (c *countingRepo) UserChannels(ctx context.Context) ([]channels.Channel, error) {
	c.loads.Add(1)
	return c.Store.UserChannels(ctx)
}

func (c *countingRepo) UserChannelsVersion(ctx context.Context) (int64, error) {
	c.versions.Add(1)
	return c.Store.UserChannelsVersion(ctx)
}

// twoDaemons starts two registries on one PostgreSQL database, as two
// clustered daemons have; b's repository counts its reads.
func twoDaemons(t *testing.T) (a, b *channels.Registry, bRepo *countingRepo) {
	t.Helper()
	dsn := pgtest.DSN(t)
	open := func() *store.Store {
		st, err := store.OpenPostgres(context.Background(), dsn, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	sa, sb := open(), open()
	bRepo = &countingRepo{Store: sb}
	return startWith(t, sa, sa), startWith(t, bRepo, sb), bRepo
}

func TestSyncAppliesChannelChangesOfAnotherDaemon(t *testing.T) {
	a, b, _ := twoDaemons(t)
	w := &watcher{}
	b.Watch(w)
	ctx := context.Background()
	alice, root := access.Principal{User: "alice"}, access.Principal{User: "root", Admin: true}
	sync := func() {
		t.Helper()
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	view := func(pr access.Principal, name string) (channels.View, bool) {
		for _, v := range b.ListChannels(pr, nil) {
			if v.Name == name {
				return v, true
			}
		}
		return channels.View{}, false
	}
	field := func(v channels.View, key string) string {
		for _, f := range v.Fields {
			if f.Key == key {
				return f.Value
			}
		}
		return ""
	}

	// Created through a.
	if err := a.CreateChannel(ctx, alice, channels.Input{Name: "mine", Type: "webhook",
		Fields: map[string]string{"url": "http://127.0.0.1:1/a", "secret": "USER-SECRET-3"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Channel("mine"); ok {
		t.Fatal("b knows the channel before syncing")
	}
	sync()
	ch, ok := b.Channel("mine")
	if !ok || ch.Owner != "alice" || ch.Source != channels.SourceUser || ch.Fields["secret"] != "USER-SECRET-3" {
		t.Fatalf("b after the create: %+v %v", ch, ok)
	}
	v, ok := view(root, "mine")
	if !ok || field(v, "secret") != channels.Mask || field(v, "url") != "http://127.0.0.1:1/a" {
		t.Fatalf("b lists %+v %v, want the channel with its secret masked", v, ok)
	}
	if !b.ChannelVisible("alice", "mine") {
		t.Fatal("the owner cannot see the synced channel")
	}

	// Changed through a, made private.
	priv := true
	if err := a.UpdateChannel(ctx, alice, "mine", channels.Input{Private: &priv,
		Fields: map[string]string{"url": "http://127.0.0.1:1/b", "secret": channels.Mask}}); err != nil {
		t.Fatal(err)
	}
	sync()
	if ch, _ := b.Channel("mine"); ch.Fields["url"] != "http://127.0.0.1:1/b" || !ch.Private || ch.Fields["secret"] != "USER-SECRET-3" {
		t.Fatalf("b after the change: %+v", ch)
	}
	if b.ChannelVisible("bob", "mine") {
		t.Fatal("bob sees the channel made private through the other daemon")
	}
	// b changes it in turn: it works on what a saved.
	if err := b.UpdateChannel(ctx, alice, "mine", channels.Input{Fields: map[string]string{"url": "http://127.0.0.1:1/c"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if ch, _ := a.Channel("mine"); ch.Fields["url"] != "http://127.0.0.1:1/c" || !ch.Private {
		t.Fatalf("a after b's change: %+v", ch)
	}

	// A sync without changes tells the watchers nothing.
	sync()
	w.mu.Lock()
	if len(w.deleted) != 0 {
		t.Fatalf("watcher told of %v before any deletion", w.deleted)
	}
	w.mu.Unlock()

	// Deleted through a.
	if err := a.DeleteChannel(ctx, alice, "mine"); err != nil {
		t.Fatal(err)
	}
	sync()
	if _, ok := b.Channel("mine"); ok {
		t.Fatal("b still knows the channel deleted through a")
	}
	if _, ok := view(root, "mine"); ok {
		t.Fatal("b still lists the deleted channel")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !slices.Equal(w.deleted, []string{"mine"}) {
		t.Fatalf("b's watcher was told %v, want [mine]", w.deleted)
	}
}

// TestFollowReloadsOnlyWhenTheCounterMoves: a following registry reads
// the change counter every tick, reloads the channels only when it moved,
// and so learns of another daemon's create and delete.
func TestFollowReloadsOnlyWhenTheCounterMoves(t *testing.T) {
	a, b, repo := twoDaemons(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Follow(ctx, repo, 5*time.Millisecond) }()
	t.Cleanup(func() { cancel(); <-done })
	alice := access.Principal{User: "alice"}

	// The first round reloads once; then only the counter is read.
	testutil.Eventually(t, "the first reload", 30*time.Second, func() bool { return repo.loads.Load() >= 2 }) // Start, then Follow
	loads, reads := repo.loads.Load(), repo.versions.Load()
	testutil.Eventually(t, "ten more counter reads", 30*time.Second, func() bool { return repo.versions.Load() >= reads+10 })
	if got := repo.loads.Load(); got != loads {
		t.Fatalf("%d reloads while nothing changed", got-loads)
	}

	if err := a.CreateChannel(ctx, alice, channels.Input{Name: "hook", Type: "webhook",
		Fields: map[string]string{"url": "http://127.0.0.1:1/a"}}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "b to follow the create", 30*time.Second, func() bool { _, ok := b.Channel("hook"); return ok })
	if err := a.DeleteChannel(ctx, alice, "hook"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "b to follow the delete", 30*time.Second, func() bool { _, ok := b.Channel("hook"); return !ok })
	if got := repo.loads.Load() - loads; got > 2 {
		t.Errorf("%d reloads for two changes", got)
	}
}

// The PostgreSQL store is a channel Versioner.
var _ channels.Versioner = (*store.Store)(nil)
