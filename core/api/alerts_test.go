package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth/authtest"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/dispatch"
	"github.com/hbdmon/hbd/core/pluginhost"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
)

const alertsYAML = `
watchhosts:
  web01:
    key: "` + testutil.Key + `"
  db01:
    key: "` + testutil.Key + `"
thresholds:
  "cpu_monitor.cpu_percent": {warning: 80, critical: 90}
  "disk_monitor.*.percent": {warning: 80, critical: 90}
`

// roleGuard authenticates the user named in X-User (none: 401) with fixed
// host roles: 1 monitor, 2 manager, 3 owner; user "admin" is an admin.
type roleGuard map[string]map[string]int

func (g roleGuard) Check(c echo.Context, r api.Route) (access.Principal, error) {
	user := c.Request().Header.Get("X-User")
	if r.Access == api.Public || r.Access == api.Agent {
		return access.Principal{}, nil
	}
	if user == "" {
		return access.Principal{}, api.Errorf(http.StatusUnauthorized, "Authentication required")
	}
	p := access.Principal{User: user, Admin: user == "admin"}
	need := map[api.Access]int{api.HostMonitor: 1, api.HostManager: 2, api.HostOwner: 3}[r.Access]
	if need > 0 && !p.Admin && g[user][c.Param("hostname")] < need {
		return access.Principal{}, api.Errorf(http.StatusForbidden, "Forbidden")
	}
	return p, nil
}

// policy is the access policy of the same roles, for Deps.Policy.
func (g roleGuard) policy(cfg *config.Config) *access.Policy {
	lists := map[string]access.HostRoles{}
	for user, hosts := range g {
		for host, rank := range hosts {
			h := lists[host]
			switch rank {
			case 3:
				h.Owner = user
			case 2:
				h.Managers = append(h.Managers, user)
			case 1:
				h.Monitors = append(h.Monitors, user)
			}
			lists[host] = h
		}
	}
	hosts := access.NewHosts(cfg)
	for host, h := range lists {
		hosts.Set(host, h)
	}
	return access.NewPolicy(func() *config.Config { return cfg }, hosts)
}

var roles = roleGuard{
	"alice": {"web01": 2},            // manager of web01
	"mon":   {"web01": 1},            // monitor of web01
	"olga":  {"web01": 3, "db01": 3}, // owner of both
	"bob":   {},                      // no role
}

type alertFixture struct {
	srv *httptest.Server
	st  *store.Store
	ev  *alert.Evaluator
	rcv *pht.Receiver // the webhook receiver of newDispatchFixture
	key []byte
	now float64
}

func newAlertFixture(t *testing.T) *alertFixture {
	t.Helper()
	return newAlertFixtureWith(t, alertsYAML, false)
}

// newDispatchFixture is newAlertFixture with the real notification
// dispatcher behind the evaluator and the API: a webhook channel "hook"
// covers web01 only and posts to a real receiver; db01 has no channel.
func newDispatchFixture(t *testing.T) *alertFixture {
	t.Helper()
	return newAlertFixtureWith(t, alertsYAML+`
notification_channels:
  hook: {type: webhook, url: "RCV", hosts: ["web01"]}
`, true)
}

func newAlertFixtureWith(t *testing.T, yaml string, dispatcher bool) *alertFixture {
	t.Helper()
	f := &alertFixture{key: []byte(testutil.Key), now: float64(time.Now().Unix() - 100)}
	if dispatcher {
		f.rcv = pht.NewReceiver(t)
		yaml = strings.ReplaceAll(yaml, "RCV", f.rcv.URL)
	}
	cfg := testutil.Config(t, yaml)
	st := testutil.Store(t, 100)
	var sink alert.Sink
	var deliveries api.DeliveryStatus
	if dispatcher {
		host, _ := pht.Start(t, pht.Dir(t, pht.Webhook), pluginhost.Options{})
		conf := func() *config.Config { return cfg }
		policy := access.NewPolicy(conf, access.NewHosts(cfg))
		reg, err := channels.New(channels.Options{Config: conf, Store: st, Journal: st, Plugins: host, Policy: policy})
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		d, err := dispatch.New(dispatch.Options{Config: conf, Store: st, Plugins: host, Channels: reg, Policy: policy})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		sink, deliveries = d, d
	}
	ev, err := alert.New(cfg, st, nil, sink)
	if err != nil {
		t.Fatal(err)
	}
	st.FeedAlerts(ev)
	if err := ev.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Stop(context.Background()) })
	s := api.New(api.Deps{
		Config: func() *config.Config { return cfg },
		Store:  st,
		HostKey: func(h string) ([]byte, bool, bool) {
			k, ok := cfg.HostKey(h)
			return k, false, ok
		},
		Guard:  roles,
		Policy: roles.policy(cfg),
	})
	s.Add(s.AlertRoutes(ev, deliveries)...)
	f.srv = httptest.NewServer(s.Echo)
	t.Cleanup(f.srv.Close)
	f.st, f.ev = st, ev
	return f
}

// ingest posts one signed sample through the real ingestion endpoint.
func (f *alertFixture) ingest(t *testing.T, host, plugin string, data map[string]any) {
	t.Helper()
	f.now++
	resp, err := http.DefaultClient.Do(testutil.IngestRequest(t, f.srv.URL, host, f.key, testutil.Sample(plugin, f.now, data)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}
}

// call sends a request as user ("" anonymous) and returns the status and
// the compacted body.
func (f *alertFixture) call(t *testing.T, user, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("X-User", user)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatalf("%s %s: not JSON: %q", method, path, raw)
	}
	return resp.StatusCode, buf.String()
}

// journal returns a host's journal once every queued line is committed.
func (f *alertFixture) journal(t *testing.T, host string) []store.Message {
	t.Helper()
	ctx := context.Background()
	if err := f.st.JournalSync(ctx, "", "barrier"); err != nil {
		t.Fatal(err)
	}
	msgs, err := f.st.Messages(ctx, store.MessageQuery{Host: host})
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func num(f float64) string { b, _ := json.Marshal(f); return string(b) }

func str(s string) string { b, _ := json.Marshal(s); return string(b) }

// text returns the evaluator's text of a host's metric, which the API
// must pass on; it fails when the state has none.
func (f *alertFixture) text(t *testing.T, host, metric string) string {
	t.Helper()
	for _, st := range f.ev.HostAlerts(host) {
		if st.MetricPath == metric {
			if st.Text == "" {
				t.Fatalf("%s %s has no text", host, metric)
			}
			return st.Text
		}
	}
	t.Fatalf("%s %s has no alert state", host, metric)
	return ""
}

func TestHostAlertsReferenceShape(t *testing.T) {
	f := newAlertFixture(t)
	f.ingest(t, "web01", "cpu_monitor", map[string]any{"cpu_percent": 85.5, "load_1min": 2.5})
	f.ingest(t, "web01", "disk_monitor", map[string]any{"/": map[string]any{"percent": 65.0}})
	cpuAt, diskAt := f.now-1, f.now
	code, body := f.call(t, "mon", http.MethodGet, "/api/0/hosts/web01/alerts", "")
	// The reference's fields, then text, episode_start and delivery (no
	// dispatcher here: nothing was dispatched).
	want := `{"hostname":"web01","alerts":[` +
		`{"metric_path":"cpu_monitor.cpu_percent","level":"WARNING","since":` + num(cpuAt) + `,"last_value":85.5,"last_check":` + num(cpuAt) +
		`,"notification_count":1,"acknowledged":false,"silenced_until":null,"flapping":false,` +
		`"text":` + str(f.text(t, "web01", "cpu_monitor.cpu_percent")) + `,"episode_start":` + num(cpuAt) + `,"delivery":""},` +
		`{"metric_path":"disk_monitor./.percent","level":"OK","since":` + num(diskAt) + `,"last_value":65,"last_check":` + num(diskAt) +
		`,"notification_count":0,"acknowledged":false,"silenced_until":null,"flapping":false,` +
		`"text":` + str(f.text(t, "web01", "disk_monitor./.percent")) + `,"episode_start":null,"delivery":""}],` +
		`"summary":{"ok":1,"warning":1,"critical":0,"unknown":0}}`
	if code != http.StatusOK || body != want {
		t.Fatalf("got %d\n%s\nwant\n%s", code, body, want)
	}
	// A watched host without data has no alerts; an unknown host is 404.
	if code, body := f.call(t, "olga", http.MethodGet, "/api/0/hosts/db01/alerts", ""); code != 200 ||
		body != `{"hostname":"db01","alerts":[],"summary":{"ok":0,"warning":0,"critical":0,"unknown":0}}` {
		t.Fatalf("db01: %d %s", code, body)
	}
	if code, body := f.call(t, "admin", http.MethodGet, "/api/0/hosts/nope/alerts", ""); code != 404 || body != `{"error":"Host 'nope' not found"}` {
		t.Fatalf("unknown host: %d %s", code, body)
	}
	if code, _ := f.call(t, "bob", http.MethodGet, "/api/0/hosts/web01/alerts", ""); code != 403 {
		t.Fatalf("no role: %d", code)
	}
}

func TestActiveAlertsOnlyVisibleHosts(t *testing.T) {
	f := newAlertFixture(t)
	if code, body := f.call(t, "bob", http.MethodGet, "/api/0/alerts", ""); code != 200 ||
		body != `{"alerts":[],"summary":{"critical":0,"warning":0,"unknown":0,"total":0},"host_count":0}` {
		t.Fatalf("empty: %d %s", code, body)
	}
	f.ingest(t, "db01", "cpu_monitor", map[string]any{"cpu_percent": 88.2})
	dbAt := f.now
	f.ingest(t, "web01", "cpu_monitor", map[string]any{"cpu_percent": 95.5})
	webAt := f.now
	f.ingest(t, "web01", "disk_monitor", map[string]any{"/": map[string]any{"percent": 10.0}})
	webAlert := `{"hostname":"web01","metric_path":"cpu_monitor.cpu_percent","level":"CRITICAL","since":` + num(webAt) +
		`,"last_value":95.5,"last_check":` + num(webAt) + `,"notification_count":1,"acknowledged":false,"silenced_until":null,"flapping":false` +
		`,"text":` + str(f.text(t, "web01", "cpu_monitor.cpu_percent")) + `,"episode_start":` + num(webAt) + `,"delivery":""}`
	dbAlert := `{"hostname":"db01","metric_path":"cpu_monitor.cpu_percent","level":"WARNING","since":` + num(dbAt) +
		`,"last_value":88.2,"last_check":` + num(dbAt) + `,"notification_count":1,"acknowledged":false,"silenced_until":null,"flapping":false` +
		`,"text":` + str(f.text(t, "db01", "cpu_monitor.cpu_percent")) + `,"episode_start":` + num(dbAt) + `,"delivery":""}`
	for _, tc := range []struct{ user, want string }{
		{"admin", `{"alerts":[` + webAlert + `,` + dbAlert + `],"summary":{"critical":1,"warning":1,"unknown":0,"total":2},"host_count":2}`},
		{"mon", `{"alerts":[` + webAlert + `],"summary":{"critical":1,"warning":0,"unknown":0,"total":1},"host_count":1}`},
		{"bob", `{"alerts":[],"summary":{"critical":0,"warning":0,"unknown":0,"total":0},"host_count":0}`},
	} {
		code, body := f.call(t, tc.user, http.MethodGet, "/api/0/alerts", "")
		if code != 200 || body != tc.want {
			t.Fatalf("%s: %d\n%s\nwant\n%s", tc.user, code, body, tc.want)
		}
	}
	if code, body := f.call(t, "", http.MethodGet, "/api/0/alerts", ""); code != 401 || !strings.Contains(body, `"error"`) {
		t.Fatalf("anonymous: %d %s", code, body)
	}
}

func TestAckEndpoint(t *testing.T) {
	f := newAlertFixture(t)
	f.ingest(t, "web01", "cpu_monitor", map[string]any{"cpu_percent": 95.0})
	f.ingest(t, "web01", "disk_monitor", map[string]any{"/": map[string]any{"percent": 10.0}})
	const path = "/api/0/hosts/web01/alerts/ack"
	for _, tc := range []struct {
		name, user, path, body string
		code                   int
		want                   string
	}{
		{"Monitor", "mon", path, `{"metric_path":"cpu_monitor.cpu_percent"}`, 403, ""},
		{"UnknownHost", "admin", "/api/0/hosts/nope/alerts/ack", `{"metric_path":"x"}`, 404, `{"error":"Host 'nope' not found"}`},
		{"BadJSON", "alice", path, `{`, 400, ""},
		{"NoMetric", "alice", path, `{}`, 400, `{"error":"metric_path is required"}`},
		{"UnknownMetric", "alice", path, `{"metric_path":"memory_monitor.percent"}`, 404, `{"error":"Metric 'memory_monitor.percent' has no alert state on host 'web01'"}`},
		{"OK", "alice", path, `{"metric_path":"disk_monitor./.percent"}`, 409, `{"error":"Metric 'disk_monitor./.percent' on host 'web01' is OK: nothing to acknowledge"}`},
		{"Acked", "alice", path, `{"metric_path":"cpu_monitor.cpu_percent"}`, 200, ""},
	} {
		code, body := f.call(t, tc.user, http.MethodPost, tc.path, tc.body)
		if code != tc.code || (tc.want != "" && body != tc.want) {
			t.Fatalf("%s: %d %s", tc.name, code, body)
		}
	}
	_, body := f.call(t, "mon", http.MethodGet, "/api/0/hosts/web01/alerts", "")
	// The acknowledgement is itself notified (an acknowledged event), so
	// the count goes from 1 to 2.
	if !strings.Contains(body, `"metric_path":"cpu_monitor.cpu_percent","level":"CRITICAL"`) || !strings.Contains(body, `"notification_count":2,"acknowledged":true`) {
		t.Fatalf("ack not visible: %s", body)
	}
	msgs := f.journal(t, "web01")
	if !slices.ContainsFunc(msgs, func(m store.Message) bool {
		return m.Msg == "web01 cpu_monitor.cpu_percent CRITICAL acknowledged by alice"
	}) {
		t.Fatalf("ack not journaled: %+v", msgs)
	}
}

func TestSilenceEndpoints(t *testing.T) {
	f := newAlertFixture(t)
	if code, body := f.call(t, "alice", http.MethodGet, "/api/0/silences", ""); code != 200 || body != "[]" {
		t.Fatalf("empty list: %d %s", code, body)
	}
	for _, tc := range []struct {
		name, user, body string
		code             int
		want             string
	}{
		{"NoHost", "alice", `{"duration":"2h"}`, 400, ""},
		{"NoDuration", "alice", `{"host":"web01"}`, 400, ""},
		{"BadDuration", "alice", `{"host":"web01","duration":"soon"}`, 400, ""},
		{"TooLong", "alice", `{"host":"web01","duration":"400d"}`, 400, ""},
		{"BadGlob", "alice", `{"host":"web***","duration":"2h"}`, 400, ""},
		{"NotManager", "mon", `{"host":"web01","duration":"2h"}`, 403, ""},
		{"GlobBeyondManaged", "alice", `{"host":"*","duration":"2h"}`, 403, ""},
		{"MatchesNothing", "alice", `{"host":"mail*","duration":"2h"}`, 403, ""},
		{"Anonymous", "", `{"host":"web01","duration":"2h"}`, 401, ""},
	} {
		if code, body := f.call(t, tc.user, http.MethodPost, "/api/0/silences", tc.body); code != tc.code || !strings.Contains(body, `"error"`) {
			t.Fatalf("%s: %d %s", tc.name, code, body)
		}
	}
	code, body := f.call(t, "alice", http.MethodPost, "/api/0/silences", `{"host":"web01","metric":"cpu_monitor.*","duration":"2h","comment":"kernel upgrade"}`)
	var created struct {
		OK      bool            `json:"ok"`
		Silence api.SilenceJSON `json:"silence"`
	}
	if err := json.Unmarshal([]byte(body), &created); code != 200 || err != nil || !created.OK {
		t.Fatalf("create: %d %s", code, body)
	}
	sl := created.Silence
	if sl.Host != "web01" || sl.Metric != "cpu_monitor.*" || sl.Comment != "kernel upgrade" || sl.CreatedBy == nil || *sl.CreatedBy != "alice" ||
		sl.Until-sl.Created < 7199 || sl.Until-sl.Created > 7201 || len(sl.ID) != 16 {
		t.Fatalf("silence %s", body)
	}
	wantSilence := fmt.Sprintf(`{"id":"%s","host":"web01","metric":"cpu_monitor.*","created":%s,"starts_at":%s,"until":%s,"created_by":"alice","comment":"kernel upgrade"}`,
		sl.ID, num(sl.Created), num(sl.Created), num(sl.Until))
	if !strings.Contains(body, wantSilence) {
		t.Fatalf("shape %s, want %s", body, wantSilence)
	}
	// Owners of several hosts may silence them all, and seconds work too.
	if code, body := f.call(t, "olga", http.MethodPost, "/api/0/silences", `{"host":"*","duration":60}`); code != 200 || !strings.Contains(body, `"metric":"**"`) {
		t.Fatalf("owner of all: %d %s", code, body)
	}

	// The silence shows on the matching alerts and holds back notification.
	f.ingest(t, "web01", "cpu_monitor", map[string]any{"cpu_percent": 95.0})
	_, body = f.call(t, "mon", http.MethodGet, "/api/0/hosts/web01/alerts", "")
	if !strings.Contains(body, `"notification_count":0,"acknowledged":false,"silenced_until":`+num(sl.Until)) {
		t.Fatalf("silence not visible: %s", body)
	}
	for _, tc := range []struct {
		user string
		n    int
	}{{"alice", 2}, {"mon", 2}, {"admin", 2}, {"bob", 0}} {
		_, body := f.call(t, tc.user, http.MethodGet, "/api/0/silences", "")
		var list []api.SilenceJSON
		if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != tc.n {
			t.Fatalf("%s sees %s", tc.user, body)
		}
	}
	del := "/api/0/silences/" + sl.ID
	if code, _ := f.call(t, "bob", http.MethodDelete, del, ""); code != 404 {
		t.Fatalf("bob deletes: %d", code)
	}
	if code, _ := f.call(t, "mon", http.MethodDelete, del, ""); code != 403 {
		t.Fatalf("monitor deletes: %d", code)
	}
	if code, body := f.call(t, "alice", http.MethodDelete, "/api/0/silences/nope", ""); code != 404 || body != `{"error":"Silence 'nope' not found"}` {
		t.Fatalf("unknown: %d %s", code, body)
	}
	if code, body := f.call(t, "alice", http.MethodDelete, del, ""); code != 200 || body != `{"ok":true}` {
		t.Fatalf("delete: %d %s", code, body)
	}
	if code, _ := f.call(t, "alice", http.MethodDelete, del, ""); code != 404 {
		t.Fatalf("second delete: %d", code)
	}
	msgs := f.journal(t, "web01")
	var joined []string
	for _, m := range msgs {
		joined = append(joined, m.Msg)
	}
	j := strings.Join(joined, "\n")
	if !strings.Contains(j, "silence "+sl.ID+" by alice: host web01 metric cpu_monitor.* until") || !strings.Contains(j, "silence "+sl.ID+" (host web01 metric cpu_monitor.*) removed by alice") {
		t.Fatalf("journal:\n%s", j)
	}
}

// authEnv is the auth package's fixture (real guard, sessions, roles) with
// the alert routes added.
func authEnv(t *testing.T, open bool) *authtest.Env {
	t.Helper()
	env := authtest.New(t, authtest.Config(open))
	ev, err := alert.New(env.Config(), env.Store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	env.Store.FeedAlerts(ev)
	if err := ev.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Stop(context.Background()) })
	env.API.Add(env.API.AlertRoutes(ev)...)
	return env
}

func TestAlertRoutesPassTheAccessMatrix(t *testing.T) {
	for _, open := range []bool{false, true} {
		authtest.AccessMatrix(t, authEnv(t, open))
	}
}

func TestSilencePermissionsFollowHostRoles(t *testing.T) {
	env := authEnv(t, false)
	for _, tc := range []struct {
		user, host string
		code       int
	}{
		{"manager", authtest.Host, 200},
		{"owner", authtest.Host, 200},
		{"monitor", authtest.Host, 403},
		{"other", authtest.Host, 403},
		{"manager", "*", 403}, // also matches OtherHost, which nobody manages
		{"admin", "*", 200},
	} {
		tok, _ := env.Login(tc.user)
		rec := env.Do(authtest.Request{Method: http.MethodPost, Path: "/api/0/silences", Token: tok,
			Body: map[string]any{"host": tc.host, "duration": "1h"}})
		if rec.Code != tc.code {
			t.Errorf("%s silencing %s: %d %s", tc.user, tc.host, rec.Code, rec.Body)
		}
	}
}

// barrier waits until every queued store write (alert history rows among
// them) is committed.
func (f *alertFixture) barrier(t *testing.T) {
	t.Helper()
	if err := f.st.JournalSync(context.Background(), "", "barrier"); err != nil {
		t.Fatal(err)
	}
}

// history calls GET /api/0/alerts/history as user and decodes the page.
func (f *alertFixture) history(t *testing.T, user, query string) api.EpisodesJSON {
	t.Helper()
	f.barrier(t)
	code, body := f.call(t, user, http.MethodGet, "/api/0/alerts/history"+query, "")
	if code != http.StatusOK {
		t.Fatalf("history%s as %s: %d %s", query, user, code, body)
	}
	var page api.EpisodesJSON
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	return page
}

// episodeKeys lists a page as "host start-offset" strings, offsets from
// base, so orders and filters read plainly.
func episodeKeys(page api.EpisodesJSON, base float64) []string {
	out := []string{}
	for _, ep := range page.Episodes {
		out = append(out, fmt.Sprintf("%s@%g", ep.Hostname, ep.Start-base))
	}
	return out
}

func TestAlertHistoryEndpoint(t *testing.T) {
	f := newAlertFixture(t)
	base := f.now
	cpu := func(host string, v float64) {
		f.ingest(t, host, "cpu_monitor", map[string]any{"cpu_percent": v})
	}
	cpu("web01", 50)
	cpu("web01", 85) // @2 WARNING
	cpu("web01", 50) // @3 OK
	cpu("db01", 88)  // @4 WARNING, stays open
	cpu("web01", 95) // @5 CRITICAL
	if code, _ := f.call(t, "alice", http.MethodPost, "/api/0/hosts/web01/alerts/ack", `{"metric_path":"cpu_monitor.cpu_percent"}`); code != 200 {
		t.Fatalf("ack: %d", code)
	}
	cpu("web01", 97.5)
	cpu("web01", 40) // @7 OK
	cpu("web01", 85) // @8 WARNING, stays open

	all := f.history(t, "admin", "")
	if got, want := episodeKeys(all, base), []string{"web01@8", "web01@5", "db01@4", "web01@2"}; !slices.Equal(got, want) || all.Next != nil {
		t.Fatalf("admin sees %v next %v, want %v", got, all.Next, want)
	}
	// The shape of a resolved and of an open episode.
	_, body := f.call(t, "admin", http.MethodGet, "/api/0/alerts/history?limit=3", "")
	resolved := all.Episodes[1]
	wantResolved := `{"hostname":"web01","metric_path":"cpu_monitor.cpu_percent","worst_level":"CRITICAL","start":` + num(base+5) +
		`,"end":` + num(base+7) + `,"duration_s":2,"peak_value":97.5,"acknowledged_by":"alice","deliveries":0,"delivery":"","text":` + str(resolved.Text) + `}`
	if !strings.Contains(body, wantResolved) || resolved.Text == "" {
		t.Fatalf("resolved episode:\n%s\nwant\n%s", body, wantResolved)
	}
	open := all.Episodes[0]
	if open.End != nil || open.PeakValue == nil || *open.PeakValue != 85 || open.AcknowledgedBy != nil || open.WorstLevel != "WARNING" || open.DurationS <= 0 ||
		!strings.Contains(body, `"end":null,`) || !strings.Contains(body, `"acknowledged_by":null,`) {
		t.Fatalf("open episode: %+v in %s", open, body)
	}

	// Access: a monitor of web01 sees web01's episodes only.
	if got, want := episodeKeys(f.history(t, "mon", ""), base), []string{"web01@8", "web01@5", "web01@2"}; !slices.Equal(got, want) {
		t.Fatalf("mon sees %v, want %v", got, want)
	}
	if got := f.history(t, "bob", ""); len(got.Episodes) != 0 || got.Next != nil {
		t.Fatalf("bob sees %+v", got)
	}
	if got, want := episodeKeys(f.history(t, "olga", "?host=db01"), base), []string{"db01@4"}; !slices.Equal(got, want) {
		t.Fatalf("olga sees %v of db01", got)
	}
	if code, body := f.call(t, "mon", http.MethodGet, "/api/0/alerts/history?host=db01", ""); code != 403 || body != `{"error":"You may not read host 'db01'"}` {
		t.Fatalf("mon asks for db01: %d %s", code, body)
	}
	if code, _ := f.call(t, "", http.MethodGet, "/api/0/alerts/history", ""); code != 401 {
		t.Fatalf("anonymous: %d", code)
	}

	// Filters.
	for _, tc := range []struct{ query, want string }{
		{"?state=resolved", "web01@5 web01@2"},
		{"?state=open", "web01@8 db01@4"},
		{"?host=web01&state=open", "web01@8"},
		// Episodes overlapping [@3, @4]: web01@2 ended at @3, db01@4 began at @4.
		{"?since=" + num(base+3) + "&until=" + num(base+4), "db01@4 web01@2"},
		{"?since=" + num(base+3.5) + "&until=" + num(base+4), "db01@4"},
		{"?until=" + num(base+2), "web01@2"},
	} {
		if got := strings.Join(episodeKeys(f.history(t, "admin", tc.query), base), " "); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.query, got, tc.want)
		}
	}

	// Pages of two walk every episode once; the last page has no next.
	var walked []string
	query := "?limit=2"
	for pages := 0; ; pages++ {
		page := f.history(t, "admin", query)
		walked = append(walked, episodeKeys(page, base)...)
		if page.Next == nil {
			break
		}
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		query = "?limit=2&before=" + url.QueryEscape(*page.Next)
	}
	if want := []string{"web01@8", "web01@5", "db01@4", "web01@2"}; !slices.Equal(walked, want) {
		t.Fatalf("paged %v", walked)
	}
	// A limit over the maximum is capped, not refused.
	if got := f.history(t, "admin", "?limit=100000"); len(got.Episodes) != 4 {
		t.Fatalf("capped limit: %+v", got)
	}
}

func TestAlertHistoryRefusesBadParameters(t *testing.T) {
	f := newAlertFixture(t)
	for _, tc := range []struct{ query, param string }{
		{"?limit=0", "limit"},
		{"?limit=ten", "limit"},
		{"?since=yesterday", "since"},
		{"?until=-5", "until"},
		{"?since=200&until=100", "until"},
		{"?state=closed", "state"},
		{"?before=12", "before"},
		{"?before=12:x", "before"},
		{"?before=NaN:3", "before"},
		{"?host=" + url.QueryEscape("web 01"), "host"},
	} {
		code, body := f.call(t, "admin", http.MethodGet, "/api/0/alerts/history"+tc.query, "")
		var e struct{ Error string }
		if err := json.Unmarshal([]byte(body), &e); err != nil || code != 400 || !strings.HasPrefix(e.Error, tc.param+" ") {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.query, code, body, tc.param)
		}
	}
}

// TestAlertsCountDeliveries runs the real pipeline: ingestion, evaluator,
// dispatcher, webhook plugin, receiver. notification_count counts what
// reached a channel, and an alert no channel covers says so.
func TestAlertsCountDeliveries(t *testing.T) {
	f := newDispatchFixture(t)
	f.ingest(t, "web01", "cpu_monitor", map[string]any{"cpu_percent": 95.5})
	webAt := f.now
	f.ingest(t, "db01", "cpu_monitor", map[string]any{"cpu_percent": 88.2})
	dbAt := f.now
	type alerts struct {
		Alerts []api.ActiveAlertJSON `json:"alerts"`
	}
	var got alerts
	testutil.Eventually(t, "the delivery to the webhook", 10*time.Second, func() bool {
		_, body := f.call(t, "admin", http.MethodGet, "/api/0/alerts", "")
		got = alerts{}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		return len(got.Alerts) == 2 && got.Alerts[0].Delivery == "delivered"
	})
	web, db := got.Alerts[0], got.Alerts[1]
	if web.Hostname != "web01" || web.NotificationCount != 1 || web.EpisodeStart == nil || *web.EpisodeStart != webAt || web.Text == "" {
		t.Errorf("web01: %+v", web)
	}
	if f.rcv.Count() != 1 {
		t.Errorf("the receiver got %d requests", f.rcv.Count())
	}
	// db01 has no channel: nobody was told, and the API says so.
	if db.Hostname != "db01" || db.NotificationCount != 0 || db.Delivery != "no channel" || db.EpisodeStart == nil || *db.EpisodeStart != dbAt {
		t.Errorf("db01: %+v", db)
	}
	_, body := f.call(t, "olga", http.MethodGet, "/api/0/hosts/db01/alerts", "")
	if !strings.Contains(body, `"notification_count":0,`) || !strings.Contains(body, `"delivery":"no channel"`) {
		t.Errorf("db01 host alerts: %s", body)
	}

	// The recovery is delivered too: the episode counts two deliveries.
	f.ingest(t, "web01", "cpu_monitor", map[string]any{"cpu_percent": 20.0})
	var page api.EpisodesJSON
	testutil.Eventually(t, "the recovery delivery", 10*time.Second, func() bool {
		page = f.history(t, "admin", "?host=web01")
		return len(page.Episodes) == 1 && page.Episodes[0].Deliveries == 2
	})
	if ep := page.Episodes[0]; ep.Delivery != "delivered" || ep.End == nil || *ep.End != f.now || f.rcv.Count() != 2 {
		t.Errorf("web01 episode: %+v, %d requests", ep, f.rcv.Count())
	}
	if page = f.history(t, "admin", "?host=db01"); len(page.Episodes) != 1 || page.Episodes[0].Delivery != "no channel" || page.Episodes[0].Deliveries != 0 {
		t.Errorf("db01 episode: %+v", page.Episodes)
	}
}
