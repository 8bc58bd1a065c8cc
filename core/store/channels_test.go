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

// TestOutboxQueuesNothingForADeletedUserChannel: the outbox queues a
// delivery to a user channel only while the channel is stored. A channel
// deleted before the write gets no row (nor a pair); a deletion in
// progress (its transaction holding the channel row) makes the write wait
// for it and then skip the channel, so no row outlives its channel.
// Deliveries to config channels are not checked.
func TestOutboxQueuesNothingForADeletedUserChannel(t *testing.T) {
	ctx := context.Background()
	dsn := postgresBackend.place(t)
	a, b := postgresBackend.openAt(t, dsn, 10), postgresBackend.openAt(t, dsn, 10)
	now := time.Now()
	for _, name := range []string{"hook", "gone", "going"} {
		c := channelrecord.Channel{Name: name, Type: "webhook", MinLevel: "WARNING", Source: channelrecord.SourceUser, Created: now, Updated: now}
		if err := b.PutUserChannel(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.DeleteUserChannel(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	ep := dispatchrecord.EpisodeKey{Host: "h", Metric: "m", StartMs: 1000}
	queue := func(event string, channels ...string) <-chan map[string]bool {
		var ds []dispatchrecord.Delivery
		for _, ch := range channels {
			ds = append(ds, dispatchrecord.Delivery{ID: event + "-" + ch, Channel: ch, Event: []byte(`{}`), Created: now,
				UserChannel: ch != "ops"})
		}
		out := make(chan map[string]bool, 1)
		a.QueueOutbox(Fence{}, event, ep, ds, func(skipped map[string]bool, err error) {
			if err != nil {
				t.Errorf("queue %s: %v", event, err)
			}
			out <- skipped
		})
		return out
	}
	queued := func() (out []string) {
		rows, err := b.rdb.QueryContext(ctx, `SELECT id FROM notify_queue ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			rows.Scan(&id)
			out = append(out, id)
		}
		return out
	}

	skipped := <-queue("e1", "hook", "gone", "ops")
	if !reflect.DeepEqual(skipped, map[string]bool{"e1-gone": true}) {
		t.Fatalf("skipped %v, want e1-gone", skipped)
	}
	if got := queued(); !reflect.DeepEqual(got, []string{"e1-hook", "e1-ops"}) {
		t.Fatalf("outbox holds %v", got)
	}
	var pairs int
	if err := b.rdb.QueryRowContext(ctx, `SELECT count(*) FROM notify_sent WHERE channel = 'gone'`).Scan(&pairs); err != nil || pairs != 0 {
		t.Fatalf("%d pairs of the deleted channel (%v)", pairs, err)
	}

	// A deletion in progress: the write waits for it.
	tx, err := b.wdb.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM notification_channels WHERE name = 'going'`); err != nil {
		t.Fatal(err)
	}
	done := queue("e2", "going", "hook")
	var waiting bool
	pollUntil(t, "the outbox write to wait for the deletion's lock", func() bool {
		err := b.rdb.QueryRowContext(ctx, `SELECT count(*) > 0 FROM pg_locks WHERE NOT granted`).Scan(&waiting)
		return err == nil && waiting
	})
	if _, err := tx.Exec(`DELETE FROM notify_queue WHERE channel = 'going'`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if skipped := <-done; !reflect.DeepEqual(skipped, map[string]bool{"e2-going": true}) {
		t.Fatalf("skipped %v, want e2-going", skipped)
	}
	if got := queued(); !reflect.DeepEqual(got, []string{"e1-hook", "e1-ops", "e2-hook"}) {
		t.Fatalf("outbox holds %v", got)
	}
}
