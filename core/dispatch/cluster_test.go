package dispatch_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/dispatch"
	"github.com/hbdmon/hbd/core/pluginhost"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
	"github.com/hbdmon/hbd/notifiers/webhook"
	"github.com/hbdmon/hbd/sdk"
)

// hit is one request an outboxReceiver got.
type hit struct {
	channel string // the request path without its slash: each channel has its own
	key     string // X-HBD-Event-Key
	id      string // X-HBD-Event-Id
}

// outboxReceiver is a real HTTP endpoint for many webhook channels that
// records every request in arrival order. While holding, it answers no
// request: each waits until its client goes away.
type outboxReceiver struct {
	URL string

	mu      sync.Mutex
	hits    []hit
	holding bool
	fail    map[string]int // channel -> how many of its next requests get 500
	arrived chan struct{}
}

func newOutboxReceiver(t testing.TB) *outboxReceiver {
	r := &outboxReceiver{arrived: make(chan struct{}, 1), fail: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *outboxReceiver) serve(w http.ResponseWriter, req *http.Request) {
	io.Copy(io.Discard, req.Body)
	h := hit{channel: strings.TrimPrefix(req.URL.Path, "/"), key: req.Header.Get(webhook.EventKeyHeader), id: req.Header.Get(webhook.EventIDHeader)}
	r.mu.Lock()
	r.hits = append(r.hits, h)
	hold := r.holding
	status := http.StatusOK
	if r.fail[h.channel] > 0 {
		r.fail[h.channel]--
		status = http.StatusInternalServerError
	}
	r.mu.Unlock()
	select {
	case r.arrived <- struct{}{}:
	default:
	}
	if hold {
		<-req.Context().Done() // the sender died
		return
	}
	w.WriteHeader(status)
}

func (r *outboxReceiver) hold(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holding = on
}

func (r *outboxReceiver) recorded() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.hits)
}

// waitFor waits until ok holds for the hits, failing the test after d.
func (r *outboxReceiver) waitFor(t testing.TB, what string, d time.Duration, ok func([]hit) bool) []hit {
	t.Helper()
	deadline := time.After(d)
	for {
		hits := r.recorded()
		if ok(hits) {
			return hits
		}
		select {
		case <-r.arrived:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: not within %s (%d requests)", what, d, len(hits))
		}
	}
}

// clusterYAML has channels ch0 … ch<m-1>, webhooks to rcv's /ch<i>.
func clusterYAML(rcvURL string, m int) string {
	y := "watchhosts:\n  web01: {key: \"" + testutil.Key + "\"}\nnotification_channels:\n"
	for i := 0; i < m; i++ {
		y += fmt.Sprintf("  ch%d: {type: webhook, url: \"%s/ch%d\", hosts: [\"*\"]}\n", i, rcvURL, i)
	}
	return y + "channel_destinations: {allow: [127.0.0.0/8]}\n"
}

// daemon is one daemon's delivery side: its own store (connections) on
// the shared database, plugin host, channel registry and dispatcher.
type daemon struct {
	st  *store.Store
	reg *channels.Registry
	d   *dispatch.Dispatcher
}

// startDaemon starts a daemon's dispatcher on the database dsn, with
// the Cluster options cl returns for its store; everything is closed at
// cleanup.
func startDaemon(t testing.TB, dsn, yaml, plugs string, cl func(*store.Store) dispatch.Cluster) *daemon {
	t.Helper()
	st, err := store.OpenPostgres(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := cl(st)
	host, _ := pht.Start(t, plugs, pluginhost.Options{})
	cfg := testutil.Config(t, yaml)
	conf := func() *config.Config { return cfg }
	policy := access.NewPolicy(conf, access.NewHosts(cfg))
	reg := newRegistry(t, conf, st, host, policy, nil)
	d, err := dispatch.New(dispatch.Options{Config: conf, Store: st, Channels: reg, Plugins: host, Policy: policy,
		RetryBase: 100 * time.Millisecond, RetryMax: 400 * time.Millisecond, Cluster: &opts})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Close()
		st.Close()
	})
	return &daemon{st: st, reg: reg, d: d}
}

// plain returns cl for any store.
func plain(cl dispatch.Cluster) func(*store.Store) dispatch.Cluster {
	return func(*store.Store) dispatch.Cluster { return cl }
}

// leaseFence takes the leader lease for holder on st and returns a fence
// function that always offers that epoch (it may go stale).
func leaseFence(t testing.TB, st *store.Store, holder string) (store.FenceFunc, int64) {
	t.Helper()
	g, err := st.TakeLease(context.Background(), holder, time.Hour, time.Second)
	if err != nil || !g.Held {
		t.Fatalf("take the lease for %s: %+v %v", holder, g, err)
	}
	return func() (store.Fence, bool) { return store.Fence{Holder: holder, Epoch: g.Epoch}, true }, g.Epoch
}

// event returns a CRITICAL change of web01's metric n with its own ID.
func event(n int) alert.Event {
	now := time.Now()
	return alert.Event{ID: fmt.Sprintf("web01/m%d/%d", n, now.UnixNano()), Host: "web01", MetricPath: fmt.Sprintf("load.m%d", n),
		Level: "CRITICAL", PreviousLevel: "OK", Value: float64(n), Since: now, Time: now, Kind: alert.KindChange, NotificationCount: 1}
}

// waitQueued waits until n (event, channel) pairs are stored: their
// deliveries are committed to the outbox (queueing does not wait).
func waitQueued(t testing.TB, st *store.Store, n int) {
	t.Helper()
	testutil.Eventually(t, "deliveries queued", 60*time.Second, func() bool {
		pairs, err := st.SentPairs(context.Background(), n+1)
		return err == nil && len(pairs) >= n
	})
}

// waitDrained waits until the outbox holds no delivery.
func waitDrained(t testing.TB, d *dispatch.Dispatcher) {
	t.Helper()
	testutil.Eventually(t, "outbox drained", 60*time.Second, func() bool {
		b, err := d.Backlog(context.Background())
		return err == nil && b.Pending == 0
	})
}

func TestTwoDaemonsDeliverEveryEventToEveryChannelInOrderWithAStableKey(t *testing.T) {
	const n, m = 40, 4
	dsn := pgtest.DSN(t)
	rcv := newOutboxReceiver(t)
	yaml := clusterYAML(rcv.URL, m)
	plugs := pht.Dir(t, pht.Webhook)
	// a leads and evaluates; both daemons deliver. Nobody polls: the
	// workers run on LISTEN/NOTIFY wake-ups alone.
	a := startDaemon(t, dsn, yaml, plugs, func(st *store.Store) dispatch.Cluster {
		fence, _ := leaseFence(t, st, "a")
		return dispatch.Cluster{Node: "a", Fence: fence, ClaimTTL: 30 * time.Second, Workers: 2, Poll: time.Hour}
	})
	b := startDaemon(t, dsn, yaml, plugs, plain(dispatch.Cluster{Node: "b", ClaimTTL: 30 * time.Second, Workers: 2, Poll: time.Hour}))

	var ids []string
	start := time.Now()
	for i := 0; i < n; i++ {
		ev := event(i)
		ids = append(ids, ev.ID)
		if got := a.d.Dispatch(ev); len(got) != m {
			t.Fatalf("event %d routed to %v", i, got)
		}
	}
	hits := rcv.waitFor(t, "every (event, channel) delivered", 120*time.Second, func(hs []hit) bool {
		seen := map[hit]bool{}
		for _, h := range hs {
			seen[hit{channel: h.channel, id: h.id}] = true
		}
		return len(seen) == n*m
	})
	waitDrained(t, a.d)
	took := time.Since(start)
	hits = rcv.recorded()

	// Every copy of a notification carries the same key, derived from the
	// event ID alone; each channel got the events in dispatch order.
	keys := map[string]string{}
	order := map[string][]string{}
	dups := 0
	for _, h := range hits {
		if h.key != sdk.SafeID(h.id) {
			t.Errorf("%s got event %s with key %q, want %q", h.channel, h.id, h.key, sdk.SafeID(h.id))
		}
		pair := h.channel + " " + h.id
		if k, ok := keys[pair]; ok {
			dups++
			if k != h.key {
				t.Errorf("%s: duplicate with key %q, first %q", pair, h.key, k)
			}
			continue
		}
		keys[pair] = h.key
		order[h.channel] = append(order[h.channel], h.id)
	}
	for i := 0; i < m; i++ {
		ch := fmt.Sprintf("ch%d", i)
		if !slices.Equal(order[ch], ids) {
			t.Errorf("%s got the events in the order %v, want %v", ch, order[ch], ids)
		}
	}
	// Every episode counts its deliveries once.
	eps, err := a.st.EpisodeDeliveryCounts(context.Background(), 2*n)
	if err != nil || len(eps) != n {
		t.Fatalf("%d episodes (%v), want %d", len(eps), err, n)
	}
	for _, e := range eps {
		if e.Queued != m || e.Delivered != m || e.Failed != 0 {
			t.Errorf("episode %+v: want %d queued and delivered", e, m)
		}
	}
	sa, sb := a.d.Stats(), b.d.Stats()
	if sa.Delivered+sb.Delivered < n*m {
		t.Errorf("delivered %d + %d, want at least %d", sa.Delivered, sb.Delivered, n*m)
	}
	t.Logf("%d requests (%d duplicates) in %s; daemon a delivered %d, b %d", len(hits), dups, took.Round(time.Millisecond), sa.Delivered, sb.Delivered)
}

func TestChannelsNextDeliveryWaitsForTheRetryOfAnEarlierOne(t *testing.T) {
	dsn := pgtest.DSN(t)
	rcv := newOutboxReceiver(t)
	rcv.fail["ch0"] = 2 // ch0's first event fails twice, then goes through
	yaml := clusterYAML(rcv.URL, 2)
	plugs := pht.Dir(t, pht.Webhook)
	cl := dispatch.Cluster{ClaimTTL: 30 * time.Second, Workers: 2, Poll: 100 * time.Millisecond}
	cl.Node = "a"
	a := startDaemon(t, dsn, yaml, plugs, plain(cl))
	cl.Node = "b"
	startDaemon(t, dsn, yaml, plugs, plain(cl))
	var ids []string
	for i := 0; i < 5; i++ {
		ev := event(i)
		ids = append(ids, ev.ID)
		a.d.Dispatch(ev)
	}
	rcv.waitFor(t, "every event delivered", 60*time.Second, func(hs []hit) bool { return len(hs) >= 5+5+2 })
	waitDrained(t, a.d)
	var ch0, ch1 []string
	for _, h := range rcv.recorded() {
		if h.channel == "ch0" {
			ch0 = append(ch0, h.id)
		} else {
			ch1 = append(ch1, h.id)
		}
	}
	// ch0: the first event three times (two failures, then delivered),
	// and nothing else before it was delivered; ch1 every event in order.
	want0 := append([]string{ids[0], ids[0]}, ids...)
	if !slices.Equal(ch0, want0) {
		t.Errorf("ch0 got %v, want %v", ch0, want0)
	}
	if !slices.Equal(ch1, ids) {
		t.Errorf("ch1 got %v, want %v", ch1, ids)
	}
}

func TestChannelUnknownToADaemonIsLeftToTheOthers(t *testing.T) {
	dsn := pgtest.DSN(t)
	rcv := newOutboxReceiver(t)
	yaml := clusterYAML(rcv.URL, 1)
	plugs := pht.Dir(t, pht.Webhook)
	cl := dispatch.Cluster{ClaimTTL: 30 * time.Second, Workers: 2, Poll: 100 * time.Millisecond}
	cl.Node = "b"
	b := startDaemon(t, dsn, yaml, plugs, plain(cl))
	cl.Node = "a"
	a := startDaemon(t, dsn, yaml, plugs, plain(cl))
	// Created through a after b loaded its channels: b does not know it.
	if err := a.reg.CreateChannel(context.Background(), access.Principal{}, channels.Input{
		Name: "late", Type: "webhook", Fields: map[string]string{"url": rcv.URL + "/late"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.reg.Channel("late"); ok {
		t.Fatal("b knows the channel: the test shows nothing")
	}
	var ids []string
	for i := 0; i < 10; i++ {
		ev := event(i)
		ids = append(ids, ev.ID)
		if got := a.d.Dispatch(ev); len(got) != 2 {
			t.Fatalf("routed to %v", got)
		}
	}
	waitQueued(t, a.st, 20)
	waitDrained(t, a.d)
	var late []string
	for _, h := range rcv.recorded() {
		if h.channel == "late" {
			late = append(late, h.id)
		}
	}
	if !slices.Equal(late, ids) {
		msgs, _ := a.st.Messages(context.Background(), store.MessageQuery{Limit: 30})
		t.Errorf("late got %v, want %v; journal: %+v", late, ids, msgs)
	}
	if s := b.d.Stats(); s.GaveUp != 0 {
		t.Errorf("b gave up %d deliveries", s.GaveUp)
	}
}

// The child process of TestWorkerKilledMidSendIsResentWithTheSameKey: a
// daemon that queues one event and sends it (the receiver holds the
// request) until it is killed.
func TestOutboxChild(t *testing.T) {
	dsn := os.Getenv("HBD_OUTBOX_CHILD")
	if dsn == "" {
		t.Skip("run by TestWorkerKilledMidSendIsResentWithTheSameKey")
	}
	c := startDaemon(t, dsn, os.Getenv("HBD_OUTBOX_YAML"), os.Getenv("HBD_OUTBOX_PLUGINS"),
		plain(dispatch.Cluster{Node: "child", ClaimTTL: 3 * time.Second, Workers: 1}))
	ev := event(1)
	ev.ID = os.Getenv("HBD_OUTBOX_EVENT")
	c.d.Dispatch(ev)
	select {} // until killed
}

func TestWorkerKilledMidSendIsResentWithTheSameKey(t *testing.T) {
	dsn := pgtest.DSN(t)
	rcv := newOutboxReceiver(t)
	yaml := clusterYAML(rcv.URL, 1)
	plugs := pht.Dir(t, pht.Webhook)
	rcv.hold(true)
	id := fmt.Sprintf("web01/m1/%d", time.Now().UnixNano())
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxChild$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "HBD_OUTBOX_CHILD="+dsn, "HBD_OUTBOX_YAML="+yaml, "HBD_OUTBOX_PLUGINS="+plugs, "HBD_OUTBOX_EVENT="+id)
	// Its own process group, with its plugin processes: killed together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
	})
	first := rcv.waitFor(t, "the child's send", 60*time.Second, func(hs []hit) bool { return len(hs) >= 1 })[0]
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	killed = true
	rcv.hold(false)

	// Another daemon takes the delivery over once the child's claim
	// expired (3 s) and sends it with the same key.
	d := startDaemon(t, dsn, yaml, plugs, plain(dispatch.Cluster{Node: "survivor", ClaimTTL: 3 * time.Second, Workers: 1, Poll: 200 * time.Millisecond}))
	hits := rcv.waitFor(t, "the resend", 60*time.Second, func(hs []hit) bool { return len(hs) >= 2 })
	waitDrained(t, d.d)
	if first.id != id || first.key != sdk.SafeID(id) {
		t.Errorf("the child sent %+v, want event %s with key %s", first, id, sdk.SafeID(id))
	}
	for _, h := range hits[1:] {
		if h != first {
			t.Errorf("resent %+v, want the same as the first send %+v", h, first)
		}
	}
	testutil.Eventually(t, "the survivor counts its delivery", 10*time.Second, func() bool { return d.d.Stats().Delivered == 1 })
	if hits := rcv.recorded(); len(hits) != 2 {
		t.Errorf("%d requests, want 2 (the killed send and the resend): %+v", len(hits), hits)
	}
}

func TestStoppingDaemonHandsItsSendBackAtOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	rcv := newOutboxReceiver(t)
	yaml := clusterYAML(rcv.URL, 1)
	plugs := pht.Dir(t, pht.Webhook)
	rcv.hold(true)
	// Claims last an hour: only the release lets another daemon resend.
	cl := dispatch.Cluster{Node: "a", ClaimTTL: time.Hour, Workers: 1, Poll: 100 * time.Millisecond}
	a := startDaemon(t, dsn, yaml, plugs, plain(cl))
	ev := event(1)
	a.d.Dispatch(ev)
	first := rcv.waitFor(t, "a's send", 60*time.Second, func(hs []hit) bool { return len(hs) >= 1 })[0]
	rcv.hold(false)
	a.d.Close() // the held attempt is cancelled after the close grace and its claim released
	cl.Node = "b"
	b := startDaemon(t, dsn, yaml, plugs, plain(cl))
	hits := rcv.waitFor(t, "b's resend", 60*time.Second, func(hs []hit) bool { return len(hs) >= 2 })
	waitDrained(t, b.d)
	if first.id != ev.ID || hits[1] != first {
		t.Errorf("sent %+v then %+v, want event %s twice with one key", first, hits[1], ev.ID)
	}
}

func TestStaleFenceQueuesNothing(t *testing.T) {
	dsn := pgtest.DSN(t)
	rcv := newOutboxReceiver(t)
	yaml := clusterYAML(rcv.URL, 2)
	plugs := pht.Dir(t, pht.Webhook)
	var mu sync.Mutex
	var fence store.FenceFunc
	leading := func() (store.Fence, bool) {
		mu.Lock()
		defer mu.Unlock()
		return fence()
	}
	a := startDaemon(t, dsn, yaml, plugs, func(st *store.Store) dispatch.Cluster {
		fence, _ = leaseFence(t, st, "a")
		return dispatch.Cluster{Node: "a", Fence: leading, Workers: 1, Poll: 200 * time.Millisecond}
	})

	// While a leads, its event is queued and delivered.
	a.d.Dispatch(event(1))
	rcv.waitFor(t, "the leader's event delivered", 60*time.Second, func(hs []hit) bool { return len(hs) == 2 })
	waitDrained(t, a.d)

	// The lease moves to b; a still offers its old epoch.
	stale, _ := fence()
	if err := a.st.ReleaseLease(context.Background(), "a", stale.Epoch); err != nil {
		t.Fatal(err)
	}
	if _, epoch := leaseFence(t, a.st, "b"); epoch <= stale.Epoch {
		t.Fatalf("b's epoch %d, a's %d", epoch, stale.Epoch)
	}
	a.d.Dispatch(event(2))
	testutil.Eventually(t, "the stale write refused", 30*time.Second, func() bool { return a.d.Stats().Refused == 1 })

	// A daemon that knows it does not lead does not even try.
	mu.Lock()
	fence = func() (store.Fence, bool) { return store.Fence{}, false }
	mu.Unlock()
	a.d.Dispatch(event(3))
	if got := a.d.Stats().Refused; got != 2 {
		t.Errorf("refused %d events, want 2", got)
	}

	pending, err := a.st.PendingDeliveries(context.Background())
	if err != nil || len(pending) != 0 {
		t.Errorf("outbox holds %d deliveries (%v), want none", len(pending), err)
	}
	pairs, err := a.st.SentPairs(context.Background(), 100)
	if err != nil || len(pairs) != 2 {
		t.Errorf("%d (event, channel) pairs recorded (%v), want the first event's 2", len(pairs), err)
	}
	if hits := rcv.recorded(); len(hits) != 2 {
		t.Errorf("%d requests, want the first event's 2: %+v", len(hits), hits)
	}
}

func TestClusterNeedsThePostgreSQLStore(t *testing.T) {
	st, err := store.Open(context.Background(), t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := testutil.Config(t, clusterYAML("http://127.0.0.1:1", 1))
	conf := func() *config.Config { return cfg }
	policy := access.NewPolicy(conf, access.NewHosts(cfg))
	host, _ := pht.Start(t, t.TempDir(), pluginhost.Options{})
	reg := newRegistry(t, conf, st, host, policy, nil)
	d, err := dispatch.New(dispatch.Options{Config: conf, Store: st, Channels: reg, Plugins: host, Policy: policy,
		Cluster: &dispatch.Cluster{Node: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Errorf("Start with a SQLite store: %v, want an error naming PostgreSQL", err)
	}
}

// BenchmarkClusterDeliveries measures the cluster outbox's throughput:
// two daemons on one PostgreSQL (the pgtest server, on the same cores),
// four workers each, 8 webhook channels; each op is one event queued by
// the leader to all 8 channels, claimed, sent through
// hbd-notifier-webhook to a local receiver and completed. It reports
// deliveries/s from the first Dispatch until every delivery arrived and
// the outbox drained. one-daemon-sqlite is the same load on a single
// daemon without Cluster (per-channel queues in memory, SQLite), for
// comparison on the same machine at the same time.
func BenchmarkClusterDeliveries(b *testing.B) {
	const m = 8
	b.Run("two-daemons-postgres", func(b *testing.B) {
		dsn := pgtest.DSN(b)
		rcv := newOutboxReceiver(b)
		yaml := clusterYAML(rcv.URL, m)
		plugs := pht.Dir(b, pht.Webhook)
		cl := dispatch.Cluster{ClaimTTL: 30 * time.Second, Workers: 4}
		cl.Node = "a"
		a := startDaemon(b, dsn, yaml, plugs, plain(cl))
		cl.Node = "b"
		startDaemon(b, dsn, yaml, plugs, plain(cl))
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			a.d.Dispatch(event(i))
		}
		waitQueued(b, a.st, b.N*m)
		rcv.waitFor(b, "every delivery", 10*time.Minute, func(hs []hit) bool { return len(hs) >= b.N*m })
		waitDrained(b, a.d)
		b.StopTimer()
		b.ReportMetric(float64(b.N*m)/time.Since(start).Seconds(), "deliveries/s")
	})
	b.Run("one-daemon-sqlite", func(b *testing.B) {
		rcv := newOutboxReceiver(b)
		cfg := testutil.Config(b, clusterYAML(rcv.URL, m))
		host, _ := pht.Start(b, pht.Dir(b, pht.Webhook), pluginhost.Options{})
		st, err := store.Open(context.Background(), b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		conf := func() *config.Config { return cfg }
		policy := access.NewPolicy(conf, access.NewHosts(cfg))
		reg := newRegistry(b, conf, st, host, policy, nil)
		d, err := dispatch.New(dispatch.Options{Config: conf, Store: st, Channels: reg, Plugins: host, Policy: policy})
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			d.Dispatch(event(i))
		}
		rcv.waitFor(b, "every delivery", 10*time.Minute, func(hs []hit) bool { return len(hs) >= b.N*m })
		b.StopTimer()
		b.ReportMetric(float64(b.N*m)/time.Since(start).Seconds(), "deliveries/s")
	})
}
