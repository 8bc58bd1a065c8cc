package api_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth"
	"github.com/hbdmon/hbd/core/auth/authtest"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/dispatch"
	"github.com/hbdmon/hbd/core/pluginhost"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/safetext"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/webui"
)

// The hostile-input table. Every route of a server assembled as the daemon
// assembles it (core, account, alert, channel and page routes) is sent
// malformed, oversized, wrong-typed, control-character and traversal
// inputs, in open mode and in auth mode as an administrator (so that
// access checks do not hide input handling). Each answer must be a 4xx
// JSON {"error": "..."} (no HTML, no panic text, no echoed control
// character), never a 5xx, never a hang, and a refused request must leave
// the store and the services' state exactly as they were.
//
// The table is generated from Server.Routes(), like the role matrix: a
// route it knows nothing about still gets the generic path and body
// attacks, and the "knowledge" subtest fails until its path parameters
// and body are described below (and the query parameters its handler
// reads, in hostileQueries). The daemon's /metrics and the live feed's
// /hbd are registered outside this server and are not in the table.
//
// What the table counts as legitimate (answered 2xx or refused, either is
// fine) is listed explicitly: unknown query parameters (ignored), the
// "legit" mutations of each body field with the reason, the login form
// (a redirect to the login page), any Content-Type on the signed agent
// route, and a replayed batch (answered as a duplicate, storing nothing).

// hostileDeadline bounds one request. It is generous on purpose: it only
// turns a hanging handler into a failure and asserts no speed.
const hostileDeadline = 30 * time.Second

// hostileHost is the host the plausible requests name; it has samples of
// plugin hostilePlugin.
const (
	hostileHost   = authtest.Host
	hostilePlugin = "cpu_monitor"
)

// hostileYAML adds to the fixture's users and hosts what the alert and
// channel routes need: a threshold and a config channel. Nothing goes
// stale, so that nothing alerts (and journals) on its own while the
// table checks that refused requests store nothing.
const hostileYAML = `
alerting: {stale_after: 0}
thresholds:
  "cpu_monitor.cpu_percent": {warning: 80, critical: 90}
notification_channels:
  ops: {type: webhook, url: "RCV", hosts: ["*"]}
`

// hostileFixture is the whole HTTP API over a real store, auth service,
// alert evaluator, notification dispatcher (with the real webhook plugin)
// and the embedded web UI.
type hostileFixture struct {
	open  bool
	st    *store.Store
	auth  *auth.Service
	srv   *api.Server
	ev    *alert.Evaluator
	disp  *dispatch.Dispatcher
	reg   *channels.Registry
	rcv   *pht.Receiver
	key   []byte
	token string // the admin's session token; "" in open mode
	// cfgFile is the config file of the admin config editor; t is the
	// fixture's test, for reading it.
	cfgFile *configFile
	t       *testing.T

	channel string // a user channel the admin created
	silence string // the id of a silence the admin created
	seq     atomic.Int64

	conn      *sql.Conn    // reads data_version
	db        hostileState // the last dump of the database
	dbVersion int64        // data_version at that dump
	// last is the state after the last refused request, nil when a
	// request that may change it was sent since.
	last hostileState
}

func newHostileFixture(t *testing.T, open bool) *hostileFixture {
	t.Helper()
	f := &hostileFixture{open: open, rcv: pht.NewReceiver(t)}
	cfg := testutil.Config(t, strings.ReplaceAll(hostileYAML, "RCV", f.rcv.URL))
	base := authtest.Config(open)
	cfg.Users, cfg.Watchhosts, cfg.AllowedHosts, cfg.Auth = base.Users, base.Watchhosts, base.AllowedHosts, base.Auth
	f.key = []byte(cfg.Watchhosts[hostileHost].Key)
	// Every route answers its control request: the status page is on.
	cfg.StatusPage = config.StatusPage{Title: "Status", Hosts: []string{hostileHost}}
	conf := func() *config.Config { return cfg }

	st, err := store.Open(context.Background(), t.TempDir(), store.Options{SampleHistory: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	if f.conn, err = st.Reader().Conn(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.conn.Close() })
	svc, err := auth.New(context.Background(), auth.Options{
		Store: st, Config: cfg, BcryptCost: bcrypt.MinCost,
		// Failed logins are slowed; the table's are not really waited for.
		Sleep: func(context.Context, time.Duration) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.auth = svc
	f.t = t
	f.cfgFile = newConfigFile(t, st, !open)
	f.srv = api.New(api.Deps{
		Config: conf, Store: st, ConfigFile: f.cfgFile,
		HostKey: func(host string) ([]byte, bool, bool) {
			w, ok := cfg.Watchhosts[host]
			return []byte(w.Key), false, ok
		},
		Policy: svc.Policy(), Sessions: svc, Accounts: svc,
	})

	plugins, _ := pht.Start(t, pht.Dir(t, pht.Webhook), pluginhost.Options{})
	policy := svc.Policy()
	reg, err := channels.New(channels.Options{Config: conf, Store: st, Journal: st, Plugins: plugins, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	disp, err := dispatch.New(dispatch.Options{Config: conf, Store: st, Plugins: plugins, Channels: reg, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	if err := disp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disp.Close() })
	svc.SetChannels(reg)
	f.disp, f.reg = disp, reg
	f.srv.AddChannels(reg, disp)

	ev, err := alert.New(cfg, st, nil, disp)
	if err != nil {
		t.Fatal(err)
	}
	st.FeedAlerts(ev)
	if err := ev.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Stop(context.Background()) })
	f.ev = ev
	f.srv.Add(f.srv.AlertRoutes(ev, disp)...)

	pages, err := f.srv.PageRoutes(webui.FS(), api.PageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Add(pages...)

	f.seed(t)
	return f
}

// seed logs the admin in and creates, through the API, what the plausible
// requests name: samples of hostileHost, a user channel and a silence.
// Each is a control: the valid request must succeed.
func (f *hostileFixture) seed(t *testing.T) {
	t.Helper()
	if !f.open {
		f.token = f.login(t, "admin")
	}
	rec := f.serve(t, f.ingestReq(t, f.validBatch(), nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("control: ingest: %d %s", rec.Code, rec.Body)
	}
	f.channel = "hostile_ref"
	rec = f.serve(t, hostileReq{Method: http.MethodPost, Target: "/api/0/notification_channels", CType: "application/json",
		Body: []byte(`{"name":"hostile_ref","type":"webhook","url":` + strconv.Quote(f.rcv.URL) + `}`)})
	if rec.Code != http.StatusOK {
		t.Fatalf("control: create channel: %d %s", rec.Code, rec.Body)
	}
	rec = f.serve(t, hostileReq{Method: http.MethodPost, Target: "/api/0/silences", CType: "application/json",
		Body: []byte(`{"host":"web01","metric":"cpu_monitor.*","duration":"1h","comment":"hostile table"}`)})
	if rec.Code != http.StatusOK {
		t.Fatalf("control: create silence: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		Silence struct {
			ID string `json:"id"`
		} `json:"silence"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Silence.ID == "" {
		t.Fatalf("control: create silence: %s", rec.Body)
	}
	f.silence = out.Silence.ID
}

// login opens a session of user and returns its token.
func (f *hostileFixture) login(t *testing.T, user string) string {
	t.Helper()
	rec := f.serve(t, hostileReq{Method: http.MethodPost, Target: "/api/0/auth/login", CType: "application/json", Anonymous: true,
		Body: []byte(`{"username":` + strconv.Quote(user) + `,"password":` + strconv.Quote(authtest.Password(user)) + `}`)})
	var out struct {
		Token string `json:"token"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.Token == "" {
		t.Fatalf("login %s: %d %s", user, rec.Code, rec.Body)
	}
	return out.Token
}

// hostileReq is one request of the table.
type hostileReq struct {
	Method, Target string
	Body           []byte // nil: no body
	CType          string // Content-Type; "" sends none
	Header         map[string]string
	Anonymous      bool   // send no session token
	Token          string // a session token other than the admin's
}

func (r hostileReq) String() string {
	s := r.Method + " " + clip(r.Target, 160)
	if r.Body != nil {
		s += fmt.Sprintf(" body(%d bytes, %s) %q", len(r.Body), r.CType, clip(string(r.Body), 160))
	}
	for k, v := range r.Header {
		s += fmt.Sprintf(" %s: %q", k, clip(v, 80))
	}
	return s
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return s
}

// serve sends r to the server as a browser-less client of ServerHost would
// and returns the answer; a handler that does not answer within
// hostileDeadline fails the test instead of hanging it.
func (f *hostileFixture) serve(t *testing.T, r hostileReq) *httptest.ResponseRecorder {
	t.Helper()
	f.last = nil // the request may change the state
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hostileDeadline)
	defer cancel()
	req := httptest.NewRequest(r.Method, r.Target, body).WithContext(ctx)
	req.Host = authtest.ServerHost
	if r.CType != "" {
		req.Header.Set("Content-Type", r.CType)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	switch {
	case r.Token != "":
		req.Header.Set("Authorization", "Bearer "+r.Token)
	case !r.Anonymous && f.token != "":
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.srv.Echo.ServeHTTP(rec, req)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		select {
		case <-done:
		case <-time.After(hostileDeadline):
			t.Fatalf("%s: no answer after the request's deadline: the handler hangs", r)
		}
	}
	return rec
}

// validBatch is a sample batch the ingest route accepts.
func (f *hostileFixture) validBatch() []byte {
	return []byte(fmt.Sprintf(`{"samples":[{"plugin":"cpu_monitor","timestamp":%d,"data":{"cpu_percent":12}}]}`, time.Now().Unix()-1))
}

// ingestReq signs body as hostileHost now; header overrides the signed
// headers (a value "" sends the header empty).
func (f *hostileFixture) ingestReq(t *testing.T, body []byte, header map[string]string) hostileReq {
	t.Helper()
	ts := time.Now().Unix()
	h := map[string]string{
		protocol.HeaderHost:      hostileHost,
		protocol.HeaderTimestamp: strconv.FormatInt(ts, 10),
		protocol.HeaderSignature: protocol.Sign(f.key, hostileHost, ts, body),
	}
	for k, v := range header {
		h[k] = v
	}
	return hostileReq{Method: http.MethodPost, Target: protocol.IngestPath, Body: body, CType: "application/json", Header: h, Anonymous: true}
}

// ---------------------------------------------------------------------
// What the table knows of the routes.

// plausible is the value a path parameter takes when it is not the one
// under attack: one naming something that exists, so that a refusal is
// the attack's doing. ok is false for a parameter the table does not know.
func (f *hostileFixture) plausible(param string) (string, bool) {
	switch param {
	case "hostname":
		return hostileHost, true
	case "plugin_name":
		return hostilePlugin, true
	case "name":
		return f.channel, true
	case "id":
		return f.silence, true
	case "*":
		return "hbd.js", true
	}
	return "", false
}

// queryKind is what a query parameter holds.
type queryKind int

const (
	qLimit      queryKind = iota // a positive integer, capped
	qTime                        // unix seconds or RFC 3339
	qHost                        // a host name that must exist
	qHostFilter                  // a host name to filter by; one with no data selects nothing
	qState                       // open or resolved
	qCursor                      // the next value of a previous page
	qAny                         // any value (only changes caching)
	qOffset                      // a non-negative integer
	qLevel                       // CRITICAL, WARNING or UNKNOWN (comma-separated)
	qHostGlob                    // a glob of host names; one matching nothing selects nothing
)

type queryParam struct {
	name string
	kind queryKind
}

// hostileQueries lists the query parameters each handler reads.
var hostileQueries = map[string][]queryParam{
	"GET /api/0/messages":                             {{"limit", qLimit}, {"before", qTime}, {"host", qHost}},
	"GET /api/0/alerts":                               {{"limit", qLimit}, {"offset", qOffset}, {"level", qLevel}, {"host", qHostGlob}},
	"GET /api/0/alerts/history":                       {{"limit", qLimit}, {"since", qTime}, {"until", qTime}, {"state", qState}, {"before", qCursor}, {"host", qHostFilter}},
	"GET /api/0/hosts/:hostname/plugins/:plugin_name": {{"limit", qLimit}, {"since", qTime}, {"until", qTime}},
	"GET /static/*":                                   {{"v", qAny}},
}

// fieldSpec is one field of a route's body: its plausible value (raw
// JSON), whether it is a list of strings, and the mutations that are
// legitimate values of it (answered 2xx or refused: either is fine).
type fieldSpec struct {
	name  string
	value func(f *hostileFixture) string
	list  bool
	legit []string // mutation names
	why   string   // why the legit mutations are harmless
}

func raw(s string) func(*hostileFixture) string { return func(*hostileFixture) string { return s } }

// users is a list of user names, empty in open mode (which has no users).
func users(s string) func(*hostileFixture) string {
	return func(f *hostileFixture) string {
		if f.open {
			return `[]`
		}
		return s
	}
}

// bodySpec is what the table knows of a write route's body.
type bodySpec struct {
	// limit is the route's body limit: a body one byte over must get 413.
	limit int
	// fields make up a body the route accepts, or refuses only for a
	// reason of state (a wrong password, nothing to acknowledge).
	fields []fieldSpec
	// ignored, when set, says why the route reads no body; its body
	// attacks must only not fail (no 5xx, no hang).
	ignored string
	// fresh gives every request its own session: the route ends the
	// caller's session.
	fresh bool
	// signed routes (agent ingestion) are sent signed with the host's key,
	// so that attacks reach the body's decoding.
	signed bool
	// audit routes may journal their refusals (failed logins).
	audit bool
	// refusedControl, when set, says why the route refuses even its
	// plausible request with a 4xx (refusedControlOpen in open mode).
	refusedControl, refusedControlOpen string
}

// hostileBodies describes the body of every write route.
var hostileBodies = map[string]bodySpec{
	"POST /api/0/auth/login": {
		limit: api.MaxAccountBodyBytes, audit: true,
		refusedControl:     "it names no user: a real login would open a session",
		refusedControlOpen: "open mode has no login",
		fields: []fieldSpec{
			{name: "username", value: raw(`"nobody"`)},
			{name: "password", value: raw(`"wrong-password"`)},
			{name: "next", value: raw(`"/live"`)},
		},
	},
	"POST /api/0/auth/logout": {ignored: "logout reads no body", fresh: true},
	"PUT /api/0/users/me": {limit: api.MaxAccountBodyBytes, refusedControlOpen: "open mode has no profiles", fields: []fieldSpec{
		{name: "display_name", value: raw(`"Administrator"`), legit: []string{"null", "empty", "traversal", "glob", "surrogate"},
			why: "null leaves the name unchanged; the others are printable text (a lone surrogate decodes as U+FFFD)"},
		{name: "email", value: raw(`"admin@example.com"`), legit: []string{"null", "empty"},
			why: "null leaves the address unchanged, empty clears it"},
		{name: "channels", value: raw(`["ops"]`), list: true, legit: []string{"null", "array"},
			why: "null leaves the subscriptions unchanged, [] ends them"},
	}},
	"PUT /api/0/hosts/:hostname/access": {limit: api.MaxAccountBodyBytes, fields: []fieldSpec{
		{name: "managers", value: users(`["manager"]`), list: true, legit: []string{"null", "array"},
			why: "null leaves the list unchanged, [] empties it"},
		{name: "monitors", value: users(`["monitor"]`), list: true, legit: []string{"null", "array"},
			why: "null leaves the list unchanged, [] empties it"},
	}},
	"POST /api/0/hosts/:hostname/alerts/ack": {
		limit: 16 << 10,
		// An alerting metric would notify and journal on its own schedule,
		// racing the checks of "nothing stored"; the route's own tests
		// acknowledge real alerts.
		refusedControl: "nothing alerts, so there is nothing to acknowledge (409)",
		fields: []fieldSpec{
			{name: "metric_path", value: raw(`"cpu_monitor.cpu_percent"`)},
		},
	},
	"POST /api/0/silences": {limit: 16 << 10, fields: []fieldSpec{
		{name: "host", value: raw(`"web01"`), legit: []string{"glob", "traversal", "surrogate"},
			why: "a host glob; one matching no host yet is allowed for an admin"},
		{name: "metric", value: raw(`"cpu_monitor.*"`), legit: []string{"null", "empty", "glob", "traversal", "surrogate"},
			why: "a metric glob; empty or null means every metric"},
		{name: "duration", value: raw(`"1h"`), legit: []string{"number", "huge"},
			why: "a number is seconds; a huge one is refused or capped"},
		{name: "comment", value: raw(`"hostile table"`), legit: []string{"null", "empty", "glob", "traversal", "surrogate"},
			why: "free printable text (a lone surrogate decodes as U+FFFD)"},
	}},
	"DELETE /api/0/silences/:id": {ignored: "delete reads no body"},
	// Not a write, but its control is refused in open mode.
	"GET /api/0/config": {refusedControlOpen: "the config editor is off in open mode (409)"},
	"POST /api/0/config/check": {limit: api.MaxConfigBody, refusedControlOpen: "the config editor is off in open mode (409)", fields: []fieldSpec{
		{name: "text", value: func(f *hostileFixture) string { return strconv.Quote(f.cfgFile.Text(f.t)) },
			legit: []string{"empty", "nul", "escape", "crlf", "bidi", "c1", "surrogate", "long", "traversal", "glob"},
			why:   "any text is checked: the answer says it is not a valid config"},
		{name: "version", value: func(f *hostileFixture) string { return strconv.Quote(f.cfgFile.Version(f.t)) },
			legit: []string{"null", "empty", "nul", "escape", "crlf", "bidi", "c1", "surrogate", "long", "traversal", "glob"},
			why:   "the version is optional; another one only marks the answer stale"},
	}},
	"PUT /api/0/config": {limit: api.MaxConfigBody, refusedControlOpen: "the config editor is off in open mode (409)", fields: []fieldSpec{
		{name: "text", value: func(f *hostileFixture) string { return strconv.Quote(f.cfgFile.Text(f.t)) }},
		{name: "version", value: func(f *hostileFixture) string { return strconv.Quote(f.cfgFile.Version(f.t)) }},
	}},
	"POST /api/0/notification_channels": {limit: api.MaxChannelBody, fields: []fieldSpec{
		{name: "name", value: func(f *hostileFixture) string { return strconv.Quote(fmt.Sprintf("hx_%d", f.seq.Add(1))) }},
		{name: "type", value: raw(`"webhook"`)},
		{name: "url", value: func(f *hostileFixture) string { return strconv.Quote(f.rcv.URL) }},
		{name: "hosts", value: raw(`["web01"]`), list: true, legit: []string{"null", "array", "glob", "traversal", "surrogate"},
			why: "null or [] covers every host the owner may see; the others are globs (matching no host)"},
		{name: "min_level", value: raw(`"WARNING"`), legit: []string{"null"}, why: "null is the default level"},
		{name: "private", value: raw(`false`), legit: []string{"null", "bool"}, why: "a boolean; null is the default"},
	}},
	"PUT /api/0/notification_channels/:name": {limit: api.MaxChannelBody, fields: []fieldSpec{
		{name: "type", value: raw(`"webhook"`), legit: []string{"null", "empty"}, why: "no type keeps the channel's type"},
		{name: "url", value: func(f *hostileFixture) string { return strconv.Quote(f.rcv.URL) }},
		{name: "min_level", value: raw(`"WARNING"`), legit: []string{"null"}, why: "null keeps the level"},
	}},
	"DELETE /api/0/notification_channels/:name":    {ignored: "delete reads no body"},
	"POST /api/0/notification_channels/:name/test": {ignored: "a test reads no body"},
	"POST " + protocol.IngestPath: {limit: protocol.MaxBatchBytes, signed: true, fields: []fieldSpec{
		{name: "samples", value: func(*hostileFixture) string {
			return fmt.Sprintf(`[{"plugin":"cpu_monitor","timestamp":%d,"data":{"cpu_percent":12}}]`, time.Now().Unix()-1)
		}},
	}},
}

// genericBody is the spec of a write route the table knows nothing of.
var genericBody = bodySpec{limit: 1 << 20}

// ---------------------------------------------------------------------
// The attacks.

// pathAttacks replace one path parameter each. Every one names nothing
// that exists, so every one must be refused.
var pathAttacks = []struct{ name, value string }{
	{"traversal", "..%2F..%2Fetc%2Fpasswd"},
	{"dot-dot encoded", "%2e%2e"},
	{"dot-dot", ".."},
	{"long", strings.Repeat("a", 10<<10)},
	{"nul", "x%00y"},
	{"escape", "%1b%5b31m"},
	{"crlf", "x%0d%0aSet-Cookie:%20hbd_session=x"},
	{"newline", "%0a"},
	{"bidi", "%E2%80%AEgpj.exe"},
	{"c1", "x%C2%85y"},
	{"bad utf-8", "%ff%fe"},
	{"overlong slash", "%c0%af"},
	{"glob star", "*"},
	{"glob", "web%2A"},
	{"glob class", "%5Ba-z%5D01"},
	{"question mark", "web0%3F"},
	{"space", "%20web01"},
	{"percent", "%25"},
}

// wildcardAttacks are extra for a "*" parameter, which spans slashes.
var wildcardAttacks = []struct{ name, value string }{
	{"raw traversal", "../../etc/passwd"},
	{"encoded traversal", "..%2f..%2f..%2fetc%2fpasswd"},
	{"absolute", "/etc/passwd"},
	{"backslash", "..%5c..%5cwindows"},
}

// queryAttack is a value sent to a query parameter; ok lists the kinds
// for which the value is legitimate.
type queryAttack struct {
	name, value string
	ok          []queryKind
}

var queryAttacks = []queryAttack{
	{"negative", "-1", []queryKind{qAny}},
	{"zero", "0", []queryKind{qAny, qTime, qHostFilter, qOffset, qHostGlob}},
	{"overflow", "1e309", []queryKind{qAny, qHostFilter, qHostGlob}},
	// a finite time past year 5000 selects nothing: harmless
	{"huge", "99999999999999999999", []queryKind{qAny, qTime, qHostFilter, qHostGlob}},
	// NaN, Inf, 0x10, 1.5 and abc are valid host names
	{"NaN", "NaN", []queryKind{qAny, qHostFilter, qHostGlob}},
	{"Inf", "Inf", []queryKind{qAny, qHostFilter, qHostGlob}},
	{"-Inf", "-Inf", []queryKind{qAny}},
	{"hex", "0x10", []queryKind{qAny, qHostFilter, qHostGlob}},
	{"fraction", "1.5", []queryKind{qAny, qTime, qHostFilter, qHostGlob}},
	{"word", "abc", []queryKind{qAny, qHostFilter, qHostGlob}},
	{"nul", "1%00", []queryKind{qAny}},
	{"escape", "%1b%5b31m", []queryKind{qAny}},
	{"crlf", "1%0d%0aX:1", []queryKind{qAny}},
	{"bidi", "%E2%80%AE1", []queryKind{qAny}},
	{"bad utf-8", "%ff", []queryKind{qAny}},
	{"traversal", "..%2F..%2Fetc%2Fpasswd", []queryKind{qAny}},
	{"glob", "*", []queryKind{qAny, qHostGlob}},
	{"long", strings.Repeat("9", 10<<10), []queryKind{qAny}},
	{"space", "%201", []queryKind{qAny}},
	// empty means "not given": the default applies
	{"empty", "", []queryKind{qAny, qLimit, qTime, qHost, qHostFilter, qState, qCursor, qOffset, qLevel, qHostGlob}},
}

// mutation replaces a field's value with hostile raw JSON.
type mutation struct{ name, json string }

var mutations = []mutation{
	{"number", `12345`},
	{"bool", `true`},
	{"array", `[]`},
	{"object", `{}`},
	{"null", `null`},
	{"negative", `-1`},
	{"overflow", `1e309`},
	{"huge", `99999999999999999999`},
	{"empty", `""`},
	{"nul", `"a\u0000b"`},
	{"escape", `"a\u001b[31mb"`},
	{"crlf", `"a\r\nX-Injected: 1"`},
	{"bidi", `"\u202egpj.exe"`},
	{"c1", `"a\u0085b"`},
	{"surrogate", `"\ud800"`},
	{"badutf8", "\"a\xff\xfeb\""},
	{"long", `"` + strings.Repeat("a", 10<<10) + `"`},
	{"traversal", `"../../etc/passwd"`},
	{"glob", `"*"`},
	{"nested", strings.Repeat("[", 200) + strings.Repeat("]", 200)},
}

// listElement turns a string mutation into a one-element list for list
// fields; type mutations replace the whole list.
func listElement(m mutation) string {
	if strings.HasPrefix(m.json, `"`) {
		return "[" + m.json + "]"
	}
	return m.json
}

// genericBodies are sent to every write route that reads a body.
func genericBodies(limit int) []struct{ name, body string } {
	return []struct{ name, body string }{
		{"empty", ""},
		{"whitespace", "  \n\t "},
		{"truncated", `{"a":`},
		{"trailing comma", `{"a":1,}`},
		{"bare word", `hello`},
		{"single quotes", `{'a':1}`},
		{"two values", `{}{}`},
		{"trailing garbage", `{} x`},
		{"array", `[]`},
		{"array of object", `[{}]`},
		{"string", `"str"`},
		{"number", `42`},
		{"null", `null`},
		{"bool", `true`},
		{"bad utf-8", "\xff\xfe{}"},
		{"nul byte", "{\x00}"},
		{"deep arrays", strings.Repeat("[", 10001) + strings.Repeat("]", 10001)},
		{"deep objects", strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001)},
		// Exactly at the limit: refused for its content, not its size.
		{"at the limit", `{"pad":"` + strings.Repeat("a", limit-len(`{"pad":""}`)) + `"}`},
		// One byte over: 413.
		{"oversized", `{"pad":"` + strings.Repeat("a", limit+1-len(`{"pad":""}`)) + `"}`},
	}
}

// badContentTypes are sent with a valid body.
var badContentTypes = []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "text/html", "application/json-patch+json", "not a type"}

// ---------------------------------------------------------------------
// Checks.

// checkRefused asserts a 4xx JSON error answer.
func checkRefused(t *testing.T, r hostileReq, rec *httptest.ResponseRecorder) bool {
	t.Helper()
	if rec.Code < 400 || rec.Code > 499 {
		t.Errorf("%s: got %d %q, want a 4xx JSON error", r, rec.Code, clip(rec.Body.String(), 160))
		return false
	}
	checkErrorBody(t, r, rec)
	return true
}

// checkHarmless asserts an answer of an input the route may accept: no
// 5xx, and a JSON error when it is refused.
func checkHarmless(t *testing.T, r hostileReq, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Errorf("%s: got %d %q", r, rec.Code, clip(rec.Body.String(), 300))
		return
	}
	if rec.Code >= 400 {
		checkErrorBody(t, r, rec)
	}
	checkNoLeak(t, r, rec)
}

func checkErrorBody(t *testing.T, r hostileReq, rec *httptest.ResponseRecorder) {
	t.Helper()
	checkNoLeak(t, r, rec)
	mt, _, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	if err != nil || mt != "application/json" {
		t.Errorf("%s: %d answered as %q, not JSON: %q", r, rec.Code, rec.Header().Get("Content-Type"), clip(rec.Body.String(), 300))
		return
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Errorf("%s: %d body is not a JSON object: %q", r, rec.Code, clip(rec.Body.String(), 300))
		return
	}
	msg, ok := body["error"].(string)
	want := 1 // {"error": ...}, with "field" (a clean, short string) when the error names one
	if f, has := body["field"]; has {
		fs, isStr := f.(string)
		if !isStr || fs == "" || !safetext.Valid(fs) || len(fs) > 70 {
			t.Errorf("%s: %d error names a bad field: %q", r, rec.Code, clip(rec.Body.String(), 300))
		}
		want++
	}
	// A refused config edit places its problem: "line" (a number) and
	// "key" (a clean, short string).
	if l, has := body["line"]; has {
		if n, isNum := l.(float64); !isNum || n < 1 {
			t.Errorf("%s: %d error names a bad line: %q", r, rec.Code, clip(rec.Body.String(), 300))
		}
		want++
	}
	if k, has := body["key"]; has {
		ks, isStr := k.(string)
		if !isStr || ks == "" || !safetext.Valid(ks) || len(ks) > 70 {
			t.Errorf("%s: %d error names a bad key: %q", r, rec.Code, clip(rec.Body.String(), 300))
		}
		want++
	}
	if !ok || msg == "" || len(body) != want {
		t.Errorf(`%s: %d body is not {"error": "..."} (or {"error": "...", "field": "..."}): %q`, r, rec.Code, clip(rec.Body.String(), 300))
		return
	}
	if !safetext.Valid(msg) {
		t.Errorf("%s: %d error echoes control, bidi or invalid characters: %q", r, rec.Code, clip(msg, 300))
	}
	if len(msg) > 1024 {
		t.Errorf("%s: %d error of %d bytes (the input is echoed unbounded): %q", r, rec.Code, len(msg), clip(msg, 200))
	}
}

// checkNoLeak asserts that no Go panic, stack or HTML error page and no
// raw control character reaches the client.
func checkNoLeak(t *testing.T, r hostileReq, rec *httptest.ResponseRecorder) {
	t.Helper()
	mt, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	if mt == "text/html" || mt == "text/javascript" || mt == "text/css" {
		return // a page or an asset of the web UI
	}
	b := rec.Body.String()
	for _, bad := range []string{"goroutine ", "panic:", "runtime error", ".go:", "<html", "<!DOCTYPE"} {
		if strings.Contains(b, bad) {
			t.Errorf("%s: %d answer holds %q: %q", r, rec.Code, bad, clip(b, 300))
		}
	}
	for k, vs := range rec.Header() {
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				t.Errorf("%s: header %s carries a control character: %q", r, k, v)
			}
		}
	}
}

// ---------------------------------------------------------------------
// "Nothing stored".

// hostileState is everything a request could have stored: every table of
// the database (read after the store's writer has caught up) and the
// services' state in memory, as sorted rows per name.
type hostileState map[string][]string

func (f *hostileFixture) state(t *testing.T) hostileState {
	t.Helper()
	ctx := context.Background()
	// The store's writer is first in, first out: a no-op write returns
	// once every write queued before it is committed.
	if err := f.st.Write(ctx, func(*sql.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	s := hostileState{}
	for k, v := range f.dbState(t) {
		s[k] = v
	}
	for _, sl := range f.ev.Silences() {
		s["mem:silences"] = append(s["mem:silences"], fmt.Sprintf("%+v", sl))
	}
	for _, ch := range f.reg.ListChannels(access.Principal{Admin: true}, f.disp.Coverage()) {
		s["mem:channels"] = append(s["mem:channels"], fmt.Sprintf("%+v", ch))
	}
	for _, h := range []string{authtest.Host, authtest.OtherHost} {
		s["mem:access"] = append(s["mem:access"], fmt.Sprintf("%s %s", h, mustJSON(f.auth.Policy().HostRoles(h))))
	}
	for _, u := range f.auth.Users() {
		s["mem:users"] = append(s["mem:users"], mustJSON(u))
	}
	for _, h := range f.st.Hosts() {
		s["mem:hosts"] = append(s["mem:hosts"], fmt.Sprintf("%+v", h))
	}
	for _, h := range f.ev.EvaluatedHosts() {
		for _, st := range f.ev.HostAlerts(h) {
			s["mem:alerts"] = append(s["mem:alerts"], fmt.Sprintf("%s %s ack=%v", h, st.MetricPath, st.Acknowledged))
		}
	}
	for _, v := range s {
		sort.Strings(v)
	}
	return s
}

// dbState dumps every table of the database. The dump is taken again only
// when SQLite's data_version, read on a connection of its own, says that
// another connection committed since the last dump.
func (f *hostileFixture) dbState(t *testing.T) hostileState {
	t.Helper()
	ctx := context.Background()
	var version int64
	if err := f.conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if f.db != nil && version == f.dbVersion {
		return f.db
	}
	s := hostileState{}
	db := f.st.Reader()
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	for _, tbl := range tables {
		q := `SELECT * FROM "` + tbl + `"`
		switch tbl {
		case "alert_states":
			// The evaluator saves its states on its own schedule; the
			// alert states of the memory side below are what requests
			// could change.
			continue
		case "sessions":
			// Every authenticated request may touch its session's last use.
			q = `SELECT token_hash, user, created, expires FROM sessions`
		}
		s["db:"+tbl] = queryRows(t, db, q)
	}
	for _, v := range s {
		sort.Strings(v)
	}
	f.db, f.dbVersion = s, version
	return s
}

func queryRows(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			parts[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(parts, " | "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// diff lists what after holds that before does not, and the reverse,
// per name.
func (before hostileState) diff(after hostileState) map[string][2][]string {
	out := map[string][2][]string{}
	names := map[string]bool{}
	for n := range before {
		names[n] = true
	}
	for n := range after {
		names[n] = true
	}
	for n := range names {
		added, removed := minus(after[n], before[n]), minus(before[n], after[n])
		if len(added) > 0 || len(removed) > 0 {
			out[n] = [2][]string{added, removed}
		}
	}
	return out
}

func minus(a, b []string) []string {
	count := map[string]int{}
	for _, s := range b {
		count[s]++
	}
	var out []string
	for _, s := range a {
		if count[s] > 0 {
			count[s]--
			continue
		}
		out = append(out, s)
	}
	return out
}

// checkUnchanged asserts that a refused request stored nothing. Audit
// routes (login) may journal the failure, as long as the line is safe to
// show.
func checkUnchanged(t *testing.T, r hostileReq, before, after hostileState, audit bool) {
	t.Helper()
	var changed []string
	for name, d := range before.diff(after) {
		added, removed := d[0], d[1]
		if audit {
			switch name {
			case "db:sqlite_sequence":
				continue
			case "db:journal":
				ok := true
				for _, line := range added {
					if !strings.Contains(line, "login failed for ") && !strings.Contains(line, "logins for ") {
						ok = false
					}
					if !safetext.Valid(line) {
						t.Errorf("%s: journal line holds unsafe characters: %q", r, clip(line, 200))
					}
				}
				if ok && len(removed) == 0 {
					continue
				}
			}
		}
		changed = append(changed, fmt.Sprintf("%s (+%d -%d) %q", name, len(added), len(removed), clipAll(append(added, removed...))))
	}
	if len(changed) > 0 {
		sort.Strings(changed)
		t.Errorf("%s was refused but changed %s", r, strings.Join(changed, "; "))
	}
}

func clipAll(v []string) []string {
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = clip(s, 100)
	}
	return out
}

// ---------------------------------------------------------------------
// The table.

// TestHostileInputs runs the hostile-input table on every route, in auth
// mode (as an administrator) and in open mode.
func TestHostileInputs(t *testing.T) {
	for _, mode := range []string{"auth", "open"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f := newHostileFixture(t, mode == "open")
			routes := f.srv.Routes()
			if len(routes) < 30 {
				t.Fatalf("only %d routes registered", len(routes))
			}
			t.Run("knowledge", func(t *testing.T) { f.checkKnowledge(t) })
			n := 0
			for _, rt := range routes {
				t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
					n += f.attackRoute(t, rt)
				})
			}
			t.Run("router", func(t *testing.T) { n += f.attackRouter(t) })
			t.Logf("%s mode: %d routes, %d hostile requests", mode, len(routes), n)
		})
	}
}

// checkKnowledge fails when a route has a path parameter the table has no
// plausible value for, or is a write route whose body the table does not
// describe: add it to hostileBodies (and the query parameters its handler
// reads to hostileQueries). Until then the route gets the generic attacks.
func (f *hostileFixture) checkKnowledge(t *testing.T) {
	routes := f.srv.Routes()
	for _, rt := range routes {
		for _, p := range pathParams(rt.Path) {
			if _, ok := f.plausible(p); !ok {
				t.Errorf("%s %s: path parameter %q has no plausible value in the hostile table", rt.Method, rt.Path, p)
			}
		}
		if isWrite(rt.Method) || rt.Method == http.MethodDelete {
			if _, ok := hostileBodies[rt.Method+" "+rt.Path]; !ok {
				t.Errorf("%s %s: the hostile table does not describe its body (hostileBodies)", rt.Method, rt.Path)
			}
		}
	}
	for key := range hostileBodies {
		if !slices.ContainsFunc(routes, func(rt api.Route) bool { return rt.Method+" "+rt.Path == key }) {
			t.Errorf("hostileBodies describes %s, which is no route", key)
		}
	}
	for key := range hostileQueries {
		if !slices.ContainsFunc(routes, func(rt api.Route) bool { return rt.Method+" "+rt.Path == key }) {
			t.Errorf("hostileQueries describes %s, which is no route", key)
		}
	}
}

// attackRouter sends hostile paths that match no route and methods no
// route serves: the router's own answers must be JSON errors too.
func (f *hostileFixture) attackRouter(t *testing.T) int {
	n := 0
	before := f.state(t)
	for _, a := range append(slices.Clone(pathAttacks), wildcardAttacks...) {
		for _, target := range []string{"/api/0/" + a.value, "/api/0/hosts/web01/" + a.value + "/x", "/" + a.value} {
			r := hostileReq{Method: http.MethodGet, Target: target}
			n++
			checkRefused(t, r, f.serve(t, r))
		}
	}
	for _, rt := range f.srv.Routes() {
		for _, m := range []string{http.MethodPatch, "PROPFIND"} {
			r := hostileReq{Method: m, Target: f.target(t, rt.Path, "", ""), Body: []byte("{}"), CType: "application/json"}
			n++
			rec := f.serve(t, r)
			if rec.Code != http.StatusMethodNotAllowed && rec.Code != http.StatusNotFound {
				t.Errorf("%s: got %d %q, want 405", r, rec.Code, clip(rec.Body.String(), 160))
				continue
			}
			checkErrorBody(t, r, rec)
		}
	}
	if d := before.diff(f.state(t)); len(d) > 0 {
		t.Errorf("requests to no route changed the store or the services: %v", d)
	}
	return n
}

// target fills rt's path: param (if not "") gets value, the others their
// plausible values.
func (f *hostileFixture) target(t *testing.T, path, param, value string) string {
	t.Helper()
	segs := strings.Split(path, "/")
	for i, s := range segs {
		name := ""
		switch {
		case s == "*":
			name = "*"
		case strings.HasPrefix(s, ":"):
			name = s[1:]
		default:
			continue
		}
		if name == param {
			segs[i] = value
			continue
		}
		v, ok := f.plausible(name)
		if !ok {
			v = "test" // unknown parameter: TestHostileTableKnowsEveryRoute fails
		}
		segs[i] = url.PathEscape(v)
	}
	return strings.Join(segs, "/")
}

func pathParams(path string) []string {
	var out []string
	for _, s := range strings.Split(path, "/") {
		switch {
		case s == "*":
			out = append(out, "*")
		case strings.HasPrefix(s, ":"):
			out = append(out, s[1:])
		}
	}
	return out
}

func isWrite(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

// attackRoute sends every attack that applies to rt and returns how many
// requests it sent.
func (f *hostileFixture) attackRoute(t *testing.T, rt api.Route) int {
	key := rt.Method + " " + rt.Path
	spec, known := hostileBodies[key]
	if !known && (isWrite(rt.Method) || rt.Method == http.MethodDelete) {
		spec = genericBody
	}
	n := 0
	// base is a plausible request of the route with a valid body.
	base := func(target string) hostileReq {
		r := hostileReq{Method: rt.Method, Target: target}
		if isWrite(rt.Method) && spec.ignored == "" {
			r.Body, r.CType = []byte(f.body(spec, "", "")), "application/json"
		}
		if spec.fresh && !f.open {
			r.Token = f.login(t, "monitor")
		}
		if rt.Path == "/logout" {
			r.Anonymous = true // GET /logout ends the session it is sent with
		}
		if spec.signed {
			r = f.ingestReq(t, r.Body, nil)
		}
		return r
	}
	// A read stores nothing, whatever it is sent: the state is compared
	// once for all of a read route's requests (each state read waits for
	// the store's writer). A write is checked request by request.
	read := rt.Method == http.MethodGet && rt.Path != "/logout"
	if read {
		before := f.state(t)
		defer func() {
			if d := before.diff(f.state(t)); len(d) > 0 {
				t.Errorf("requests of %s %s, a read, changed the store or the services: %v", rt.Method, rt.Path, d)
			}
		}()
	}
	// refused sends a request that must be refused and store nothing.
	refused := func(r hostileReq) {
		t.Helper()
		n++
		if read {
			checkRefused(t, r, f.serve(t, r))
			return
		}
		before := f.last
		if before == nil {
			before = f.state(t)
		}
		rec := f.serve(t, r)
		f.last = f.state(t)
		if checkRefused(t, r, rec) {
			checkUnchanged(t, r, before, f.last, spec.audit)
		}
	}
	harmless := func(r hostileReq) {
		t.Helper()
		n++
		checkHarmless(t, r, f.serve(t, r))
	}

	// The control: the plausible request is served, so that what the
	// attacks below get refused for is the attack.
	if rt.Method != http.MethodDelete {
		r := base(f.target(t, rt.Path, "", ""))
		rec := f.serve(t, r)
		why := spec.refusedControl
		if f.open && spec.refusedControlOpen != "" {
			why = spec.refusedControlOpen
		}
		switch {
		case why == "" && rec.Code >= 400:
			t.Errorf("control %s: got %d %q, want it served", r, rec.Code, clip(rec.Body.String(), 200))
		case why != "" && (rec.Code < 400 || rec.Code > 499):
			t.Errorf("control %s: got %d %q, want a 4xx (%s)", r, rec.Code, clip(rec.Body.String(), 200), why)
		}
	}

	// Path parameters.
	for _, p := range pathParams(rt.Path) {
		attacks := pathAttacks
		if p == "*" {
			attacks = append(slices.Clone(pathAttacks), wildcardAttacks...)
		}
		for _, a := range attacks {
			refused(base(f.target(t, rt.Path, p, a.value)))
		}
	}

	// Query parameters.
	if rt.Method == http.MethodGet {
		plain := f.target(t, rt.Path, "", "")
		for _, q := range hostileQueries[key] {
			for _, a := range queryAttacks {
				r := base(plain + "?" + q.name + "=" + a.value)
				if slices.Contains(a.ok, q.kind) {
					harmless(r)
				} else {
					refused(r)
				}
			}
			// The first of repeated parameters counts: a valid first
			// value is served, an invalid one refused.
			if q.kind != qAny {
				refused(base(plain + "?" + q.name + "=-1&" + q.name + "=1"))
			}
		}
		// Parameters no handler reads are ignored.
		harmless(base(plain + "?zz_unknown=%00%1b%E2%80%AE&limit%00=1"))
	}

	// Bodies.
	if !isWrite(rt.Method) {
		return n
	}
	plain := f.target(t, rt.Path, "", "")
	send := func(body, ctype string) hostileReq {
		r := base(plain)
		r.Body, r.CType = []byte(body), ctype
		if spec.signed {
			r = f.ingestReq(t, r.Body, nil)
			r.CType = ctype
		}
		return r
	}
	if spec.ignored != "" {
		for _, g := range genericBodies(1 << 10) {
			harmless(send(g.body, "application/json"))
		}
		return n
	}
	for _, g := range genericBodies(spec.limit) {
		r := send(g.body, "application/json")
		if g.name == "at the limit" {
			n++
			if rec := f.serve(t, r); rec.Code == http.StatusRequestEntityTooLarge {
				t.Errorf("%s: a body of exactly the limit (%d bytes) got 413", r, spec.limit)
			}
			continue
		}
		if g.name == "oversized" {
			n++
			before := f.state(t)
			rec := f.serve(t, r)
			f.last = f.state(t)
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Errorf("%s: got %d %q, want 413 (body limit %d bytes)", r, rec.Code, clip(rec.Body.String(), 200), spec.limit)
			}
			checkErrorBody(t, r, rec)
			checkUnchanged(t, r, before, f.last, spec.audit)
			continue
		}
		refused(r)
	}
	for _, ct := range badContentTypes {
		r := send(f.body(spec, "", ""), ct)
		switch {
		case spec.signed:
			// The signature, not the type, proves an agent's batch.
			harmless(r)
		case !f.open && key == "POST /api/0/auth/login" && (strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data")):
			// The login page's form: answered with a redirect to it (open
			// mode refuses forms: they could come from another site).
			n++
			rec := f.serve(t, r)
			if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), api.LoginPath+"?error=") {
				t.Errorf("%s: got %d %v, want 303 back to the login page", r, rec.Code, rec.Header())
			}
		default:
			refused(r)
		}
	}
	if len(spec.fields) > 0 {
		valid := strings.TrimSuffix(f.body(spec, "", ""), "}")
		refused(send(valid+`,"zz_unknown":1}`, "application/json"))
		// The first field again, with another value.
		valid = strings.TrimSuffix(f.body(spec, "", ""), "}")
		refused(send(valid+`,"`+spec.fields[0].name+`":"dup"}`, "application/json"))
	}
	if spec.signed {
		n += f.attackIngest(t, refused)
	}
	for _, fs := range spec.fields {
		for _, m := range mutations {
			v := m.json
			if fs.list {
				v = listElement(m)
			}
			r := send(f.body(spec, fs.name, v), "application/json")
			if slices.Contains(fs.legit, m.name) {
				harmless(r)
			} else {
				refused(r)
			}
		}
	}
	return n
}

// body builds the route's valid body with field (if not "") set to the
// raw JSON value.
func (f *hostileFixture) body(spec bodySpec, field, value string) string {
	if len(spec.fields) == 0 {
		return "{}"
	}
	parts := make([]string, len(spec.fields))
	for i, fs := range spec.fields {
		v := fs.value(f)
		if fs.name == field {
			v = value
		}
		parts[i] = strconv.Quote(fs.name) + ":" + v
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// attackIngest sends the agent route hostile signature headers and signed
// batches whose samples are malformed, and a replay.
func (f *hostileFixture) attackIngest(t *testing.T, refused func(hostileReq)) int {
	n := 0
	now := time.Now().Unix()
	for _, h := range []struct{ name, value string }{
		{protocol.HeaderHost, ""},
		{protocol.HeaderHost, "../etc"},
		{protocol.HeaderHost, "web01\x1b[31m"},
		{protocol.HeaderHost, "web\u202e01"},
		{protocol.HeaderHost, "web01\xc2\x85"},
		{protocol.HeaderHost, strings.Repeat("a", 10<<10)},
		{protocol.HeaderHost, "*"},
		{protocol.HeaderHost, "web01 "},
		{protocol.HeaderTimestamp, ""},
		{protocol.HeaderTimestamp, "NaN"},
		{protocol.HeaderTimestamp, "1e309"},
		{protocol.HeaderTimestamp, "-1"},
		{protocol.HeaderTimestamp, "99999999999999999999"},
		{protocol.HeaderTimestamp, "0x10"},
		{protocol.HeaderTimestamp, strconv.FormatInt(now, 10) + ".5"},
		{protocol.HeaderSignature, ""},
		{protocol.HeaderSignature, "zz"},
		{protocol.HeaderSignature, strings.Repeat("a", 10<<10)},
	} {
		n++
		refused(f.ingestReq(t, f.validBatch(), map[string]string{h.name: h.value}))
	}
	// Signed with the right key and a time an hour old: refused for skew.
	body := f.validBatch()
	old := now - 3600
	n++
	refused(f.ingestReq(t, body, map[string]string{
		protocol.HeaderTimestamp: strconv.FormatInt(old, 10),
		protocol.HeaderSignature: protocol.Sign(f.key, hostileHost, old, body),
	}))

	sample := func(plugin, ts, data string) string {
		return `{"samples":[{"plugin":` + plugin + `,"timestamp":` + ts + `,"data":` + data + `}]}`
	}
	ts := strconv.FormatInt(now-1, 10)
	deep := `{"a":{"b":{"c":{"d":{"e":1}}}}}`
	many := make([]string, protocol.MaxSampleFields+1)
	for i := range many {
		many[i] = fmt.Sprintf(`"f%d":1`, i)
	}
	samples := make([]string, protocol.MaxBatchSamples+1)
	for i := range samples {
		samples[i] = `{"plugin":"cpu_monitor","timestamp":` + ts + `,"data":{"cpu_percent":1}}`
	}
	for _, b := range []struct{ name, body string }{
		{"no samples", `{"samples":[]}`},
		{"null samples", `{"samples":null}`},
		{"sample not an object", `{"samples":[1]}`},
		{"too many samples", `{"samples":[` + strings.Join(samples, ",") + `]}`},
		{"unknown sample field", `{"samples":[{"plugin":"cpu_monitor","timestamp":` + ts + `,"data":{"cpu_percent":1},"x":1}]}`},
		{"plugin empty", sample(`""`, ts, `{"cpu_percent":1}`)},
		{"plugin traversal", sample(`"../../etc/passwd"`, ts, `{"cpu_percent":1}`)},
		{"plugin nul", sample(`"cpu\u0000"`, ts, `{"cpu_percent":1}`)},
		{"plugin escape", sample(`"cpu\u001b[31m"`, ts, `{"cpu_percent":1}`)},
		{"plugin bidi", sample(`"\u202ecpu"`, ts, `{"cpu_percent":1}`)},
		{"plugin c1", sample(`"cpu\u0085"`, ts, `{"cpu_percent":1}`)},
		{"plugin long", sample(`"`+strings.Repeat("a", 10<<10)+`"`, ts, `{"cpu_percent":1}`)},
		{"plugin glob", sample(`"*"`, ts, `{"cpu_percent":1}`)},
		{"plugin number", sample(`1`, ts, `{"cpu_percent":1}`)},
		{"timestamp negative", sample(`"cpu_monitor"`, `-1`, `{"cpu_percent":1}`)},
		{"timestamp zero", sample(`"cpu_monitor"`, `0`, `{"cpu_percent":1}`)},
		{"timestamp overflow", sample(`"cpu_monitor"`, `1e309`, `{"cpu_percent":1}`)},
		{"timestamp string", sample(`"cpu_monitor"`, `"now"`, `{"cpu_percent":1}`)},
		{"timestamp far future", sample(`"cpu_monitor"`, `1e12`, `{"cpu_percent":1}`)},
		{"data empty", sample(`"cpu_monitor"`, ts, `{}`)},
		{"data null", sample(`"cpu_monitor"`, ts, `null`)},
		{"data array", sample(`"cpu_monitor"`, ts, `[1]`)},
		{"data key nul", sample(`"cpu_monitor"`, ts, `{"a\u0000b":1}`)},
		{"data key escape", sample(`"cpu_monitor"`, ts, `{"a\u001b[31m":1}`)},
		{"data key bidi", sample(`"cpu_monitor"`, ts, `{"\u202eerror_count":1}`)},
		{"data key c1", sample(`"cpu_monitor"`, ts, `{"a\u0085":1}`)},
		{"data key empty", sample(`"cpu_monitor"`, ts, `{"":1}`)},
		{"data key long", sample(`"cpu_monitor"`, ts, `{"`+strings.Repeat("k", protocol.MaxPathLength+1)+`":1}`)},
		{"data value overflow", sample(`"cpu_monitor"`, ts, `{"cpu_percent":1e309}`)},
		{"data too deep", sample(`"cpu_monitor"`, ts, deep)},
		{"data too many fields", sample(`"cpu_monitor"`, ts, `{`+strings.Join(many, ",")+`}`)},
		{"data path collision", sample(`"cpu_monitor"`, ts, `{"a":{"b":1},"a.b":2}`)},
		{"data nested 10000", sample(`"cpu_monitor"`, ts, strings.Repeat(`{"a":`, 10000)+"1"+strings.Repeat("}", 10000))},
	} {
		n++
		refused(f.ingestReq(t, []byte(b.body), nil))
	}

	// A replay of an accepted batch is answered as a duplicate and stores
	// nothing more.
	r := f.ingestReq(t, f.validBatch(), nil)
	if rec := f.serve(t, r); rec.Code != http.StatusOK {
		t.Fatalf("control: ingest: %d %s", rec.Code, rec.Body)
	}
	before := f.state(t)
	rec := f.serve(t, r)
	n += 2
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"duplicate":true`) {
		t.Errorf("replay: got %d %s, want a duplicate", rec.Code, rec.Body)
	}
	checkUnchanged(t, r, before, f.state(t), false)
	return n
}
