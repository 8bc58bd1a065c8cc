package store

import (
	"context"
	"reflect"
	"testing"

	"github.com/hbdmon/hbd/core/alert/record"
)

func TestAlertStatesSurviveRestart(t *testing.T) { forBackends(t, testAlertStatesSurviveRestart) }

func testAlertStatesSurviveRestart(t *testing.T, be backend) {
	dir := be.place(t)
	ctx := context.Background()
	s, err := be.open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := record.SavedState{Host: "web01", Metric: "cpu_monitor.cpu_percent", Level: "WARNING", Since: 100, LastValue: 85.5,
		LastCheck: 160, NotificationCount: 2, LastNotified: 150, NotifiedLevel: "WARNING", Acknowledged: true, AckBy: "alice"}
	b := record.SavedState{Host: "web01", Metric: "heartbeat.ipv6", Level: "CRITICAL", Since: 90, LastValue: 2, LastCheck: 90, Detail: "DOWN", Flapping: true, EpisodeStart: 80}
	gone := record.SavedState{Host: "db01", Metric: "memory_monitor.percent", Level: "OK", Since: 1, LastCheck: 1}
	s.SaveAlertStates([]record.SavedState{a, b, gone}, nil)
	a.LastValue = 86 // a later save of the same key wins
	s.SaveAlertStates([]record.SavedState{a}, []record.Key{{Host: "db01", Metric: "memory_monitor.percent"}})
	sl := record.Silence{ID: "abc", Host: "web*", Metric: "**", Created: 10, Until: 7210, CreatedBy: "bob", Comment: "maintenance"}
	if err := s.SaveSilence(ctx, sl); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSilence(ctx, record.Silence{ID: "old", Host: "x", Metric: "y", Created: 5, Until: 6}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSilence(ctx, record.Silence{ID: "older", Host: "x", Metric: "y", Created: 4, Until: 6}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSilenceSync(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	s.DeleteSilence("older")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = be.openAt(t, dir, 10)
	got, err := s.AlertStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []record.SavedState{a, b}; !reflect.DeepEqual(got, want) {
		t.Fatalf("states after restart:\n got %+v\nwant %+v", got, want)
	}
	sils, err := s.Silences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sils, []record.Silence{sl}) {
		t.Fatalf("silences after restart: %+v", sils)
	}
}

func TestSaveAlertStatesSyncIsVisibleAtOnce(t *testing.T) {
	forBackends(t, testSaveAlertStatesSyncIsVisibleAtOnce)
}

func testSaveAlertStatesSyncIsVisibleAtOnce(t *testing.T, be backend) {
	s := be.openAt(t, be.place(t), 10)
	ctx := context.Background()
	if err := s.SaveAlertStatesSync(ctx, []record.SavedState{{Host: "h", Metric: "m", Level: "OK"}}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.AlertStates(ctx)
	if err != nil || len(got) != 1 || got[0].Metric != "m" {
		t.Fatalf("got %+v, %v", got, err)
	}
	if err := s.SaveAlertStatesSync(ctx, nil, []record.Key{{Host: "h", Metric: "m"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.AlertStates(ctx); len(got) != 0 {
		t.Fatalf("not deleted: %+v", got)
	}
	if sils, _ := s.Silences(ctx); sils == nil || len(sils) != 0 {
		t.Fatalf("empty silences must be an empty slice, got %#v", sils)
	}
}
