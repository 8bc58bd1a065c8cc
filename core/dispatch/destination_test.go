package dispatch_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/dispatch"
	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/testutil"
)

// internalAnswer is what an internal service answers: it must never reach
// a user through an error.
const internalAnswer = `{"error":"X-HBD-Host must name a host","internal":"S3CR3T-INTERNAL-ANSWER"}`

const destinationsYAML = `
users:
  alice: {password_hash: "HASH"}
  root: {password_hash: "HASH", admin: true}
watchhosts:
  web01: {key: "` + testutil.Key + `", monitors: [alice]}
`

// destEnv is newEnv on yaml plus destinationsYAML with a receiver
// "internal" answering internalAnswer, and the dispatcher's log captured.
func destEnv(t *testing.T, extra string) (*env, *pht.Logs) {
	t.Helper()
	e := newEnv(t, strings.ReplaceAll(destinationsYAML, "HASH", hash)+extra, "internal")
	e.rcv["internal"].Respond(http.StatusBadRequest, internalAnswer)
	logs := &pht.Logs{}
	e.close()
	e.open(t, dispatch.Options{Logger: logs.Logger()})
	return e, logs
}

func userHook(t *testing.T, e *env, c access.Principal, name, u string) {
	t.Helper()
	hosts := []string{"web01"}
	if err := e.reg.CreateChannel(context.Background(), c, channels.Input{
		Name: name, Type: "webhook", Hosts: &hosts, Fields: map[string]string{"url": u}}); err != nil {
		t.Fatalf("%s creates %s: %v", c.User, name, err)
	}
}

func assertNoAnswer(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, "S3CR3T") || strings.Contains(s, "X-HBD-Host") {
		t.Errorf("%s reads the internal service's answer back: %s", what, s)
	}
}

// TestNonAdminChannelCannotReachInternalAddresses is the attack report's
// SSRF: a user with no host role pointed a webhook at an internal address
// and read the answer in the /test error.
func TestNonAdminChannelCannotReachInternalAddresses(t *testing.T) {
	e, logs := destEnv(t, "")
	alice, root := access.Principal{User: "alice"}, access.Principal{User: "root", Admin: true}
	rcv := e.rcv["internal"]
	u, _ := url.Parse(rcv.URL)
	userHook(t, e, alice, "probe", rcv.URL)
	userHook(t, e, alice, "probe_name", "http://localhost:"+u.Port()+"/")

	for _, name := range []string{"probe", "probe_name"} {
		err := e.reg.TestChannel(context.Background(), alice, name)
		if !errors.Is(err, channels.ErrDelivery) || !strings.HasSuffix(err.Error(), "failed: destination refused by policy") {
			t.Fatalf("test of %s = %v, want a refusal by policy", name, err)
		}
		assertNoAnswer(t, "test error", err.Error())
	}
	// Alerts through it are refused too, and not retried.
	e.d.Dispatch(crit("web01"))
	lines := e.waitJournal(t, "notify probe web01")
	testutil.Eventually(t, "both refusals journaled", 5*time.Second, func() bool {
		lines = e.journal(t)
		n := 0
		for _, l := range lines {
			if strings.Contains(l, ": failed (attempt 1): destination refused by policy; not retried (permanent error)") {
				n++
			}
		}
		return n == 2
	})
	if rcv.Count() != 0 {
		t.Fatalf("the internal service got %d requests", rcv.Count())
	}
	// The daemon log tells admins where the connection was refused.
	if !strings.Contains(logs.String(), "is loopback") {
		t.Errorf("daemon log does not say why:\n%s", logs)
	}

	// An admin's channel may reach it; the admin sees the details.
	userHook(t, e, root, "root_probe", rcv.URL)
	err := e.reg.TestChannel(context.Background(), root, "root_probe")
	if err == nil || !strings.Contains(err.Error(), "failed: HTTP 400 from the receiver (") || !strings.Contains(err.Error(), "S3CR3T") {
		t.Fatalf("admin's test = %v, want the reason and the details", err)
	}
	if rcv.Count() != 1 {
		t.Fatalf("the admin's channel reached the service %d times, want 1", rcv.Count())
	}
	// Once alice's channel is allowed there (by an admin, in the config),
	// a user still learns only the outcome.
	cfg := testutil.Config(t, strings.ReplaceAll(destinationsYAML, "HASH", hash)+`
channel_destinations:
  allow: [127.0.0.0/8]
`)
	e.cfg = cfg
	err = e.reg.TestChannel(context.Background(), alice, "probe")
	if err == nil || !strings.HasSuffix(err.Error(), "failed: HTTP 400 from the receiver") {
		t.Fatalf("test of an allowed channel = %v, want the generic reason", err)
	}
	if rcv.Count() != 2 {
		t.Fatalf("the allowed channel reached the service %d times in all, want 2", rcv.Count())
	}
	for _, l := range e.journal(t) {
		assertNoAnswer(t, "journal line", l)
	}
}

// TestPolicyIsCheckedAtEveryCallNotAtSave: the same stored channel is
// allowed or refused by the config in force when it delivers, and the
// daemon's own ports stay refused even on an allowed network.
func TestPolicyIsCheckedAtEveryCallNotAtSave(t *testing.T) {
	allow := "\nchannel_destinations:\n  allow: [127.0.0.0/8]\n"
	e, _ := destEnv(t, allow)
	rcv := e.rcv["internal"]
	rcv.Respond(http.StatusOK, "")
	alice := access.Principal{User: "alice"}
	userHook(t, e, alice, "hook", rcv.URL)
	if err := e.reg.TestChannel(context.Background(), alice, "hook"); err != nil {
		t.Fatalf("allowed test = %v", err)
	}
	base := strings.ReplaceAll(destinationsYAML, "HASH", hash)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(rcv.URL, "http://"))
	for _, c := range []struct{ name, yaml string }{
		{"allow removed", base},
		{"the daemon's own port", base + allow + "hbd_port: " + port + "\n"},
		{"owner no longer exists", strings.NewReplacer("  alice: {password_hash: \""+hash+"\"}\n", "", "monitors: [alice]", "monitors: [root]").Replace(base)},
	} {
		e.cfg = testutil.Config(t, c.yaml)
		err := e.reg.TestChannel(context.Background(), access.Principal{User: "root", Admin: true}, "hook")
		if err == nil || !strings.Contains(err.Error(), "destination refused by policy") {
			t.Errorf("%s: test = %v, want a refusal", c.name, err)
		}
	}
	if rcv.Count() != 1 {
		t.Fatalf("the service got %d requests, want 1", rcv.Count())
	}
	// An owner made admin is no longer restricted.
	e.cfg = testutil.Config(t, strings.Replace(base, `alice: {password_hash: "`+hash+`"}`, `alice: {password_hash: "`+hash+`", admin: true}`, 1))
	if err := e.reg.TestChannel(context.Background(), alice, "hook"); err != nil {
		t.Fatalf("test after alice became admin = %v", err)
	}
}

// TestDenyAppliesToEveryChannel: channel_destinations.deny holds for
// config channels and admins' channels too.
func TestDenyAppliesToEveryChannel(t *testing.T) {
	e, _ := destEnv(t, `notification_channels:
  ops: {type: webhook, url: "RCV_internal", hosts: ["*"]}
channel_destinations:
  deny: [127.0.0.1/32]
`)
	root := access.Principal{User: "root", Admin: true}
	userHook(t, e, root, "root_hook", e.rcv["internal"].URL)
	for _, name := range []string{"ops", "root_hook"} {
		err := e.reg.TestChannel(context.Background(), root, name)
		if err == nil || !strings.Contains(err.Error(), "listed in channel_destinations.deny") {
			t.Errorf("test of %s = %v, want a refusal naming the deny list", name, err)
		}
	}
	e.d.Dispatch(crit("web01"))
	e.waitJournal(t, "notify ops web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 1): destination refused by policy")
	if e.rcv["internal"].Count() != 0 {
		t.Fatal("a denied address was reached")
	}
}

// TestHostJournalHoldsNoRemoteAnswer: the host journal, read by every user
// who sees the host, tells a failure's generic reason, never the answer.
func TestHostJournalHoldsNoRemoteAnswer(t *testing.T) {
	e, logs := destEnv(t, `notification_channels:
  ops: {type: webhook, url: "RCV_internal", hosts: ["*"]}
`)
	e.d.Dispatch(crit("web01"))
	lines := e.waitJournal(t, "notify ops web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 1): HTTP 400 from the receiver; not retried")
	for _, l := range lines {
		assertNoAnswer(t, "journal line", l)
	}
	// The details are in the daemon log, for admins.
	testutil.Eventually(t, "the log line", 5*time.Second, func() bool { return strings.Contains(logs.String(), "S3CR3T-INTERNAL-ANSWER") })
}

// TestReservedKeyCannotBeSet: a user cannot hand a channel its own
// destination policy.
func TestReservedKeyCannotBeSet(t *testing.T) {
	e, _ := destEnv(t, "")
	err := e.reg.CreateChannel(context.Background(), access.Principal{User: "alice"}, channels.Input{
		Name: "sneaky", Type: "webhook", Fields: map[string]string{"url": e.rcv["internal"].URL, "_hbd_destinations": "{}"}})
	if !errors.Is(err, channels.ErrInvalid) {
		t.Fatalf("create with the reserved key = %v, want invalid", err)
	}
	if slices.ContainsFunc(e.reg.Channels(), func(c channels.Channel) bool { return c.Name == "sneaky" }) {
		t.Fatal("channel created")
	}
}

// TestShortSecretsDoNotGarbleMessages is the attack report's garbled
// message: a one-letter token was cut out of every word holding the letter
// ("priori•••y: m•••s••• be an in•••eger"). (The priority is a choice
// field now, checked before the plugin; the plugin's own URL check
// words its message with the same letters.)
func TestShortSecretsDoNotGarbleMessages(t *testing.T) {
	e, _ := destEnv(t, "")
	err := e.reg.CreateChannel(context.Background(), access.Principal{User: "root", Admin: true}, channels.Input{
		Name: "po", Type: "pushover", Fields: map[string]string{"token": "t", "user": "in", "api_url": "ftp://pushover.invalid/"}})
	if !errors.Is(err, channels.ErrInvalid) || err.Error() != "Invalid channel settings: api_url: must be an http:// or https:// URL with a host" {
		t.Fatalf("create = %q, want the plugin's message whole", err)
	}
}
