package store

import (
	"context"
	"database/sql"
	"reflect"
	"testing"

	"github.com/hbdmon/hbd/core/heartbeat/record"
)

func TestHostHeartbeatsSurviveReopen(t *testing.T) { forBackends(t, testHostHeartbeatsSurviveReopen) }

func testHostHeartbeatsSurviveReopen(t *testing.T, be backend) {
	ctx := context.Background()
	dir := be.place(t)
	s, err := be.open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.SaveHostHeartbeats([]record.Heartbeats{
		{Host: "web01", Families: map[string]float64{"ipv4": 1711234567.5, "ipv6": 1711234500}},
		{Host: "db01", Families: map[string]float64{"ipv4": 1711234000}},
		{Host: "empty"}, // nothing to remember
	})
	// A later save replaces the host's record: db01 now uses both.
	s.SaveHostHeartbeats([]record.Heartbeats{{Host: "db01", Families: map[string]float64{"ipv4": 1711234600, "ipv6": 1711234601}}})
	s.SaveHostHeartbeats([]record.Heartbeats{{Host: "gone", Families: map[string]float64{"ipv4": 1}}})
	s.DeleteHostHeartbeats("gone")
	// Close flushes the queued writes.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = be.openAt(t, dir, 10)
	got, err := s.HostHeartbeats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []record.Heartbeats{
		{Host: "db01", Families: map[string]float64{"ipv4": 1711234600, "ipv6": 1711234601}},
		{Host: "web01", Families: map[string]float64{"ipv4": 1711234567.5, "ipv6": 1711234500}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen\n got %+v\nwant %+v", got, want)
	}
	if ls := got[1].LastSeen(); ls != 1711234567.5 {
		t.Errorf("web01 last seen %v", ls)
	}
	var lastSeen float64
	if err := s.Reader().QueryRowContext(ctx, `SELECT last_seen FROM host_heartbeats WHERE host = 'db01'`).Scan(&lastSeen); err != nil || lastSeen != 1711234601 {
		t.Errorf("db01 last_seen column %v (%v)", lastSeen, err)
	}

	// A corrupt row is skipped, not fatal.
	if err := s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO host_heartbeats (host, families, last_seen) VALUES ('bad', 'not json', 0)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	got, err = s.HostHeartbeats(ctx)
	if err != nil || len(got) != 2 {
		t.Fatalf("with a corrupt row: %+v, %v", got, err)
	}
}
