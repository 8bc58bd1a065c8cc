package store

import (
	"context"
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
