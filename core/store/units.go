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
// they change, kept in memory (read again after unitsFresh), and served with the
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

// unitCache is the memory copy of plugin_units: host -> plugin -> units,
// each host's read from the database at most unitsFresh ago (several
// daemons on one PostgreSQL database see each other's writes within
// it). The inner maps are never modified once stored (a change replaces
// them), so readers may keep them.
type unitCache struct {
	mu    sync.Mutex
	hosts map[string]hostUnits
}

type hostUnits struct {
	plugins map[string]map[string]string
	read    time.Time
}

// unitsFresh is how long a host's units are served from memory.
const unitsFresh = time.Minute

// unitsOf returns the store's unit cache.
func (s *Store) unitsOf() *unitCache { return &s.units }

// hostUnitsLocked returns a host's units, read again when the memory copy
// is older than unitsFresh. c.mu must be held.
func (s *Store) hostUnitsLocked(ctx context.Context, c *unitCache, host string) (map[string]map[string]string, error) {
	if h, ok := c.hosts[host]; ok && time.Since(h.read) < unitsFresh {
		return h.plugins, nil
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT plugin, units FROM plugin_units WHERE host = ?`, host)
	if err != nil {
		return nil, fmt.Errorf("read plugin units of %s: %w", host, err)
	}
	defer rows.Close()
	var plugins map[string]map[string]string
	for rows.Next() {
		var plugin, raw string
		if err := rows.Scan(&plugin, &raw); err != nil {
			return nil, fmt.Errorf("read plugin units of %s: %w", host, err)
		}
		var u map[string]string
		if json.Unmarshal([]byte(raw), &u) != nil {
			continue // not ours to repair; the next report replaces it
		}
		if plugins == nil {
			plugins = map[string]map[string]string{}
		}
		plugins[plugin] = u
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read plugin units of %s: %w", host, err)
	}
	if c.hosts == nil {
		c.hosts = map[string]hostUnits{}
	}
	c.hosts[host] = hostUnits{plugins, time.Now()}
	return plugins, nil
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
	have, err := s.hostUnitsLocked(ctx, c, host)
	if err != nil {
		return err
	}
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
	err = s.Write(ctx, func(tx *sql.Tx) error {
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
	c.hosts[host] = hostUnits{next, time.Now()}
	return nil
}

// Units returns the units declared for a host's plugins, plugin -> key ->
// unit (keys as declared; resolve a metric path with protocol.UnitOf);
// nil when none. The maps must not be modified.
func (s *Store) Units(ctx context.Context, host string) (map[string]map[string]string, error) {
	c := s.unitsOf()
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.hostUnitsLocked(ctx, c, host)
}
