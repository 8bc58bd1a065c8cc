package store

import (
	"context"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/dispatch/dispatchrecord"
)

func TestQueueDeliveriesNeverQueuesAPairTwice(t *testing.T) {
	forBackends(t, testQueueDeliveriesNeverQueuesAPairTwice)
}

func testQueueDeliveriesNeverQueuesAPairTwice(t *testing.T, be backend) {
	dir := be.place(t)
	ctx := context.Background()
	s, err := be.open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ep := dispatchrecord.EpisodeKey{Host: "web01", Metric: "cpu", StartMs: 1700000000123}
	now := time.Now()
	d := func(id, ch string) dispatchrecord.Delivery {
		return dispatchrecord.Delivery{ID: id, Channel: ch, Event: []byte(`{}`), NextAt: now, Created: now}
	}
	skipped, err := s.QueueDeliveries(ctx, "ev1", ep, []dispatchrecord.Delivery{d("d1", "a"), d("d2", "b")})
	if err != nil || len(skipped) != 0 {
		t.Fatalf("first queueing: %v %v", skipped, err)
	}
	s.Close()

	// Reopened (as after a crash), the same pairs are refused, a new
	// channel is not.
	s, err = be.open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	skipped, err = s.QueueDeliveries(ctx, "ev1", ep, []dispatchrecord.Delivery{d("d3", "a"), d("d4", "c")})
	if err != nil || !skipped["d3"] || skipped["d4"] || len(skipped) != 1 {
		t.Fatalf("second queueing: skipped %v, %v", skipped, err)
	}
	p, _ := s.PendingDeliveries(ctx)
	var ids []string
	for _, x := range p {
		ids = append(ids, x.ID)
	}
	if len(ids) != 3 || ids[0] != "d1" || ids[1] != "d2" || ids[2] != "d4" {
		t.Errorf("queue = %v, want d1 d2 d4", ids)
	}

	// Outcomes are counted per episode; the queue row goes with it.
	if err := s.CompleteDelivery(ctx, "d1", ep, true); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteDelivery(ctx, "d2", ep, false); err != nil {
		t.Fatal(err)
	}
	s.MarkNoChannel(dispatchrecord.EpisodeKey{Host: "db01", Metric: "cpu", StartMs: 5})
	s.DropDelivery("d4", ep)
	if err := s.JournalSync(ctx, "", "flush"); err != nil { // writes run in order
		t.Fatal(err)
	}
	eps, err := s.EpisodeDeliveryCounts(ctx, 10)
	if err != nil || len(eps) != 2 {
		t.Fatalf("episodes = %+v, %v", eps, err)
	}
	for _, e := range eps {
		switch e.Host {
		case "web01":
			if e.EpisodeKey != ep || e.Queued != 3 || e.Delivered != 1 || e.Failed != 2 || e.NoChannel {
				t.Errorf("web01 episode = %+v", e)
			}
		case "db01":
			if !e.NoChannel || e.Queued != 0 {
				t.Errorf("db01 episode = %+v", e)
			}
		}
	}
	if p, _ := s.PendingDeliveries(ctx); len(p) != 0 {
		t.Errorf("queue after the outcomes = %+v", p)
	}

	// A trim keeps the pairs whose delivery is still queued.
	if _, err := s.QueueDeliveries(ctx, "ev2", ep, []dispatchrecord.Delivery{d("d5", "a")}); err != nil {
		t.Fatal(err)
	}
	n, err := s.TrimDeliveryRecords(ctx, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pairs, _ := s.SentPairs(ctx, 10)
	if len(pairs) != 1 || pairs[0].EventID != "ev2" || n != 2+3 {
		t.Errorf("after the trim (%d rows): pairs %+v", n, pairs)
	}
}
