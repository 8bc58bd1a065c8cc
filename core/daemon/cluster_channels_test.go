package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// TestClusterUserChannelChangesReachEveryDaemon runs two real `hbd serve`
// on one PostgreSQL database with the real webhook plugin and a recording
// receiver, and changes a user channel through the API of one daemon
// while the other must act on it without a restart:
//
//  1. "hook" created through the follower: the leader's API lists it
//     (its secret masked) and routes the cpu alert to it; the receiver
//     gets the notification;
//  2. its url changed through the leader: the follower lists the new url,
//     and the recovery is delivered to the new url;
//  3. deleted through the follower: the leader's API lists it gone, and
//     the next alert (delivered through the config channel "ops", so
//     known to be decided and sent) reaches no url of "hook".
//
// Nothing is timed: every step polls for its condition.
func TestClusterUserChannelChangesReachEveryDaemon(t *testing.T) {
	dsn := pgtest.DSN(t)
	hbdBin := testutil.Build(t, "./core/cmd/hbd")
	plugins := pht.Dir(t, pht.Webhook)
	rcv := pht.NewReceiver(t)
	ctx := context.Background()

	extra := `thresholds:
  cpu.v: {warning: 50, critical: 90}
notification_channels:
  ops: {type: webhook, url: "` + rcv.URL + `/ops"}
watchhosts:
  cpu01: {key: "` + testutil.Key + `"}
`
	nodes := []*clusterDaemon{
		startClusterDaemon(t, hbdBin, dsn, "n1", plugins, extra),
		startClusterDaemon(t, hbdBin, dsn, "n2", plugins, extra),
	}
	leader, follower := leaderOfTwo(t, nodes)

	// The driver: one cpu01 sample a tick, value cpu, posted to the leader.
	var cpu atomic.Int64
	cpu.Store(10)
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
			req := testutil.IngestRequest(t, leader.d.BaseURL, "cpu01", []byte(testutil.Key), testutil.Sample("cpu", ts, map[string]any{"v": cpu.Load()}))
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	outboxEmpty := func() bool {
		var n int
		return conn.QueryRow(ctx, `SELECT count(*) FROM notify_queue`).Scan(&n) == nil && n == 0
	}

	type payload struct {
		ID    string `json:"id"`
		Level string `json:"level"`
	}
	// delivered returns the payloads the receiver got at path.
	delivered := func(path string) []payload {
		var out []payload
		for _, r := range rcv.Requests() {
			if r.Path != path {
				continue
			}
			var p payload
			if err := json.Unmarshal(r.Body, &p); err != nil {
				t.Fatalf("receiver body at %s: %v: %s", path, err, r.Body)
			}
			out = append(out, p)
		}
		return out
	}
	waitLevel := func(path, level string, skip map[string]bool) payload {
		t.Helper()
		var got payload
		testutil.Eventually(t, "a "+level+" notification at "+path, 60*time.Second, func() bool {
			for _, p := range delivered(path) {
				if p.Level == level && !skip[p.ID] {
					got = p
					return true
				}
			}
			return false
		})
		return got
	}
	type channelView struct {
		Name   string `json:"name"`
		Fields []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"fields"`
	}
	// field returns the value of key of channel name as n's API lists it;
	// ok is false when n does not list the channel.
	field := func(n *clusterDaemon, name, key string) (value string, ok bool) {
		var list []channelView
		getJSON(t, n.d.BaseURL+"/api/0/notification_channels", &list)
		for _, c := range list {
			if c.Name != name {
				continue
			}
			for _, f := range c.Fields {
				if f.Key == key {
					return f.Value, true
				}
			}
			return "", true
		}
		return "", false
	}
	send := func(n *clusterDaemon, method, path string, body any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, n.d.BaseURL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s on %s: %v", method, path, n.name, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			var msg bytes.Buffer
			msg.ReadFrom(resp.Body)
			t.Fatalf("%s %s on %s: %s %s", method, path, n.name, resp.Status, msg.String())
		}
	}

	// 1. Created through the follower: the leader learns of it and routes
	// to it.
	const secret = "hook-signing-secret-123"
	send(follower, http.MethodPost, "/api/0/notification_channels",
		map[string]string{"name": "hook", "type": "webhook", "url": rcv.URL + "/hook", "secret": secret})
	testutil.Eventually(t, "the leader to list the channel created through the follower", 30*time.Second, func() bool {
		_, ok := field(leader, "hook", "url")
		return ok
	})
	for _, n := range nodes {
		if v, _ := field(n, "hook", "secret"); v != "•••" {
			t.Fatalf("%s lists hook's secret as %q, want it masked", n.name, v)
		}
	}
	cpu.Store(95)
	fired := waitLevel("/hook", "CRITICAL", nil)
	waitLevel("/ops", "CRITICAL", nil)

	// 2. Changed through the leader: the follower applies the new url.
	send(leader, http.MethodPut, "/api/0/notification_channels/hook", map[string]string{"url": rcv.URL + "/hook2"})
	testutil.Eventually(t, "the follower to list the changed url", 30*time.Second, func() bool {
		v, _ := field(follower, "hook", "url")
		return v == rcv.URL+"/hook2"
	})
	if v, _ := field(follower, "hook", "secret"); v != "•••" {
		t.Fatalf("the follower lists hook's secret as %q after the change, want it masked", v)
	}
	cpu.Store(10)
	waitLevel("/hook2", "OK", nil)
	for _, p := range delivered("/hook") {
		if p.Level == "OK" {
			t.Fatalf("the recovery went to the old url: %+v", p)
		}
	}

	// 3. Deleted through the follower: the leader stops routing to it.
	send(follower, http.MethodDelete, "/api/0/notification_channels/hook", nil)
	testutil.Eventually(t, "the leader to list the channel gone", 30*time.Second, func() bool {
		_, ok := field(leader, "hook", "url")
		return !ok
	})
	seen := map[string]bool{fired.ID: true}
	for _, p := range delivered("/ops") {
		seen[p.ID] = true
	}
	cpu.Store(95)
	again := waitLevel("/ops", "CRITICAL", seen)
	testutil.Eventually(t, "the outbox to drain", 30*time.Second, outboxEmpty)
	for _, path := range []string{"/hook", "/hook2"} {
		for _, p := range delivered(path) {
			if p.ID == again.ID {
				t.Fatalf("the alert after the deletion reached %s: %+v", path, p)
			}
		}
	}
}
