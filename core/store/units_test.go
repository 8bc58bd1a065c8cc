package store

import (
	"context"
	"database/sql"
	"reflect"
	"testing"

	"github.com/hbdmon/hbd/core/protocol"
)

// TestUnitsStoredPerHostAndPlugin: declared units survive a reopen, are
// written only when they change, a change replaces the plugin's units,
// and a host's plugins are bounded.
func TestUnitsStoredPerHostAndPlugin(t *testing.T) { forBackends(t, testUnitsStored) }

func testUnitsStored(t *testing.T, be backend) {
	ctx := context.Background()
	dir := be.place(t)
	s, err := be.open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := s.Units(ctx, "web01"); err != nil || u != nil {
		t.Fatalf("before any: %v, %v", u, err)
	}
	cpu := map[string]string{"cpu_percent": "percent", "frequency": "MHz"}
	net := map[string]string{"bytes_sent": "bytes_total", "connections.total": "count"}
	if err := s.SetUnits(ctx, "web01", protocol.Units{"cpu_monitor": cpu, "network_monitor": net}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUnits(ctx, "db01", protocol.Units{"cpu_monitor": {"cpu_percent": "percent"}}); err != nil {
		t.Fatal(err)
	}
	updated := func(host, plugin string) float64 {
		t.Helper()
		var ts float64
		if err := s.Reader().QueryRowContext(ctx, `SELECT updated FROM plugin_units WHERE host = ? AND plugin = ?`, host, plugin).Scan(&ts); err != nil {
			t.Fatalf("%s %s: %v", host, plugin, err)
		}
		return ts
	}
	// Unchanged units write nothing: the row keeps its time. Mark it.
	if err := s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE plugin_units SET updated = 1 WHERE host = 'web01'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The cache was filled by the first SetUnits: same units, no write.
	if err := s.SetUnits(ctx, "web01", protocol.Units{"cpu_monitor": {"frequency": "MHz", "cpu_percent": "percent"}}); err != nil {
		t.Fatal(err)
	}
	if u := updated("web01", "cpu_monitor"); u != 1 {
		t.Errorf("unchanged units were written again (updated %v)", u)
	}
	// A change replaces that plugin's units and leaves the others.
	cpu2 := map[string]string{"cpu_percent": "percent"}
	if err := s.SetUnits(ctx, "web01", protocol.Units{"cpu_monitor": cpu2}); err != nil {
		t.Fatal(err)
	}
	if u := updated("web01", "cpu_monitor"); u == 1 {
		t.Error("changed units were not written")
	}
	if u := updated("web01", "network_monitor"); u != 1 {
		t.Errorf("units of another plugin were written (updated %v)", u)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = be.openAt(t, dir, 10)
	got, err := s.Units(ctx, "web01")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{"cpu_monitor": cpu2, "network_monitor": net}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen\n got %v\nwant %v", got, want)
	}
	if got, _ := s.Units(ctx, "db01"); !reflect.DeepEqual(got, map[string]map[string]string{"cpu_monitor": {"cpu_percent": "percent"}}) {
		t.Errorf("db01: %v", got)
	}

	// At most MaxPluginsPerHost plugins per host keep units.
	many := protocol.Units{}
	for i := 0; i < MaxPluginsPerHost+5; i++ {
		many[string(rune('a'+i/26))+string(rune('a'+i%26))+"_p"] = map[string]string{"x": "count"}
	}
	if err := s.SetUnits(ctx, "big", many); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Units(ctx, "big"); len(got) != MaxPluginsPerHost {
		t.Errorf("big host keeps units of %d plugins, want %d", len(got), MaxPluginsPerHost)
	}
	var rows int
	if err := s.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM plugin_units WHERE host = 'big'`).Scan(&rows); err != nil || rows != MaxPluginsPerHost {
		t.Errorf("big host rows %d (%v)", rows, err)
	}
}
