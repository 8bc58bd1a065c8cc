package pipeline_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/pipeline"
	"github.com/hbdmon/hbd/core/testutil"
)

type item struct {
	key string
	seq int
}

// recorder is a consumer that records what it is handed; while gate is
// set, each call first says so on entered and waits for gate.
type recorder struct {
	entered chan string
	gate    chan struct{}

	mu  sync.Mutex
	got map[string][]item
	n   int
}

func newRecorder(blocking bool) *recorder {
	r := &recorder{got: map[string][]item{}, entered: make(chan string, 1)}
	if blocking {
		r.gate = make(chan struct{})
	}
	return r
}

func (r *recorder) Consume(host string, items []item) {
	if r.gate != nil {
		select {
		case r.entered <- host:
		default:
		}
		<-r.gate
	}
	r.mu.Lock()
	r.got[host] = append(r.got[host], items...)
	r.n += len(items)
	r.mu.Unlock()
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *recorder) of(host string) []item {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got[host])
}

func run[T any](t *testing.T, q *pipeline.Queue[T]) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestPutNeverWaitsOnABlockedConsumer: while the consumer is stuck in its
// first call, every Put returns (the test's own goroutine makes them) and
// the overflow is counted; once released, the consumer gets what was kept.
func TestPutNeverWaitsOnABlockedConsumer(t *testing.T) {
	r := newRecorder(true)
	q := pipeline.New[item]("test", 4, r)
	run(t, q)
	q.Put("h", item{"a", 1})
	<-r.entered // the consumer holds item 1 and waits
	for i := 2; i <= 10; i++ {
		q.Put("h", item{"a", i})
	}
	// Still blocked: nothing was recorded, yet all ten Puts returned.
	if n := r.count(); n != 0 {
		t.Fatalf("consumer recorded %d items while blocked", n)
	}
	if d := q.Depth(); d != 4 {
		t.Fatalf("depth %d, want 4 (one being consumed, three waiting)", d)
	}
	if d := q.Dropped(); d != 6 {
		t.Fatalf("dropped %d, want 6", d)
	}
	close(r.gate)
	testutil.Eventually(t, "the kept items consumed", 5*time.Second, func() bool { return q.Depth() == 0 })
	want := []item{{"a", 1}, {"a", 2}, {"a", 3}, {"a", 4}}
	if got := r.of("h"); !slices.Equal(got, want) {
		t.Fatalf("consumed %v, want %v", got, want)
	}
	if q.Consumed() != 4 {
		t.Fatalf("consumed count %d, want 4", q.Consumed())
	}
}

// TestOrderPerHostUnderConcurrentProducers: one producer per host, all at
// once; each host's items arrive complete and in the order put.
func TestOrderPerHostUnderConcurrentProducers(t *testing.T) {
	r := newRecorder(false)
	const hosts, per = 8, 2000
	q := pipeline.New[item]("test", hosts*per, r)
	run(t, q)
	var wg sync.WaitGroup
	for h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				q.Put(fmt.Sprint("h", h), item{"k", i})
			}
		}()
	}
	wg.Wait()
	testutil.Eventually(t, "every item consumed", 10*time.Second, func() bool { return r.count() == hosts*per })
	for h := range hosts {
		got := r.of(fmt.Sprint("h", h))
		for i, it := range got {
			if it.seq != i {
				t.Fatalf("host h%d: item %d has seq %d", h, i, it.seq)
			}
		}
	}
	if q.Dropped() != 0 {
		t.Fatalf("dropped %d within the limit", q.Dropped())
	}
}

// TestCoalesceKeepsNewestPerKey: a full coalescing queue replaces the
// host's pending item of the same key by the newer one, at the end of the
// host's items, counts it, and queues an item of a new key over the limit.
func TestCoalesceKeepsNewestPerKey(t *testing.T) {
	r := newRecorder(true)
	q := pipeline.New[item]("test", 3, r, pipeline.Coalesce(func(it item) string { return it.key }))
	run(t, q)
	q.Put("h", item{"a", 1})
	<-r.entered
	q.Put("h", item{"b", 1}, item{"a", 2}) // full: a1 (consuming), b1, a2
	q.Put("h", item{"a", 3})               // replaces a2
	q.Put("h", item{"c", 1})               // no c pending: over the limit
	q.Put("h", item{"b", 2})               // replaces b1
	q.Put("x", item{"a", 1})               // other host, nothing to replace: over the limit
	if d := q.Dropped(); d != 2 {
		t.Fatalf("dropped %d, want 2", d)
	}
	if d := q.Depth(); d != 5 {
		t.Fatalf("depth %d, want 5", d)
	}
	close(r.gate)
	testutil.Eventually(t, "all consumed", 5*time.Second, func() bool { return q.Depth() == 0 })
	want := []item{{"a", 1}, {"a", 3}, {"c", 1}, {"b", 2}}
	if got := r.of("h"); !slices.Equal(got, want) {
		t.Fatalf("host h consumed %v, want %v", got, want)
	}
	if got := r.of("x"); !slices.Equal(got, []item{{"a", 1}}) {
		t.Fatalf("host x consumed %v", got)
	}
}

// TestRunHandsOverWhatIsPendingAtStop: items put before the context ends
// reach the consumer before Run returns.
func TestRunHandsOverWhatIsPendingAtStop(t *testing.T) {
	r := newRecorder(false)
	q := pipeline.New[item]("test", 100, r)
	for i := range 10 {
		q.Put("h", item{"a", i})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q.Run(ctx)
	if n := r.count(); n != 10 {
		t.Fatalf("consumed %d of 10 at stop", n)
	}
}

// TestMetricsNameEachQueue: the families emit one value per queue,
// labelled with its name.
func TestMetricsNameEachQueue(t *testing.T) {
	r := newRecorder(true)
	a := pipeline.New[item]("alerts", 1, r)
	b := pipeline.New[item]("feed", 1, newRecorder(false))
	b.Put("h", item{"a", 1}, item{"a", 2}) // not running: one waits, one dropped
	got := map[string]float64{}
	for _, f := range pipeline.Metrics(a, b) {
		f.Collect(func(v float64, labels ...string) { got[f.Name+"/"+labels[0]] = v })
	}
	want := map[string]float64{
		"hbd_pipeline_queue_depth/alerts": 0, "hbd_pipeline_queue_depth/feed": 1,
		"hbd_pipeline_dropped_total/alerts": 0, "hbd_pipeline_dropped_total/feed": 1,
		"hbd_pipeline_consumed_total/alerts": 0, "hbd_pipeline_consumed_total/feed": 0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}
