package daemon_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// TestClusterSurvivesPostgresRestart runs three real `hbd serve` on a
// PostgreSQL server of the test's own (lease_ttl 2s, renew_interval
// 500ms) while the cluster driver keeps the leader writing alert state,
// and restarts that server (a fast shutdown, then a start on the same
// data directory and socket) three times: twice at once, and once kept
// down for three lease TTLs, so every lease has expired when it is back.
// After each restart, polled for:
//
//   - the leader writes fenced rows again, stamped after the restart;
//   - every daemon is still running, /healthz answers 200 (a write has
//     committed again), its lease loop has recorded an attempt in
//     cluster_nodes since the restart, and it names the same leader;
//   - every daemon acknowledges samples posted after the restart;
//   - a sample posted to a follower only is evaluated by the leader
//     (under its current epoch): its read of new sample rows resumed;
//
// and at the end, every acknowledged sample is a row in the database and,
// from the rows, there was never more than one leader at a time.
// Observations (how long each recovery took, whether the leader stepped
// down) are logged, not asserted.
func TestClusterSurvivesPostgresRestart(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	hbdBin := testutil.Build(t, "./core/cmd/hbd")
	ctx := context.Background()

	const ttl = 2 * time.Second // startClusterDaemon's lease_ttl
	nodes := []*clusterDaemon{}
	for _, name := range []string{"r1", "r2", "r3"} {
		nodes = append(nodes, startClusterDaemon(t, hbdBin, dsn, name, "./plugins", `thresholds:
  load.v: {warning: 50, critical: 90}
  other.v: {warning: 50, critical: 90}
watchhosts:
  web01:
    key: "`+testutil.Key+`"
`))
	}
	live := func() []*clusterDaemon { return nodes }
	driver := driveCluster(t, live)

	// The test's own connection, opened again after each restart.
	var conn *pgx.Conn
	db := func() *pgx.Conn {
		if conn != nil && !conn.IsClosed() {
			return conn
		}
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return nil
		}
		conn = c
		return conn
	}
	t.Cleanup(func() {
		if conn != nil {
			conn.Close(ctx)
		}
	})
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range nodes {
			var keep []string
			for _, l := range strings.Split(strings.TrimSpace(n.d.Stderr()), "\n") {
				if !strings.Contains(l, "alert level changed") && !strings.Contains(l, "nobody was told") {
					keep = append(keep, l)
				}
			}
			if len(keep) > 80 {
				keep = keep[len(keep)-80:]
			}
			t.Logf("%s's log, last lines but level changes:\n%s", n.name, strings.Join(keep, "\n"))
		}
		if c := db(); c != nil {
			var snap, maxXid string
			c.QueryRow(ctx, `SELECT pg_current_snapshot()::text, (SELECT max(xid)::text FROM samples)`).Scan(&snap, &maxXid)
			t.Logf("snapshot %s, newest sample xid %s", snap, maxXid)
			if rows, err := c.Query(ctx, `SELECT s.xid::text, s.ts, r.plugin FROM samples s JOIN series r ON r.id = s.series WHERE r.plugin <> 'load'`); err == nil {
				for rows.Next() {
					var x, p string
					var ts float64
					rows.Scan(&x, &ts, &p)
					t.Logf("sample of %s: xid %s ts %f", p, x, ts)
				}
				rows.Close()
			}
			rows, err := c.Query(ctx, `SELECT application_name, coalesce(state, ''), coalesce(backend_xid::text, ''), coalesce(backend_xmin::text, ''), coalesce(xact_start::text, ''), left(query, 120)
				FROM pg_stat_activity WHERE datname = current_database()`)
			if err == nil {
				for rows.Next() {
					var app, state, xid, xmin, start, q string
					rows.Scan(&app, &state, &xid, &xmin, &start, &q)
					t.Logf("session %s %s xid=%s xmin=%s xact_start=%s: %s", app, state, xid, xmin, start, q)
				}
				rows.Close()
			}
		}
	})
	// writes returns the fenced writes, or nil while the database does
	// not answer yet.
	writes := func() []fencedWrite {
		c := db()
		if c == nil {
			return nil
		}
		ws, err := fencedWrites(ctx, c)
		if err != nil {
			c.Close(ctx)
			return nil
		}
		return ws
	}
	writesAfter := func(at time.Time) int {
		n := 0
		for _, w := range writes() {
			if w.at.After(at) {
				n++
			}
		}
		return n
	}
	dbNow := func() time.Time {
		var now time.Time
		testutil.Eventually(t, "the database's clock", 60*time.Second, func() bool {
			c := db()
			return c != nil && c.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now) == nil
		})
		return now
	}
	// leaderOf returns who n names leader and the epoch, "" when none or
	// when n does not answer.
	leaderOf := func(n *clusterDaemon) (string, int64) {
		var v clusterView
		getJSON(t, n.d.BaseURL+"/api/0/cluster", &v)
		if v.Leader == nil {
			return "", 0
		}
		return *v.Leader, v.Epoch
	}
	stepdowns := func(n *clusterDaemon) float64 {
		fams, _ := scrapeFamilies(t, n.d.BaseURL)
		v, _ := value(fams, "hbd_cluster_stepdowns_total", nil)
		return v
	}

	// A leader writes.
	start := dbNow()
	testutil.Eventually(t, "the first leader's fenced writes", 60*time.Second, func() bool { return writesAfter(start) >= 5 })
	assertOneLeaderAtATime(t, writes())

	for round, down := range []time.Duration{0, 3 * ttl, 0} {
		before, epochBefore := leaderOf(nodes[0])
		var stepsBefore []float64
		for _, n := range nodes {
			stepsBefore = append(stepsBefore, stepdowns(n))
		}
		stopped := time.Now()
		srv.Restart(t, down)
		back := time.Now()
		restarted := dbNow()

		testutil.Eventually(t, "fenced writes after the restart", 120*time.Second, func() bool { return writesAfter(restarted) >= 3 })
		writing := time.Since(back)
		for _, n := range nodes {
			if n.d.Exited() {
				t.Fatalf("%s exited after the restart:\n%s", n.name, n.d.Stderr())
			}
			testutil.Eventually(t, n.name+"'s /healthz after the restart", 60*time.Second, func() bool {
				resp, err := http.Get(n.d.BaseURL + "/healthz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			})
			testutil.Eventually(t, n.name+"'s lease attempts after the restart", 60*time.Second, func() bool {
				var seen time.Time
				c := db()
				return c != nil && c.QueryRow(ctx, `SELECT last_seen FROM cluster_nodes WHERE node = $1`, n.name).Scan(&seen) == nil && seen.After(restarted)
			})
			testutil.Eventually(t, n.name+" acknowledging samples after the restart", 60*time.Second, func() bool {
				for _, a := range driver.Acked() {
					if a.node == n.name && a.at.After(back) {
						return true
					}
				}
				return false
			})
		}
		var after string
		var epochAfter int64
		testutil.Eventually(t, "every daemon naming the same leader", 60*time.Second, func() bool {
			after, epochAfter = leaderOf(nodes[0])
			for _, n := range nodes[1:] {
				if l, _ := leaderOf(n); l != after {
					return false
				}
			}
			return after != ""
		})
		// A sample stored by a follower only reaches the leader's
		// evaluation: the leader's read of new sample rows resumed.
		var follower *clusterDaemon
		for _, n := range nodes {
			if n.name != after {
				follower = n
				break
			}
		}
		other, level := 95.0, "CRITICAL"
		if round%2 == 1 {
			other, level = 10, "OK"
		}
		// Posted again every 200 ms until evaluated: a sample committed
		// while the leader is between a step-down and its takeover is not
		// evaluated (by design: the next sample decides), and the lease
		// row, which /api/0/cluster reads, names the leader through that
		// gap.
		var posted time.Time
		post := func() {
			if time.Since(posted) < 200*time.Millisecond {
				return
			}
			posted = time.Now()
			req := testutil.IngestRequest(t, follower.d.BaseURL, "web01", []byte(testutil.Key),
				testutil.Sample("other", float64(time.Now().UnixNano())/1e9, map[string]any{"v": other}))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		testutil.Eventually(t, "the leader to evaluate the follower's sample as "+level, 60*time.Second, func() bool {
			post()
			var lv string
			var ep int64
			c := db()
			return c != nil && c.QueryRow(ctx, `SELECT level, epoch FROM alert_states WHERE host = 'web01' AND metric = 'other.v'`).Scan(&lv, &ep) == nil &&
				lv == level && ep >= epochAfter
		})
		var stepped []string
		for i, n := range nodes {
			if s := stepdowns(n); s > stepsBefore[i] {
				stepped = append(stepped, n.name)
			}
		}
		t.Logf("restart %d (kept down %s, %s from stop to ready): leader %s (epoch %d) before, %s (epoch %d) after; stepped down: %v; fenced writes again %s after the server was back",
			round+1, down, back.Sub(stopped).Round(10*time.Millisecond), before, epochBefore, after, epochAfter,
			strings.Join(stepped, ","), writing.Round(10*time.Millisecond))
		assertOneLeaderAtATime(t, writes())
	}

	// Nothing acknowledged is missing.
	acked := driver.Acked()
	testutil.Eventually(t, "the database", 60*time.Second, func() bool { return db() != nil })
	var missing int
	for _, a := range acked {
		var n int
		if err := db().QueryRow(ctx, `SELECT count(*) FROM samples s JOIN series r ON r.id = s.series
			WHERE r.host = 'web01' AND r.plugin = 'load' AND s.ts = $1`, a.ts).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged samples are not in the database", missing, len(acked))
	}
	ws := writes()
	assertOneLeaderAtATime(t, ws)
	epochs := map[int64]bool{}
	for _, w := range ws {
		epochs[w.epoch] = true
	}
	t.Logf("%d acknowledged samples all stored; %d fenced writes under %d epochs", len(acked), len(ws), len(epochs))
}
