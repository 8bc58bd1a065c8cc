package daemon_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hbdmon/hbd/core/heartbeat"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
	"github.com/hbdmon/hbd/notifiers/webhook"
)

// TestClusterFailoverDeliversEveryAlertChange is issue 15's end-to-end
// test of notifications across a failover: three real `hbd serve` on one
// PostgreSQL database, a webhook channel (the real plugin) pointing at a
// recording receiver, and two simulated hosts that heartbeat to every
// daemon: cpu01, whose cpu the test drives across the critical threshold
// (samples posted to one live daemon, failing over to the next), and
// hb01, which stays healthy. The leader is killed with SIGKILL while
// cpu01 is CRITICAL; after the new epoch cpu01 recovers and goes
// CRITICAL again. Then, from the database and the receiver:
//
//   - a daemon other than the killed one leads with a higher epoch;
//   - every (event, channel) pair the cluster queued (notify_sent)
//     reached the receiver, and the outbox drained;
//   - every alert episode of cpu01 (alert_history) was notified when it
//     began and, if it ended, when it ended;
//   - copies of one event (same X-HBD-Event-Id) carry one X-HBD-Event-Key;
//   - no heartbeat notification for either host: the failover itself is
//     no outage (the new leader holds timeouts; both hosts kept sending
//     to the survivors);
//   - every sample a daemon acknowledged is a row in PostgreSQL.
//
// Nothing is timed: every step polls for its condition.
func TestClusterFailoverDeliversEveryAlertChange(t *testing.T) {
	dsn := pgtest.DSN(t)
	hbdBin := testutil.Build(t, "./core/cmd/hbd")
	plugins := pht.Dir(t, pht.Webhook)
	rcv := pht.NewReceiver(t)
	ctx := context.Background()
	const hostTimeout = 4 * time.Second

	extra := `thresholds:
  cpu.v: {warning: 50, critical: 90}
notification_channels:
  hook: {type: webhook, url: "` + rcv.URL + `/hook"}
watchhosts:
  cpu01: {key: "` + testutil.Key + `", timeout: ` + hostTimeout.String() + `}
  hb01: {key: "` + testutil.Key + `", timeout: ` + hostTimeout.String() + `}
`
	nodes := []*clusterDaemon{
		startClusterDaemon(t, hbdBin, dsn, "n1", plugins, extra),
		startClusterDaemon(t, hbdBin, dsn, "n2", plugins, extra),
		startClusterDaemon(t, hbdBin, dsn, "n3", plugins, extra),
	}
	var mu sync.Mutex // guards clusterDaemon.dead
	live := func() []*clusterDaemon {
		mu.Lock()
		defer mu.Unlock()
		var out []*clusterDaemon
		for _, n := range nodes {
			if !n.dead {
				out = append(out, n)
			}
		}
		return out
	}

	// Both hosts heartbeat to every daemon, each stream its own session,
	// as hbc does.
	hbCtx, hbStop := context.WithCancel(ctx)
	var hbWG sync.WaitGroup
	t.Cleanup(func() { hbStop(); hbWG.Wait() })
	for _, host := range []string{"cpu01", "hb01"} {
		for _, n := range nodes {
			c, err := heartbeat.NewClient(heartbeat.ClientConfig{Host: host, Key: []byte(testutil.Key),
				Interval: 250 * time.Millisecond, Addr4: "127.0.0.1:" + strconv.Itoa(n.hb)})
			if err != nil {
				t.Fatal(err)
			}
			hbWG.Add(1)
			go func() { defer hbWG.Done(); c.Run(hbCtx) }()
		}
	}

	// The driver: one cpu01 sample a tick, value cpu, posted to the first
	// live daemon that acknowledges it; the acknowledged timestamps are
	// kept.
	var cpu atomic.Uint64
	cpu.Store(math.Float64bits(10))
	var ackMu sync.Mutex
	var acked []float64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		client := &http.Client{Timeout: 2 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			ts := float64(time.Now().UnixMicro()) / 1e6
			v := math.Float64frombits(cpu.Load())
			for _, n := range live() {
				req := testutil.IngestRequest(t, n.d.BaseURL, "cpu01", []byte(testutil.Key), testutil.Sample("cpu", ts, map[string]any{"v": v}))
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					ackMu.Lock()
					acked = append(acked, ts)
					ackMu.Unlock()
					break
				}
			}
		}
	}()
	stopDriver := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopDriver)

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	cpuLevel := func() string {
		var l string
		conn.QueryRow(ctx, `SELECT level FROM alert_states WHERE host = 'cpu01' AND metric = 'cpu.v'`).Scan(&l)
		return l
	}
	leader := func(skip string) (n *clusterDaemon, epoch int64) {
		for _, c := range live() {
			var v clusterView
			getJSON(t, c.d.BaseURL+"/api/0/cluster", &v)
			if v.Leader != nil && *v.Leader != skip {
				for _, m := range nodes {
					if m.name == *v.Leader {
						return m, v.Epoch
					}
				}
			}
		}
		return nil, 0
	}

	var first *clusterDaemon
	var epoch1 int64
	testutil.Eventually(t, "a leader", 60*time.Second, func() bool { first, epoch1 = leader(""); return first != nil })
	testutil.Eventually(t, "cpu01 OK", 60*time.Second, func() bool { return cpuLevel() == "OK" })
	cpu.Store(math.Float64bits(95))
	testutil.Eventually(t, "cpu01 CRITICAL", 60*time.Second, func() bool { return cpuLevel() == "CRITICAL" })

	first.d.Kill()
	mu.Lock()
	first.dead = true
	mu.Unlock()
	var second *clusterDaemon
	var epoch2 int64
	testutil.Eventually(t, "a new leader", 60*time.Second, func() bool { second, epoch2 = leader(first.name); return second != nil })
	if epoch2 <= epoch1 {
		t.Fatalf("new leader %s has epoch %d, the killed %s had %d", second.name, epoch2, first.name, epoch1)
	}
	tookOver := time.Now()

	cpu.Store(math.Float64bits(10))
	testutil.Eventually(t, "cpu01 OK after the failover", 60*time.Second, func() bool { return cpuLevel() == "OK" })
	cpu.Store(math.Float64bits(95))
	testutil.Eventually(t, "cpu01 CRITICAL again", 60*time.Second, func() bool { return cpuLevel() == "CRITICAL" })
	// Long enough after the takeover for the new leader to have declared
	// a host DOWN if the failover made it believe one was: its hold of
	// one timeout and the timeout itself, twice over.
	for time.Since(tookOver) < 4*hostTimeout {
		time.Sleep(100 * time.Millisecond)
	}
	stopDriver()

	type event struct {
		host, metric, level string
		episode             time.Time
	}
	received := func() (byID map[string][]pht.Request, evs []event) {
		byID = map[string][]pht.Request{}
		for _, r := range rcv.Requests() {
			id := r.Header.Get(webhook.EventIDHeader)
			byID[id] = append(byID[id], r)
			var p struct {
				Host    string     `json:"host"`
				Metric  string     `json:"metric_path"`
				Level   string     `json:"level"`
				Episode *time.Time `json:"episode_start"`
			}
			if err := json.Unmarshal(r.Body, &p); err != nil {
				t.Fatalf("receiver got %q: %v", r.Body, err)
			}
			ev := event{host: p.Host, metric: p.Metric, level: p.Level}
			if p.Episode != nil {
				ev.episode = *p.Episode
			}
			evs = append(evs, ev)
		}
		return byID, evs
	}
	queued := func() (ids []string) {
		rows, err := conn.Query(ctx, `SELECT event_id FROM notify_sent WHERE channel = 'hook' ORDER BY created`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			rows.Scan(&id)
			ids = append(ids, id)
		}
		return ids
	}
	var missing []string
	testutil.Eventually(t, "the outbox drained and every queued notification received", 120*time.Second, func() bool {
		var pending int
		conn.QueryRow(ctx, `SELECT count(*) FROM notify_queue`).Scan(&pending)
		byID, _ := received()
		missing = missing[:0]
		for _, id := range queued() {
			if len(byID[id]) == 0 {
				missing = append(missing, id)
			}
		}
		return pending == 0 && len(missing) == 0
	})

	byID, evs := received()
	for id, rs := range byID {
		for _, r := range rs[1:] {
			if k := r.Header.Get(webhook.EventKeyHeader); k != rs[0].Header.Get(webhook.EventKeyHeader) || k == "" {
				t.Errorf("copies of event %s carry keys %q and %q", id, rs[0].Header.Get(webhook.EventKeyHeader), k)
			}
		}
	}
	for _, ev := range evs {
		if ev.metric != "cpu.v" {
			t.Errorf("a notification caused by the failover: %+v", ev)
		}
	}

	// Every episode of cpu01 the cluster recorded was notified.
	rows, err := conn.Query(ctx, `SELECT start, ended FROM alert_history WHERE host = 'cpu01' AND metric = 'cpu.v' ORDER BY start`)
	if err != nil {
		t.Fatal(err)
	}
	type episode struct {
		start float64
		ended *float64
	}
	var eps []episode
	for rows.Next() {
		var e episode
		if err := rows.Scan(&e.start, &e.ended); err != nil {
			t.Fatal(err)
		}
		eps = append(eps, e)
	}
	rows.Close()
	if len(eps) < 2 {
		t.Fatalf("alert_history has %d episodes of cpu01, want the one before and the one after the failover", len(eps))
	}
	notified := func(start float64, level string) bool {
		for _, ev := range evs {
			if ev.level == level && math.Abs(float64(ev.episode.UnixNano())/1e9-start) < 0.002 {
				return true
			}
		}
		return false
	}
	for _, e := range eps {
		if !notified(e.start, "CRITICAL") {
			t.Errorf("episode of cpu01 from %f never notified CRITICAL; received %+v", e.start, evs)
		}
		if e.ended != nil && !notified(e.start, "OK") {
			t.Errorf("episode of cpu01 from %f ended at %f, its recovery never notified; received %+v", e.start, *e.ended, evs)
		}
	}

	// No acknowledged sample lost.
	stored := map[float64]bool{}
	srows, err := conn.Query(ctx, `SELECT x.ts FROM samples x JOIN series s ON s.id = x.series WHERE s.host = 'cpu01' AND s.plugin = 'cpu'`)
	if err != nil {
		t.Fatal(err)
	}
	for srows.Next() {
		var ts float64
		srows.Scan(&ts)
		stored[ts] = true
	}
	srows.Close()
	ackMu.Lock()
	defer ackMu.Unlock()
	lost := 0
	for _, ts := range acked {
		if !stored[ts] {
			lost++
		}
	}
	if lost > 0 || len(acked) == 0 {
		t.Fatalf("%d of %d acknowledged samples are not in PostgreSQL", lost, len(acked))
	}
	t.Logf("epochs %d → %d (%s killed, %s leads); %d episodes, %d notifications received for %d events, %d samples acknowledged",
		epoch1, epoch2, first.name, second.name, len(eps), len(evs), len(byID), len(acked))
}
