package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/channels/channelrecord"
	"github.com/hbdmon/hbd/core/dispatch/dispatchrecord"
)

func TestUserChannelsAndDeliveriesSurviveRestart(t *testing.T) {
	forBackends(t, testUserChannelsAndDeliveriesSurviveRestart)
}

func testUserChannelsAndDeliveriesSurviveRestart(t *testing.T, be backend) {
	dir := be.place(t)
	ctx := context.Background()
	s, err := be.open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1711234567, 123456789)
	hook := channelrecord.Channel{Name: "hook", Type: "webhook", Owner: "alice", Private: true, MinLevel: "CRITICAL",
		Hosts: []string{"web*", "db01"}, Fields: map[string]string{"url": "https://example.com/h", "secret": "s3cr3t"},
		Source: channelrecord.SourceUser, Created: now, Updated: now}
	gone := channelrecord.Channel{Name: "gone", Type: "pushover", MinLevel: "WARNING", Source: channelrecord.SourceUser, Created: now, Updated: now}
	for _, c := range []channelrecord.Channel{hook, gone} {
		if err := s.PutUserChannel(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	hook.MinLevel, hook.Updated = "WARNING", now.Add(time.Minute)
	if err := s.PutUserChannel(ctx, hook); err != nil {
		t.Fatal(err)
	}
	ev := []byte(`{"ID":"e1","Host":"web01"}`)
	s.QueueDelivery(dispatchrecord.Delivery{ID: "d1", Channel: "hook", Event: ev, NextAt: now, Created: now})
	s.QueueDelivery(dispatchrecord.Delivery{ID: "d2", Channel: "gone", Event: ev, NextAt: now, Created: now.Add(time.Second)})
	s.QueueDelivery(dispatchrecord.Delivery{ID: "d3", Channel: "hook", Event: ev, NextAt: now, Created: now.Add(2 * time.Second)})
	s.UpdateDelivery("d1", 3, now.Add(time.Hour))
	s.DeleteDelivery("d3")
	if err := s.DeleteUserChannel(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = be.open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chans, err := s.UserChannels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(chans) != 1 {
		t.Fatalf("channels = %+v", chans)
	}
	got := chans[0]
	if !got.Created.Equal(hook.Created) || !got.Updated.Equal(hook.Updated) {
		t.Errorf("times = %v %v", got.Created, got.Updated)
	}
	got.Created, got.Updated = hook.Created, hook.Updated
	if !reflect.DeepEqual(got, hook) {
		t.Errorf("channel = %+v, want %+v", got, hook)
	}
	pending, err := s.PendingDeliveries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 {
		t.Fatalf("pending = %+v (deleting a channel drops its deliveries)", pending)
	}
	p := pending[0]
	if p.ID != "d1" || p.Channel != "hook" || string(p.Event) != string(ev) || p.Attempts != 3 ||
		!p.NextAt.Equal(now.Add(time.Hour)) || !p.Created.Equal(now) {
		t.Errorf("delivery = %+v", p)
	}
}

// TestUserChannelsVersionCountsEveryChangeOfAnyDaemon: two stores on one
// PostgreSQL database (two daemons); every put and delete through either
// changes the counter both read, and a read that changes nothing (or a
// failed write) leaves it.
func TestUserChannelsVersionCountsEveryChangeOfAnyDaemon(t *testing.T) {
	ctx := context.Background()
	dsn := postgresBackend.place(t)
	a, b := postgresBackend.openAt(t, dsn, 10), postgresBackend.openAt(t, dsn, 10)
	version := func(s *Store) int64 {
		t.Helper()
		v, err := s.UserChannelsVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	now := time.Unix(1711234567, 0)
	hook := channelrecord.Channel{Name: "hook", Type: "webhook", MinLevel: "WARNING", Source: channelrecord.SourceUser, Created: now, Updated: now}

	v0 := version(b)
	if _, err := a.UserChannels(ctx); err != nil {
		t.Fatal(err)
	}
	if v := version(b); v != v0 {
		t.Fatalf("a read changed the version: %d -> %d", v0, v)
	}
	steps := []struct {
		name   string
		change func() error
	}{
		{"created through a", func() error { return a.PutUserChannel(ctx, hook) }},
		{"changed through b", func() error { hook.MinLevel = "CRITICAL"; return b.PutUserChannel(ctx, hook) }},
		{"deleted through a", func() error { return a.DeleteUserChannel(ctx, "hook") }},
		{"unknown name deleted through b", func() error { return b.DeleteUserChannel(ctx, "nothing") }},
	}
	last := v0
	for _, st := range steps {
		if err := st.change(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		va, vb := version(a), version(b)
		if va != vb || va == last {
			t.Fatalf("%s: versions a %d, b %d, before %d: want one new version on both", st.name, va, vb, last)
		}
		last = va
	}

	s := sqliteBackend.openAt(t, sqliteBackend.place(t), 10)
	if _, err := s.UserChannelsVersion(ctx); !errors.Is(err, ErrNeedsPostgres) {
		t.Fatalf("SQLite: %v, want ErrNeedsPostgres", err)
	}
	if err := s.PutUserChannel(ctx, hook); err != nil {
		t.Fatalf("SQLite put: %v", err)
	}
}
