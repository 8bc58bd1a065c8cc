package dispatch_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/dispatch"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
)

const coverageYAML = `
users:
  alice: {password_hash: "HASH"}
  bob: {password_hash: "HASH"}
  root: {password_hash: "HASH", admin: true}
watchhosts:
  web01: {key: "` + testutil.Key + `", monitors: [alice]}
  web02: {key: "` + testutil.Key + `", monitors: [alice, bob]}
  db01: {key: "` + testutil.Key + `"}
notification_channels:
  everyone: {type: webhook, url: "RCV_everyone"}
  empty_list: {type: webhook, url: "http://127.0.0.1:1/", hosts: []}
  alice_cfg: {type: webhook, url: "http://127.0.0.1:1/", owner: alice, private: true}
  web_only: {type: webhook, url: "http://127.0.0.1:1/", hosts: ["web*"]}
# The receivers are local; users who are not admins reach them only so.
channel_destinations: {allow: [127.0.0.0/8]}
`

// userChannel creates a webhook channel as who (empty: open mode, no
// owner); hosts nil sends no hosts at all.
func userChannel(t *testing.T, e *env, who, name, url string, hosts *[]string) {
	t.Helper()
	if err := e.reg.CreateChannel(context.Background(), access.Principal{User: who}, channels.Input{
		Name: name, Type: "webhook", Hosts: hosts, Fields: map[string]string{"url": url}}); err != nil {
		t.Fatalf("%s creates %s: %v", who, name, err)
	}
}

func TestChannelWithoutHostsCoversEveryHostItsOwnerMaySee(t *testing.T) {
	e := newEnv(t, strings.ReplaceAll(coverageYAML, "HASH", hash), "everyone", "alice")
	empty := []string{}
	userChannel(t, e, "alice", "alice_all", e.rcv["alice"].URL, &empty) // sent as []
	userChannel(t, e, "bob", "bob_all", "http://127.0.0.1:1/", nil)     // not sent
	userChannel(t, e, "", "open_all", "http://127.0.0.1:1/", nil)       // no owner

	for _, c := range []struct {
		host string
		want []string
	}{
		// Config channels without hosts (missing or []) cover every host;
		// alice_cfg has an owner: the hosts alice may see.
		{"web01", []string{"alice_all", "alice_cfg", "empty_list", "everyone", "open_all", "web_only"}},
		{"web02", []string{"alice_all", "alice_cfg", "bob_all", "empty_list", "everyone", "open_all", "web_only"}},
		// Nobody but admins may see db01.
		{"db01", []string{"empty_list", "everyone", "open_all"}},
		// A host that is not configured (e.g. dynamic) is covered too.
		{"dyn07", []string{"empty_list", "everyone", "open_all"}},
	} {
		if got := e.d.Route(crit(c.host)); !slices.Equal(got, c.want) {
			t.Errorf("Route(%s) = %v, want %v", c.host, got, c.want)
		}
	}

	// Delivered for real: alice's channel with an empty hosts list gets
	// web01's alert and not db01's.
	e.d.Dispatch(crit("db01"))
	web := crit("web01")
	e.d.Dispatch(web)
	reqs := e.rcv["alice"].Wait(t, 1, 10*time.Second)
	e.rcv["everyone"].Wait(t, 2, 10*time.Second)
	if id := reqs[0].Header.Get("X-HBD-Event-Id"); id != web.ID || e.rcv["alice"].Count() != 1 {
		t.Errorf("alice's channel got %d requests, first %s; want web01's alert only", e.rcv["alice"].Count(), id)
	}

	// The channel list says what each channel covers now: the configured
	// hosts and those that reported.
	if _, err := e.st.EnsureHost(context.Background(), "dyn07", true); err != nil {
		t.Fatal(err)
	}
	views := func(c access.Principal) map[string]channels.View {
		out := map[string]channels.View{}
		for _, v := range e.reg.ListChannels(c, e.d.Coverage()) {
			out[v.Name] = v
		}
		return out
	}
	root := views(access.Principal{User: "root", Admin: true})
	for name, want := range map[string][]string{
		"everyone":  {"db01", "dyn07", "web01", "web02"},
		"alice_all": {"web01", "web02"},
		"bob_all":   {"web02"},
		"alice_cfg": {"web01", "web02"},
		"web_only":  {"web01", "web02"},
	} {
		v := root[name]
		if v.CoveredCount != len(want) || !slices.Equal(v.CoveredHosts, want) {
			t.Errorf("admin's view of %s covers %d %v, want %v", name, v.CoveredCount, v.CoveredHosts, want)
		}
	}
	// bob may see web02 only: only it is named and counted (the count
	// must not tell him how large the fleet is).
	bob := views(access.Principal{User: "bob"})
	if v := bob["everyone"]; v.CoveredCount != 1 || !slices.Equal(v.CoveredHosts, []string{"web02"}) {
		t.Errorf("bob's view of everyone covers %d %v", v.CoveredCount, v.CoveredHosts)
	}
	if _, ok := bob["alice_cfg"]; ok {
		t.Error("bob sees alice's private channel")
	}
	// A channel that covers nothing says so with an empty list, not null.
	hosts := []string{"nothing*"}
	userChannel(t, e, "bob", "bob_none", "http://127.0.0.1:1/", &hosts)
	if v := views(access.Principal{User: "bob"})["bob_none"]; v.CoveredCount != 0 || v.CoveredHosts == nil || len(v.CoveredHosts) != 0 {
		t.Errorf("bob_none covers %d %#v", v.CoveredCount, v.CoveredHosts)
	}
}

// episode returns a CRITICAL change of web01's cpu beginning an episode at
// start, and its recovery.
func episode(start time.Time) (change, recovery alert.Event) {
	change = crit("web01")
	change.EpisodeStart, change.Since = start, start
	change.Text = "web01 cpu_monitor.cpu_percent 97.5 ≥ 95 (CRITICAL) for 3 samples"
	recovery = change
	recovery.ID += "/ok"
	recovery.Level, recovery.PreviousLevel, recovery.Kind = "OK", "CRITICAL", alert.KindRecovery
	recovery.Since = start.Add(5 * time.Minute)
	recovery.Text = "web01 cpu_monitor.cpu_percent is back to 40 after 5m0s"
	return change, recovery
}

func TestEpisodeStatusCountsDeliveriesThatSucceeded(t *testing.T) {
	slow := newGate(t)
	logs := &testutil.Buffer{}
	e := newEnv(t, `
watchhosts:
  web01: {key: "`+testutil.Key+`"}
notification_channels:
  hook: {type: webhook, url: "RCV_hook", hosts: ["*"]}
  held: {type: webhook, url: "`+slow.URL+`", hosts: ["*"]}
  rejecting: {type: webhook, url: "RCV_rejecting", hosts: ["*"], min_level: CRITICAL}
`, "hook", "rejecting")
	e.close()
	e.open(t, dispatch.Options{Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})})
	e.rcv["rejecting"].Respond(http.StatusForbidden, "no")
	start := time.Now().Add(-time.Minute).Truncate(time.Second).Add(123456789) // sub-second part

	if n, st := e.d.EpisodeStatus("web01", "cpu_monitor.cpu_percent", start); n != 0 || st != dispatch.EpisodeNotRouted {
		t.Fatalf("before any event: %d %q", n, st)
	}
	change, recovery := episode(start)
	if got := e.d.Dispatch(change); !slices.Equal(got, []string{"held", "hook", "rejecting"}) {
		t.Fatalf("Dispatch = %v", got)
	}
	// held's receiver holds its request; hook delivers, rejecting fails
	// for good: one success so far.
	testutil.Eventually(t, "held's request", 10*time.Second, func() bool { return slow.arrived() == 1 })
	e.rcv["hook"].Wait(t, 1, 10*time.Second)
	e.waitJournal(t, "notify rejecting web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 1)")
	// The start as the alert states keep it (float seconds) finds the
	// same episode.
	asFloat := time.Unix(0, int64(float64(start.UnixNano())/1e9*1e9))
	testutil.Eventually(t, "one delivery counted", 10*time.Second, func() bool {
		n, st := e.d.EpisodeStatus("web01", "cpu_monitor.cpu_percent", asFloat)
		return n == 1 && st == dispatch.EpisodeDelivered
	})
	slow.release()
	testutil.Eventually(t, "two deliveries counted", 10*time.Second, func() bool {
		n, _ := e.d.EpisodeStatus("web01", "cpu_monitor.cpu_percent", start)
		return n == 2
	})
	// The recovery belongs to the same episode: it counts there.
	e.d.Dispatch(recovery)
	e.rcv["hook"].Wait(t, 2, 10*time.Second)
	testutil.Eventually(t, "the recovery counted", 10*time.Second, func() bool {
		n, _ := e.d.EpisodeStatus("web01", "cpu_monitor.cpu_percent", start)
		return n == 4 // hook and held, change and recovery
	})

	// The sdk event carries the text and the episode start.
	var body struct {
		Summary      string    `json:"summary"`
		Title        string    `json:"title"`
		EpisodeStart time.Time `json:"episode_start"`
	}
	if err := json.Unmarshal(e.rcv["hook"].Requests()[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Summary != change.Text || body.Title != "[CRITICAL] "+change.Text || !body.EpisodeStart.Equal(start) {
		t.Errorf("webhook body: summary %q, title %q, episode_start %s", body.Summary, body.Title, body.EpisodeStart)
	}

	// Counts survive a restart.
	e.close()
	e.open(t, dispatch.Options{})
	if n, st := e.d.EpisodeStatus("web01", "cpu_monitor.cpu_percent", start); n != 4 || st != dispatch.EpisodeDelivered {
		t.Errorf("after a restart: %d %q, want 4 delivered", n, st)
	}

	// The log tells each outcome.
	log := logs.String()
	for _, want := range []string{
		`[INFO]  dispatch: notification delivered: channel=hook host=web01 metric=cpu_monitor.cpu_percent level=CRITICAL event_id=` + change.ID + ` attempt=1`,
		`[ERROR] dispatch: notification given up: channel=rejecting host=web01 metric=cpu_monitor.cpu_percent event_id=` + change.ID + ` attempts=1 reason="permanent error" error="HTTP 403`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestEpisodeStatusFailedPendingAndNoChannel(t *testing.T) {
	held := newGate(t)
	logs := &testutil.Buffer{}
	e := newEnv(t, `
watchhosts:
  web01: {key: "`+testutil.Key+`"}
  db01: {key: "`+testutil.Key+`"}
  app01: {key: "`+testutil.Key+`"}
notification_channels:
  down: {type: webhook, url: "RCV_down", hosts: ["web*"]}
  pager: {type: webhook, url: "RCV_down", hosts: ["db*"], min_level: CRITICAL}
  held: {type: webhook, url: "`+held.URL+`", hosts: ["app*"]}
`, "down")
	e.close()
	e.open(t, dispatch.Options{Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug}), RetryBase: 100 * time.Millisecond, RetryMax: 100 * time.Millisecond, MaxAttempts: 3})
	e.rcv["down"].Respond(http.StatusServiceUnavailable, "")
	const cpu = "cpu_monitor.cpu_percent"
	start := time.Now().Add(-time.Minute)

	// Pending while the receiver holds the request, then delivered.
	app := crit("app01")
	app.EpisodeStart = start
	e.d.Dispatch(app)
	testutil.Eventually(t, "held's request", 10*time.Second, func() bool { return held.arrived() == 1 })
	if n, st := e.d.EpisodeStatus("app01", cpu, start); n != 0 || st != dispatch.EpisodePending {
		t.Errorf("while the request is held: %d %q, want pending", n, st)
	}
	held.release()
	testutil.Eventually(t, "delivered", 10*time.Second, func() bool {
		n, st := e.d.EpisodeStatus("app01", cpu, start)
		return n == 1 && st == dispatch.EpisodeDelivered
	})

	// Retried, then given up: failed.
	change, _ := episode(start)
	e.d.Dispatch(change)
	e.waitJournal(t, "; giving up after 3 attempts")
	testutil.Eventually(t, "failed", 10*time.Second, func() bool {
		_, st := e.d.EpisodeStatus("web01", cpu, start)
		return st == dispatch.EpisodeFailed
	})

	// A WARNING on db01 reaches no channel (pager is CRITICAL only).
	w := crit("db01")
	w.Level, w.EpisodeStart = "WARNING", start
	if got := e.d.Dispatch(w); len(got) != 0 {
		t.Fatalf("Dispatch = %v, want no channel", got)
	}
	if n, st := e.d.EpisodeStatus("db01", cpu, start); n != 0 || st != dispatch.EpisodeNoChannel {
		t.Errorf("db01: %d %q, want no channel", n, st)
	}
	const line = "db01 cpu_monitor.cpu_percent WARNING reached no notification channel: nobody was told"
	e.waitJournal(t, line)
	if msgs, _ := e.st.Messages(context.Background(), store.MessageQuery{Host: "db01", Limit: 10}); len(msgs) == 0 || msgs[0].Msg != line {
		t.Errorf("db01's journal = %+v", msgs)
	}
	if !strings.Contains(logs.String(), `[WARN]  dispatch: alert reached no notification channel: nobody was told: host=db01 metric=cpu_monitor.cpu_percent level=WARNING`) {
		t.Errorf("no-channel warning not logged:\n%s", logs)
	}
	for _, want := range []string{
		`[WARN]  dispatch: notification failed; will retry: channel=down host=web01 metric=cpu_monitor.cpu_percent event_id=` + change.ID + ` attempt=1`,
		`[ERROR] dispatch: notification given up: channel=down host=web01 metric=cpu_monitor.cpu_percent event_id=` + change.ID + ` attempts=3 reason="too many attempts"`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	// "no channel" survives a restart too.
	e.close()
	e.open(t, dispatch.Options{})
	if _, st := e.d.EpisodeStatus("db01", cpu, start); st != dispatch.EpisodeNoChannel {
		t.Errorf("after a restart db01 is %q", st)
	}
	if _, st := e.d.EpisodeStatus("web01", cpu, start); st != dispatch.EpisodeFailed {
		t.Errorf("after a restart web01 is %q", st)
	}
}

// An event queued but not delivered when the daemon stops is delivered
// once after the restart, and dispatching it again (the restarted alert
// evaluator fires the same change) queues nothing: one delivery per
// channel. The store is a real SQLite file, closed and reopened.
func TestSameEventIsNeverQueuedTwiceAcrossARestart(t *testing.T) {
	e := hooksEnv(t, "a", "b")
	e.close()
	// The first attempt fails and the retry is a minute away: the
	// delivery is still queued when the dispatcher stops.
	e.open(t, dispatch.Options{RetryBase: time.Minute, RetryMax: time.Minute})
	e.rcv["a"].Script(http.StatusServiceUnavailable)
	e.rcv["b"].Script(http.StatusServiceUnavailable)
	x := crit("web01")
	e.d.Dispatch(x)
	e.waitJournal(t, "notify a web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 1)")
	e.waitJournal(t, "notify b web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 1)")
	// Dispatched again before the "crash": not queued again.
	e.d.Dispatch(x)
	e.close()
	if p := pending(t, nil, e.dir); len(p) != 2 {
		t.Fatalf("pending after stop = %+v, want one per channel", p)
	}
	// Make the stored retries due now, as if the minute had passed.
	st, err := testutil.OpenStore(context.Background(), e.dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pending(t, st) {
		st.UpdateDelivery(p.ID, p.Attempts, time.Now())
	}
	st.Close()

	e.open(t, dispatch.Options{})
	e.d.Dispatch(x) // the restarted evaluator fires the same change
	e.waitJournal(t, "notify a web01 cpu_monitor.cpu_percent CRITICAL: delivered (attempt 2)")
	e.waitJournal(t, "notify b web01 cpu_monitor.cpu_percent CRITICAL: delivered (attempt 2)")
	// A later event goes through the same sequential queues: once it has
	// arrived, anything queued before it has too.
	y := crit("web01")
	e.d.Dispatch(y)
	for _, name := range []string{"a", "b"} {
		reqs := e.rcv[name].Wait(t, 3, 10*time.Second)
		var ids []string
		for _, r := range reqs {
			ids = append(ids, r.Header.Get("X-HBD-Event-Id"))
		}
		if want := []string{x.ID, x.ID, y.ID}; !slices.Equal(ids, want) {
			t.Errorf("%s received %v, want %v (a failed attempt, its retry, the next event)", name, ids, want)
		}
	}
	testutil.Eventually(t, "empty queue", 10*time.Second, func() bool { return len(pending(t, e.st)) == 0 })
	// Without an EpisodeStart the event counts under its Since.
	if n, st := e.d.EpisodeStatus("web01", x.MetricPath, x.Since); n != 2 || st != dispatch.EpisodeDelivered {
		t.Errorf("episode: %d %q, want 2 delivered", n, st)
	}
}

// Delivery records older than the retention are trimmed, in memory and
// in the store; recent ones are kept.
func TestDeliveryRecordsAreTrimmed(t *testing.T) {
	e := hooksEnv(t, "a")
	x := crit("web01")
	e.d.Dispatch(x)
	e.waitJournal(t, "notify a web01 cpu_monitor.cpu_percent CRITICAL: delivered")
	testutil.Eventually(t, "the delivery counted", 10*time.Second, func() bool {
		n, _ := e.d.EpisodeStatus("web01", x.MetricPath, x.Since)
		return n == 1
	})
	e.d.TrimRecords(time.Now())
	if n, _ := e.d.EpisodeStatus("web01", x.MetricPath, x.Since); n != 1 {
		t.Fatalf("a trim now forgot a recent episode: %d", n)
	}
	e.d.Dispatch(x) // still refused
	e.d.TrimRecords(time.Now().Add(dispatch.DefaultRecordRetention + time.Hour))
	if n, st := e.d.EpisodeStatus("web01", x.MetricPath, x.Since); n != 0 || st != dispatch.EpisodeNotRouted {
		t.Errorf("after the trim: %d %q", n, st)
	}
	eps, err := e.st.EpisodeDeliveryCounts(context.Background(), 10)
	if err != nil || len(eps) != 0 {
		t.Errorf("stored episodes after the trim: %+v %v", eps, err)
	}
	pairs, err := e.st.SentPairs(context.Background(), 10)
	if err != nil || len(pairs) != 0 {
		t.Errorf("stored pairs after the trim: %+v %v", pairs, err)
	}
	y := crit("web01")
	e.d.Dispatch(y)
	reqs := e.rcv["a"].Wait(t, 2, 10*time.Second)
	if got := []string{reqs[0].Header.Get("X-HBD-Event-Id"), reqs[1].Header.Get("X-HBD-Event-Id")}; !slices.Equal(got, []string{x.ID, y.ID}) {
		t.Errorf("received %v, want %s then %s", got, x.ID, y.ID)
	}
}
