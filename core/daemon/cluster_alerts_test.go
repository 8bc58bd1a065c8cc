package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// TestFollowerServesAndChangesTheFleetsAlerts: two real `hbd serve` on
// one PostgreSQL database. A host goes CRITICAL on the leader; the
// follower's GET /api/0/alerts lists it; an acknowledgement POSTed to the
// follower is applied by the leader (its state acknowledged, the journal
// line written once) and answered with the leader's state; a silence
// created on the follower is the leader's, and removed through the
// follower; the follower answers an unknown metric 404 as the leader would.
func TestFollowerServesAndChangesTheFleetsAlerts(t *testing.T) {
	dsn := pgtest.DSN(t)
	hbdBin := testutil.Build(t, "./core/cmd/hbd")
	ctx := context.Background()
	_, leader, follower := twoWatchingLoad(t, hbdBin, dsn)
	type alertsView struct {
		Alerts []struct {
			Hostname     string `json:"hostname"`
			MetricPath   string `json:"metric_path"`
			Level        string `json:"level"`
			Acknowledged bool   `json:"acknowledged"`
		} `json:"alerts"`
	}
	critical := func(n *clusterDaemon) bool {
		var v alertsView
		getJSON(t, n.d.BaseURL+"/api/0/alerts", &v)
		return len(v.Alerts) == 1 && v.Alerts[0].Hostname == "web01" && v.Alerts[0].MetricPath == "load.v" && v.Alerts[0].Level == "CRITICAL"
	}
	// Samples go to the follower: the leader tails them, decides, and the
	// follower serves what it decided.
	client := &http.Client{Timeout: 5 * time.Second}
	testutil.Eventually(t, "web01 CRITICAL on the follower's /api/0/alerts", 60*time.Second, func() bool {
		ts := float64(time.Now().UnixNano()) / 1e9
		req := testutil.IngestRequest(t, follower.d.BaseURL, "web01", []byte(testutil.Key), testutil.Sample("load", ts, map[string]any{"v": 95}))
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
		return critical(follower)
	})
	if !critical(leader) {
		t.Fatal("the leader does not list the alert the follower shows")
	}

	send := func(method, url string, body any, out any) int {
		t.Helper()
		var rd bytes.Buffer
		if body != nil {
			json.NewEncoder(&rd).Encode(body)
		}
		req, err := http.NewRequest(method, url, &rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}

	// An acknowledgement through the follower.
	var ack struct {
		OK    bool `json:"ok"`
		Alert struct {
			Level        string `json:"level"`
			Acknowledged bool   `json:"acknowledged"`
		} `json:"alert"`
	}
	if code := send(http.MethodPost, follower.d.BaseURL+"/api/0/hosts/web01/alerts/ack", map[string]string{"metric_path": "load.v"}, &ack); code != http.StatusOK || !ack.OK || !ack.Alert.Acknowledged || ack.Alert.Level != "CRITICAL" {
		t.Fatalf("ack through the follower: %d %+v", code, ack)
	}
	acked := func(n *clusterDaemon) bool {
		var v alertsView
		getJSON(t, n.d.BaseURL+"/api/0/alerts", &v)
		return len(v.Alerts) == 1 && v.Alerts[0].Acknowledged
	}
	if !acked(leader) {
		t.Fatal("the leader's state is not acknowledged after the follower's answer")
	}
	testutil.Eventually(t, "the acknowledgement on the follower's /api/0/alerts", 30*time.Second, func() bool { return acked(follower) })
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	count := func(q string) int {
		var n int
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	testutil.Eventually(t, "the acknowledgement's journal line", 30*time.Second, func() bool {
		return count(`SELECT count(*) FROM journal WHERE msg LIKE 'web01 load.v CRITICAL acknowledged by %'`) == 1
	})
	var e struct {
		Error string `json:"error"`
	}
	if code := send(http.MethodPost, follower.d.BaseURL+"/api/0/hosts/web01/alerts/ack", map[string]string{"metric_path": "load.nope"}, &e); code != http.StatusNotFound || e.Error == "" {
		t.Fatalf("ack of an unknown metric through the follower: %d %+v", code, e)
	}

	// A silence through the follower is the leader's.
	var sil struct {
		OK      bool `json:"ok"`
		Silence struct {
			ID string `json:"id"`
		} `json:"silence"`
	}
	if code := send(http.MethodPost, follower.d.BaseURL+"/api/0/silences", map[string]any{"host": "web01", "duration": "1h", "comment": "deploy"}, &sil); code != http.StatusOK || sil.Silence.ID == "" {
		t.Fatalf("silence through the follower: %d %+v", code, sil)
	}
	type silenceView []struct {
		ID      string `json:"id"`
		Comment string `json:"comment"`
	}
	var ls silenceView
	getJSON(t, leader.d.BaseURL+"/api/0/silences", &ls)
	if len(ls) != 1 || ls[0].ID != sil.Silence.ID || ls[0].Comment != "deploy" {
		t.Fatalf("the leader's silences %+v, want %s", ls, sil.Silence.ID)
	}
	testutil.Eventually(t, "the silence on the follower", 30*time.Second, func() bool {
		var fs silenceView
		getJSON(t, follower.d.BaseURL+"/api/0/silences", &fs)
		return len(fs) == 1 && fs[0].ID == sil.Silence.ID
	})
	if code := send(http.MethodDelete, follower.d.BaseURL+"/api/0/silences/"+sil.Silence.ID, nil, nil); code != http.StatusOK {
		t.Fatalf("removing the silence through the follower: %d", code)
	}
	ls = nil
	getJSON(t, leader.d.BaseURL+"/api/0/silences", &ls)
	if len(ls) != 0 {
		t.Fatalf("the leader still has silences %+v", ls)
	}
	if n := count(`SELECT count(*) FROM alert_commands WHERE applied_by LIKE '` + leader.name + `#%'`); n != 4 {
		t.Fatalf("%d commands applied by the leader, want 4", n)
	}
}
