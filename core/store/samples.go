package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotFound is returned when a host or plugin has no data.
var ErrNotFound = errors.New("not found")

// ErrTooManySeries is returned when a host's plugin brings more distinct
// metric sets than MaxSeriesPerPlugin (keys that keep changing).
var ErrTooManySeries = errors.New("too many distinct metric sets")

// MaxSeriesPerPlugin bounds the distinct path sets stored per host/plugin
// (within the retention period; trimmed sets no longer count).
const MaxSeriesPerPlugin = 1024

// MaxPluginsPerHost bounds the distinct plugins stored per host (within
// the retention period): a host inventing plugin names cannot grow the
// store without end.
const MaxPluginsPerHost = 64

// ErrTooManyPlugins is returned when a host reports more distinct plugins
// than MaxPluginsPerHost.
var ErrTooManyPlugins = errors.New("too many plugins")

// Sample is one stored reading: flattened metric paths (sorted) and their
// values, parallel slices.
type Sample struct {
	Timestamp float64
	Paths     []string
	Values    []float64
}

// PluginSample is a validated sample of one plugin ready to store.
type PluginSample struct {
	Plugin string
	Sample
}

// SampleEvent tells subscribers that a host's samples were committed.
type SampleEvent struct {
	Host    string
	Samples []PluginSample
}

// PluginSummary is the newest sample of a plugin and how many are in memory.
type PluginSummary struct {
	Latest Sample
	Count  int
}

// AppendSamples durably stores a batch of one host's samples, adds them to
// the in-memory rings and tells subscribers. It returns once committed. A
// sample with the same host, plugin, path set and timestamp as a stored one
// replaces it, so a resent batch is stored once.
func (s *Store) AppendSamples(ctx context.Context, host string, batch []PluginSample) error {
	if len(batch) == 0 {
		return nil
	}
	pins, err := s.pinSeries(host, batch)
	if err != nil {
		return err
	}
	ids := make([]int64, len(batch)) // set by the last run of the write
	now := toUnix(time.Now())
	writeSeen := s.seenDue(host, now)
	op := writeOp{done: make(chan error, 1), label: labelSamples}
	op.fn = func(tx *sql.Tx) error {
		rows := make([]any, 0, 3*len(batch))
		n := 0
		for _, ps := range batch {
			n += 8 * len(ps.Values)
		}
		blobs := make([]byte, 0, n) // every sample's value blob, back to back
		for i, ps := range batch {
			id := pins[i].id
			if id == 0 {
				// A new series is created in the transaction of its first
				// samples: it never exists empty but for a trim.
				joined := strings.Join(ps.Paths, "\n")
				if _, err := tx.Exec(`INSERT OR IGNORE INTO series (host, plugin, paths) VALUES (?, ?, ?)`, host, ps.Plugin, joined); err != nil {
					return err
				}
				if err := tx.QueryRow(`SELECT id FROM series WHERE host = ? AND plugin = ? AND paths = ?`, host, ps.Plugin, joined).Scan(&id); err != nil {
					return err
				}
			}
			ids[i] = id
			from := len(blobs)
			blobs = appendValues(blobs, ps.Values)
			rows = append(rows, id, ps.Timestamp, blobs[from:len(blobs):len(blobs)])
		}
		if s.pg {
			// Stored with the rest of the group's rows (runTx).
			s.txRows = append(s.txRows, rows...)
		} else if err := s.stmts.insertSamples(tx, lastOfEachKey(rows)); err != nil {
			return err
		}
		if !writeSeen {
			return nil
		}
		_, err := tx.Stmt(s.stmts.touchHost).Exec(now, host)
		return err
	}
	// The series stay pinned until the write's outcome is final, even when
	// ctx ends first: the write still happens.
	op.after = func(err error) { s.unpinSeries(pins, ids, err) }
	if err := s.writeOp(ctx, op); err != nil {
		return fmt.Errorf("store samples of %s: %w", host, err)
	}
	for _, ps := range batch {
		s.ringFor(host, ps.Plugin).add(ps.Timestamp, ps.Paths, ps.Values)
	}
	s.touchHost(host, now)
	s.stats.SamplesAppended.Add(uint64(len(batch)))
	s.publish(SampleEvent{Host: host, Samples: batch})
	return nil
}

// lastSeenEvery is how often a host's last_seen is written with its
// samples: the memory copy is exact, the stored one (read at restart) at
// most this old. Writing it with every batch dirtied one page of the hosts
// table per batch, and so a WAL frame per batch.
const lastSeenEvery = 30.0 // seconds

// seenDue reports whether a batch of host at now should write last_seen,
// and if so counts it as written.
func (s *Store) seenDue(host string, now float64) bool {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	if last, ok := s.seenWritten[host]; ok && now-last < lastSeenEvery && now >= last {
		return false
	}
	if s.seenWritten == nil {
		s.seenWritten = map[string]float64{}
	}
	s.seenWritten[host] = now
	return true
}

// batchSeriesKey is seriesCacheKey of batch[i], reusing the key of an
// earlier sample of the same plugin that shares its Paths slice (the
// decoder shares one per shape), so a batch builds a key per shape, not
// per sample.
func batchSeriesKey(host string, batch []PluginSample, keys []string, i int) string {
	ps := batch[i]
	for j := i - 1; j >= 0 && j >= i-8; j-- {
		q := batch[j]
		if q.Plugin == ps.Plugin && len(q.Paths) == len(ps.Paths) && len(ps.Paths) > 0 && &q.Paths[0] == &ps.Paths[0] {
			return keys[j]
		}
	}
	return seriesCacheKey(host, ps.Plugin, ps.Paths)
}

func seriesCacheKey(host, plugin string, paths []string) string {
	return host + "\x00" + plugin + "\x00" + strings.Join(paths, "\n")
}

// seriesEntry is the cached id of a (host, plugin, path set) and how many
// queued batches hold it. A series with users is never deleted
// (dropEmptySeries); id is 0 until the batch that creates the series
// commits. id is read under s.mu (read) and written under s.mu (write).
type seriesEntry struct {
	id     int64
	key    string
	series seriesKey
	uses   atomic.Int32
}

// pinned is one sample's series as its batch saw it: id 0 means the write
// resolves (and creates) the series itself.
type pinned struct {
	e  *seriesEntry
	id int64
}

// pinSeries finds or reserves the series of every sample and marks it in
// use, so no trim deletes it before the batch's write is final. It checks
// the bounds on series and plugins for new ones. Only memory is touched.
func (s *Store) pinSeries(host string, batch []PluginSample) ([]pinned, error) {
	pins := make([]pinned, len(batch))
	keys := make([]string, len(batch))
	missing := false
	s.mu.RLock()
	for i := range batch {
		keys[i] = batchSeriesKey(host, batch, keys, i)
		if e := s.series[keys[i]]; e != nil {
			e.uses.Add(1)
			pins[i] = pinned{e, e.id}
		} else {
			missing = true
		}
	}
	s.mu.RUnlock()
	if !missing {
		return pins, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, ps := range batch {
		if pins[i].e != nil {
			continue
		}
		e := s.series[keys[i]]
		if e == nil {
			k := seriesKey{host, ps.Plugin}
			n, plugins := s.seriesCount[k], s.pluginCount[host]
			var err error
			if n == 0 && plugins >= MaxPluginsPerHost {
				err = fmt.Errorf("%w: host %s reports %d plugins (at most %d)", ErrTooManyPlugins, host, plugins, MaxPluginsPerHost)
			} else if n >= MaxSeriesPerPlugin {
				err = fmt.Errorf("%w: plugin %s of host %s has %d (at most %d): its keys keep changing", ErrTooManySeries, ps.Plugin, host, n, MaxSeriesPerPlugin)
			}
			if err != nil {
				s.releaseLocked(pins, nil, err)
				return nil, err
			}
			e = &seriesEntry{key: keys[i], series: k}
			s.series[keys[i]] = e
			s.countSeries(k, 1)
		}
		e.uses.Add(1)
		pins[i] = pinned{e, e.id}
	}
	return pins, nil
}

// unpinSeries releases a batch's series once its write is final (err is
// its outcome; ids the series it used): a created series gets its id, and
// one whose creation failed leaves the cache when no batch holds it.
func (s *Store) unpinSeries(pins []pinned, ids []int64, err error) {
	created := false
	for _, p := range pins {
		created = created || p.id == 0
	}
	if !created {
		for _, p := range pins {
			p.e.uses.Add(-1)
		}
		return
	}
	s.mu.Lock()
	s.releaseLocked(pins, ids, err)
	s.mu.Unlock()
}

// releaseLocked is unpinSeries with s.mu held for writing; pins may end
// with unset entries (a batch refused half-way).
func (s *Store) releaseLocked(pins []pinned, ids []int64, err error) {
	for i, p := range pins {
		if p.e == nil {
			continue
		}
		if p.id == 0 && err == nil && p.e.id == 0 {
			p.e.id = ids[i]
		}
		if p.e.uses.Add(-1) == 0 && p.e.id == 0 && s.series[p.e.key] == p.e {
			delete(s.series, p.e.key)
			s.countSeries(p.e.series, -1)
		}
	}
}

// countSeries adds d to the series count of k and keeps the per-host
// plugin count in step. s.mu must be held for writing.
func (s *Store) countSeries(k seriesKey, d int) {
	before := s.seriesCount[k]
	after := before + d
	if after <= 0 {
		delete(s.seriesCount, k)
	} else {
		s.seriesCount[k] = after
	}
	switch {
	case before == 0 && after > 0:
		s.pluginCount[k.host]++
	case before > 0 && after <= 0:
		if s.pluginCount[k.host]--; s.pluginCount[k.host] <= 0 {
			delete(s.pluginCount, k.host)
		}
	}
}

func (s *Store) ringFor(host, plugin string) *ring {
	k := seriesKey{host, plugin}
	s.mu.RLock()
	r := s.rings[k]
	s.mu.RUnlock()
	if r != nil {
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r = s.rings[k]; r == nil {
		r = newRing(s.opts.SampleHistory)
		s.addRingLocked(k, r)
	}
	return r
}

// addRingLocked files a new ring under its key and its host. s.mu must be
// held for writing.
func (s *Store) addRingLocked(k seriesKey, r *ring) {
	r.attach(&s.ringMem)
	s.rings[k] = r
	byPlugin := s.hostRings[k.host]
	if byPlugin == nil {
		byPlugin = map[string]*ring{}
		s.hostRings[k.host] = byPlugin
	}
	byPlugin[k.plugin] = r
}

// Latest returns up to limit recent samples of a host's plugin, newest
// first, from memory. It returns ErrNotFound when there are none.
func (s *Store) Latest(host, plugin string, limit int) ([]Sample, error) {
	s.mu.RLock()
	r := s.rings[seriesKey{host, plugin}]
	s.mu.RUnlock()
	if r == nil {
		return nil, ErrNotFound
	}
	return r.latest(limit), nil
}

// Plugins returns the newest sample and in-memory count of every plugin of
// a host. It costs the host's own plugins, whatever the fleet's size.
func (s *Store) Plugins(host string) map[string]PluginSummary {
	s.mu.RLock()
	byPlugin := s.hostRings[host]
	rings := make(map[string]*ring, len(byPlugin))
	for p, r := range byPlugin {
		rings[p] = r
	}
	s.mu.RUnlock()
	out := make(map[string]PluginSummary, len(rings))
	for p, r := range rings {
		l := r.latest(1)
		if len(l) == 0 {
			continue
		}
		out[p] = PluginSummary{Latest: l[0], Count: r.count()}
	}
	return out
}

// History reads persisted samples of a host's plugin with since <= ts <=
// until, newest first, at most limit.
func (s *Store) History(ctx context.Context, host, plugin string, since, until float64, limit int) ([]Sample, error) {
	rows, err := s.rdb.QueryContext(ctx, `
SELECT s.paths, x.ts, x.vals FROM samples x JOIN series s ON s.id = x.series
WHERE s.host = ? AND s.plugin = ? AND x.ts >= ? AND x.ts <= ?
ORDER BY x.ts DESC LIMIT ?`, host, plugin, since, until, limit)
	if err != nil {
		return nil, fmt.Errorf("history %s/%s: %w", host, plugin, err)
	}
	defer rows.Close()
	var out []Sample
	for rows.Next() {
		var paths string
		var ts float64
		var blob []byte
		if err := rows.Scan(&paths, &ts, &blob); err != nil {
			return nil, err
		}
		smp, err := decodeSample(paths, ts, blob)
		if err != nil {
			s.log.Warn("skipping undecodable sample", "host", host, "plugin", plugin, "error", err)
			continue
		}
		out = append(out, smp)
	}
	return out, rows.Err()
}

func decodeSample(paths string, ts float64, blob []byte) (Sample, error) {
	p := strings.Split(paths, "\n")
	if len(blob) != 8*len(p) {
		return Sample{}, fmt.Errorf("sample at %v: %d bytes for %d paths", ts, len(blob), len(p))
	}
	return Sample{Timestamp: ts, Paths: p, Values: decodeValues(blob)}, nil
}

// appendValues appends the little-endian float64s of v to b.
func appendValues(b []byte, v []float64) []byte {
	for _, f := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	return b
}

func encodeValues(v []float64) []byte {
	b := make([]byte, 8*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(f))
	}
	return b
}

func decodeValues(b []byte) []float64 {
	v := make([]float64, len(b)/8)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return v
}

// load fills the caches and rings from the database at start. It streams
// the rows one (host, plugin) at a time: only that plugin's newest samples
// are held before its ring is built (per worker), never the whole
// database's.
func (s *Store) load(ctx context.Context) error {
	rows, err := s.wdb.QueryContext(ctx, `SELECT name, dyn, first_seen, last_seen FROM hosts`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var h HostInfo
		if err := rows.Scan(&h.Name, &h.Dyn, &h.FirstSeen, &h.LastSeen); err != nil {
			rows.Close()
			return err
		}
		s.hosts[h.Name] = h
		if h.Dyn {
			s.dynHosts++
		}
	}
	rows.Close()
	// The series list (not their samples) is read first: the writer's one
	// connection cannot hold this cursor open while it reads samples.
	var all []loadSeries
	rows, err = s.wdb.QueryContext(ctx, `SELECT id, host, plugin, paths FROM series ORDER BY host, plugin, id`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var x loadSeries
		if err := rows.Scan(&x.id, &x.host, &x.plugin, &x.paths); err != nil {
			rows.Close()
			return err
		}
		all = append(all, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// The (host, plugin) groups of the list, each built into one ring by
	// one of a few workers on the read pool (the rows are the work; with
	// two cores, two readers halve the restart).
	type span struct{ start, end int }
	var groups []span
	for start := 0; start < len(all); {
		end := start
		for ; end < len(all) && all[end].host == all[start].host && all[end].plugin == all[start].plugin; end++ {
			x := all[end]
			k := seriesKey{x.host, x.plugin}
			key := x.host + "\x00" + x.plugin + "\x00" + x.paths
			s.series[key] = &seriesEntry{id: x.id, key: key, series: k}
			s.countSeries(k, 1)
		}
		groups = append(groups, span{start, end})
		start = end
	}
	rings := make([]*ring, len(groups))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), loadWorkers); w++ {
		wg.Go(func() {
			newest, err := s.rdb.PrepareContext(ctx, `SELECT ts, vals FROM samples WHERE series = ? ORDER BY ts DESC LIMIT ?`)
			if err != nil {
				cancel(err)
				return
			}
			defer newest.Close()
			var l groupLoader
			for {
				g := int(next.Add(1) - 1)
				if g >= len(groups) || ctx.Err() != nil {
					return
				}
				r, err := l.build(ctx, s, newest, all[groups[g].start:groups[g].end])
				if err != nil {
					cancel(err)
					return
				}
				rings[g] = r
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	for g, r := range rings {
		if r != nil {
			x := all[groups[g].start]
			s.addRingLocked(seriesKey{x.host, x.plugin}, r)
		}
	}
	return nil
}

// loadWorkers bounds the goroutines (and read connections) of a restart.
const loadWorkers = 4

// loadSeries is a stored series as the restart reads it.
type loadSeries struct {
	id                  int64
	host, plugin, paths string
}

// groupLoader builds the ring of one (host, plugin) from its series'
// newest rows; its buffers are reused from group to group.
type groupLoader struct {
	rows []loadRow
	vals []float64 // the values of rows, back to back
}

type loadRow struct {
	ts    float64
	paths []string
	off   int // of its values in vals
}

func (l *groupLoader) build(ctx context.Context, s *Store, newest *sql.Stmt, list []loadSeries) (*ring, error) {
	l.rows, l.vals = l.rows[:0], l.vals[:0]
	for _, x := range list {
		paths := strings.Split(x.paths, "\n") // shared by the series' samples
		from := len(l.rows)
		r, err := newest.QueryContext(ctx, x.id, s.opts.SampleHistory)
		if err != nil {
			return nil, err
		}
		for r.Next() {
			var ts float64
			var blob sql.RawBytes
			if err := r.Scan(&ts, &blob); err != nil {
				r.Close()
				return nil, err
			}
			if len(blob) != 8*len(paths) {
				// One bad row must not keep the daemon from starting.
				s.log.Warn("skipping undecodable sample", "host", x.host, "plugin", x.plugin,
					"error", fmt.Errorf("sample at %v: %d bytes for %d paths", ts, len(blob), len(paths)))
				continue
			}
			l.rows = append(l.rows, loadRow{ts: ts, paths: paths, off: len(l.vals)})
			for i := 0; i < len(blob); i += 8 {
				l.vals = append(l.vals, math.Float64frombits(binary.LittleEndian.Uint64(blob[i:])))
			}
		}
		r.Close()
		if err := r.Err(); err != nil {
			return nil, err
		}
		slices.Reverse(l.rows[from:]) // oldest first
	}
	if len(l.rows) == 0 {
		return nil, nil
	}
	if len(list) > 1 {
		// Several path sets of one plugin: merge them by time.
		sort.SliceStable(l.rows, func(i, j int) bool { return l.rows[i].ts < l.rows[j].ts })
	}
	keep := l.rows
	if len(keep) > s.opts.SampleHistory {
		keep = keep[len(keep)-s.opts.SampleHistory:]
	}
	rg := newRing(s.opts.SampleHistory)
	for _, row := range keep {
		rg.add(row.ts, row.paths, l.vals[row.off:row.off+len(row.paths)])
	}
	clear(l.rows) // drop the paths; the ring copied the values
	return rg, nil
}

// MemoryStats reports the bytes held by the in-memory sample columns and how
// many values they hold: a running total that every ring keeps up to date
// as it changes, so reading it (every /metrics scrape) locks nothing.
func (s *Store) MemoryStats() (bytes, values int) {
	return int(s.ringMem.bytes.Load()), int(s.ringMem.values.Load())
}

// memoryByScan is MemoryStats counted ring by ring, under every ring's
// lock; the tests hold the running total to it.
func (s *Store) memoryByScan() (bytes, values int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, r := range s.rings {
		b, v := r.memBytes()
		bytes += b
		values += v
	}
	return bytes, values
}

// lastOfEachKey drops the rows (series, ts, vals triples) that a later
// row of the same series and timestamp replaces, keeping order: one
// multi-row statement must not touch a row twice (PostgreSQL refuses
// such an upsert; SQLite would keep the later row anyway).
func lastOfEachKey(rows []any) []any {
	type key struct {
		id int64
		ts float64
	}
	if len(rows) <= 3 {
		return rows
	}
	last := make(map[key]int, len(rows)/3)
	for i := 0; i < len(rows); i += 3 {
		last[key{rows[i].(int64), rows[i+1].(float64)}] = i
	}
	if len(last) == len(rows)/3 {
		return rows
	}
	out := make([]any, 0, 3*len(last))
	for i := 0; i < len(rows); i += 3 {
		if last[key{rows[i].(int64), rows[i+1].(float64)}] == i {
			out = append(out, rows[i:i+3]...)
		}
	}
	return out
}
