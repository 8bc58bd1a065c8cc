// Package e2e_test runs the real hbd binary with the real notifier plugins
// and checks notifications end to end: sample in, alert, plugin process,
// receiving service.
package e2e_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/testutil"
)

// mailServer is a real SMTP server recording the messages it accepts.
type mailServer struct {
	addr string
	mu   sync.Mutex
	msgs []string
}

func startMail(t *testing.T) *mailServer {
	t.Helper()
	m := &mailServer{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{m: m}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	m.addr = l.Addr().String()
	return m
}

func (m *mailServer) messages() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.msgs...)
}

type mailSession struct {
	m  *mailServer
	to []string
}

func (s *mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.mu.Lock()
	s.m.msgs = append(s.m.msgs, "RCPT "+strings.Join(s.to, ",")+"\r\n"+string(b))
	s.m.mu.Unlock()
	return nil
}
func (s *mailSession) Reset()        { s.to = nil }
func (s *mailSession) Logout() error { return nil }

// daemon starts hbd in a fresh directory with the given plugins dir and
// extra config.
func daemon(t *testing.T, plugins, extra string) (*testutil.Daemon, int) {
	t.Helper()
	bin := testutil.Build(t, "./core/cmd/hbd")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	port := testutil.FreePort(t)
	cfg := fmt.Sprintf(`hbd_host: 127.0.0.1
hbd_port: %d
ws_port: %d
hb_port: %d
data_dir: ./data
plugins_dir: %s
thresholds:
  cpu_monitor.cpu_percent: {warning: 80, critical: 90}
watchhosts:
  web01:
    key: "%s"
%s`, port, testutil.FreePort(t), testutil.FreePort(t), plugins, testutil.Key, extra)
	if err := os.WriteFile(filepath.Join(dir, "hbd.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return testutil.StartDaemon(t, bin, dir, port), port
}

func ingest(t *testing.T, d *testutil.Daemon, cpu float64) {
	t.Helper()
	req := testutil.IngestRequest(t, d.BaseURL, "web01", []byte(testutil.Key),
		testutil.Sample("cpu_monitor", float64(time.Now().UnixNano())/1e9, map[string]any{"cpu_percent": cpu}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// settle waits a little and checks that no extra notification arrived.
func settle(t *testing.T, want int, hook, po *pht.Receiver, mail *mailServer) {
	t.Helper()
	time.Sleep(500 * time.Millisecond)
	if hook.Count() != want || po.Count() != want || len(mail.messages()) != want {
		t.Fatalf("notifications: webhook %d, pushover %d, mail %d; want %d each", hook.Count(), po.Count(), len(mail.messages()), want)
	}
}

func TestAlertReachesWebhookPushoverAndEmailOnceEach(t *testing.T) {
	plugins := pht.Dir(t, pht.Webhook, pht.Pushover, pht.Email)
	hook := pht.NewReceiver(t)
	po := pht.NewReceiver(t)
	po.Respond(http.StatusOK, `{"status":1,"request":"e2e"}`)
	mail := startMail(t)
	mhost, mport, _ := net.SplitHostPort(mail.addr)
	d, _ := daemon(t, plugins, fmt.Sprintf(`notification_channels:
  ops_webhook: {type: webhook, url: "%s/hook", secret: "hook-secret", hosts: ["web*"]}
  ops_pushover: {type: pushover, token: "app-token-123", user: "user-key-456", api_url: "%s/1/messages.json", hosts: ["*"]}
  ops_mail: {type: email, host: "%s", port: %s, from: "hbd@example.com", to: "ops@example.com", tls: none, hosts: ["*"]}
`, hook.URL, po.URL, mhost, mport))

	var types map[string]map[string]any
	getJSON(t, d.BaseURL+"/api/0/notification_channel_types", &types)
	for _, typ := range []string{"webhook", "pushover", "email"} {
		if types[typ] == nil {
			t.Fatalf("type %s missing from %v", typ, types)
		}
	}

	ingest(t, d, 97)
	hook.Wait(t, 1, 15*time.Second)
	po.Wait(t, 1, 15*time.Second)
	pht.Eventually(t, "the e-mail", 15*time.Second, func() bool { return len(mail.messages()) >= 1 })
	settle(t, 1, hook, po, mail)

	var payload map[string]any
	if err := json.Unmarshal(hook.Requests()[0].Body, &payload); err != nil {
		t.Fatal(err)
	}
	if payload["host"] != "web01" || payload["metric_path"] != "cpu_monitor.cpu_percent" || payload["level"] != "CRITICAL" ||
		payload["channel"] != "ops_webhook" || payload["value"] != 97.0 {
		t.Errorf("webhook payload = %v", payload)
	}
	if !strings.HasPrefix(hook.Requests()[0].Header.Get("X-HBD-Signature"), "sha256=") {
		t.Error("webhook request is not signed")
	}
	form, _ := url.ParseQuery(string(po.Requests()[0].Body))
	if form.Get("token") != "app-token-123" || form.Get("user") != "user-key-456" || form.Get("priority") != "2" ||
		!strings.Contains(form.Get("title")+form.Get("message"), "web01") {
		t.Errorf("pushover form = %v", form)
	}
	if po.Requests()[0].Path != "/1/messages.json" {
		t.Errorf("pushover path = %s", po.Requests()[0].Path)
	}
	msg := mail.messages()[0]
	if !strings.Contains(msg, "RCPT ops@example.com") || !strings.Contains(msg, "CRITICAL") || !strings.Contains(msg, "web01") {
		t.Errorf("mail = %s", msg)
	}

	ingest(t, d, 12)
	hook.Wait(t, 2, 15*time.Second)
	po.Wait(t, 2, 15*time.Second)
	pht.Eventually(t, "the recovery e-mail", 15*time.Second, func() bool { return len(mail.messages()) >= 2 })
	settle(t, 2, hook, po, mail)
	json.Unmarshal(hook.Requests()[1].Body, &payload)
	if payload["level"] != "OK" || payload["previous_level"] != "CRITICAL" {
		t.Errorf("recovery payload = %v", payload)
	}

	var msgs []map[string]any
	getJSON(t, d.BaseURL+"/api/0/messages?limit=200", &msgs)
	var journal []string
	for _, m := range msgs {
		journal = append(journal, fmt.Sprint(m["msg"]))
	}
	all := strings.Join(journal, "\n")
	for _, want := range []string{
		"notify ops_webhook web01 cpu_monitor.cpu_percent CRITICAL: delivered",
		"notify ops_pushover web01 cpu_monitor.cpu_percent CRITICAL: delivered",
		"notify ops_mail web01 cpu_monitor.cpu_percent CRITICAL: delivered",
		"notify ops_mail web01 cpu_monitor.cpu_percent OK: delivered",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("journal lacks %q:\n%s", want, all)
		}
	}
	for _, secret := range []string{"app-token-123", "user-key-456", "hook-secret"} {
		if strings.Contains(all, secret) || strings.Contains(d.Stderr(), secret) {
			t.Errorf("secret %q leaked into the journal or the log", secret)
		}
	}
}

// sha returns the hex SHA-256 of the binary built from pkg.
func sha(t *testing.T, pkg string) string {
	t.Helper()
	b, err := os.ReadFile(testutil.Build(t, pkg))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// pluginPid finds the process of a plugin binary started by the daemon.
func pluginPid(t *testing.T, d *testutil.Daemon, binary string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 || f[0] == "Z" || f[1] != strconv.Itoa(d.Cmd.Process.Pid) {
			continue
		}
		if exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); filepath.Base(exe) == binary {
			return pid
		}
	}
	return 0
}

func TestRunningDaemonPicksUpPluginsAndRestartsKilledOnes(t *testing.T) {
	plugins := pht.Dir(t, pht.Webhook)
	hook := pht.NewReceiver(t)
	// Once pins are set every binary needs one; the e-mail pin is wrong.
	d, _ := daemon(t, plugins, fmt.Sprintf(`plugin_checksums:
  hbd-notifier-webhook: "%s"
  hbd-notifier-pushover: "%s"
  hbd-notifier-email: "%s"
notification_channels:
  ops_webhook: {type: webhook, url: "%s", hosts: ["*"]}
`, sha(t, pht.Webhook), sha(t, pht.Pushover), strings.Repeat("0", 64), hook.URL))
	typesOf := func() map[string]any {
		var types map[string]any
		getJSON(t, d.BaseURL+"/api/0/notification_channel_types", &types)
		return types
	}
	if ty := typesOf(); len(ty) != 1 || ty["webhook"] == nil {
		t.Fatalf("types at start = %v", ty)
	}

	// Dropped into the running daemon's plugins dir: usable within seconds.
	pht.Install(t, plugins, pht.Pushover, "hbd-notifier-pushover")
	pht.Eventually(t, "pushover in /notification_channel_types", 10*time.Second, func() bool { return typesOf()["pushover"] != nil })

	// A binary whose SHA-256 does not match its pin is refused.
	pht.Install(t, plugins, pht.Email, "hbd-notifier-email")
	d.WaitLog(t, "SHA-256 does not match plugin_checksums", 10*time.Second)
	if typesOf()["email"] != nil {
		t.Error("email registered despite its checksum mismatch")
	}

	// A killed plugin is restarted and the alert still gets through.
	pid := pluginPid(t, d, "hbd-notifier-webhook")
	if pid == 0 {
		t.Fatal("webhook plugin process not found")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	ingest(t, d, 95)
	reqs := hook.Wait(t, 1, 15*time.Second)
	var payload map[string]any
	json.Unmarshal(reqs[0].Body, &payload)
	if payload["level"] != "CRITICAL" {
		t.Errorf("payload = %v", payload)
	}
	pht.Eventually(t, "a new webhook process", 10*time.Second, func() bool {
		p := pluginPid(t, d, "hbd-notifier-webhook")
		return p != 0 && p != pid
	})
	time.Sleep(300 * time.Millisecond)
	if hook.Count() != 1 {
		t.Errorf("webhook got %d notifications, want 1", hook.Count())
	}

	// SIGTERM stops the plugins with the daemon.
	pids := []int{pluginPid(t, d, "hbd-notifier-webhook"), pluginPid(t, d, "hbd-notifier-pushover")}
	d.Signal(syscall.SIGTERM)
	if code := d.Wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, d.Stderr())
	}
	for _, p := range pids {
		if p != 0 && syscall.Kill(p, 0) == nil {
			t.Errorf("plugin process %d outlived the daemon", p)
		}
	}
}
