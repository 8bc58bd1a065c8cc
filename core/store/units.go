package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/hbdmon/hbd/core/protocol"
)

// Units of measurement the agents declare (protocol.Units): one row per
// host and plugin holding the plugin's declared units as a JSON object
// (key -> unit, keys as the agent declared them: metric paths or last path
// segments, resolved with protocol.UnitOf). They are written only when
// they change, kept in memory after the first read, and served with the
// plugin data. At most MaxPluginsPerHost plugins per host.

func init() {
	register(migration{Version: 4, Name: "plugin units", SQL: `
CREATE TABLE plugin_units (
	host    TEXT NOT NULL,
	plugin  TEXT NOT NULL,
	units   TEXT NOT NULL,
	updated REAL NOT NULL,
	PRIMARY KEY (host, plugin)
) WITHOUT ROWID;
`})
}

// unitCache is the memory copy of plugin_units: host -> plugin -> units.
// The inner maps are never modified once stored (a change replaces them),
// so readers may keep them.
type unitCache struct {
	mu     sync.Mutex
	loaded bool
	hosts  map[string]map[string]map[string]string
}

// unitsOf returns the store's unit cache.
func (s *Store) unitsOf() *unitCache { return &s.units }

// loadUnits reads plugin_units into the cache once. c.mu must be held.
func (s *Store) loadUnits(ctx context.Context, c *unitCache) error {
	if c.loaded {
		return nil
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT host, plugin, units FROM plugin_units`)
	if err != nil {
		return fmt.Errorf("read plugin units: %w", err)
	}
	defer rows.Close()
	hosts := map[string]map[string]map[string]string{}
	for rows.Next() {
		var host, plugin, raw string
		if err := rows.Scan(&host, &plugin, &raw); err != nil {
			return fmt.Errorf("read plugin units: %w", err)
		}
		var u map[string]string
		if json.Unmarshal([]byte(raw), &u) != nil {
			continue // not ours to repair; the next report replaces it
		}
		if hosts[host] == nil {
			hosts[host] = map[string]map[string]string{}
		}
		hosts[host][plugin] = u
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read plugin units: %w", err)
	}
	c.hosts, c.loaded = hosts, true
	return nil
}

// SetUnits records the units a host's agent declares for its plugins
// (checked with protocol.CleanUnits). Only plugins whose units differ from
// the stored ones are written; it returns once they are committed. A
// plugin beyond MaxPluginsPerHost units of the host is left out.
func (s *Store) SetUnits(ctx context.Context, host string, units protocol.Units) error {
	if len(units) == 0 {
		return nil
	}
	c := s.unitsOf()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := s.loadUnits(ctx, c); err != nil {
		return err
	}
	have := c.hosts[host]
	changed := map[string]map[string]string{}
	n := len(have)
	for plugin, u := range units {
		old, known := have[plugin]
		if known && maps.Equal(old, u) {
			continue
		}
		if !known {
			if n >= MaxPluginsPerHost {
				continue
			}
			n++
		}
		changed[plugin] = maps.Clone(u)
	}
	if len(changed) == 0 {
		return nil
	}
	now := toUnix(time.Now())
	err := s.Write(ctx, func(tx *sql.Tx) error {
		for plugin, u := range changed {
			raw, err := json.Marshal(u)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(`DELETE FROM plugin_units WHERE host = ? AND plugin = ?`, host, plugin); err != nil {
				return fmt.Errorf("units of %s %s: %w", host, plugin, err)
			}
			if _, err := tx.Exec(`INSERT INTO plugin_units (host, plugin, units, updated) VALUES (?, ?, ?, ?)`,
				host, plugin, string(raw), now); err != nil {
				return fmt.Errorf("units of %s %s: %w", host, plugin, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	next := maps.Clone(have)
	if next == nil {
		next = map[string]map[string]string{}
	}
	maps.Copy(next, changed)
	c.hosts[host] = next
	return nil
}

// Units returns the units declared for a host's plugins, plugin -> key ->
// unit (keys as declared; resolve a metric path with protocol.UnitOf);
// nil when none. The maps must not be modified.
func (s *Store) Units(ctx context.Context, host string) (map[string]map[string]string, error) {
	c := s.unitsOf()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := s.loadUnits(ctx, c); err != nil {
		return nil, err
	}
	return c.hosts[host], nil
}
