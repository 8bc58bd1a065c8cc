package daemon_test

import (
	"context"
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
