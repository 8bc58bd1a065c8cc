package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// clusterView is the part of GET /api/0/cluster the tests read.
type clusterView struct {
	Node   string  `json:"node"`
	Leader *string `json:"leader"`
	Epoch  int64   `json:"epoch"`
	Nodes  []struct {
		Node    string `json:"node"`
		Leading bool   `json:"leading"`
	} `json:"nodes"`
}

// fencedWrite is one row of fenced_writes: a leader's alert-state write,
// stamped inside its transaction with the database's clock.
type fencedWrite struct {
	epoch  int64
	holder string
	at     time.Time
}

// fencedWrites reads every row of fenced_writes, ordered by their
// database stamps.
func fencedWrites(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]fencedWrite, error) {
	rows, err := q.Query(ctx, `SELECT epoch, holder, at FROM fenced_writes ORDER BY at`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []fencedWrite
	for rows.Next() {
		var w fencedWrite
		if err := rows.Scan(&w.epoch, &w.holder, &w.at); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// assertOneLeaderAtATime fails t unless the fenced writes ws (ordered by
// their database stamps, as fencedWrites gives them) show one leader at a
// time: the epochs never go down, each epoch writes under one holder
// only, and hence no epoch writes after a newer epoch's first write.
func assertOneLeaderAtATime(t *testing.T, ws []fencedWrite) {
	t.Helper()
	holders := map[int64]string{}
	for i, w := range ws {
		if h, ok := holders[w.epoch]; ok && h != w.holder {
			t.Fatalf("epoch %d written by %s and %s", w.epoch, h, w.holder)
		}
		holders[w.epoch] = w.holder
		if i > 0 && w.epoch < ws[i-1].epoch {
			t.Fatalf("epoch %d wrote at %s, after epoch %d wrote at %s: two leaders", w.epoch, w.at, ws[i-1].epoch, ws[i-1].at)
		}
	}
}

// ackedSample is a sample of the cluster driver that a daemon answered
// 200 to: committed in the database.
type ackedSample struct {
	node string
	ts   float64
	at   time.Time // when the answer came
}

// twoWatchingLoad starts two cluster daemons watching web01 with a
// threshold on load.v (warning 50, critical 90) and returns them, the
// leader and the follower.
func twoWatchingLoad(t *testing.T, hbdBin, dsn string) (nodes []*clusterDaemon, leader, follower *clusterDaemon) {
	t.Helper()
	cfg := `thresholds:
  load.v: {warning: 50, critical: 90}
watchhosts:
  web01:
    key: "` + testutil.Key + `"
`
	nodes = []*clusterDaemon{
		startClusterDaemon(t, hbdBin, dsn, "n1", "./plugins", cfg),
		startClusterDaemon(t, hbdBin, dsn, "n2", "./plugins", cfg),
	}
	leader, follower = leaderOfTwo(t, nodes)
	return nodes, leader, follower
}

// leaderOfTwo waits until the first of two daemons names a leader and
// returns it and the other one.
func leaderOfTwo(t *testing.T, nodes []*clusterDaemon) (leader, follower *clusterDaemon) {
	t.Helper()
	testutil.Eventually(t, "a leader", 60*time.Second, func() bool {
		var v clusterView
		getJSON(t, nodes[0].d.BaseURL+"/api/0/cluster", &v)
		if v.Leader == nil {
			return false
		}
		for i, n := range nodes {
			if n.name == *v.Leader {
				leader, follower = n, nodes[1-i]
				return true
			}
		}
		return false
	})
	return leader, follower
}

// clusterDriver keeps the leader writing alert state: every 100 ms it
// posts web01's load.v, flipping between 10 and 95, to every live daemon
// (each stores it once; only the leader evaluates, and each flip is a
// fenced write). It records the samples acknowledged.
type clusterDriver struct {
	mu    sync.Mutex
	acked []ackedSample
}

// driveCluster starts a clusterDriver over the daemons live returns; it
// stops at the test's cleanup.
func driveCluster(t *testing.T, live func() []*clusterDaemon) *clusterDriver {
	d := &clusterDriver{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		client := &http.Client{Timeout: 2 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			v := 10.0
			if i%2 == 1 {
				v = 95
			}
			ts := float64(time.Now().UnixNano()) / 1e9
			for _, n := range live() {
				req := testutil.IngestRequest(t, n.d.BaseURL, "web01", []byte(testutil.Key), testutil.Sample("load", ts, map[string]any{"v": v}))
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					d.mu.Lock()
					d.acked = append(d.acked, ackedSample{node: n.name, ts: ts, at: time.Now()})
					d.mu.Unlock()
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
	return d
}

// Acked returns the samples acknowledged so far.
func (d *clusterDriver) Acked() []ackedSample {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]ackedSample(nil), d.acked...)
}

// clusterDaemon is one real `hbd serve` of a test cluster.
type clusterDaemon struct {
	name     string
	http, hb int
	d        *testutil.Daemon
	dead     bool // set by the test that killed it
}

// startClusterDaemon starts `hbd serve` as cluster node name on the
// database dsn (lease_ttl 2s, renew_interval 500ms, debug log), with the
// plugins of pluginsDir and extra appended to its configuration
// (thresholds, watchhosts, channels).
func startClusterDaemon(t *testing.T, hbdBin, dsn, name, pluginsDir, extra string) *clusterDaemon {
	t.Helper()
	n := &clusterDaemon{name: name, http: testutil.FreePort(t), hb: testutil.FreePort(t)}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	body := fmt.Sprintf(`hbd_host: 127.0.0.1
hbd_port: %d
ws_port: %d
hb_port: %d
data_dir: ./data
plugins_dir: %s
log_level: debug
store:
  driver: postgres
  dsn: %q
cluster:
  enabled: true
  node: %s
  lease_ttl: 2s
  renew_interval: 500ms
`, n.http, testutil.FreePort(t), n.hb, pluginsDir, dsn+" application_name="+name, name) + extra
	if err := os.WriteFile(filepath.Join(dir, "hbd.yaml"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	n.d = testutil.StartDaemon(t, hbdBin, dir, n.http)
	t.Cleanup(func() {
		if t.Failed() {
			log := n.d.Stderr()
			if len(log) > 200_000 {
				log = log[len(log)-200_000:]
			}
			t.Logf("%s's log (its end):\n%s", name, log)
		}
	})
	return n
}

// TestClusterOfThreeDaemonsHasOneFencedLeader runs three real `hbd serve`
// on one PostgreSQL database (cluster.enabled, lease_ttl 2s,
// renew_interval 500ms) while a driver posts a value that flips between
// OK and CRITICAL to every live daemon, so the leader writes alert state
// all the time. Then, on the same cluster:
//
//  1. only the leader evaluates: every fenced write is by its holder and
//     the followers log no level change;
//  2. kill -9 of the leader: another daemon takes over with a new epoch
//     (polled for; the measured time is logged, not asserted);
//  3. the new leader SIGSTOPped until a third daemon has taken over and
//     written under its epoch and twice the TTL has passed, then SIGCONT:
//     it steps down (journal, log, /metrics) and commits nothing more;
//  4. the leader's database sessions killed with pg_terminate_backend,
//     three times: the cluster recovers (a leader writes again).
//
// Throughout, "never two leaders" is asserted from the rows: ordered by
// their database stamps, the epochs of fenced writes never go down, each
// epoch writes under one holder only, and no epoch writes after a newer
// epoch's first write.
func TestClusterOfThreeDaemonsHasOneFencedLeader(t *testing.T) {
	dsn := pgtest.DSN(t)
	hbdBin := testutil.Build(t, "./core/cmd/hbd")
	ctx := context.Background()

	type node = clusterDaemon
	start := func(name string) *node {
		return startClusterDaemon(t, hbdBin, dsn, name, "./plugins", `thresholds:
  load.v: {warning: 50, critical: 90}
  other.v: {warning: 50, critical: 90}
watchhosts:
  web01:
    key: "`+testutil.Key+`"
`)
	}
	nodes := []*node{start("n1"), start("n2"), start("n3")}
	var mu sync.Mutex // guards node.dead
	live := func() []*node {
		mu.Lock()
		defer mu.Unlock()
		var out []*node
		for _, n := range nodes {
			if !n.dead {
				out = append(out, n)
			}
		}
		return out
	}
	view := func(n *node) clusterView {
		var v clusterView
		getJSON(t, n.d.BaseURL+"/api/0/cluster", &v)
		return v
	}
	byName := func(name string) *node {
		for _, n := range nodes {
			if n.name == name {
				return n
			}
		}
		t.Fatalf("no node %q", name)
		return nil
	}
	// leaderOther waits until a daemon other than skip is named leader by
	// a live daemon, and returns it.
	leaderOther := func(what string, skip map[string]bool) *node {
		var got *node
		testutil.Eventually(t, what, 60*time.Second, func() bool {
			for _, n := range live() {
				if skip[n.name] {
					continue
				}
				if v := view(n); v.Leader != nil && !skip[*v.Leader] {
					got = byName(*v.Leader)
					return true
				}
			}
			return false
		})
		return got
	}

	driveCluster(t, live)

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	writes := func() []fencedWrite {
		ws, err := fencedWrites(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		return ws
	}
	writesOf := func(epoch int64) int {
		n := 0
		for _, w := range writes() {
			if w.epoch == epoch {
				n++
			}
		}
		return n
	}
	neverTwoLeaders := func() []fencedWrite {
		t.Helper()
		ws := writes()
		assertOneLeaderAtATime(t, ws)
		return ws
	}
	leaderEpoch := func(n *node) int64 {
		v := view(n)
		if v.Leader == nil || *v.Leader != n.name {
			return 0
		}
		return v.Epoch
	}

	// 1. One leader, and only it evaluates.
	first := leaderOther("a leader", nil)
	e1 := leaderEpoch(first)
	testutil.Eventually(t, "the leader's fenced writes", 60*time.Second, func() bool { return writesOf(e1) >= 5 })
	for _, w := range neverTwoLeaders() {
		if !strings.HasPrefix(w.holder, first.name+"#") {
			t.Fatalf("a fenced write by %s, the leader is %s", w.holder, first.name)
		}
	}
	if v := view(nodes[0]); len(v.Nodes) != 3 {
		t.Fatalf("/api/0/cluster lists %d nodes, want 3: %+v", len(v.Nodes), v)
	}
	for _, n := range nodes {
		if n != first && strings.Contains(n.d.Stderr(), "alert level changed") {
			t.Fatalf("follower %s evaluated:\n%s", n.name, n.d.Stderr())
		}
	}
	if !strings.Contains(first.d.Stderr(), "alert level changed") {
		t.Fatal("the leader logged no level change")
	}
	// A sample stored by a follower only reaches the leader's evaluation
	// (the leader reads new sample rows from the database).
	var follower *node
	for _, n := range nodes {
		if n != first {
			follower = n
			break
		}
	}
	req := testutil.IngestRequest(t, follower.d.BaseURL, "web01", []byte(testutil.Key),
		testutil.Sample("other", float64(time.Now().UnixNano())/1e9, map[string]any{"v": 95}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest to the follower: %v %v", resp, err)
	}
	resp.Body.Close()
	testutil.Eventually(t, "the leader to evaluate the follower's sample", 60*time.Second, func() bool {
		var lv string
		var ep int64
		err := conn.QueryRow(ctx, `SELECT level, epoch FROM alert_states WHERE host = 'web01' AND metric = 'other.v'`).Scan(&lv, &ep)
		return err == nil && lv == "CRITICAL" && ep == e1
	})
	if strings.Contains(follower.d.Stderr(), "alert level changed") {
		t.Fatalf("follower %s evaluated its own sample", follower.name)
	}

	// 2. kill -9 of the leader.
	mu.Lock()
	first.dead = true
	mu.Unlock()
	killed := time.Now()
	first.d.Kill()
	second := leaderOther("a new leader after kill -9", map[string]bool{first.name: true})
	e2 := leaderEpoch(second)
	t.Logf("failover after kill -9: %s took over (epoch %d -> %d) %s after the kill (lease_ttl 2s, renew_interval 500ms)",
		second.name, e1, e2, time.Since(killed).Round(10*time.Millisecond))
	if e2 <= e1 {
		t.Fatalf("epoch %d after %d", e2, e1)
	}
	testutil.Eventually(t, "the new leader's fenced writes", 60*time.Second, func() bool { return writesOf(e2) >= 3 })
	neverTwoLeaders()

	// 3. The leader paused for more than twice the TTL, then resumed.
	second.d.Signal(syscall.SIGSTOP)
	paused := time.Now()
	var third *node
	testutil.Eventually(t, "a third leader while the second is stopped", 60*time.Second, func() bool {
		for _, n := range live() {
			if n == second {
				continue
			}
			if v := view(n); v.Leader != nil && *v.Leader != second.name {
				third = byName(*v.Leader)
				return true
			}
		}
		return false
	})
	e3 := leaderEpoch(third)
	testutil.Eventually(t, "the third leader's writes, and twice the TTL", 60*time.Second, func() bool {
		return writesOf(e3) >= 3 && time.Since(paused) > 4*time.Second
	})
	second.d.Signal(syscall.SIGCONT)
	stepped := fmt.Sprintf("cluster: %s stepped down as leader (epoch %d)", second.name, e2)
	testutil.Eventually(t, "the resumed leader to step down", 60*time.Second, func() bool {
		var msgs []struct {
			Msg string `json:"msg"`
		}
		getJSON(t, third.d.BaseURL+"/api/0/messages?limit=200", &msgs)
		for _, m := range msgs {
			if strings.HasPrefix(m.Msg, stepped) {
				return true
			}
		}
		return false
	})
	fams, _ := scrapeFamilies(t, second.d.BaseURL)
	if v, ok := value(fams, "hbd_cluster_leader", nil); !ok || v != 0 {
		t.Fatalf("the resumed daemon's hbd_cluster_leader = %v (%v), want 0", v, ok)
	}
	if v, ok := value(fams, "hbd_cluster_stepdowns_total", nil); !ok || v < 1 {
		t.Fatalf("the resumed daemon's hbd_cluster_stepdowns_total = %v (%v)", v, ok)
	}
	if v, ok := value(fams, "hbd_cluster_epoch", nil); !ok || v != float64(e2) {
		t.Fatalf("the resumed daemon's hbd_cluster_epoch = %v (%v), want %d", v, ok, e2)
	}
	// More writes of the third epoch after the resume; none of the second.
	atResume := writesOf(e3)
	testutil.Eventually(t, "more writes by the third leader", 60*time.Second, func() bool { return writesOf(e3) >= atResume+3 })
	ws := neverTwoLeaders()
	var firstOf3 time.Time
	for _, w := range ws {
		if w.epoch == e3 {
			firstOf3 = w.at
			break
		}
	}
	for _, w := range ws {
		if w.epoch == e2 && !w.at.Before(firstOf3) {
			t.Fatalf("the paused leader (epoch %d) committed at %s, after epoch %d began writing at %s", e2, w.at, e3, firstOf3)
		}
	}
	if v := view(second); v.Leader == nil || *v.Leader != third.name {
		t.Fatalf("the resumed daemon sees leader %v, want %s", v.Leader, third.name)
	}

	// 4. The leader's sessions killed, three times.
	admin := conn
	leader := third
	for round := 0; round < 3; round++ {
		victim := leader
		var killedN int
		if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, victim.name).Scan(&killedN); err != nil {
			t.Fatalf("pg_terminate_backend: %v", err)
		}
		if killedN == 0 {
			t.Fatalf("no session of %s to terminate", victim.name)
		}
		before := len(writes())
		testutil.Eventually(t, "fenced writes after the sessions were killed", 60*time.Second, func() bool { return len(writes()) >= before+3 })
		leader = leaderOther("a leader after the sessions were killed", nil)
		t.Logf("round %d: %d sessions of %s terminated; leader now %s (epoch %d)", round, killedN, victim.name, leader.name, leaderEpoch(leader))
	}
	ws = neverTwoLeaders()
	epochs := map[int64]bool{}
	for _, w := range ws {
		epochs[w.epoch] = true
	}
	t.Logf("%d fenced writes under %d epochs", len(ws), len(epochs))
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM cluster_epochs`).Scan(&n); err != nil || n < 3 {
		t.Fatalf("cluster_epochs holds %d rows (%v), want >= 3", n, err)
	}
}
