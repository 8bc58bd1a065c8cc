// Package store keeps hbd's data: recent samples in memory (a compact ring
// per host and plugin) and everything durable in one SQLite file (WAL mode)
// under data_dir.
//
// Writes go through a single writer goroutine that group-commits whatever is
// queued into one transaction. Write waits for the commit of its transaction,
// so a caller that acknowledges after Write returns never acknowledges data
// that a crash could lose; Go queues a write without waiting (journal lines).
// Reads of recent samples never touch SQLite.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the database file inside data_dir.
const FileName = "hbd.db"

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("store is closed")

// Options tune a Store.
type Options struct {
	SampleHistory int           // samples kept in memory per host/plugin
	Retention     time.Duration // persisted samples and journal older than this are trimmed; 0 keeps all
	Logger        hclog.Logger
	// Password, for PostgreSQL, replaces the DSN's password (the
	// config's store.password_file); "" keeps the DSN's, PGPASSWORD's or
	// .pgpass's.
	Password string
}

// Store is the daemon's storage. It is safe for concurrent use.
//
// Locks: mu guards the in-memory caches (rings and their per-host index,
// hosts, series ids and counts) and is never held across a disk write or
// while waiting on the writer; the writer goroutine itself takes it only
// for cache updates (dropEmptySeries, unpinSeries). A ring's own lock is
// taken after mu or alone. Series: a batch pins the series it uses
// (pinSeries) until its write is final, and no series with a pin is
// deleted, so a cached id always names a stored series. Retention runs
// in transactions of at most trimChunk rows, each alone on the writer.
type Store struct {
	path string  // the SQLite file, or a PostgreSQL database described without credentials
	pg   bool    // PostgreSQL (OpenPostgres) rather than SQLite
	ldb  *sql.DB // PostgreSQL: the leader lease's own connection (lease.go), nil for SQLite
	hdb  *sql.DB // PostgreSQL: the shared heartbeat liveness's connections (heartbeat_shared.go), nil for SQLite
	odb  *sql.DB // PostgreSQL: the cluster outbox's connections (outbox.go), nil for SQLite
	cdb  *sql.DB // PostgreSQL: the alert commands' connections (alertcommands.go), nil for SQLite
	wdb  *sql.DB // the writer's single connection
	rdb  *sql.DB // readers
	// openTail is where tailing other daemons' samples starts
	// (PostgreSQL; TailFromOpen).
	openTail TailCursor
	opts     Options
	log      hclog.Logger

	queue chan writeOp
	done  chan struct{}
	stmts hotStmts // the writer's prepared statements
	// txRows are the sample rows of the transaction being written, on
	// PostgreSQL, where every sample write of a group defers its rows so
	// that they go in one statement (a round trip to the server costs
	// more than the rows). Used by the writer goroutine only.
	txRows []any
	wg     sync.WaitGroup

	sendMu   sync.RWMutex // held (read) while queueing, (write) while closing
	isClosed bool
	closed   chan struct{}

	mu          sync.RWMutex
	rings       map[seriesKey]*ring
	ringMem     ringMem                     // what the rings hold, kept up to date by each ring
	hostRings   map[string]map[string]*ring // host -> plugin -> ring (the same rings), so a host's reads cost its own plugins
	hosts       map[string]HostInfo
	series      map[string]*seriesEntry // host\x00plugin\x00paths -> series id and its users
	seriesCount map[seriesKey]int
	pluginCount map[string]int // hosts' plugins with at least one series
	dynHosts    int            // hosts with Dyn set
	health      health

	seenMu      sync.Mutex
	seenWritten map[string]float64 // host -> the last_seen last written with its samples

	stats     Stats
	retention atomic.Int64                  // time.Duration
	trimGate  atomic.Pointer[retentionGate] // leader-only retention (cluster.go); nil: always

	hooks writerHooks // set by tests right after Open

	units unitCache // plugin units (units.go), read on first use

	listenMu         sync.RWMutex
	listeners        []func(SampleEvent)
	journalListeners []func(Message)
}

type seriesKey struct{ host, plugin string }

type writeOp struct {
	fn    func(tx *sql.Tx) error
	done  chan error // nil for fire-and-forget
	label string     // names the write for the test hooks ("" for most)
	// after, when set, is called on the writer goroutine with the op's
	// final outcome (after any retry alone), before done is signalled. It
	// must not wait on the writer.
	after func(error)
	// alone ops get a transaction of their own (retention chunks), so the
	// writes queued beside them commit before them, not after.
	alone bool
}

// writerHooks are test seams on the writer goroutine; nil in production.
// They get the labels of the transaction's writes.
type writerHooks struct {
	beforeCommit func(labels []string) // the work is done, COMMIT is next
	committed    func(labels []string) // COMMIT succeeded
}

// Open opens (creating if needed) the database in dir, which must exist and
// be writable, migrates it and loads the recent samples into memory.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if opts.SampleHistory <= 0 {
		opts.SampleHistory = 100
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if err := CheckDataDir(dir); err != nil {
		return nil, err
	}

	path := filepath.Join(dir, FileName)
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	wdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	rdb, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(4)
	s := newStore(path, wdb, rdb, opts)
	if err := s.secureFiles(dir); err != nil {
		wdb.Close()
		rdb.Close()
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		wdb.Close()
		rdb.Close()
		if errors.Is(err, ErrNewerSchema) || errors.Is(err, ErrDamaged) {
			return nil, err
		}
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return s, nil
}

// newStore builds a Store on opened database handles (path names the
// database in messages).
func newStore(path string, wdb, rdb *sql.DB, opts Options) *Store {
	return &Store{
		path: path, wdb: wdb, rdb: rdb, opts: opts, log: opts.Logger.Named("store"),
		queue:  make(chan writeOp, 4096),
		done:   make(chan struct{}),
		closed: make(chan struct{}),
		rings:  map[seriesKey]*ring{},

		hostRings: map[string]map[string]*ring{},
		hosts:     map[string]HostInfo{},
		series:    map[string]*seriesEntry{},

		seriesCount: map[seriesKey]int{},
		pluginCount: map[string]int{},
	}
}

// start checks and migrates the database, loads the caches and rings and
// starts the writer and retention goroutines; it is the same for both
// backends.
func (s *Store) start(ctx context.Context) error {
	if !s.pg {
		if err := s.checkIntegrity(ctx); err != nil {
			return err
		}
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if err := s.stmts.prepare(ctx, s.wdb, s.pg); err != nil {
		return err
	}
	if s.pg {
		// Before the load: a sample another daemon commits while this
		// one reads the recent samples is then read again by the tail
		// (TailFromOpen), never missed.
		c, err := s.SampleTailStart(ctx)
		if err != nil {
			s.stmts.close()
			return err
		}
		s.openTail = c
	}
	if err := s.load(ctx); err != nil {
		s.stmts.close()
		return err
	}
	s.wg.Add(1)
	go s.writer()
	s.retention.Store(int64(s.opts.Retention))
	s.wg.Add(1)
	go s.retentionLoop()
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Path returns the database file path.
func (s *Store) Path() string { return s.path }

// Reader returns the read-only connection pool for feature packages that
// keep their own tables (alert states, channels, sessions).
func (s *Store) Reader() *sql.DB { return s.rdb }

// Close flushes queued writes, stops the writer and closes the database.
func (s *Store) Close() error {
	s.sendMu.Lock()
	if !s.isClosed {
		s.isClosed = true
		close(s.closed)
	}
	s.sendMu.Unlock()
	s.wg.Wait()
	s.stmts.close()
	err := s.wdb.Close()
	if e := s.rdb.Close(); err == nil {
		err = e
	}
	if s.ldb != nil {
		if e := s.ldb.Close(); err == nil {
			err = e
		}
	}
	if s.hdb != nil {
		if e := s.hdb.Close(); err == nil {
			err = e
		}
	}
	if s.odb != nil {
		if e := s.odb.Close(); err == nil {
			err = e
		}
	}
	if s.cdb != nil {
		if e := s.cdb.Close(); err == nil {
			err = e
		}
	}
	return err
}

// Write runs fn in a write transaction (group-committed with other queued
// writes) and returns once it is committed.
func (s *Store) Write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.write(ctx, "", fn)
}

// Labels of internal writes, for the test hooks.
const (
	labelDropSeries = "drop series"
	labelSamples    = "samples"
	labelTrim       = "trim"
)

func (s *Store) write(ctx context.Context, label string, fn func(tx *sql.Tx) error) error {
	return s.writeOp(ctx, writeOp{fn: fn, done: make(chan error, 1), label: label})
}

// writeOp queues op (whose done must be set) and waits for its commit.
func (s *Store) writeOp(ctx context.Context, op writeOp) error {
	if err := s.enqueue(ctx, op); err != nil {
		if op.after != nil {
			op.after(err) // never queued: its outcome is final now
		}
		return err
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		// The write still happens; the caller just stops waiting for it.
		return ctx.Err()
	}
}

// Go queues fn to run in a write transaction without waiting. Errors are
// logged. Writes queued before Close are flushed by it.
func (s *Store) Go(fn func(tx *sql.Tx) error) {
	if err := s.enqueue(context.Background(), writeOp{fn: fn}); err != nil {
		s.log.Warn("queued write dropped", "error", err)
	}
}

func (s *Store) enqueue(ctx context.Context, op writeOp) error {
	s.sendMu.RLock()
	defer s.sendMu.RUnlock()
	if s.isClosed {
		return ErrClosed
	}
	select {
	case s.queue <- op:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxGroup bounds how many queued writes share one transaction.
const maxGroup = 512

func (s *Store) writer() {
	defer s.wg.Done()
	batch := make([]writeOp, 0, maxGroup)
	var held []writeOp // an op to run alone, taken while filling a group
	closing := false
	for {
		batch = batch[:0]
		switch {
		case len(held) > 0:
			batch = append(batch, held[0])
			held = held[:0]
		case closing:
			// Close holds sendMu, so nothing more can be queued: drain and stop.
			select {
			case op := <-s.queue:
				batch = append(batch, op)
			default:
				return
			}
		default:
			select {
			case op := <-s.queue:
				batch = append(batch, op)
			case <-s.closed:
				closing = true
				continue
			}
		}
		if !batch[0].alone {
		fill:
			for len(batch) < maxGroup {
				select {
				case op := <-s.queue:
					if op.alone {
						held = append(held, op)
						break fill
					}
					batch = append(batch, op)
				default:
					break fill
				}
			}
		}
		s.commit(batch)
	}
}

// commit runs a group in one transaction; when it fails, each op is retried
// alone so one bad write cannot fail its neighbours.
func (s *Store) commit(batch []writeOp) {
	err := s.runTx(batch)
	if err == nil {
		for _, op := range batch {
			s.finish(op, nil)
		}
		return
	}
	if len(batch) == 1 {
		s.finish(batch[0], err)
		return
	}
	for _, op := range batch {
		s.finish(op, s.runTx([]writeOp{op}))
	}
}

func (s *Store) finish(op writeOp, err error) {
	if op.after != nil {
		op.after(err)
	}
	if op.done != nil {
		op.done <- err
	} else if err != nil {
		s.log.Error("queued write failed", "error", err)
	}
}

// Stats are the store's counters since start.
type Stats struct {
	SamplesAppended atomic.Uint64 // samples committed through AppendSamples
	Transactions    atomic.Uint64 // committed write transactions
	WriteErrors     atomic.Uint64 // failed write transactions
}

// Stats returns the live counters.
func (s *Store) Stats() *Stats { return &s.stats }

// QueueLen returns how many writes wait for the writer.
func (s *Store) QueueLen() int { return len(s.queue) }

func (s *Store) runTx(batch []writeOp) (err error) {
	defer func() {
		if err != nil {
			s.stats.WriteErrors.Add(1)
		} else {
			s.stats.Transactions.Add(1)
		}
		err = s.noteTx(err)
	}()
	retried := false
again:
	tx, err := s.wdb.Begin()
	if err != nil {
		return err
	}
	clear(s.txRows)
	s.txRows = s.txRows[:0]
	for i := 0; i <= len(batch); i++ {
		var err error
		if i == len(batch) || batch[i].label != labelSamples {
			// Rows deferred by sample writes go in before any other
			// write runs, so the group's order is kept.
			err = s.flushRows(tx)
		}
		if err == nil && i < len(batch) {
			err = batch[i].fn(tx)
		}
		if err != nil {
			tx.Rollback()
			if !retried && s.sessionLost(err) {
				// Nothing of it committed: run it again on a new session.
				retried = true
				goto again
			}
			return err
		}
	}
	if s.hooks.beforeCommit != nil {
		s.hooks.beforeCommit(labels(batch))
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if s.hooks.committed != nil {
		s.hooks.committed(labels(batch))
	}
	return nil
}

// flushRows stores the sample rows the group's sample writes deferred
// (PostgreSQL: one statement for the whole group, see AppendSamples).
func (s *Store) flushRows(tx *sql.Tx) error {
	if len(s.txRows) == 0 {
		return nil
	}
	rows := lastOfEachKey(s.txRows)
	err := s.stmts.insertSamples(tx, rows)
	clear(s.txRows)
	s.txRows = s.txRows[:0]
	return err
}

func labels(batch []writeOp) []string {
	out := make([]string, len(batch))
	for i, op := range batch {
		out[i] = op.label
	}
	return out
}

// Subscribe registers fn to be called, in ingestion order, with every batch
// of samples after it is committed. fn runs on the ingesting request's
// goroutine before its answer: it must not block, only hand the batch to a
// bounded queue (the daemon's are in core/daemon/paths.go).
func (s *Store) Subscribe(fn func(SampleEvent)) {
	s.listenMu.Lock()
	defer s.listenMu.Unlock()
	s.listeners = append(s.listeners, fn)
}

func (s *Store) publish(ev SampleEvent) { callAll(&s.listenMu, &s.listeners, ev) }

// callAll calls every listener with v. The slice is copied under mu and
// called without it, so a listener may itself journal or subscribe.
func callAll[T any](mu *sync.RWMutex, fns *[]func(T), v T) {
	mu.RLock()
	list := *fns
	mu.RUnlock()
	for _, fn := range list {
		fn(v)
	}
}

// SetRetention changes how long persisted samples and journal entries are
// kept (0 keeps everything); it takes effect at the next trim.
func (s *Store) SetRetention(d time.Duration) { s.retention.Store(int64(d)) }

func (s *Store) retentionLoop() {
	defer s.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-s.closed:
			return
		case now := <-t.C:
			keep := time.Duration(s.retention.Load())
			if keep <= 0 || now.Sub(last) < retentionEvery(keep) {
				continue
			}
			if _, leading := s.trimFence(); !leading {
				continue // the leader trims
			}
			last = now
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			n, err := s.Trim(ctx, now.Add(-keep))
			cancel()
			if err != nil {
				s.log.Error("retention trim failed", "error", err)
			} else if n > 0 {
				s.log.Debug("retention trimmed rows", "rows", n)
			}
		}
	}
}

func retentionEvery(r time.Duration) time.Duration {
	every := r / 100
	if every < time.Minute {
		every = time.Minute
	}
	if every > time.Hour {
		every = time.Hour
	}
	return every
}

// trimChunk bounds the rows (and series) one retention transaction
// deletes or visits; tests lower it.
var trimChunk = 2000

// Trim deletes persisted samples, journal entries and ended alert episodes
// older than before and returns how many rows went; then it drops the
// series left empty. The work is split into transactions of at most
// trimChunk rows, each alone on the writer, so writes queued meanwhile
// commit between them instead of waiting for the whole trim.
func (s *Store) Trim(ctx context.Context, before time.Time) (int64, error) {
	cut := toUnix(before)
	var total int64
	var cursor int64 // samples of series with id >= cursor are left to trim
	for done := false; !done; {
		var n, next int64
		err := s.trimStep(ctx, func(tx *sql.Tx) error {
			n, next, done = 0, cursor, false
			ids, err := seriesAfter(tx, cursor-1, trimChunk)
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				done = true
				return nil
			}
			del, err := tx.Prepare(`DELETE FROM samples WHERE series = ?1 AND ts IN
				(SELECT ts FROM samples WHERE series = ?1 AND ts < ?2 ORDER BY ts LIMIT ?3)`)
			if err != nil {
				return err
			}
			defer del.Close()
			for _, id := range ids {
				res, err := del.Exec(id, cut, int64(trimChunk)-n)
				if err != nil {
					return err
				}
				k, _ := res.RowsAffected()
				if n += k; n >= int64(trimChunk) {
					next = id // it may hold more
					return nil
				}
				next = id + 1
			}
			return nil
		})
		total += n
		if err != nil {
			return total, err
		}
		cursor = next
	}
	for _, q := range []string{
		`DELETE FROM journal WHERE id IN (SELECT id FROM journal WHERE ts < ?1 LIMIT ?2)`,
		trimEpisodesChunk,
	} {
		for {
			var n int64
			err := s.trimStep(ctx, func(tx *sql.Tx) error {
				res, err := tx.Exec(q, cut, trimChunk)
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			})
			total += n
			if err != nil {
				return total, err
			}
			if n < int64(trimChunk) {
				break
			}
		}
	}
	if s.pg {
		n, err := s.trimFencedWrites(ctx, before)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, s.dropEmptySeries(ctx)
}

// trimStep runs one retention transaction alone on the writer.
func (s *Store) trimStep(ctx context.Context, fn func(tx *sql.Tx) error) error {
	fenced := func(tx *sql.Tx) error {
		f, ok := s.trimFence()
		if !ok {
			return ErrNotLeader
		}
		if err := f.Check(tx); err != nil {
			return err
		}
		return fn(tx)
	}
	return s.writeOp(ctx, writeOp{fn: fenced, done: make(chan error, 1), label: labelTrim, alone: true})
}

// seriesAfter returns up to n series ids greater than after, ascending.
func seriesAfter(tx *sql.Tx, after int64, n int) ([]int64, error) {
	rows, err := tx.Query(`SELECT id FROM series WHERE id > ? ORDER BY id LIMIT ?`, after, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// dropEmptySeries deletes series that no longer hold samples, so metric
// sets that went away stop counting against MaxSeriesPerPlugin. It visits
// the series in chunks of trimChunk, each a transaction on the writer, so
// writes queued after a chunk see its series gone; a series that a batch
// holds (seriesEntry.uses) is kept, and a dropped one leaves the cache
// before its row goes. The store's lock is held only for that memory work,
// never across a commit.
func (s *Store) dropEmptySeries(ctx context.Context) error {
	type gone struct {
		id                  int64
		host, plugin, paths string
	}
	var found []gone
	var drop []int64
	var cursor int64
	for done := false; !done; {
		var next int64
		err := s.writeOp(ctx, writeOp{done: make(chan error, 1), label: labelDropSeries, alone: true, fn: func(tx *sql.Tx) error {
			found, drop, next = found[:0], drop[:0], cursor
			rows, err := tx.Query(`SELECT id, host, plugin, paths, EXISTS (SELECT 1 FROM samples x WHERE x.series = s.id)
				FROM series s WHERE id > ? ORDER BY id LIMIT ?`, cursor, trimChunk)
			if err != nil {
				return err
			}
			n := 0
			for rows.Next() {
				var g gone
				var used bool
				if err := rows.Scan(&g.id, &g.host, &g.plugin, &g.paths, &used); err != nil {
					rows.Close()
					return err
				}
				n++
				next = g.id
				if !used {
					found = append(found, g)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			done = n < trimChunk
			if len(found) == 0 {
				return nil
			}
			s.mu.Lock()
			for _, g := range found {
				key := g.host + "\x00" + g.plugin + "\x00" + g.paths
				if e := s.series[key]; e != nil {
					if e.uses.Load() > 0 {
						continue // a batch is about to store samples in it
					}
					delete(s.series, key)
					s.countSeries(seriesKey{g.host, g.plugin}, -1)
				}
				drop = append(drop, g.id)
			}
			s.mu.Unlock()
			for _, id := range drop {
				if _, err := tx.Exec(`DELETE FROM series WHERE id = ?`, id); err != nil {
					return err
				}
			}
			return nil
		}})
		if err != nil {
			return err
		}
		cursor = next
	}
	return nil
}

func toUnix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
