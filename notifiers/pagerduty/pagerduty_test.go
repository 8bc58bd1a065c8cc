package pagerduty

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbdmon/hbd/notifiers/internal/fakeapi"
	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/sdktest"
)

const routingKey = "R0UTINGKEY0123456789abcdefABCDEF"

// pagerDuty imitates the Events API v2: POST /v2/enqueue, the routing key
// in the body, 202 with the dedup key, 400 "invalid event" with reasons.
// It keeps each alert's status by dedup key, as PagerDuty does.
type pagerDuty struct {
	*fakeapi.Server
	mu     sync.Mutex
	status map[string]string
}

func newPagerDuty(t *testing.T) *pagerDuty {
	pd := &pagerDuty{status: map[string]string{}}
	pd.Server = fakeapi.New(t, func(r fakeapi.Request) fakeapi.Answer {
		var e event
		invalid := func(reason string) fakeapi.Answer {
			return fakeapi.JSON(http.StatusBadRequest, `{"status":"invalid event","message":"Event object is invalid","errors":["`+reason+`"]}`)
		}
		switch {
		case r.Path != "/v2/enqueue" || r.Method != http.MethodPost:
			return fakeapi.JSON(http.StatusNotFound, `{"status":"not found"}`)
		case r.JSON(&e) != nil:
			return invalid("Invalid JSON")
		case e.RoutingKey != routingKey:
			return invalid("Invalid routing key")
		case e.DedupKey == "" || len(e.DedupKey) > 255:
			return invalid("'dedup_key' is invalid")
		case e.EventAction == actionTrigger && (e.Payload == nil || e.Payload.Summary == "" || e.Payload.Source == "" ||
			!slices.Contains([]string{"critical", "error", "warning", "info"}, e.Payload.Severity)):
			return invalid("'payload' is invalid or missing")
		case !slices.Contains([]string{actionTrigger, actionAcknowledge, actionResolve}, e.EventAction):
			return invalid("'event_action' is invalid")
		}
		pd.mu.Lock()
		pd.status[e.DedupKey] = map[string]string{actionTrigger: "triggered", actionAcknowledge: "acknowledged", actionResolve: "resolved"}[e.EventAction]
		pd.mu.Unlock()
		return fakeapi.JSON(http.StatusAccepted, `{"status":"success","message":"Event processed","dedup_key":"`+e.DedupKey+`"}`)
	})
	return pd
}

func (pd *pagerDuty) alerts() map[string]string {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	out := map[string]string{}
	for k, v := range pd.status {
		out[k] = v
	}
	return out
}

func config(pd *pagerDuty) sdk.Config {
	return sdk.Config{"routing_key": routingKey, "api_url": pd.URL}
}

func sent(t *testing.T, r fakeapi.Request) event {
	t.Helper()
	var e event
	if err := r.JSON(&e); err != nil || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("sent %s", r.Body)
	}
	return e
}

func TestAnAlertTriggersIsAcknowledgedAndResolves(t *testing.T) {
	pd := newPagerDuty(t)
	renotify, ack := fakeapi.Alert(), fakeapi.Alert()
	renotify.Kind, renotify.NotificationCount, renotify.PreviousLevel = sdk.KindRenotify, 2, ""
	ack.Kind, ack.Message = sdk.KindAcknowledged, "acknowledged by alice"
	const key = "hbd/web01/cpu_monitor.cpu_percent"
	for i, step := range []struct {
		ev     sdk.Event
		status string
	}{{fakeapi.Alert(), "triggered"}, {renotify, "triggered"}, {ack, "acknowledged"}, {fakeapi.Recovery(), "resolved"}} {
		if err := sdktest.Notify(context.Background(), New(), config(pd), step.ev); err != nil {
			t.Fatalf("Notify %s: %v", step.ev.Kind, err)
		}
		if got := pd.alerts(); len(got) != 1 || got[key] != step.status {
			t.Fatalf("after step %d (%s) PagerDuty has %v, want %s %s", i, step.ev.Kind, got, key, step.status)
		}
	}
	trigger := sent(t, pd.Requests()[0])
	p := trigger.Payload
	if p.Summary != "[CRITICAL] web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples <&>" || p.Source != "web01" ||
		p.Severity != "critical" || p.Component != "cpu_monitor.cpu_percent" || p.Class != "firing" || p.Timestamp != "2026-12-01T03:48:20Z" ||
		p.CustomDetails["threshold"] != ">= 95" || p.CustomDetails["owner"] != "alice" ||
		!strings.Contains(p.CustomDetails["text"].(string), "Host: web01") ||
		trigger.ClientURL != "https://hbd.example.com/hosts/web01" || len(trigger.Links) != 1 || trigger.Links[0].Href != trigger.ClientURL {
		t.Errorf("trigger %s", pd.Requests()[0].Body)
	}
	if resolve := sent(t, pd.Requests()[3]); resolve.Payload != nil || resolve.DedupKey != key {
		t.Errorf("resolve %s", pd.Requests()[3].Body)
	}
}

func TestTestEventTriggersAndResolvesItsOwnAlert(t *testing.T) {
	pd := newPagerDuty(t)
	if err := sdktest.Notify(context.Background(), New(), config(pd), fakeapi.Test()); err != nil {
		t.Fatal(err)
	}
	reqs := pd.Requests()
	if len(reqs) != 2 || sent(t, reqs[0]).Payload.Severity != "info" || sent(t, reqs[1]).EventAction != actionResolve {
		t.Fatalf("requests %+v", reqs)
	}
	key := "hbd-test/" + sdk.SafeID(fakeapi.Test().ID)
	if got := pd.alerts(); len(got) != 1 || got[key] != "resolved" {
		t.Errorf("PagerDuty has %v", got)
	}
}

func TestLongNamesGetAHashedDedupKey(t *testing.T) {
	ev := fakeapi.Alert()
	ev.MetricPath = strings.Repeat("m", 300)
	if k := DedupKey(ev); len(k) > maxDedupKey || k != DedupKey(ev) || k == DedupKey(fakeapi.Alert()) {
		t.Errorf("dedup key %q", k)
	}
}

func TestNotifyClassifiesFailures(t *testing.T) {
	pd := newPagerDuty(t)
	fakeapi.CheckFailures(t, New(), pd.Server, config(pd), fakeapi.Alert(), []fakeapi.Failure{
		{Name: "throttled", Answer: fakeapi.JSON(http.StatusTooManyRequests, `{"status":"throttle event","message":"Requests for this service are arriving too quickly.  Please retry later."}`),
			Quote: "arriving too quickly"},
		{Name: "throttled with retry-after", Answer: fakeapi.Answer{Status: http.StatusTooManyRequests, Header: map[string]string{"Retry-After": "3"}}, RetryAfter: 3 * time.Second, Quote: "429"},
		{Name: "internal error", Answer: fakeapi.Answer{Status: http.StatusInternalServerError}, Quote: "500"},
	})
	cfg := config(pd)
	cfg["routing_key"] = "revokedKEYrevokedKEYrevokedKEY00"
	if err := sdktest.Notify(context.Background(), New(), cfg, fakeapi.Alert()); !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "Invalid routing key") {
		t.Errorf("wrong key: Notify = %v, want a permanent error quoting PagerDuty", err)
	}
}

func TestValidate(t *testing.T) {
	if err := sdktest.Validate(New(), sdk.Config{"routing_key": "k"}); err != nil {
		t.Errorf("valid: %v", err)
	}
	if err := sdktest.Validate(New(), sdk.Config{}); sdk.ErrorField(err) != "routing_key" {
		t.Errorf("missing key: %v", err)
	}
	if err := sdktest.Validate(New(), sdk.Config{"routing_key": "k", "api_url": "events.pagerduty.com"}); sdk.ErrorField(err) != "api_url" {
		t.Errorf("bad url: %v", err)
	}
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, New(), config(newPagerDuty(t)))
}

func TestAlertAndRecoveryOverPluginProtocol(t *testing.T) {
	pd := newPagerDuty(t)
	reqs := fakeapi.OverPlugin(t, New(), pd.Server, config(pd))
	if len(reqs) != 2 || sent(t, reqs[0]).EventAction != actionTrigger || !strings.Contains(sent(t, reqs[0]).Payload.Summary, "97.2 ≥ 95") ||
		sent(t, reqs[0]).ClientURL == "" || sent(t, reqs[1]).EventAction != actionResolve {
		t.Errorf("requests %+v", reqs)
	}
	if got := pd.alerts(); got["hbd/web01/cpu_monitor.cpu_percent"] != "resolved" {
		t.Errorf("PagerDuty has %v", got)
	}
}
