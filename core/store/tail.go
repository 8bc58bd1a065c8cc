package store

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Tailing new sample rows (issue 15; PostgreSQL only): samples one daemon
// stores must reach the leader's evaluation, wherever the agent sent
// them. Every sample row carries the id of the transaction that wrote it
// (xid, an xid8, migration 44); the leader reads the rows whose xid is
// below pg_snapshot_xmin of a fresh snapshot, so every transaction it
// reads past has ended (committed or not): a transaction still in flight
// when the reader passed it would otherwise be skipped for good. A row
// upserted again later keeps its first xid; its values are then not read
// again (the evaluator ignores a timestamp it has seen anyway).
func init() {
	registerPG(migration{Version: 44, Name: "sample transaction ids", SQL: `
ALTER TABLE samples ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX samples_xid ON samples (xid, series, ts);
`})
}

// TailCursor is a position in the xid order of sample rows. The zero
// value is "from the start"; SampleTailStart gives "from now".
type TailCursor struct {
	xid    uint64 // rows of transactions below xid are read (or skipped)
	series int64  // within xid, rows up to (series, ts) are read
	ts     float64
}

// String shows the cursor for logs: xid/series/ts.
func (c TailCursor) String() string { return fmt.Sprintf("%d/%d/%g", c.xid, c.series, c.ts) }

// TailedSamples are one host's samples read by TailSamples, oldest
// transaction first.
type TailedSamples struct {
	Host    string
	Samples []PluginSample
}

// AdoptSamples puts samples another daemon stored (read by TailSamples)
// into this daemon's memory as if it had ingested them: each sample its
// rings do not hold yet is added and the new ones are handed to the
// subscribers (live feed, alerting), in order; the ones this daemon
// stored itself, or adopted before, are skipped. It returns how many were
// new.
// A host this daemon has not heard of yet (it reported only to others, or
// registered itself through another daemon) is read from the database
// first, so host lists and the dynamic-host checks know it.
func (s *Store) AdoptSamples(ctx context.Context, t TailedSamples) (int, error) {
	if err := s.adoptHost(ctx, t.Host); err != nil {
		return 0, err
	}
	fresh := make([]PluginSample, 0, len(t.Samples))
	for _, ps := range t.Samples {
		if s.ringFor(t.Host, ps.Plugin).add(ps.Timestamp, ps.Paths, ps.Values) {
			fresh = append(fresh, ps)
		}
	}
	if len(fresh) > 0 {
		s.touchHost(t.Host, toUnix(time.Now()))
		s.publish(SampleEvent{Host: t.Host, Samples: fresh})
	}
	return len(fresh), nil
}

// adoptHost reads a host another daemon recorded into memory, once.
func (s *Store) adoptHost(ctx context.Context, name string) error {
	s.mu.RLock()
	_, ok := s.hosts[name]
	s.mu.RUnlock()
	if ok {
		return nil
	}
	h := HostInfo{Name: name}
	err := s.rdb.QueryRowContext(ctx, `SELECT dyn, first_seen, last_seen FROM hosts WHERE name = $1`, name).Scan(&h.Dyn, &h.FirstSeen, &h.LastSeen)
	if err != nil {
		return fmt.Errorf("host %s stored by another daemon: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.hosts[name]; !ok {
		s.hosts[name] = h
		if h.Dyn {
			s.dynHosts++
		}
	}
	return nil
}

// SampleTailStart returns a cursor that reads rows committed from now on
// (of transactions not yet ended).
func (s *Store) SampleTailStart(ctx context.Context) (TailCursor, error) {
	if !s.pg {
		return TailCursor{}, ErrNoLease
	}
	var x string
	if err := s.rdb.QueryRowContext(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&x); err != nil {
		return TailCursor{}, fmt.Errorf("sample tail: %w", err)
	}
	v, err := strconv.ParseUint(x, 10, 64)
	if err != nil {
		return TailCursor{}, fmt.Errorf("sample tail: xmin %q: %w", x, err)
	}
	return TailCursor{xid: v}, nil
}

// TailFromOpen returns the cursor of the rows committed from just before
// the store loaded its recent samples at open (PostgreSQL): tailing from
// it misses nothing the load did not read (what it did read comes again,
// and AdoptSamples skips it).
func (s *Store) TailFromOpen() TailCursor { return s.openTail }

// TailSamples returns up to limit sample rows after c of transactions that
// have ended, grouped by host in row order, and the cursor after them.
func (s *Store) TailSamples(ctx context.Context, c TailCursor, limit int) ([]TailedSamples, TailCursor, error) {
	if !s.pg {
		return nil, c, ErrNoLease
	}
	// (xid, series, ts) > cursor, below the snapshot's xmin.
	rows, err := s.rdb.QueryContext(ctx, `
WITH snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
SELECT x.xid::text, x.series, x.ts, x.vals, se.host, se.plugin, se.paths
FROM samples x JOIN series se ON se.id = x.series, snap
WHERE x.xid < snap.xmin AND (x.xid, x.series, x.ts) > ($1::text::xid8, $2, $3)
ORDER BY x.xid, x.series, x.ts
LIMIT $4`, strconv.FormatUint(c.xid, 10), c.series, c.ts, limit)
	if err != nil {
		return nil, c, fmt.Errorf("sample tail: %w", err)
	}
	defer rows.Close()
	var out []TailedSamples
	byHost := map[string]int{}
	n := 0
	for rows.Next() {
		var xs, host, plugin, paths string
		var series int64
		var ts float64
		var blob []byte
		if err := rows.Scan(&xs, &series, &ts, &blob, &host, &plugin, &paths); err != nil {
			return nil, c, fmt.Errorf("sample tail: %w", err)
		}
		x, err := strconv.ParseUint(xs, 10, 64)
		if err != nil {
			return nil, c, fmt.Errorf("sample tail: xid %q: %w", xs, err)
		}
		c = TailCursor{xid: x, series: series, ts: ts}
		n++
		smp, err := decodeSample(paths, ts, blob)
		if err != nil {
			continue
		}
		i, ok := byHost[host]
		if !ok {
			i = len(out)
			byHost[host] = i
			out = append(out, TailedSamples{Host: host})
		}
		out[i].Samples = append(out[i].Samples, PluginSample{Plugin: plugin, Sample: smp})
	}
	if err := rows.Err(); err != nil {
		return nil, c, fmt.Errorf("sample tail: %w", err)
	}
	return out, c, nil
}
