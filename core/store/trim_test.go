package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// With retention on, a trim running while new series are being created
// deleted series whose samples were still queued; the deleted id stayed
// cached and every later batch of that host and plugin failed with
// "FOREIGN KEY constraint failed" until a restart (issue 12). Batches and
// trims race here as they do in the daemon: no batch may fail, and every
// series must still take samples afterwards.
func TestTrimNeverDeletesASeriesABatchIsUsing(t *testing.T) {
	forBackends(t, testTrimNeverDeletesASeriesABatchIsUsing)
}

func testTrimNeverDeletesASeriesABatchIsUsing(t *testing.T, be backend) {
	s := be.openAt(t, be.place(t), 10)
	ctx := context.Background()
	const writers, perWriter = 4, 40
	var stop atomic.Bool
	trims := make(chan error, 1)
	go func() {
		var err error
		for !stop.Load() && err == nil {
			_, err = s.Trim(ctx, time.Now().Add(-24*time.Hour))
		}
		trims <- err
	}()
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			host := fmt.Sprintf("host%d", w)
			for i := 0; i < perWriter; i++ {
				ts := float64(time.Now().Unix())
				if err := s.AppendSamples(ctx, host, []PluginSample{sample("exec_x", ts, fmt.Sprintf("k%03d", i), 1.0)}); err != nil {
					errs <- fmt.Errorf("%s k%03d: %w", host, i, err)
				}
			}
		}(w)
	}
	wg.Wait()
	stop.Store(true)
	if err := <-trims; err != nil {
		t.Fatalf("trim: %v", err)
	}
	close(errs)
	for err := range errs {
		t.Errorf("batch failed while trimming: %v", err)
	}
	// Every series created during the race still takes samples.
	for w := 0; w < writers; w++ {
		for i := 0; i < perWriter; i++ {
			ts := float64(time.Now().Unix() + 1)
			if err := s.AppendSamples(ctx, fmt.Sprintf("host%d", w), []PluginSample{sample("exec_x", ts, fmt.Sprintf("k%03d", i), 2.0)}); err != nil {
				t.Fatalf("host%d k%03d after the trims: %v", w, i, err)
			}
		}
	}
}

// events records what happened, in order, from any goroutine.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(ev string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev)
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprint(e.list)
}

func hasLabel(labels []string, want string) bool {
	for _, l := range labels {
		if l == want {
			return true
		}
	}
	return false
}

// The store held its lock across the commit that drops empty series, so
// every read of memory (Latest, Plugins, hosts) waited on the disk. A
// commit held in a hook must not keep a read from completing.
func TestReadsDoNotWaitOnTheSeriesDropCommit(t *testing.T) {
	forBackends(t, testReadsDoNotWaitOnTheSeriesDropCommit)
}

func testReadsDoNotWaitOnTheSeriesDropCommit(t *testing.T, be backend) {
	s := be.openAt(t, be.place(t), 10)
	ctx := context.Background()
	old := float64(time.Now().Add(-48 * time.Hour).Unix())
	if _, err := s.EnsureHost(ctx, "web01", false); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendSamples(ctx, "web01", []PluginSample{sample("gone", old, "a", 1.0), sample("cpu", float64(time.Now().Unix()), "a", 1.0)}); err != nil {
		t.Fatal(err)
	}
	var ev events
	blocked, readDone := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.hooks.beforeCommit = func(labels []string) {
		if !hasLabel(labels, labelDropSeries) {
			return
		}
		once.Do(func() {
			ev.add("commit blocked")
			close(blocked)
			select {
			case <-readDone:
			case <-time.After(10 * time.Second): // only breaks the deadlock of a failing run
			}
			ev.add("commit released")
		})
	}
	trimmed := make(chan error, 1)
	go func() {
		_, err := s.Trim(ctx, time.Now().Add(-24*time.Hour))
		trimmed <- err
	}()
	<-blocked
	if got, err := s.Latest("web01", "cpu", 1); err != nil || len(got) != 1 {
		t.Errorf("Latest: %v %v", got, err)
	}
	if got := s.Plugins("web01"); len(got) == 0 {
		t.Errorf("Plugins: %v", got)
	}
	if _, ok := s.Host("web01"); !ok {
		t.Error("Host: web01 unknown")
	}
	ev.add("read done")
	close(readDone)
	if err := <-trimmed; err != nil {
		t.Fatal(err)
	}
	if got, want := ev.String(), "[commit blocked read done commit released]"; got != want {
		t.Fatalf("events %s, want %s: a read waited on the commit", got, want)
	}
}

// Retention deleted an hour of every series in one transaction on the
// single writer, so every write queued meanwhile waited for all of it. The
// trim now runs in transactions of at most trimChunk rows, and a write
// queued while it runs commits between two of them.
func TestTrimRunsInChunksBetweenOtherWrites(t *testing.T) {
	forBackends(t, testTrimRunsInChunksBetweenOtherWrites)
}

func testTrimRunsInChunksBetweenOtherWrites(t *testing.T, be backend) {
	defer func(n int) { trimChunk = n }(trimChunk)
	trimChunk = 10
	s := be.openAt(t, be.place(t), 10)
	ctx := context.Background()
	old := float64(time.Now().Add(-48 * time.Hour).Unix())
	const series, perSeries = 5, 20
	for k := 0; k < series; k++ {
		batch := make([]PluginSample, perSeries)
		for i := range batch {
			batch[i] = sample("p", old+float64(i), fmt.Sprintf("k%d", k), 1.0)
		}
		if err := s.AppendSamples(ctx, "web01", batch); err != nil {
			t.Fatal(err)
		}
	}
	now := float64(time.Now().Unix())
	if err := s.AppendSamples(ctx, "web01", []PluginSample{sample("p", now, "k0", 2.0)}); err != nil {
		t.Fatal(err)
	}
	var ev events
	queued := false
	other := make(chan error, 1)
	s.hooks.committed = func(labels []string) {
		ev.add(fmt.Sprint(labels))
		if !queued && hasLabel(labels, labelTrim) {
			// Queued while the trim runs (its next chunk is not queued yet).
			queued = true
			if err := s.enqueue(ctx, writeOp{label: "other", done: other, fn: func(tx *sql.Tx) error {
				_, err := tx.Exec(`INSERT INTO journal (ts, host, msg) VALUES (?, '', 'other')`, now)
				return err
			}}); err != nil {
				t.Error(err)
			}
		}
	}
	n, err := s.Trim(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || n != series*perSeries {
		t.Fatalf("trimmed %d, %v; want %d", n, err, series*perSeries)
	}
	if err := <-other; err != nil {
		t.Fatal(err)
	}
	s.hooks.committed = nil
	got := strings.Fields(strings.NewReplacer("[", " ", "]", " ").Replace(ev.String()))
	var trims, otherAt int
	otherAt = -1
	for i, l := range got {
		switch l {
		case labelTrim:
			trims++
		case "other":
			otherAt = i
		}
	}
	if trims < series*perSeries/trimChunk {
		t.Fatalf("%d trim transactions for %d rows in chunks of %d: %v", trims, series*perSeries, trimChunk, got)
	}
	if otherAt != 1 || got[0] != labelTrim || got[2] != labelTrim {
		t.Fatalf("the write queued during the trim did not commit between its chunks: %v", got)
	}
	hist, err := s.History(ctx, "web01", "p", 0, math.MaxFloat64, 1000)
	if err != nil || len(hist) != 1 || hist[0].Timestamp != now {
		t.Fatalf("after the trim: %v %+v", err, hist)
	}
}

// Plugins answers from the per-host index: a host's own plugins, before
// and after a restart, never another host's.
func TestPluginsListsOnlyTheHostsOwnPlugins(t *testing.T) {
	forBackends(t, testPluginsListsOnlyTheHostsOwnPlugins)
}

func testPluginsListsOnlyTheHostsOwnPlugins(t *testing.T, be backend) {
	dir := be.place(t)
	ctx := context.Background()
	s, err := be.open(ctx, dir, Options{SampleHistory: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, hp := range [][2]string{{"web01", "cpu"}, {"web01", "mem"}, {"web02", "cpu"}, {"web0", "disk"}} {
		if err := s.AppendSamples(ctx, hp[0], []PluginSample{sample(hp[1], 1, "a", 1.0)}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s *Store, when string) {
		t.Helper()
		got := s.Plugins("web01")
		if len(got) != 2 || got["cpu"].Count != 1 || got["mem"].Latest.Timestamp != 1 {
			t.Fatalf("%s: Plugins(web01) = %+v", when, got)
		}
		if got := s.Plugins("nobody"); len(got) != 0 {
			t.Fatalf("%s: Plugins(nobody) = %+v", when, got)
		}
	}
	check(s, "live")
	s.Close()
	check(be.openAt(t, dir, 5), "after a restart")
}

// A restart streams the rows one plugin at a time; the rings it builds
// hold what they held before it, also for a plugin whose path sets change
// over time and for more stored samples than the ring keeps.
func TestRestartRebuildsTheSameRings(t *testing.T) { forBackends(t, testRestartRebuildsTheSameRings) }

func testRestartRebuildsTheSameRings(t *testing.T, be backend) {
	dir := be.place(t)
	ctx := context.Background()
	s, err := be.open(ctx, dir, Options{SampleHistory: 6})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 20; i++ {
		ts := float64(i)
		batch := []PluginSample{sample("cpu", ts, "a", ts)}
		if i%3 == 0 {
			batch = append(batch, sample("disk", ts, "/.percent", ts, "/home.percent", -ts))
		} else {
			batch = append(batch, sample("disk", ts, "/.percent", ts))
		}
		if err := s.AppendSamples(ctx, fmt.Sprintf("web%02d", i%2), batch); err != nil {
			t.Fatal(err)
		}
	}
	before := map[string]string{}
	for _, h := range []string{"web00", "web01"} {
		for _, p := range []string{"cpu", "disk"} {
			got, err := s.Latest(h, p, 0)
			if err != nil {
				t.Fatal(err)
			}
			before[h+"/"+p] = fmt.Sprint(got)
		}
	}
	s.Close()
	s = be.openAt(t, dir, 6)
	for k, want := range before {
		h, p, _ := strings.Cut(k, "/")
		got, err := s.Latest(h, p, 0)
		if err != nil || fmt.Sprint(got) != want {
			t.Fatalf("%s after restart: %v %v\nbefore: %s", k, err, got, want)
		}
	}
}

// A batch that never reaches the writer (the store is closed) releases
// the series it reserved: no placeholder stays counted against the bounds.
func TestRefusedBatchReleasesItsSeries(t *testing.T) {
	forBackends(t, testRefusedBatchReleasesItsSeries)
}

func testRefusedBatchReleasesItsSeries(t *testing.T, be backend) {
	s, err := be.open(context.Background(), be.place(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.AppendSamples(context.Background(), "web01", []PluginSample{sample("p", 1, "a", 1.0)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.series) != 0 || len(s.seriesCount) != 0 || len(s.pluginCount) != 0 {
		t.Fatalf("refused batch left series %v counts %v plugins %v", s.series, s.seriesCount, s.pluginCount)
	}
}
