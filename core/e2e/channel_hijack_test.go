package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/testutil"
)

// hijackClient calls the API of a test daemon as one user.
type hijackClient struct {
	t     *testing.T
	base  string
	token string
}

func hijackLogin(t *testing.T, d *testutil.Daemon, user string) *hijackClient {
	t.Helper()
	c := &hijackClient{t: t, base: d.BaseURL}
	code, body := c.do("POST", "/api/0/auth/login", map[string]string{"username": user, "password": "password123"})
	var v struct{ Token string }
	json.Unmarshal([]byte(body), &v)
	if code != http.StatusOK || v.Token == "" {
		t.Fatalf("login %s: %d %s", user, code, body)
	}
	c.token = v.Token
	return c
}

func (c *hijackClient) do(method, path string, body any) (int, string) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *hijackClient) must(method, path string, body any) string {
	c.t.Helper()
	code, b := c.do(method, path, body)
	if code != http.StatusOK {
		c.t.Fatalf("%s %s: %d %s", method, path, code, b)
	}
	return b
}

// journal returns the journal lines the user may read (host "" for all).
func (c *hijackClient) journal(host string) string {
	c.t.Helper()
	path := "/api/0/messages?limit=500"
	if host != "" {
		path += "&host=" + host
	}
	var msgs []struct{ Host, Msg string }
	if err := json.Unmarshal([]byte(c.must("GET", path, nil)), &msgs); err != nil {
		c.t.Fatal(err)
	}
	var lines []string
	for _, m := range msgs {
		lines = append(lines, m.Host+"| "+m.Msg)
	}
	return strings.Join(lines, "\n")
}

// A channel name freed by a delete, or named by a notify list without a
// channel, is claimed by a user who cannot see the host: the alerts stay
// with the users who may see them, and the host's journal does not name
// the private channels of its other monitors.
func TestChannelNamesCannotBeHijacked(t *testing.T) {
	plugins := pht.Dir(t, pht.Webhook)
	team := pht.NewReceiver(t)
	bobs := pht.NewReceiver(t)
	evil := pht.NewReceiver(t)
	h, err := bcrypt.GenerateFromPassword([]byte("password123"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := daemon(t, plugins, fmt.Sprintf(`    monitors: [alice, bob]
    notify: [pager]
users:
  admin: {password_hash: %[1]q, admin: true}
  alice: {password_hash: %[1]q}
  bob: {password_hash: %[1]q}
  mallory: {password_hash: %[1]q}
channel_destinations: {allow: [127.0.0.0/8]} # local receivers, for users' channels
`, h))
	admin := hijackLogin(t, d, "admin")
	alice := hijackLogin(t, d, "alice")
	bob := hijackLogin(t, d, "bob")
	mallory := hijackLogin(t, d, "mallory")
	hook := func(name, url string, private bool, hosts ...string) map[string]any {
		return map[string]any{"name": name, "type": "webhook", "url": url, "private": private, "hosts": append([]string{}, hosts...)}
	}

	// bob, a monitor of web01, shares two channels; alice subscribes to both.
	bob.must("POST", "/api/0/notification_channels", hook("oncall", team.URL+"/oncall", false))
	bob.must("POST", "/api/0/notification_channels", hook("team", team.URL+"/team", false))
	bob.must("POST", "/api/0/notification_channels", hook("bob_pager", bobs.URL+"/bob", true, "web01"))
	alice.must("PUT", "/api/0/users/me", map[string]any{"channels": []string{"oncall", "team"}})
	// bob deletes oncall: alice's subscription to the name stays.
	bob.must("DELETE", "/api/0/notification_channels/oncall", nil)

	// mallory cannot see web01; she takes the freed name and the name in
	// web01's notify list, privately.
	if code, _ := mallory.do("GET", "/api/0/hosts/web01/alerts", nil); code != http.StatusForbidden {
		t.Fatalf("mallory can see web01: %d", code)
	}
	mallory.must("POST", "/api/0/notification_channels", hook("oncall", evil.URL+"/oncall", true))
	mallory.must("POST", "/api/0/notification_channels", hook("pager", evil.URL+"/pager", true))
	if me := alice.must("GET", "/api/0/users/me", nil); !strings.Contains(me, `"oncall"`) {
		t.Fatalf("alice's stale subscription is gone, the test proves nothing: %s", me)
	}

	ingest(t, d, 97)
	// The legitimate paths still work: alice's subscription to bob's public
	// channel, bob's private channel with its own hosts glob.
	reqs := team.Wait(t, 1, 15*time.Second)
	bobs.Wait(t, 1, 15*time.Second)
	time.Sleep(time.Second)
	if n := evil.Count(); n != 0 {
		t.Fatalf("mallory's webhook received %d notifications of web01; first: %s", n, evil.Requests()[0].Body)
	}
	if n := team.Count(); n != 1 || reqs[0].Path != "/team" {
		t.Errorf("team receiver got %d requests (first %s), want 1 through 'team'", n, reqs[0].Path)
	}

	// web01's journal, as alice reads it, does not name bob's private
	// channel; the daemon-wide journal (admins) does.
	const line = " web01 cpu_monitor.cpu_percent CRITICAL: delivered"
	var aj string
	pht.Eventually(t, "the delivery lines", 10*time.Second, func() bool {
		aj = alice.journal("web01")
		return strings.Contains(aj, "notify team"+line) && strings.Contains(aj, "notify private channel"+line)
	})
	if strings.Contains(aj, "bob_pager") {
		t.Errorf("alice reads bob's private channel name in web01's journal:\n%s", aj)
	}
	if all := admin.journal(""); !strings.Contains(all, "| notify bob_pager"+line) {
		t.Errorf("the admin's journal lacks the private channel's full line:\n%s", all)
	}
}
