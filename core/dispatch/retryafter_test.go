package dispatch_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/dispatch"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/notifiers/webhook"
	"github.com/hbdmon/hbd/sdk"
)

// TestRetryAfterIsHonoured: a service answering 429 with Retry-After: 3
// through the real webhook plugin process is tried again no sooner than 3
// seconds later, although the backoff alone (RetryBase 100ms) would retry
// at once. The bound is checked on the receiver's own clock: the gap
// between the two requests it recorded, a lower bound a loaded machine can
// only make larger.
func TestRetryAfterIsHonoured(t *testing.T) {
	e := hooksEnv(t, "ops_webhook")
	e.rcv["ops_webhook"].ScriptHeader(http.StatusTooManyRequests, http.Header{"Retry-After": {"3"}})
	e.d.Dispatch(crit("web01"))
	reqs := e.rcv["ops_webhook"].Wait(t, 2, 30*time.Second)
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < 3*time.Second {
		t.Errorf("retried %v after a 429 with Retry-After: 3", gap)
	}
	lines := e.waitJournal(t, "CRITICAL: delivered (attempt 2)")
	want := "notify ops_webhook web01 cpu_monitor.cpu_percent CRITICAL: failed (attempt 1): HTTP 429 from the receiver; retrying in 3s (the service asked to wait 3s)"
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, want) }) {
		t.Errorf("journal lacks %q:\n%s", want, strings.Join(lines, "\n"))
	}
}

// TestRetryAfterIsBounded: a wait longer than RetryAfterMax is cut to it.
func TestRetryAfterIsBounded(t *testing.T) {
	e := hooksEnv(t, "ops_webhook")
	e.close()
	e.open(t, dispatch.Options{RetryAfterMax: 500 * time.Millisecond})
	e.rcv["ops_webhook"].ScriptHeader(http.StatusServiceUnavailable, http.Header{"Retry-After": {"3600"}})
	e.d.Dispatch(crit("web01"))
	e.rcv["ops_webhook"].Wait(t, 2, 30*time.Second)
	lines := e.waitJournal(t, "CRITICAL: delivered (attempt 2)")
	want := "failed (attempt 1): HTTP 503 from the receiver; retrying in 500ms (the service asked to wait 1h0m0s)"
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, want) }) {
		t.Errorf("journal lacks %q:\n%s", want, strings.Join(lines, "\n"))
	}
}

// TestDeliveredEventIsComplete: what reaches a service through the real
// webhook plugin carries the kind, the threshold, the owner and the link
// to the host's page under public_url.
func TestDeliveredEventIsComplete(t *testing.T) {
	yaml := "public_url: https://hbd.example.com/\nusers:\n  alice: {password_hash: \"" + hash + "\"}\n" +
		"watchhosts:\n  web01: {key: \"" + testutil.Key + "\", owner: alice}\n" +
		"notification_channels:\n  hook: {type: webhook, url: \"RCV_hook\"}\n"
	e := newEnv(t, yaml, "hook")
	ev := crit("web01")
	ev.ID = "web01/cpu_monitor.cpu_percent/1774303080000000000/1"
	ev.Threshold, ev.Comparison, ev.Text = 95, ">=", "web01 cpu_monitor.cpu_percent 97.5 ≥ 95 (CRITICAL) for 3 samples"
	e.d.Dispatch(ev)
	rec := ev
	rec.ID, rec.Kind, rec.Level, rec.PreviousLevel, rec.Value, rec.Threshold = ev.ID+"r", alert.KindRecovery, "OK", "CRITICAL", 40, 80
	e.d.Dispatch(rec)
	reqs := e.rcv["hook"].Wait(t, 2, 10*time.Second)
	var got []webhook.Payload
	for _, r := range reqs {
		var p webhook.Payload
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	link := "https://hbd.example.com/hosts/web01?metric=cpu_percent&plugin=cpu_monitor#history"
	if p := got[0]; p.Kind != string(sdk.KindFiring) || p.Threshold == nil || *p.Threshold != 95 || p.Comparison != ">=" ||
		p.Owner != "alice" || p.URL != link || p.Key != sdk.SafeID(ev.ID) || !strings.Contains(p.Text, "Threshold: >= 95") {
		t.Errorf("firing payload %+v", p)
	}
	if p := got[1]; p.Kind != string(sdk.KindResolved) || !strings.HasPrefix(p.Title, "[RECOVERED] ") || p.URL != link {
		t.Errorf("recovery payload %+v", p)
	}
}
