package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// TestEveryDaemonServesTheWholeFleetsSamples: two real `hbd serve` on one
// PostgreSQL database; an agent that sends only to the first. The second
// daemon still serves the host: its GET /hosts/{h}/plugins shows the
// newest sample, and a live-feed client
// connected to it receives the sample. Before, each daemon held only the
// samples it had stored itself.
func TestEveryDaemonServesTheWholeFleetsSamples(t *testing.T) {
	dsn := pgtest.DSN(t)
	hbdBin := testutil.Build(t, "./core/cmd/hbd")
	cfg := `watchhosts:
  web01:
    key: "` + testutil.Key + `"
`
	a := startClusterDaemon(t, hbdBin, dsn, "n1", "./plugins", cfg)
	b := startClusterDaemon(t, hbdBin, dsn, "n2", "./plugins", cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	feed, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.d.BaseURL, "http")+"/hbd", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer feed.CloseNow()
	feed.SetReadLimit(16 << 20)
	got := make(chan string, 1)
	go func() {
		for {
			_, msg, err := feed.Read(ctx)
			if err != nil {
				return
			}
			if s := string(msg); strings.Contains(s, "web01") && strings.Contains(s, "42.5") {
				got <- s
				return
			}
		}
	}()

	ts := float64(time.Now().UnixMicro()) / 1e6
	req := testutil.IngestRequest(t, a.d.BaseURL, "web01", []byte(testutil.Key), testutil.Sample("load", ts, map[string]any{"v": 42.5}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest on n1: %d", resp.StatusCode)
	}

	type pluginsView struct {
		Plugins map[string]struct {
			Timestamp float64        `json:"timestamp"`
			Data      map[string]any `json:"data"`
		} `json:"plugins"`
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("n2 log:\n%s", b.d.Stderr())
			conn, err := pgx.Connect(context.Background(), dsn)
			if err == nil {
				rows, _ := conn.Query(context.Background(), `SELECT coalesce(application_name,''), coalesce(state,''), coalesce(backend_xid::text,''), coalesce(backend_xmin::text,''), left(query, 120) FROM pg_stat_activity WHERE datname = current_database()`)
				for rows.Next() {
					var a, b2, c, d, q string
					rows.Scan(&a, &b2, &c, &d, &q)
					t.Logf("session %s %s xid=%s xmin=%s %s", a, b2, c, d, q)
				}
				rows.Close()
				var x string
				conn.QueryRow(context.Background(), `SELECT pg_snapshot_xmin(pg_current_snapshot())::text || ' ' || (SELECT count(*) FROM samples)::text || ' ' || (SELECT coalesce(max(xid::text),'') FROM samples)`).Scan(&x)
				t.Logf("xmin, samples, max xid: %s", x)
				conn.Close(context.Background())
			}
		}
	})
	testutil.Eventually(t, "n2 serving the sample n1 stored", 60*time.Second, func() bool {
		var v pluginsView
		getJSON(t, b.d.BaseURL+"/api/0/hosts/web01/plugins", &v)
		p, ok := v.Plugins["load"]
		return ok && p.Data["v"] == 42.5
	})
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatal("n2's live feed never carried the sample n1 stored")
	}
}

// TestANewLeaderDecidesWhatWasStoredWhileNobodyLed: two real `hbd serve`
// on one PostgreSQL database. web01's load.v is OK on the leader; then the
// test takes the lease itself (as a leader that died with its lease still
// running would hold it), waits until the leader's step-down is
// journaled, and posts a CRITICAL value to a daemon: stored, held by both
// daemons, and decided by nobody. It then expires the lease. The daemon
// that takes over must decide on that sample at takeover: web01 load.v
// CRITICAL with no further sample. Before, a new leader evaluated only
// the samples that arrived after its takeover, so the metric stayed OK
// until its next sample.
func TestANewLeaderDecidesWhatWasStoredWhileNobodyLed(t *testing.T) {
	dsn := pgtest.DSN(t)
	hbdBin := testutil.Build(t, "./core/cmd/hbd")
	nodes, leader, follower := twoWatchingLoad(t, hbdBin, dsn)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	level := func() string {
		var l string
		conn.QueryRow(ctx, `SELECT level FROM alert_states WHERE host = 'web01' AND metric = 'load.v'`).Scan(&l)
		return l
	}
	post := func(n *clusterDaemon, v float64) {
		t.Helper()
		ts := float64(time.Now().UnixMicro()) / 1e6
		resp, err := http.DefaultClient.Do(testutil.IngestRequest(t, n.d.BaseURL, "web01", []byte(testutil.Key), testutil.Sample("load", ts, map[string]any{"v": v})))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("ingest on %s: %d", n.name, resp.StatusCode)
		}
	}
	holds := func(n *clusterDaemon, v float64) bool {
		var got struct {
			Plugins map[string]struct {
				Data map[string]any `json:"data"`
			} `json:"plugins"`
		}
		getJSON(t, n.d.BaseURL+"/api/0/hosts/web01/plugins", &got)
		return got.Plugins["load"].Data["v"] == v
	}

	post(follower, 10)
	testutil.Eventually(t, "web01 load.v OK", 60*time.Second, func() bool { return level() == "OK" })

	var epoch int64
	if err := conn.QueryRow(ctx, `UPDATE leader_lease SET holder = 'test', epoch = epoch + 1, expires = clock_timestamp() + interval '1 hour', since = clock_timestamp() WHERE id = 1 RETURNING epoch - 1`).Scan(&epoch); err != nil {
		t.Fatal(err)
	}
	stepped := fmt.Sprintf("cluster: %s stepped down as leader (epoch %d)%%", leader.name, epoch)
	testutil.Eventually(t, "the leader's step-down", 60*time.Second, func() bool {
		var n int
		conn.QueryRow(ctx, `SELECT count(*) FROM journal WHERE msg LIKE $1`, stepped).Scan(&n)
		return n == 1
	})

	post(follower, 95)
	for _, n := range nodes {
		testutil.Eventually(t, n.name+" holding the CRITICAL value", 60*time.Second, func() bool { return holds(n, 95) })
	}
	if l := level(); l != "OK" {
		t.Fatalf("web01 load.v is %s while no daemon leads", l)
	}

	if _, err := conn.Exec(ctx, `UPDATE leader_lease SET expires = clock_timestamp() WHERE id = 1 AND holder = 'test'`); err != nil {
		t.Fatal(err)
	}
	next, _ := leaderOfTwo(t, nodes)
	testutil.Eventually(t, "web01 load.v CRITICAL from the sample of the gap", 60*time.Second, func() bool { return level() == "CRITICAL" })
	var alerts struct {
		Alerts []struct {
			Hostname string `json:"hostname"`
			Level    string `json:"level"`
		} `json:"alerts"`
	}
	getJSON(t, next.d.BaseURL+"/api/0/alerts", &alerts)
	if len(alerts.Alerts) != 1 || alerts.Alerts[0].Hostname != "web01" || alerts.Alerts[0].Level != "CRITICAL" {
		t.Fatalf("the new leader %s lists %+v", next.name, alerts.Alerts)
	}
}
