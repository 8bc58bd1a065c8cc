package e2e_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/protocol"
)

// TestUsersChannelsCannotProbeInternalServices is the attack report's
// SSRF against the real daemon and plugins: bob, logged in without any
// host role, aims a webhook at hbd's own ingest, a Pushover api_url at an
// internal service and an e-mail channel at an internal SMTP server and
// at a closed port, and tests each. Every answer is the same refusal;
// nothing was reached, and no banner, body or "connection refused" comes
// back. An admin's allow list opens loopback, but not hbd's own port.
func TestUsersChannelsCannotProbeInternalServices(t *testing.T) {
	plugins := pht.Dir(t, pht.Webhook, pht.Pushover, pht.Email)
	internal := pht.NewReceiver(t)
	internal.Respond(http.StatusBadRequest, `{"error":"internal-only S3CR3T answer"}`)
	smtpAddr, smtpAuths := echoSMTPServer(t)
	smtpHost, smtpPort, _ := net.SplitHostPort(smtpAddr)
	closed := func() string {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		_, port, _ := net.SplitHostPort(l.Addr().String())
		l.Close()
		return port
	}()
	h, err := bcrypt.GenerateFromPassword([]byte("password123"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, allow := range []bool{false, true} {
		extra := fmt.Sprintf("users:\n  admin: {password_hash: %[1]q, admin: true}\n  bob: {password_hash: %[1]q}\n", h)
		if allow {
			extra += "channel_destinations: {allow: [127.0.0.0/8]}\n"
		}
		d, _ := daemon(t, plugins, extra)
		bob := hijackLogin(t, d, "bob")
		probes := map[string]map[string]any{
			"own_ingest": {"type": "webhook", "url": d.BaseURL + protocol.IngestPath},
			"internal":   {"type": "pushover", "token": "tok-123456", "user": "usr-123456", "api_url": internal.URL + "/1/messages.json"},
			"banner":     {"type": "email", "host": smtpHost, "port": smtpPort, "username": "u", "password": "pw-123456", "from": "a@b.example", "to": "c@d.example", "tls": "none"},
			"closed":     {"type": "email", "host": "127.0.0.1", "port": closed, "from": "a@b.example", "to": "c@d.example", "tls": "none"},
			"by_name":    {"type": "webhook", "url": strings.Replace(internal.URL, "127.0.0.1", "localhost", 1)},
		}
		for name, p := range probes {
			p["name"] = name
			bob.must("POST", "/api/0/notification_channels", p)
			code, body := bob.do("POST", "/api/0/notification_channels/"+name+"/test", nil)
			want := "destination refused by policy"
			if allow && name != "own_ingest" {
				// Allowed: the outcome, in words that quote nothing.
				want = map[string]string{"internal": "HTTP 400 from the receiver", "by_name": "HTTP 400 from the receiver",
					"banner": "SMTP 535 from the server", "closed": "connection failed"}[name]
			}
			if code != http.StatusBadGateway || !strings.HasSuffix(body, "failed: "+want+`"}`+"\n") {
				t.Errorf("allow %v: bob's test of %s: %d %s, want 502 ending %q", allow, name, code, body, want)
			}
			for _, leak := range []string{"S3CR3T", "X-HBD-Host", "echo.test", "refused", "535 5.7.8", "AUTH"} {
				if leak == "refused" && strings.Contains(body, "refused by policy") {
					continue
				}
				if strings.Contains(body, leak) {
					t.Errorf("allow %v: bob's test of %s reads %q back: %s", allow, name, leak, body)
				}
			}
		}
		if n := internal.Count(); (n == 0) == allow {
			t.Errorf("allow %v: the internal service got %d requests", allow, n)
		}
		if n := smtpAuths(); (n == 0) == allow {
			t.Errorf("allow %v: the internal SMTP server got %d AUTH commands", allow, n)
		}
		d.Kill()
	}
}
