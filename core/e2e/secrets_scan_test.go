package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/bcrypt"

	"github.com/hbdmon/hbd/core/heartbeat"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/testutil"
)

// The secrets of the scan. Each holds characters that URL and JSON
// encodings change ('/', '+', '=', '&'), so every encoded form differs
// from the raw one.
var scanSecrets = map[string]string{
	"watchhosts.web01.key":          "hk/Web01+HostKey=Secret&Zz-0123456789abcdef",
	"enroll_key":                    "ek/Enroll+Key=Secret&Yy-0123456789abcdef",
	"metrics_token":                 "mt/Metrics+Token=Secret&Xx-0123456789abcd",
	"users.root password":           "rootPw/Secret+1=&a",
	"users.alice password":          "alicePw/Secret+2=&b",
	"ops_po.token":                  "poTok/Secret+3=&c-abcdefghij",
	"ops_po.user":                   "poUsr/Secret+4=&d-abcdefghij",
	"ops_hook.secret":               "whSec/Secret+5=&e-abcdefghij",
	"ops_mail.password":             "smtpPw/Secret+6=&f-abcdefg",
	"alice_po.token (user, API)":    "alTok/Secret+7=&g-abcdefghij",
	"alice_po.user (user, API)":     "alUsr/Secret+8=&h-abcdefghij",
	"alice_hook.secret (user, API)": "alSec/Secret+9=&i-abcdefghij",
}

// secretForms returns every form a secret must not appear in: raw, inside
// JSON strings, URL-encoded (query/form and path encoding, escapes in
// either case) and base64 (std and URL alphabets, padded and raw).
func secretForms(s string) map[string]string {
	lower := func(e string) string {
		return regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(e, strings.ToLower)
	}
	jsonForm := func(html bool) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		enc.Encode(s)
		q := strings.TrimSpace(b.String())
		return q[1 : len(q)-1]
	}
	return map[string]string{
		"raw":                                 s,
		"JSON":                                jsonForm(true),
		"JSON (no HTML escape)":               jsonForm(false),
		"URL query/form":                      url.QueryEscape(s),
		"URL query/form (lower-case escapes)": lower(url.QueryEscape(s)),
		"URL path":                            url.PathEscape(s),
		"URL path (lower-case escapes)":       lower(url.PathEscape(s)),
		"base64 std":                          base64.StdEncoding.EncodeToString([]byte(s)),
		"base64 URL":                          base64.URLEncoding.EncodeToString([]byte(s)),
		"base64 raw std":                      base64.RawStdEncoding.EncodeToString([]byte(s)),
		"base64 raw URL":                      base64.RawURLEncoding.EncodeToString([]byte(s)),
	}
}

var (
	jsonEscapeRE = regexp.MustCompile(`\\u[0-9a-fA-F]{4}|\\/`)
	base64RE     = regexp.MustCompile(`[A-Za-z0-9+/_-]{8,}={0,2}`)
	percentRE    = regexp.MustCompile(`%[0-9A-Fa-f]{2}`)
)

// views returns text, then text with JSON string escapes undone, then that
// with percent escapes undone ('+' kept, then '+' as a space).
func views(text string) []string {
	unjson := jsonEscapeRE.ReplaceAllStringFunc(text, func(e string) string {
		if e == `\/` {
			return "/"
		}
		var r rune
		fmt.Sscanf(e[2:], "%04x", &r)
		return string(r)
	})
	unpct := func(s string) string {
		return percentRE.ReplaceAllStringFunc(s, func(e string) string {
			var b byte
			fmt.Sscanf(e[1:], "%02x", &b)
			return string([]byte{b})
		})
	}
	return []string{text, unjson, unpct(unjson), unpct(strings.ReplaceAll(unjson, "+", " "))}
}

// embedded returns the secrets found inside base64 tokens of text (an SMTP
// AUTH PLAIN blob holds the password after NUL bytes, so its own base64
// form is not a substring).
func embedded(text string, secrets map[string]string) []string {
	var out []string
	for _, tok := range base64RE.FindAllString(text, -1) {
		tok = strings.TrimRight(tok, "=")
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			b, err := enc.DecodeString(tok)
			if err != nil {
				continue
			}
			for name, secret := range secrets {
				if bytes.Contains(b, []byte(secret)) {
					out = append(out, name+" in base64 token "+tok)
				}
			}
		}
	}
	return out
}

// collected holds every text the scan looks at, by source.
type collected struct {
	mu    sync.Mutex
	texts []scanText
}

type scanText struct{ source, text string }

func (c *collected) add(source, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.texts = append(c.texts, scanText{source, text})
}

func (c *collected) all() []scanText {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]scanText(nil), c.texts...)
}

// scanClient calls the API as one user (or anonymously) and collects every
// answer.
type scanClient struct {
	t     *testing.T
	base  string
	token string
	seen  *collected
	name  string
}

func (c *scanClient) do(method, path string, body any, hdr ...string) (int, string) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c.seen.add(fmt.Sprintf("API %s %s as %s (%d)", method, path, c.name, resp.StatusCode), string(b))
	return resp.StatusCode, string(b)
}

func (c *scanClient) must(method, path string, body any) string {
	c.t.Helper()
	code, b := c.do(method, path, body)
	if code != http.StatusOK {
		c.t.Fatalf("%s %s as %s: %d %s", method, path, c.name, code, b)
	}
	return b
}

func (c *scanClient) login(user, password string) *scanClient {
	c.t.Helper()
	anon := &scanClient{t: c.t, base: c.base, seen: c.seen, name: "anonymous"}
	b := anon.must("POST", "/api/0/auth/login", map[string]string{"username": user, "password": password})
	var v struct{ Token string }
	if err := json.Unmarshal([]byte(b), &v); err != nil || v.Token == "" {
		c.t.Fatalf("login %s: %s", user, b)
	}
	return &scanClient{t: c.t, base: c.base, token: v.Token, seen: c.seen, name: user}
}

// journal returns the journal lines the client may read.
func (c *scanClient) journal(query string) []string {
	c.t.Helper()
	var msgs []struct{ Msg string }
	if err := json.Unmarshal([]byte(c.must("GET", "/api/0/messages?limit=1000"+query, nil)), &msgs); err != nil {
		c.t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, m.Msg)
	}
	return out
}

// echoHTTP is a receiver whose answer to every request is what answer
// makes of it; n counts the requests to the same path, from 1.
func echoHTTP(t *testing.T, answer func(n int, body string, h http.Header) (int, string)) (string, func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	perPath := map[string]int{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		n++
		perPath[r.URL.Path]++
		i := perPath[r.URL.Path]
		mu.Unlock()
		code, body := answer(i, string(b), r.Header)
		w.WriteHeader(code)
		io.WriteString(w, body)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// echoSMTPServer answers AUTH with a 535 reply quoting the client's
// command, blob included, and counts the AUTH commands.
func echoSMTPServer(t *testing.T) (addr string, auths func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				r := bufio.NewReader(c)
				say := func(s string) { io.WriteString(c, s+"\r\n") }
				say("220 echo.test ESMTP")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimRight(line, "\r\n")
					switch verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0]); verb {
					case "EHLO", "HELO":
						say("250-echo.test")
						say("250 AUTH PLAIN")
					case "AUTH":
						mu.Lock()
						n++
						mu.Unlock()
						say("535 5.7.8 rejected: " + line)
					case "QUIT":
						say("221 bye")
						return
					default:
						say("502 5.5.2 " + line)
					}
				}
			}()
		}
	}()
	return l.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// readFeed collects every message of the live feed as user until ctx ends.
func readFeed(ctx context.Context, t *testing.T, c *scanClient, wg *sync.WaitGroup) {
	t.Helper()
	hdr := http.Header{"Authorization": {"Bearer " + c.token}}
	conn, resp, err := websocket.Dial(ctx, strings.Replace(c.base, "http://", "ws://", 1)+"/hbd", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("live feed as %s: %v (%v)", c.name, err, resp)
	}
	conn.SetReadLimit(1 << 20)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer conn.CloseNow()
		for {
			_, b, err := conn.Read(ctx)
			if err != nil {
				return
			}
			c.seen.add("WebSocket as "+c.name, string(b))
		}
	}()
}

// TestNoSecretLeavesTheDaemon configures distinctive secrets of every kind,
// exercises the daemon through its interfaces with receivers that echo
// what they get back in their answers (some as errors), and checks that no
// API answer, journal line, log line or live feed message holds any secret
// in any form.
func TestNoSecretLeavesTheDaemon(t *testing.T) {
	sec := scanSecrets
	seen := &collected{}
	plugins := pht.Dir(t, pht.Webhook, pht.Pushover, pht.Email)

	// The webhook receiver echoes the request (headers and body) in an
	// error answer first, then accepts (per channel: per path).
	hookURL, hookHits := echoHTTP(t, func(n int, body string, h http.Header) (int, string) {
		hb, _ := json.Marshal(h)
		if n == 1 {
			return http.StatusInternalServerError, "echo: " + string(hb) + " " + body
		}
		return http.StatusOK, string(hb) + " " + body
	})
	// The Pushover stand-in echoes the credentials it was sent, as posted,
	// then the whole form, in an error answer.
	poURL, poHits := echoHTTP(t, func(_ int, body string, _ http.Header) (int, string) {
		v, _ := url.ParseQuery(body)
		creds := url.Values{"token": {v.Get("token")}, "user": {v.Get("user")}}.Encode()
		return http.StatusBadRequest, "rejected " + creds + " " + body
	})
	mailAddr, mailAuths := echoSMTPServer(t)
	mhost, mport, _ := net.SplitHostPort(mailAddr)

	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	bin := testutil.Build(t, "./core/cmd/hbd")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "data"), 0o700)
	port := testutil.FreePort(t)
	cfg := fmt.Sprintf(`hbd_host: 127.0.0.1
hbd_port: %d
ws_port: %d
hb_port: %d
data_dir: ./data
plugins_dir: %s
log_level: debug
enroll_key: %q
metrics_token: %q
# alice's channels point at local receivers.
channel_destinations: {allow: [127.0.0.0/8]}
thresholds:
  cpu_monitor.cpu_percent: {warning: 80, critical: 90}
users:
  root: {password_hash: %q, admin: true}
  alice: {password_hash: %q}
watchhosts:
  web01:
    key: %q
    monitors: [alice]
notification_channels:
  ops_hook: {type: webhook, url: "%s/hook", secret: %q, hosts: ["*"]}
  ops_po: {type: pushover, token: %q, user: %q, api_url: "%s/1/messages.json", hosts: ["*"]}
  ops_mail: {type: email, host: %q, port: %s, username: mailer, password: %q, from: "hbd@example.com", to: "ops@example.com", tls: none, hosts: ["*"]}
`, port, testutil.FreePort(t), testutil.FreePort(t), plugins,
		sec["enroll_key"], sec["metrics_token"], hash(sec["users.root password"]), hash(sec["users.alice password"]),
		sec["watchhosts.web01.key"], hookURL, sec["ops_hook.secret"], sec["ops_po.token"], sec["ops_po.user"], poURL,
		mhost, mport, sec["ops_mail.password"])
	if err := os.WriteFile(filepath.Join(dir, "hbd.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := testutil.StartDaemon(t, bin, dir, port)
	anon := &scanClient{t: t, base: d.BaseURL, seen: seen, name: "anonymous"}
	root := anon.login("root", sec["users.root password"])
	alice := anon.login("alice", sec["users.alice password"])
	anon.do("POST", "/api/0/auth/login", map[string]string{"username": "alice", "password": sec["users.root password"]})

	ctx, cancel := context.WithCancel(context.Background())
	var feeds sync.WaitGroup
	readFeed(ctx, t, root, &feeds)
	readFeed(ctx, t, alice, &feeds)
	defer func() { cancel(); feeds.Wait() }()

	// alice, a monitor of web01 but no admin, makes her own channels with
	// secrets through the API and tests one.
	alice.must("POST", "/api/0/notification_channels", map[string]any{"name": "alice_po", "type": "pushover",
		"token": sec["alice_po.token (user, API)"], "user": sec["alice_po.user (user, API)"], "api_url": poURL + "/1/messages.json", "hosts": []string{"web01"}})
	alice.must("POST", "/api/0/notification_channels", map[string]any{"name": "alice_hook", "type": "webhook",
		"url": hookURL + "/alice", "secret": sec["alice_hook.secret (user, API)"], "hosts": []string{"web01"}})
	if code, b := alice.do("POST", "/api/0/notification_channels/alice_po/test", nil); code != http.StatusBadGateway ||
		!strings.Contains(b, "HTTP 400 from the receiver") {
		t.Fatalf("alice's test: %d %s, want 502 with the generic reason", code, b)
	}
	// root tests the config channels: the answers carry details for admins.
	for _, ch := range []string{"ops_po", "ops_mail"} {
		if code, b := root.do("POST", "/api/0/notification_channels/"+ch+"/test", nil); code != http.StatusBadGateway {
			t.Fatalf("root's test of %s: %d %s, want 502", ch, code, b)
		}
	}

	// Samples: a problem on web01 (signed with its key), a dynamic host
	// enrolled with its key derived from enroll_key, and a batch with a wrong signature.
	sample := testutil.Sample("cpu_monitor", float64(time.Now().UnixNano())/1e9, map[string]any{"cpu_percent": 97.0})
	for _, in := range []struct {
		host, key string
		want      int
	}{{"web01", sec["watchhosts.web01.key"], 200}, {"dyn01", string(heartbeat.DeriveHostKey([]byte(sec["enroll_key"]), "dyn01")), 200},
		{"web01", sec["enroll_key"], 401}} {
		resp, err := http.DefaultClient.Do(testutil.IngestRequest(t, d.BaseURL, in.host, []byte(in.key), sample))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen.add("ingest "+in.host, string(b))
		if resp.StatusCode != in.want {
			t.Fatalf("ingest %s: %d %s, want %d", in.host, resp.StatusCode, b, in.want)
		}
	}

	// Every channel had its say: wait for the outcomes in the journal.
	for _, want := range []string{
		"notify ops_hook web01 cpu_monitor.cpu_percent CRITICAL: delivered (attempt 2)",
		"notify ops_po web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 1)",
		"notify ops_mail web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 1)",
		"notify alice_po web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 1)",
		"notify alice_hook web01 cpu_monitor.cpu_percent CRITICAL: delivered",
		"dyn01 registered (dynamic)",
	} {
		testutil.Eventually(t, "journal line "+want, 30*time.Second, func() bool {
			for _, l := range root.journal("") {
				if strings.HasPrefix(l, want) {
					return true
				}
			}
			return false
		})
	}
	if hookHits() < 3 || poHits() < 3 || mailAuths() < 2 {
		t.Fatalf("receivers: webhook %d, pushover %d, SMTP AUTH %d", hookHits(), poHits(), mailAuths())
	}

	// Read everything there is to read.
	for _, c := range []*scanClient{root, alice} {
		for _, p := range []string{"/api/0/hosts", "/api/0/alerts", "/api/0/alerts/history", "/api/0/notification_channels",
			"/api/0/notification_channel_types", "/api/0/users/me", "/api/0/silences", "/api/0/hosts/web01/plugins",
			"/api/0/hosts/web01/alerts", "/api/0/hosts/web01/access"} {
			c.do("GET", p, nil)
		}
		c.journal("")
		c.journal("&host=web01")
	}
	root.do("GET", "/api/0/users", nil)
	root.do("GET", "/api/0/hosts/dyn01/plugins", nil)
	if code, _ := anon.do("GET", "/metrics", nil, "Authorization", "Bearer "+sec["metrics_token"]); code != http.StatusOK {
		t.Fatalf("/metrics with the token: %d", code)
	}
	root.must("POST", "/api/0/auth/logout", nil)

	// Let the feeds catch up with the last journal lines, then stop.
	testutil.Eventually(t, "the feed's journal messages", 10*time.Second, func() bool {
		for _, s := range seen.all() {
			if s.source == "WebSocket as alice" && strings.Contains(s.text, "alice_po") && strings.Contains(s.text, "failed") {
				return true
			}
		}
		return false
	})
	cancel()
	feeds.Wait()
	seen.add("daemon log (stderr)", d.Stderr())

	// The scan. Findings are reported once per source, secret and form.
	sources := map[string]int{}
	findings := map[string]bool{}
	found := func(format string, a ...any) { findings[fmt.Sprintf(format, a...)] = true }
	for _, s := range seen.all() {
		sources[strings.SplitN(s.source, " ", 2)[0]]++
		for name, secret := range sec {
			for form, f := range secretForms(secret) {
				if i := strings.Index(s.text, f); i >= 0 {
					lo, hi := max(0, i-100), min(len(s.text), i+len(f)+40)
					found("%s holds %s in %s form: …%s…", s.source, name, form, s.text[lo:hi])
				}
			}
			// Any other escaping of a URL or JSON string.
			for _, v := range views(s.text)[1:] {
				if i := strings.Index(v, secret); i >= 0 {
					lo, hi := max(0, i-100), min(len(v), i+len(secret)+40)
					found("%s holds %s once unescaped: …%s…", s.source, name, v[lo:hi])
					break
				}
			}
		}
		for _, v := range views(s.text) {
			for _, e := range embedded(v, sec) {
				found("%s holds %s", s.source, e)
			}
		}
	}
	if len(findings) > 0 {
		list := make([]string, 0, len(findings))
		for f := range findings {
			list = append(list, f)
		}
		sort.Strings(list)
		if len(list) > 40 {
			list = append(list[:40], fmt.Sprintf("… and %d more", len(list)-40))
		}
		t.Errorf("secrets left the daemon:\n%s", strings.Join(list, "\n"))
	}
	keys := make([]string, 0, len(sources))
	for k, n := range sources {
		keys = append(keys, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(keys)
	t.Logf("scanned: %s", strings.Join(keys, ", "))
	// The scan looked at something: every kind of source is there.
	for _, k := range []string{"API", "WebSocket", "daemon", "ingest"} {
		if sources[k] == 0 {
			t.Errorf("nothing collected from %s", k)
		}
	}
}
