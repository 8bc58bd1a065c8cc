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
	"sort"
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
}

// Store is the daemon's storage. It is safe for concurrent use.
type Store struct {
	path string
	wdb  *sql.DB // the writer's single connection
	rdb  *sql.DB // readers
	opts Options
	log  hclog.Logger

	queue chan writeOp
	done  chan struct{}
	wg    sync.WaitGroup

	sendMu   sync.RWMutex // held (read) while queueing, (write) while closing
	isClosed bool
	closed   chan struct{}

	mu          sync.RWMutex
	rings       map[seriesKey]*ring
	hosts       map[string]HostInfo
	series      map[string]int64 // host\x00plugin\x00paths -> series id
	seriesCount map[seriesKey]int
	pluginCount map[string]int // hosts' plugins with at least one series
	dynHosts    int            // hosts with Dyn set
	health      health

	stats     Stats
	retention atomic.Int64 // time.Duration

	listenMu         sync.RWMutex
	listeners        []func(SampleEvent)
	journalListeners []func(Message)
}

type seriesKey struct{ host, plugin string }

type writeOp struct {
	fn   func(tx *sql.Tx) error
	done chan error // nil for fire-and-forget
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
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("data_dir %s: %w", dir, unwrapPath(err))
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("data_dir %s: not a directory", dir)
	}
	probe, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return nil, fmt.Errorf("data_dir %s: not writable: %w", dir, unwrapPath(err))
	}
	probe.Close()
	os.Remove(probe.Name())

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
	s := &Store{
		path: path, wdb: wdb, rdb: rdb, opts: opts, log: opts.Logger.Named("store"),
		queue:  make(chan writeOp, 4096),
		done:   make(chan struct{}),
		closed: make(chan struct{}),
		rings:  map[seriesKey]*ring{},
		hosts:  map[string]HostInfo{},
		series: map[string]int64{},

		seriesCount: map[seriesKey]int{},
		pluginCount: map[string]int{},
	}
	if err := s.secureFiles(dir); err != nil {
		wdb.Close()
		rdb.Close()
		return nil, err
	}
	if err := s.checkIntegrity(ctx); err != nil {
		wdb.Close()
		rdb.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		wdb.Close()
		rdb.Close()
		if errors.Is(err, ErrNewerSchema) {
			return nil, err
		}
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	if err := s.load(ctx); err != nil {
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	s.wg.Add(1)
	go s.writer()
	s.retention.Store(int64(opts.Retention))
	s.wg.Add(1)
	go s.retentionLoop()
	return s, nil
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
	err := s.wdb.Close()
	if e := s.rdb.Close(); err == nil {
		err = e
	}
	return err
}

// Write runs fn in a write transaction (group-committed with other queued
// writes) and returns once it is committed.
func (s *Store) Write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	op := writeOp{fn: fn, done: make(chan error, 1)}
	if err := s.enqueue(ctx, op); err != nil {
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
	for {
		batch = batch[:0]
		select {
		case op := <-s.queue:
			batch = append(batch, op)
		case <-s.closed:
			// Close holds sendMu, so nothing more can be queued: drain and stop.
			for {
				select {
				case op := <-s.queue:
					batch = append(batch, op)
					if len(batch) == maxGroup {
						s.commit(batch)
						batch = batch[:0]
					}
				default:
					if len(batch) > 0 {
						s.commit(batch)
					}
					return
				}
			}
		}
	fill:
		for len(batch) < maxGroup {
			select {
			case op := <-s.queue:
				batch = append(batch, op)
			default:
				break fill
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
			if op.done != nil {
				op.done <- nil
			}
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
	tx, err := s.wdb.Begin()
	if err != nil {
		return err
	}
	for _, op := range batch {
		if err := op.fn(tx); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
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

// Trim deletes persisted samples, journal entries and ended alert episodes
// older than before and returns how many rows went.
func (s *Store) Trim(ctx context.Context, before time.Time) (int64, error) {
	cut := toUnix(before)
	s.mu.RLock()
	ids := make([]int64, 0, len(s.series))
	for _, id := range s.series {
		ids = append(ids, id)
	}
	s.mu.RUnlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var total int64
	err := s.Write(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			res, err := tx.Exec(`DELETE FROM samples WHERE series = ? AND ts < ?`, id, cut)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			total += n
		}
		res, err := tx.Exec(`DELETE FROM journal WHERE ts < ?`, cut)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		total += n
		n, err = trimEpisodes(tx, cut)
		total += n
		return err
	})
	if err != nil {
		return total, err
	}
	return total, s.dropEmptySeries(ctx)
}

// dropEmptySeries deletes series that no longer hold samples, so metric
// sets that went away stop counting against MaxSeriesPerPlugin. The series
// cache lock is held across the delete so no append can pick an id that is
// being removed.
func (s *Store) dropEmptySeries(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	type gone struct {
		id                  int64
		host, plugin, paths string
	}
	var dropped []gone
	err := s.Write(ctx, func(tx *sql.Tx) error {
		dropped = dropped[:0]
		rows, err := tx.Query(`SELECT id, host, plugin, paths FROM series s WHERE NOT EXISTS (SELECT 1 FROM samples x WHERE x.series = s.id)`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var g gone
			if err := rows.Scan(&g.id, &g.host, &g.plugin, &g.paths); err != nil {
				rows.Close()
				return err
			}
			dropped = append(dropped, g)
		}
		rows.Close()
		for _, g := range dropped {
			if _, err := tx.Exec(`DELETE FROM series WHERE id = ?`, g.id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, g := range dropped {
		key := g.host + "\x00" + g.plugin + "\x00" + g.paths
		if _, ok := s.series[key]; ok {
			delete(s.series, key)
			s.countSeries(seriesKey{g.host, g.plugin}, -1)
		}
	}
	return nil
}

func toUnix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
