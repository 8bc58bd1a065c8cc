package api_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/dispatch"
	"github.com/hbdmon/hbd/core/pluginhost"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
)

// headerGuard stands in for package auth: the caller is the user named in
// X-Test-User (401 without one), an admin when the config says so.
type headerGuard struct{ cfg *config.Config }

func (g headerGuard) Check(c echo.Context, r api.Route) (access.Principal, error) {
	if r.Access == api.Public || r.Access == api.Agent {
		return access.Principal{}, nil
	}
	u := c.Request().Header.Get("X-Test-User")
	spec, ok := g.cfg.Users[u]
	if !ok {
		return access.Principal{}, echo.NewHTTPError(http.StatusUnauthorized, "Authentication required")
	}
	return access.Principal{User: u, Admin: spec.Admin}, nil
}

const cfgSecret = "cfg-hmac-secret-1"

const channelsYAML = `
users:
  alice: {password_hash: "HASH"}
  bob: {password_hash: "HASH"}
  root: {password_hash: "HASH", admin: true}
watchhosts:
  web01: {key: "` + testutil.Key + `"}
  web02: {key: "` + testutil.Key + `", monitors: [alice]}
notification_channels:
  ops_webhook: {type: webhook, url: "RCV", secret: "` + cfgSecret + `", hosts: ["*"]}
  alice_cfg: {type: webhook, url: "RCV", private: true, owner: alice, min_level: CRITICAL}
channel_destinations: {allow: [127.0.0.0/8]} # local receivers, for users' channels
`

type chanFixture struct {
	srv  *httptest.Server
	d    *dispatch.Dispatcher
	reg  *channels.Registry
	st   *store.Store
	rcv  *pht.Receiver
	open bool
}

func newChanFixture(t *testing.T, openMode bool) *chanFixture {
	t.Helper()
	f := &chanFixture{rcv: pht.NewReceiver(t), open: openMode}
	yaml := strings.ReplaceAll(strings.ReplaceAll(channelsYAML, "HASH", "$2a$10$"+strings.Repeat("a", 53)), "RCV", f.rcv.URL)
	if openMode {
		yaml = yaml[strings.Index(yaml, "watchhosts:"):]
		yaml = strings.ReplaceAll(yaml, "owner: alice, ", "")
	}
	cfg := testutil.Config(t, yaml)
	st := testutil.Store(t, 10)
	host, _ := pht.Start(t, pht.Dir(t, pht.Webhook, pht.Pushover), pluginhost.Options{})
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
	f.d, f.reg, f.st = d, reg, st
	deps := api.Deps{Config: func() *config.Config { return cfg }, Store: st}
	if !openMode {
		deps.Guard = headerGuard{cfg}
	}
	s := api.New(deps)
	s.AddChannels(reg, d)
	f.srv = httptest.NewServer(s.Echo)
	t.Cleanup(f.srv.Close)
	return f
}

// call sends a request as user ("" for none) and decodes the JSON answer.
func (f *chanFixture) call(t *testing.T, user, method, path string, body any) (int, any) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, r)
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
	}
	return resp.StatusCode, v
}

func (f *chanFixture) list(t *testing.T, user string) map[string]map[string]any {
	t.Helper()
	code, v := f.call(t, user, http.MethodGet, "/api/0/notification_channels", nil)
	if code != http.StatusOK {
		t.Fatalf("list as %q: %d %v", user, code, v)
	}
	out := map[string]map[string]any{}
	for _, c := range v.([]any) {
		m := c.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

func errorOf(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["error"].(string)
	return s
}

func webhook(name, url string, extra map[string]any) map[string]any {
	m := map[string]any{"name": name, "type": "webhook", "url": url}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestChannelTypesListsPluginSchemas(t *testing.T) {
	f := newChanFixture(t, false)
	if code, v := f.call(t, "", http.MethodGet, "/api/0/notification_channel_types", nil); code != http.StatusUnauthorized {
		t.Errorf("unauthenticated: %d %v", code, v)
	}
	code, v := f.call(t, "bob", http.MethodGet, "/api/0/notification_channel_types", nil)
	if code != http.StatusOK {
		t.Fatalf("%d %v", code, v)
	}
	types := v.(map[string]any)
	po := types["pushover"].(map[string]any)
	if po["label"] != "Pushover" || types["webhook"].(map[string]any)["label"] != "Webhook" {
		t.Fatalf("types = %v", types)
	}
	first := po["fields"].([]any)[0].(map[string]any)
	for _, k := range []string{"key", "label", "type", "required", "default", "help"} {
		if _, ok := first[k]; !ok {
			t.Errorf("field lacks %q: %v", k, first)
		}
	}
	if first["key"] != "token" || first["type"] != "secret" || first["required"] != true {
		t.Errorf("first pushover field = %v", first)
	}
}

func TestChannelListVisibilityAndMasking(t *testing.T) {
	f := newChanFixture(t, false)
	for _, c := range []struct {
		user string
		body map[string]any
	}{
		{"alice", webhook("alice_private", f.rcv.URL, map[string]any{"private": true, "secret": "alice-hmac"})},
		{"bob", webhook("bob_public", f.rcv.URL, nil)},
	} {
		if code, v := f.call(t, c.user, http.MethodPost, "/api/0/notification_channels", c.body); code != http.StatusOK {
			t.Fatalf("create %v: %d %v", c.body["name"], code, v)
		}
	}
	cases := []struct {
		user string
		want []string
	}{
		{"alice", []string{"alice_cfg", "alice_private", "bob_public", "ops_webhook"}},
		{"bob", []string{"bob_public", "ops_webhook"}},
		{"root", []string{"alice_cfg", "alice_private", "bob_public", "ops_webhook"}},
	}
	for _, c := range cases {
		got := f.list(t, c.user)
		if len(got) != len(c.want) {
			t.Errorf("%s sees %d channels, want %v", c.user, len(got), c.want)
		}
		for _, name := range c.want {
			if got[name] == nil {
				t.Errorf("%s does not see %s", c.user, name)
			}
		}
	}

	all := f.list(t, "root")
	ops := all["ops_webhook"]
	if ops["owner"] != nil || ops["type"] != "webhook" || ops["type_label"] != "Webhook" || ops["private"] != false ||
		ops["min_level"] != "WARNING" || ops["source"] != "config" || ops["type_missing"] != false {
		t.Errorf("ops_webhook = %v", ops)
	}
	for _, name := range []string{"ops_webhook", "alice_private"} {
		for _, fv := range all[name]["fields"].([]any) {
			fm := fv.(map[string]any)
			if len(fm) != 4 {
				t.Errorf("%s field has keys %v, want key, label, value, sensitive", name, fm)
			}
			switch fm["key"] {
			case "secret":
				if fm["value"] != "•••" || fm["sensitive"] != true {
					t.Errorf("%s secret shown as %v", name, fm)
				}
			case "url":
				if fm["value"] != f.rcv.URL || fm["sensitive"] != false {
					t.Errorf("%s url = %v", name, fm)
				}
			}
		}
	}
	ap := all["alice_private"]
	if ap["owner"] != "alice" || ap["private"] != true || ap["source"] != "user" {
		t.Errorf("alice_private = %v", ap)
	}
	code, v := f.call(t, "root", http.MethodGet, "/api/0/notification_channels", nil)
	if code != http.StatusOK || strings.Contains(toJSON(v), cfgSecret) || strings.Contains(toJSON(v), "alice-hmac") {
		t.Errorf("list leaks a secret: %v", v)
	}
}

func TestChannelListShowsCoveredHosts(t *testing.T) {
	f := newChanFixture(t, false)
	// A host that reported without being configured counts too.
	if _, err := f.st.EnsureHost(context.Background(), "dyn01", true); err != nil {
		t.Fatal(err)
	}
	// alice may see web02 only; her channel without hosts covers it.
	if code, v := f.call(t, "alice", http.MethodPost, "/api/0/notification_channels", webhook("alice_all", f.rcv.URL, map[string]any{"hosts": []string{}})); code != http.StatusOK {
		t.Fatalf("create: %d %v", code, v)
	}
	covered := func(m map[string]any) (int, string) {
		n, ok := m["covered_count"].(float64)
		hosts, ok2 := m["covered_hosts"].([]any)
		if !ok || !ok2 {
			t.Fatalf("covered_count / covered_hosts missing or mistyped: %v", m)
		}
		var names []string
		for _, h := range hosts {
			names = append(names, h.(string))
		}
		return int(n), strings.Join(names, ",")
	}
	for _, c := range []struct {
		user, channel string
		count         int
		hosts         string
	}{
		{"root", "ops_webhook", 3, "dyn01,web01,web02"},
		{"alice", "ops_webhook", 1, "web02"}, // only the hosts she may see are named and counted
		{"bob", "ops_webhook", 0, ""},
		{"root", "alice_cfg", 1, "web02"}, // a config channel with an owner, no hosts
		{"root", "alice_all", 1, "web02"},
		{"alice", "alice_all", 1, "web02"},
	} {
		n, hosts := covered(f.list(t, c.user)[c.channel])
		if n != c.count || hosts != c.hosts {
			t.Errorf("%s's list: %s covers %d [%s], want %d [%s]", c.user, c.channel, n, hosts, c.count, c.hosts)
		}
	}
	// The reference fields are unchanged.
	ops := f.list(t, "root")["ops_webhook"]
	for _, k := range []string{"name", "type", "type_label", "owner", "private", "min_level", "hosts", "fields", "source", "type_missing"} {
		if _, ok := ops[k]; !ok {
			t.Errorf("entry lacks %q: %v", k, ops)
		}
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestCreateChannelStatusCodes(t *testing.T) {
	f := newChanFixture(t, false)
	url := f.rcv.URL
	cases := []struct {
		name   string
		user   string
		body   any
		status int
		errHas string
	}{
		{"created", "alice", webhook("mine", url, map[string]any{"min_level": "critical", "hosts": []string{"web*"}}), 200, ""},
		{"pushover with every field", "alice", map[string]any{"name": "po", "type": "pushover", "token": "t0k", "user": "u5r", "priority": 1, "private": true}, 200, ""},
		{"unauthenticated", "", webhook("x", url, nil), 401, "Authentication required"},
		{"duplicate user channel", "bob", webhook("mine", url, nil), 409, "Channel 'mine' already exists"},
		{"duplicate config channel", "root", webhook("ops_webhook", url, nil), 409, "Channel 'ops_webhook' already exists"},
		{"missing required field", "alice", map[string]any{"name": "po2", "type": "pushover", "token": "t"}, 400, "Field 'user' is required"},
		{"unknown type", "alice", map[string]any{"name": "x", "type": "sms"}, 400, "Unknown channel type 'sms' (installed: pushover, webhook)"},
		{"missing type", "alice", map[string]any{"name": "x"}, 400, "Field 'type' is required"},
		{"missing name", "alice", map[string]any{"type": "webhook", "url": url}, 400, "Field 'name' is required"},
		{"invalid name", "alice", webhook("no spaces", url, nil), 400, "Invalid channel name 'no spaces'"},
		{"invalid level", "alice", webhook("x", url, map[string]any{"min_level": "LOUD"}), 400, "Invalid min_level 'LOUD'"},
		{"plugin validation", "alice", webhook("x", "ftp://example.com/", nil), 400, "Invalid channel settings: url:"},
		{"unknown field", "alice", webhook("x", url, map[string]any{"colour": "red"}), 400, "Unknown field 'colour' for channel type 'webhook'"},
		{"choice field not an option", "alice", map[string]any{"name": "x", "type": "pushover", "token": "t", "user": "u", "priority": "high"}, 400, "Field 'priority' must be one of the listed options"},
		{"mask instead of a secret", "alice", map[string]any{"name": "x", "type": "pushover", "token": "•••", "user": "u"}, 400, "send the secret itself"},
		{"bad hosts glob", "alice", webhook("x", url, map[string]any{"hosts": []string{""}}), 400, "Field 'hosts'"},
		{"private not a bool", "alice", webhook("x", url, map[string]any{"private": "yes"}), 400, "Field 'private' must be true or false"},
		{"not an object", "alice", `["x"]`, 400, "Request body must be a JSON object"},
		{"not JSON", "alice", `{"name":`, 400, "Request body must be a JSON object"},
		{"body too large", "alice", `{"name": "x", "type": "webhook", "url": "` + strings.Repeat("a", api.MaxChannelBody) + `"}`, 413, "larger than 64 KiB"},
		{"value too long", "alice", webhook("x", url+"/"+strings.Repeat("a", 5000), nil), 400, "longer than 4096 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, v := f.call(t, c.user, http.MethodPost, "/api/0/notification_channels", c.body)
			if code != c.status || !strings.Contains(errorOf(v), c.errHas) {
				t.Fatalf("%d %v, want %d with error containing %q", code, v, c.status, c.errHas)
			}
			if c.status == 200 {
				m := v.(map[string]any)
				if m["ok"] != true || m["name"] != c.body.(map[string]any)["name"] || len(m) != 2 {
					t.Errorf("answer = %v, want {ok: true, name: ...}", m)
				}
			}
		})
	}
	// Errors about one field name it, machine-readably.
	for body, field := range map[string]string{
		toJSON(map[string]any{"name": "po3", "type": "pushover", "token": "t"}):                             "user",
		toJSON(webhook("x", "ftp://example.com/", nil)):                                                     "url",
		toJSON(webhook("x", url, map[string]any{"min_level": "LOUD"})):                                      "min_level",
		toJSON(map[string]any{"name": "x", "type": "pushover", "token": "t", "user": "u", "priority": "9"}): "priority",
	} {
		code, v := f.call(t, "alice", http.MethodPost, "/api/0/notification_channels", body)
		if m, _ := v.(map[string]any); code != 400 || m["field"] != field {
			t.Errorf("POST %s = %d %v, want 400 naming field %q", body, code, v, field)
		}
	}
	// A choice field lists its options.
	_, types := f.call(t, "alice", http.MethodGet, "/api/0/notification_channel_types", nil)
	var prio map[string]any
	for _, fl := range types.(map[string]any)["pushover"].(map[string]any)["fields"].([]any) {
		if fm := fl.(map[string]any); fm["key"] == "priority" {
			prio = fm
		}
	}
	if opts, _ := prio["options"].([]any); prio["type"] != "choice" || len(opts) != 5 ||
		opts[4].(map[string]any)["value"] != "2" || !strings.HasPrefix(opts[4].(map[string]any)["label"].(string), "Emergency") {
		t.Errorf("pushover priority field %v", prio)
	}
	mine := f.list(t, "alice")["mine"]
	if mine["owner"] != "alice" || mine["min_level"] != "CRITICAL" || mine["private"] != false {
		t.Errorf("created channel = %v", mine)
	}
}

// signedWith reports whether a webhook request was signed with secret.
func signedWith(r pht.Request, secret string) bool {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(r.Body)
	return r.Header.Get("X-HBD-Signature") == "sha256="+hex.EncodeToString(m.Sum(nil))
}

func TestUpdateChannelKeepsMaskedSecretsAndChecksOwnership(t *testing.T) {
	f := newChanFixture(t, false)
	const path = "/api/0/notification_channels/hook"
	if code, v := f.call(t, "alice", http.MethodPost, "/api/0/notification_channels",
		webhook("hook", f.rcv.URL, map[string]any{"secret": "hmac-one"})); code != 200 {
		t.Fatalf("%d %v", code, v)
	}
	if code, v := f.call(t, "alice", http.MethodPost, "/api/0/notification_channels",
		webhook("hidden", f.rcv.URL, map[string]any{"private": true})); code != 200 {
		t.Fatalf("%d %v", code, v)
	}

	cases := []struct {
		name   string
		user   string
		path   string
		body   any
		status int
		errHas string
	}{
		{"not the owner", "bob", path, map[string]any{"min_level": "OK"}, 403, "Only the owner of channel 'hook' or an admin may change it"},
		{"another's private channel", "bob", "/api/0/notification_channels/hidden", map[string]any{"min_level": "OK"}, 404, "Channel 'hidden' not found"},
		{"unknown channel", "alice", "/api/0/notification_channels/nope", map[string]any{"min_level": "OK"}, 404, "Channel 'nope' not found"},
		{"config channel", "root", "/api/0/notification_channels/ops_webhook", map[string]any{"min_level": "OK"}, 403, "defined in the config file"},
		{"config channel of the caller", "alice", "/api/0/notification_channels/alice_cfg", map[string]any{"min_level": "OK"}, 403, "defined in the config file"},
		{"unauthenticated", "", path, map[string]any{"min_level": "OK"}, 401, ""},
		{"invalid", "alice", path, map[string]any{"url": "not a url"}, 400, "url"},
		{"type change", "alice", path, map[string]any{"type": "pushover"}, 400, "cannot be changed"},
		{"owner keeps the secret", "alice", path, map[string]any{"name": "ignored", "min_level": "critical", "secret": "•••", "private": true}, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, v := f.call(t, c.user, http.MethodPut, c.path, c.body)
			if code != c.status || !strings.Contains(errorOf(v), c.errHas) {
				t.Fatalf("%d %v, want %d with error containing %q", code, v, c.status, c.errHas)
			}
			if c.status == 200 && toJSON(v) != `{"ok":true}` {
				t.Errorf("answer = %v", v)
			}
		})
	}
	hook := f.list(t, "alice")["hook"]
	if hook["min_level"] != "CRITICAL" || hook["private"] != true || hook["owner"] != "alice" {
		t.Errorf("after update = %v", hook)
	}
	if f.list(t, "root")["ignored"] != nil {
		t.Error("PUT renamed the channel from the body")
	}
	// The stored secret survived the "•••": the test notification is
	// signed with it.
	if code, v := f.call(t, "alice", http.MethodPost, path+"/test", nil); code != 200 {
		t.Fatalf("test: %d %v", code, v)
	}
	reqs := f.rcv.Wait(t, 1, 5*time.Second)
	if !signedWith(reqs[0], "hmac-one") {
		t.Errorf("secret not preserved: signature %q", reqs[0].Header.Get("X-HBD-Signature"))
	}
	// An admin may change anyone's channel, and a new secret replaces it.
	if code, v := f.call(t, "root", http.MethodPut, path, map[string]any{"secret": "hmac-two"}); code != 200 {
		t.Fatalf("%d %v", code, v)
	}
	f.call(t, "root", http.MethodPost, path+"/test", nil)
	reqs = f.rcv.Wait(t, 2, 5*time.Second)
	if !signedWith(reqs[1], "hmac-two") {
		t.Error("new secret not used")
	}
	// Sending back the GET answer's fields list works the same way.
	all := f.list(t, "root")["hook"]
	all["min_level"] = "WARNING"
	if code, v := f.call(t, "alice", http.MethodPut, path, all); code != 200 {
		t.Fatalf("PUT of the GET answer: %d %v", code, v)
	}
	f.call(t, "alice", http.MethodPost, path+"/test", nil)
	reqs = f.rcv.Wait(t, 3, 5*time.Second)
	if !signedWith(reqs[2], "hmac-two") {
		t.Error("secret not preserved through a GET-shaped PUT")
	}
	// An empty value clears an optional field.
	f.call(t, "alice", http.MethodPut, path, map[string]any{"secret": ""})
	f.call(t, "alice", http.MethodPost, path+"/test", nil)
	reqs = f.rcv.Wait(t, 4, 5*time.Second)
	if reqs[3].Header.Get("X-HBD-Signature") != "" {
		t.Error("cleared secret still signs")
	}
}

func TestDeleteChannelRules(t *testing.T) {
	f := newChanFixture(t, false)
	for _, name := range []string{"a", "b"} {
		if code, v := f.call(t, "alice", http.MethodPost, "/api/0/notification_channels", webhook(name, f.rcv.URL, nil)); code != 200 {
			t.Fatalf("%d %v", code, v)
		}
	}
	f.call(t, "alice", http.MethodPost, "/api/0/notification_channels", webhook("p", f.rcv.URL, map[string]any{"private": true}))
	cases := []struct {
		name, user, channel string
		status              int
		errHas              string
	}{
		{"not the owner", "bob", "a", 403, "Only the owner of channel 'a' or an admin may delete it"},
		{"invisible", "bob", "p", 404, "Channel 'p' not found"},
		{"unknown", "alice", "zzz", 404, "Channel 'zzz' not found"},
		{"config channel", "root", "ops_webhook", 403, "defined in the config file and cannot be deleted"},
		{"owner", "alice", "a", 200, ""},
		{"again", "alice", "a", 404, "Channel 'a' not found"},
		{"admin", "root", "b", 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, v := f.call(t, c.user, http.MethodDelete, "/api/0/notification_channels/"+c.channel, nil)
			if code != c.status || !strings.Contains(errorOf(v), c.errHas) {
				t.Fatalf("%d %v, want %d with error containing %q", code, v, c.status, c.errHas)
			}
		})
	}
	got := f.list(t, "root")
	if got["a"] != nil || got["b"] != nil || got["p"] == nil {
		t.Errorf("after deletes: %v", got)
	}
}

func TestTestChannelEndpoint(t *testing.T) {
	f := newChanFixture(t, false)
	if code, v := f.call(t, "root", http.MethodPost, "/api/0/notification_channels/ops_webhook/test", nil); code != 200 || toJSON(v) != `{"ok":true}` {
		t.Fatalf("%d %v", code, v)
	}
	reqs := f.rcv.Wait(t, 1, 5*time.Second)
	var p map[string]any
	json.Unmarshal(reqs[0].Body, &p)
	if p["test"] != true || p["channel"] != "ops_webhook" || !signedWith(reqs[0], cfgSecret) {
		t.Errorf("test payload = %v", p)
	}
	if code, v := f.call(t, "bob", http.MethodPost, "/api/0/notification_channels/ops_webhook/test", nil); code != 403 {
		t.Errorf("non-owner test: %d %v", code, v)
	}
	if code, v := f.call(t, "bob", http.MethodPost, "/api/0/notification_channels/alice_cfg/test", nil); code != 404 {
		t.Errorf("invisible channel test: %d %v", code, v)
	}
	if code, v := f.call(t, "alice", http.MethodPost, "/api/0/notification_channels/alice_cfg/test", nil); code != 200 {
		t.Errorf("owner of a config channel: %d %v", code, v)
	}
	f.rcv.Respond(http.StatusInternalServerError, "boom "+cfgSecret)
	code, v := f.call(t, "root", http.MethodPost, "/api/0/notification_channels/ops_webhook/test", nil)
	if code != http.StatusBadGateway || !strings.Contains(errorOf(v), "Test notification through 'ops_webhook' failed: HTTP 500") {
		t.Errorf("failing test: %d %v", code, v)
	}
	if strings.Contains(toJSON(v), cfgSecret) {
		t.Errorf("502 answer leaks the secret: %v", v)
	}
}

func TestOpenModeCallerIsAdmin(t *testing.T) {
	f := newChanFixture(t, true)
	if code, v := f.call(t, "", http.MethodPost, "/api/0/notification_channels", webhook("anon", f.rcv.URL, map[string]any{"private": true})); code != 200 {
		t.Fatalf("%d %v", code, v)
	}
	got := f.list(t, "")
	if got["anon"] == nil || got["anon"]["owner"] != nil || got["alice_cfg"] == nil {
		t.Fatalf("open mode list = %v", got)
	}
	if code, v := f.call(t, "", http.MethodPut, "/api/0/notification_channels/anon", map[string]any{"min_level": "OK"}); code != 200 {
		t.Errorf("%d %v", code, v)
	}
	if code, v := f.call(t, "", http.MethodDelete, "/api/0/notification_channels/anon", nil); code != 200 {
		t.Errorf("%d %v", code, v)
	}
}
