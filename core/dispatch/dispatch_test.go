package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/dispatch"
	"github.com/hbdmon/hbd/core/dispatch/dispatchrecord"
	"github.com/hbdmon/hbd/core/pluginhost"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
)

// hash is a well-formed bcrypt hash for test users (nobody logs in).
var hash = "$2a$10$" + strings.Repeat("a", 53)

type env struct {
	d     *dispatch.Dispatcher
	reg   *channels.Registry
	cfgMu sync.Mutex // guards cfg once the dispatcher runs (setConfig)
	st    *store.Store
	dir   string
	host  *pluginhost.Host
	cfg   *config.Config
	rcv   map[string]*pht.Receiver
	plugs string
	// close stops the dispatcher and the store opened last.
	close func()
}

// newEnv starts a store, a plugin host with the webhook and pushover
// notifiers and a dispatcher with fast retries. Every channel in yaml
// whose url or api_url is RCV_<name> points at a receiver of that name.
func newEnv(t *testing.T, yaml string, receivers ...string) *env {
	t.Helper()
	e := &env{rcv: map[string]*pht.Receiver{}, dir: testutil.StorePlace(t)}
	for _, name := range receivers {
		r := pht.NewReceiver(t)
		e.rcv[name] = r
		yaml = strings.ReplaceAll(yaml, "RCV_"+name, r.URL)
	}
	e.cfg = testutil.Config(t, yaml)
	e.plugs = pht.Dir(t, pht.Webhook, pht.Pushover)
	e.host, _ = pht.Start(t, e.plugs, pluginhost.Options{})
	e.open(t, dispatch.Options{})
	return e
}

// hooksEnv is newEnv with one webhook channel for every host per name,
// each pointing at the receiver of the same name.
func hooksEnv(t *testing.T, names ...string) *env {
	t.Helper()
	yaml := "watchhosts:\n  web01: {key: \"" + testutil.Key + "\"}\nnotification_channels:\n"
	for _, n := range names {
		yaml += "  " + n + ": {type: webhook, url: \"RCV_" + n + "\", hosts: [\"*\"]}\n"
	}
	return newEnv(t, yaml, names...)
}

// open (re)opens the store, a channel registry and a dispatcher on e.dir.
func (e *env) open(t *testing.T, opts dispatch.Options) {
	t.Helper()
	st, err := testutil.OpenStore(context.Background(), e.dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	conf := func() *config.Config {
		e.cfgMu.Lock()
		defer e.cfgMu.Unlock()
		return e.cfg
	}
	policy := access.NewPolicy(conf, access.NewHosts(conf()))
	e.reg = newRegistry(t, conf, st, e.host, policy, opts.Logger)
	opts.Config = conf
	opts.Store = st
	opts.Channels = e.reg
	opts.Policy = policy
	opts.Plugins = e.host
	if opts.RetryBase == 0 {
		opts.RetryBase = 100 * time.Millisecond
	}
	if opts.RetryMax == 0 {
		opts.RetryMax = 400 * time.Millisecond
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 4
	}
	d, err := dispatch.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.d = d
	var once sync.Once
	e.close = func() {
		once.Do(func() {
			d.Close()
			st.Close()
		})
	}
	t.Cleanup(e.close)
}

// newRegistry starts a channel registry on st.
func newRegistry(t testing.TB, conf func() *config.Config, st *store.Store, plugins channels.Notifier, policy channels.Policy, logger hclog.Logger) *channels.Registry {
	t.Helper()
	reg, err := channels.New(channels.Options{Config: conf, Store: st, Journal: st, Plugins: plugins, Policy: policy, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return reg
}

// journal returns the journal lines, oldest first.
func (e *env) journal(t *testing.T) []string {
	t.Helper()
	msgs, err := e.st.Messages(context.Background(), store.MessageQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(msgs) - 1; i >= 0; i-- {
		out = append(out, msgs[i].Msg)
	}
	return out
}

func (e *env) waitJournal(t *testing.T, substr string) []string {
	t.Helper()
	var lines []string
	testutil.Eventually(t, "journal line "+substr, 10*time.Second, func() bool {
		lines = e.journal(t)
		return slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, substr) })
	})
	return lines
}

// eventSeq numbers the events crit makes: every notification has its own
// ID (the dispatcher never queues an (event ID, channel) pair twice).
var eventSeq atomic.Int64

// crit returns a CRITICAL change of host's cpu, with a new ID.
func crit(host string) alert.Event {
	return alert.Event{ID: fmt.Sprintf("%s/cpu/%d", host, eventSeq.Add(1)), Host: host, MetricPath: "cpu_monitor.cpu_percent", Level: "CRITICAL",
		PreviousLevel: "OK", Value: 97.5, Since: time.Now(), Time: time.Now(), Kind: alert.KindChange, NotificationCount: 1}
}

const routingYAML = `
users:
  alice: {password_hash: "HASH", channels: [alice_sub]}
  bob: {password_hash: "HASH", channels: [bob_sub]}
  root: {password_hash: "HASH", admin: true, channels: [root_sub]}
watchhosts:
  web01:
    key: "` + testutil.Key + `"
    monitors: [alice]
    notify: [crit_only, by_glob]
  db01:
    key: "` + testutil.Key + `"
notification_channels:
  by_glob: {type: webhook, url: "http://127.0.0.1:1/", hosts: ["web*"]}
  db_glob: {type: webhook, url: "http://127.0.0.1:1/", hosts: ["db*"]}
  crit_only: {type: webhook, url: "http://127.0.0.1:1/", min_level: CRITICAL, hosts: ["` + noHost + `"]}
  alice_sub: {type: webhook, url: "http://127.0.0.1:1/", hosts: ["` + noHost + `"]}
  bob_sub: {type: webhook, url: "http://127.0.0.1:1/", hosts: ["` + noHost + `"]}
  root_sub: {type: webhook, url: "http://127.0.0.1:1/", min_level: OK, hosts: ["` + noHost + `"]}
`

// noHost is a hosts glob no test host matches: a channel with it is
// reached only by name (notify lists, subscriptions), since a channel
// without hosts covers every host.
const noHost = "no-such-host"

func TestRouteFollowsHostsNotifySubscriptionsAndMinLevel(t *testing.T) {
	e := newEnv(t, strings.ReplaceAll(routingYAML, "HASH", hash))
	ctx := context.Background()
	alice := access.Principal{User: "alice"}
	bob := access.Principal{User: "bob"}
	for _, c := range []struct {
		who   access.Principal
		name  string
		hosts []string
	}{
		{alice, "alice_glob", []string{"web*"}}, // alice can see web01: applies
		{bob, "bob_glob", []string{"web*"}},     // bob cannot: never leaks web01's alerts
		{alice, "alice_db", []string{"db01"}},   // nor alice's for a host she cannot see
	} {
		hosts := c.hosts
		if err := e.reg.CreateChannel(ctx, c.who, channels.Input{Name: c.name, Type: "webhook", Hosts: &hosts,
			Fields: map[string]string{"url": "http://127.0.0.1:1/"}}); err != nil {
			t.Fatal(err)
		}
	}

	a := crit("web01")
	w := a
	w.Level = "WARNING"
	cases := []struct {
		name string
		a    alert.Event
		want []string
	}{
		{"critical on web01", a, []string{"alice_glob", "alice_sub", "by_glob", "crit_only", "root_sub"}},
		{"warning skips crit_only", w, []string{"alice_glob", "alice_sub", "by_glob", "root_sub"}},
		{"db01 reaches db globs and admins, not alice", func() alert.Event { x := a; x.Host = "db01"; return x }(),
			[]string{"db_glob", "root_sub"}},
		{"recovery from CRITICAL reaches crit_only", func() alert.Event {
			x := a
			x.Level, x.PreviousLevel, x.Kind = "OK", "CRITICAL", alert.KindRecovery
			return x
		}(), []string{"alice_glob", "alice_sub", "by_glob", "crit_only", "root_sub"}},
		{"recovery from WARNING does not", func() alert.Event {
			x := a
			x.Level, x.PreviousLevel, x.Kind = "OK", "WARNING", alert.KindRecovery
			return x
		}(), []string{"alice_glob", "alice_sub", "by_glob", "root_sub"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := e.d.Route(c.a); !slices.Equal(got, c.want) {
				t.Errorf("Route = %v, want %v", got, c.want)
			}
		})
	}
}

func TestRecoveryAfterDowngradeReachesChannelsThatHeardTheProblem(t *testing.T) {
	e := newEnv(t, `
watchhosts:
  web01: {key: "`+testutil.Key+`"}
notification_channels:
  all: {type: webhook, url: "RCV_all", hosts: ["*"]}
  pager: {type: webhook, url: "RCV_pager", hosts: ["*"], min_level: CRITICAL}
`, "all", "pager")
	a := crit("web01")
	if got := e.d.Dispatch(a); !slices.Equal(got, []string{"all", "pager"}) {
		t.Fatalf("critical went to %v", got)
	}
	w := a
	w.ID, w.Level, w.PreviousLevel = a.ID+"/w", "WARNING", "CRITICAL"
	if got := e.d.Dispatch(w); !slices.Equal(got, []string{"all"}) {
		t.Fatalf("downgrade went to %v", got)
	}
	ok := a
	ok.ID, ok.Level, ok.PreviousLevel, ok.Kind = a.ID+"/ok", "OK", "WARNING", alert.KindRecovery
	if got := e.d.Dispatch(ok); !slices.Equal(got, []string{"all", "pager"}) {
		t.Fatalf("recovery went to %v, want all and pager (which heard CRITICAL)", got)
	}
	e.rcv["all"].Wait(t, 3, 5*time.Second)
	reqs := e.rcv["pager"].Wait(t, 2, 5*time.Second)
	var last struct {
		Level string `json:"level"`
	}
	if err := json.Unmarshal(reqs[1].Body, &last); err != nil || last.Level != "OK" {
		t.Errorf("pager's second notification has level %q (%v)", last.Level, err)
	}
}

func TestDeliveryIsJournaledAndDeduplicatedPerChannel(t *testing.T) {
	e := newEnv(t, `
watchhosts:
  web01: {key: "`+testutil.Key+`", notify: [ops_webhook]}
notification_channels:
  ops_webhook: {type: webhook, url: "RCV_ops_webhook", hosts: ["web*"]}
`, "ops_webhook")
	a := crit("web01")
	e.d.Dispatch(a)
	reqs := e.rcv["ops_webhook"].Wait(t, 1, 5*time.Second)
	e.waitJournal(t, "notify ops_webhook web01 cpu_monitor.cpu_percent CRITICAL: delivered")
	time.Sleep(200 * time.Millisecond)
	if n := e.rcv["ops_webhook"].Count(); n != 1 {
		t.Fatalf("a channel named twice by the routing got %d notifications", n)
	}
	if id := reqs[0].Header.Get("X-HBD-Event-Id"); id != a.ID {
		t.Errorf("event id header = %q", id)
	}
	// The alert evaluator's events come in through alert.Sink.
	var sink alert.Sink = e.d
	sink.AlertEvent(alert.Event{ID: "x", Host: "web01", MetricPath: "m", Level: "WARNING", Kind: alert.KindChange, Time: time.Now()})
	e.rcv["ops_webhook"].Wait(t, 2, 5*time.Second)
}

func TestRetriesWithBackoffUntilDelivered(t *testing.T) {
	e := hooksEnv(t, "ops_webhook")
	e.rcv["ops_webhook"].Script(http.StatusServiceUnavailable, http.StatusBadGateway)
	e.d.Dispatch(crit("web01"))
	reqs := e.rcv["ops_webhook"].Wait(t, 3, 10*time.Second)
	lines := e.waitJournal(t, "CRITICAL: delivered (attempt 3)")
	for i := 1; i < 3; i++ {
		if reqs[i].Header.Get("X-HBD-Event-Id") != reqs[0].Header.Get("X-HBD-Event-Id") {
			t.Errorf("retry %d has another event id", i)
		}
	}
	// The backoff doubles from RetryBase (100ms), with under 10% jitter:
	// the scheduled delays, as journaled, not measured ones.
	want := []string{
		"notify ops_webhook web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 1): HTTP 503 from the receiver; retrying in 100ms",
		"notify ops_webhook web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 2): HTTP 502 from the receiver; retrying in 200ms",
		"notify ops_webhook web01 cpu_monitor.cpu_percent CRITICAL: delivered (attempt 3)",
	}
	for _, w := range want {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, w) }) {
			t.Errorf("journal lacks %q:\n%s", w, strings.Join(lines, "\n"))
		}
	}
	testutil.Eventually(t, "empty queue", 2*time.Second, func() bool { return len(pending(t, e.st)) == 0 })
	if s := e.d.Stats(); s.Delivered != 1 || s.Failed != 2 || len(s.Pending) != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestPermanentErrorIsNotRetriedAndGivingUpIsBounded(t *testing.T) {
	e := hooksEnv(t, "rejecting", "down")
	e.rcv["rejecting"].Respond(http.StatusForbidden, "bad credentials")
	e.rcv["down"].Respond(http.StatusInternalServerError, "")
	e.d.Dispatch(crit("web01"))
	lines := e.waitJournal(t, "notify down web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 4)")
	if !slices.ContainsFunc(lines, func(l string) bool {
		return strings.HasPrefix(l, "notify rejecting web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 1): HTTP 403") &&
			strings.HasSuffix(l, "; not retried (permanent error)")
	}) {
		t.Errorf("permanent failure not journaled:\n%s", strings.Join(lines, "\n"))
	}
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasSuffix(l, "; giving up after 4 attempts") }) {
		t.Errorf("giving up not journaled:\n%s", strings.Join(lines, "\n"))
	}
	if n := e.rcv["rejecting"].Count(); n != 1 {
		t.Errorf("a 403 was tried %d times", n)
	}
	if n := e.rcv["down"].Count(); n != 4 {
		t.Errorf("a failing channel was tried %d times, want MaxAttempts = 4", n)
	}
	testutil.Eventually(t, "empty queue", 2*time.Second, func() bool { return len(pending(t, e.st)) == 0 })
	if s := e.d.Stats(); s.GaveUp != 2 {
		t.Errorf("stats = %+v", s)
	}
}

// The fast channel's deliveries all complete while the slow channel's
// first request is held by its receiver (released only afterwards) and
// the failing channel fails: no channel waits for another. Proven from the
// receivers' records, with no timing.
func TestSlowOrFailingChannelDoesNotDelayOthers(t *testing.T) {
	slow := newGate(t)
	e := newEnv(t, `
watchhosts:
  web01: {key: "`+testutil.Key+`"}
notification_channels:
  slow: {type: webhook, url: "`+slow.URL+`", hosts: ["*"]}
  failing: {type: webhook, url: "RCV_failing", hosts: ["*"]}
  fast: {type: webhook, url: "RCV_fast", hosts: ["*"]}
`, "failing", "fast")
	e.rcv["failing"].Respond(http.StatusServiceUnavailable, "")
	for i := 0; i < 3; i++ {
		e.d.Dispatch(crit("web01"))
	}
	testutil.Eventually(t, "the slow channel's first request", 10*time.Second, func() bool { return slow.arrived() == 1 })
	e.rcv["fast"].Wait(t, 3, 10*time.Second)
	e.rcv["failing"].Wait(t, 1, 10*time.Second)
	testutil.Eventually(t, "three deliveries through fast", 10*time.Second, func() bool {
		n := 0
		for _, l := range e.journal(t) {
			if strings.HasPrefix(l, "notify fast web01 cpu_monitor.cpu_percent CRITICAL: delivered") {
				n++
			}
		}
		return n == 3
	})
	// Everything above happened while the slow receiver held its first
	// request: it has answered nothing, and got nothing else (its queue
	// is sequential).
	if a, d := slow.arrived(), slow.answered(); a != 1 || d != 0 {
		t.Fatalf("slow receiver: %d requests arrived, %d answered while blocked; want 1 and 0", a, d)
	}
	slow.release()
	testutil.Eventually(t, "the slow channel's three deliveries", 10*time.Second, func() bool { return slow.answered() == 3 })
	if m := slow.maxInFlight(); m != 1 {
		t.Errorf("slow channel had %d requests in flight at once; its queue must be sequential", m)
	}
}

// gate is a webhook receiver that holds every request until release.
type gate struct {
	URL string

	mu                      sync.Mutex
	in, max, got, nAnswered int
	open                    chan struct{}
	once                    sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{open: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		g.mu.Lock()
		g.got++
		g.in++
		g.max = max(g.max, g.in)
		g.mu.Unlock()
		select {
		case <-g.open:
		case <-r.Context().Done():
		}
		g.mu.Lock()
		g.in--
		if r.Context().Err() == nil {
			g.nAnswered++
		}
		g.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(g.release)
	g.URL = srv.URL
	return g
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) arrived() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.got
}

func (g *gate) answered() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nAnswered
}

func (g *gate) maxInFlight() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max
}

func TestPendingDeliveriesSurviveRestart(t *testing.T) {
	e := hooksEnv(t, "ops_webhook")
	e.rcv["ops_webhook"].Respond(http.StatusServiceUnavailable, "")
	e.close()
	// Retry slowly so the restart happens while the delivery waits.
	e.open(t, dispatch.Options{RetryBase: time.Minute, RetryMax: time.Minute})
	e.d.Dispatch(crit("web01"))
	e.rcv["ops_webhook"].Wait(t, 1, 5*time.Second)
	e.waitJournal(t, "failed (attempt 1)")
	e.close()
	if p := pending(t, nil, e.dir); len(p) != 1 || p[0].Attempts != 1 || p[0].Channel != "ops_webhook" {
		t.Fatalf("pending after stop = %+v", p)
	}

	e.rcv["ops_webhook"].Respond(http.StatusOK, "")
	e.open(t, dispatch.Options{})
	// The stored next attempt is a minute away; a restart keeps it.
	time.Sleep(300 * time.Millisecond)
	if n := e.rcv["ops_webhook"].Count(); n != 1 {
		t.Fatalf("the retry did not wait for its time: %d requests", n)
	}
	e.close()
	// Simulate the minute passing: make the stored delivery due now.
	st, err := testutil.OpenStore(context.Background(), e.dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := pending(t, st)
	st.UpdateDelivery(p[0].ID, p[0].Attempts, time.Now())
	st.Close()

	e.open(t, dispatch.Options{})
	reqs := e.rcv["ops_webhook"].Wait(t, 2, 5*time.Second)
	if reqs[1].Header.Get("X-HBD-Event-Id") != reqs[0].Header.Get("X-HBD-Event-Id") {
		t.Error("the resumed delivery has another event id")
	}
	e.waitJournal(t, "CRITICAL: delivered (attempt 2)")
	testutil.Eventually(t, "empty queue", 2*time.Second, func() bool { return len(pending(t, e.st)) == 0 })
}

func TestSecretsNeverReachTheJournal(t *testing.T) {
	const token, user = "tokSECRETtok123", "usrSECRETusr456"
	e := newEnv(t, `
watchhosts:
  web01: {key: "`+testutil.Key+`"}
notification_channels:
  phone: {type: pushover, token: "`+token+`", user: "`+user+`", api_url: "RCV_po", hosts: ["*"]}
`, "po")
	// A service that echoes the credentials it rejects.
	e.rcv["po"].Respond(http.StatusBadRequest, `{"errors":["token `+token+` or user `+user+` is invalid"]}`)
	e.d.Dispatch(crit("web01"))
	lines := e.waitJournal(t, "notify phone web01")
	testutil.Eventually(t, "the failure line", 5*time.Second, func() bool {
		lines = e.journal(t)
		return slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "failed (attempt 1)") })
	})
	for _, l := range lines {
		if strings.Contains(l, token) || strings.Contains(l, user) {
			t.Errorf("journal line leaks a secret: %s", l)
		}
	}
	err := e.reg.TestChannel(context.Background(), access.Principal{Admin: true}, "phone")
	if err == nil || strings.Contains(err.Error(), token) || strings.Contains(err.Error(), user) {
		t.Errorf("test error = %v", err)
	}
}

func TestUserChannelsPersist(t *testing.T) {
	e := newEnv(t, `
watchhosts:
  web01: {key: "`+testutil.Key+`"}
`, "mine")
	lv := "critical"
	priv := true
	hosts := []string{"web*"}
	err := e.reg.CreateChannel(context.Background(), access.Principal{User: "alice"}, channels.Input{
		Name: "mine", Type: "webhook", MinLevel: &lv, Private: &priv, Hosts: &hosts,
		Fields: map[string]string{"url": e.rcv["mine"].URL, "secret": "hmac-key-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.close()
	e.open(t, dispatch.Options{})
	chans := e.reg.Channels()
	if len(chans) != 1 {
		t.Fatalf("channels after restart = %+v", chans)
	}
	c := chans[0]
	if c.Name != "mine" || c.Owner != "alice" || !c.Private || c.MinLevel != "CRITICAL" || c.Source != channels.SourceUser ||
		!slices.Equal(c.Hosts, hosts) || c.Fields["secret"] != "hmac-key-1" {
		t.Errorf("channel after restart = %+v", c)
	}
	if got := e.d.Dispatch(crit("web01")); !slices.Equal(got, []string{"mine"}) {
		t.Errorf("user channel with host globs not routed: %v", got)
	}
	e.rcv["mine"].Wait(t, 1, 5*time.Second)
}

// pending reads the persisted queue from st, or from a store opened on dir.
func pending(t *testing.T, st *store.Store, dir ...string) []dispatchrecord.Delivery {
	t.Helper()
	if st == nil {
		var err error
		st, err = testutil.OpenStore(context.Background(), dir[0], store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
	}
	p, err := st.PendingDeliveries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigChannelProblemsAreReported(t *testing.T) {
	e := newEnv(t, `
watchhosts:
  web01: {key: "`+testutil.Key+`", notify: [ghost, fine]}
notification_channels:
  fine: {type: webhook, url: "http://127.0.0.1:1/"}
  no_user: {type: pushover, token: "tok-abcdef"}
  bad_url: {type: webhook, url: "ftp://example.com"}
  typo: {type: webhook, url: "http://127.0.0.1:1/", urll: "x"}
  sms: {type: sms, number: "123"}
`)
	errs := e.reg.CheckConfigChannels(context.Background())
	var got []string
	for _, err := range errs {
		got = append(got, err.Error())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"notification_channels.bad_url: Invalid channel settings: url:",
		"notification_channels.no_user: Field 'user' is required",
		"notification_channels.sms: type 'sms' is not installed (installed: pushover, webhook)",
		"notification_channels.typo.urll: not a field of type 'webhook'",
		"watchhosts.web01.notify: no channel named 'ghost'",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	if len(errs) != 5 || strings.Contains(all, "tok-abcdef") {
		t.Errorf("problems:\n%s", all)
	}
	e.waitJournal(t, "notification channel problem: watchhosts.web01.notify: no channel named 'ghost'")
}

// A channel's queue (and its worker) ends when the channel is deleted,
// after the delivery in flight is done and the pending ones are dropped,
// and starts again when a channel of that name comes back. Counted from
// the dispatcher's own records (Stats.Queues).
func TestQueueEndsWhenItsChannelIsDeletedAndComesBack(t *testing.T) {
	hold := newGate(t)
	e := newEnv(t, `
users:
  alice: {password_hash: "`+hash+`"}
watchhosts:
  web01: {key: "`+testutil.Key+`", monitors: [alice]}
channel_destinations: {allow: [127.0.0.0/8]}
`)
	ctx := context.Background()
	alice := access.Principal{User: "alice"}
	create := func(url string) {
		t.Helper()
		if err := e.reg.CreateChannel(ctx, alice, channels.Input{Name: "mine", Type: "webhook", Fields: map[string]string{"url": url}}); err != nil {
			t.Fatal(err)
		}
	}
	create(hold.URL)
	if n := e.d.Stats().Queues; n != 0 {
		t.Fatalf("%d queues before any delivery", n)
	}
	e.d.Dispatch(crit("web01"))
	e.d.Dispatch(crit("web01"))
	testutil.Eventually(t, "the first request held", 10*time.Second, func() bool { return hold.arrived() == 1 })
	if s := e.d.Stats(); s.Queues != 1 || s.Pending["mine"] != 2 {
		t.Fatalf("stats while delivering = %+v, want one queue with 2 pending", s)
	}
	// Deleted while its first delivery is in flight: the queue stays until
	// that attempt returns, then ends.
	if err := e.reg.DeleteChannel(ctx, alice, "mine"); err != nil {
		t.Fatal(err)
	}
	e.waitJournal(t, "notification channel mine deleted with 2 pending notifications")
	hold.release()
	testutil.Eventually(t, "the queue ended", 10*time.Second, func() bool { return e.d.Stats().Queues == 0 })
	if a := hold.arrived(); a != 1 {
		t.Errorf("the deleted channel's receiver got %d requests, want only the one in flight", a)
	}
	if n := len(pending(t, e.st)); n != 0 {
		t.Errorf("%d deliveries of the deleted channel still stored", n)
	}

	// The name comes back: its next delivery starts a new queue.
	again := pht.NewReceiver(t)
	create(again.URL)
	e.d.Dispatch(crit("web01"))
	again.Wait(t, 1, 10*time.Second)
	if n := e.d.Stats().Queues; n != 1 {
		t.Errorf("%d queues after the channel came back, want 1", n)
	}
}

// A config channel removed by a reload loses its queue once its pending
// deliveries are handled; the others keep theirs.
func TestQueueEndsWhenReloadRemovesItsChannel(t *testing.T) {
	e := hooksEnv(t, "kept", "removed")
	e.d.Dispatch(crit("web01"))
	e.rcv["kept"].Wait(t, 1, 10*time.Second)
	e.rcv["removed"].Wait(t, 1, 10*time.Second)
	testutil.Eventually(t, "both delivered", 10*time.Second, func() bool { return e.d.Stats().Delivered == 2 })
	if n := e.d.Stats().Queues; n != 2 {
		t.Fatalf("%d queues, want 2", n)
	}
	cfg := *e.cfg
	cfg.Channels = map[string]config.Channel{"kept": e.cfg.Channels["kept"]}
	e.cfgMu.Lock()
	e.cfg = &cfg
	e.cfgMu.Unlock()
	e.reg.Reload(context.Background())
	testutil.Eventually(t, "the removed channel's queue ended", 10*time.Second, func() bool { return e.d.Stats().Queues == 1 })
	if s := e.d.Stats(); len(s.Pending) != 0 {
		t.Errorf("pending = %v", s.Pending)
	}
	// The kept channel's queue still delivers.
	e.d.Dispatch(crit("web01"))
	e.rcv["kept"].Wait(t, 2, 10*time.Second)
	if n := e.rcv["removed"].Count(); n != 1 {
		t.Errorf("the removed channel got %d requests after the reload", n)
	}
}
