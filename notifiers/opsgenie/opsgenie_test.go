package opsgenie

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbdmon/hbd/notifiers/internal/fakeapi"
	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/sdktest"
)

const apiKey = "eb243592-faa2-4ba2-a551q-1afdf565c889"

var actionPath = regexp.MustCompile(`^/v2/alerts/([^/]+)/(close|acknowledge)$`)

// opsgenie imitates the Alert API: GenieKey authentication, asynchronous
// 202 answers with a requestId, 422 for an unprocessable alert. It keeps
// each alias's status, as Opsgenie does.
type opsgenie struct {
	*fakeapi.Server
	mu     sync.Mutex
	status map[string]string
	counts map[string]int
}

const accepted = `{"result":"Request will be processed","took":0.107,"requestId":"43a29c5c-3dbf-4fa4-9c26-f4f71023e120"}`

func newOpsgenie(t *testing.T) *opsgenie {
	og := &opsgenie{status: map[string]string{}, counts: map[string]int{}}
	og.Server = fakeapi.New(t, func(r fakeapi.Request) fakeapi.Answer {
		if r.Header.Get("Authorization") != "GenieKey "+apiKey {
			return fakeapi.JSON(http.StatusUnauthorized, `{"message":"Could not authenticate","took":0.0,"requestId":"d1c7c5a8"}`)
		}
		if r.Method != http.MethodPost {
			return fakeapi.JSON(http.StatusMethodNotAllowed, `{"message":"Method not allowed"}`)
		}
		og.mu.Lock()
		defer og.mu.Unlock()
		if r.Path == "/v2/alerts" {
			var a alert
			if r.JSON(&a) != nil || a.Message == "" || len([]rune(a.Message)) > 130 || len(a.Alias) > 512 {
				return fakeapi.JSON(http.StatusUnprocessableEntity, `{"message":"Request body is not processable. Please check the errors.","errors":{"message":"Message can not be empty."},"took":0.0}`)
			}
			if og.status[a.Alias] != "open" && og.status[a.Alias] != "acknowledged" {
				og.status[a.Alias] = "open"
			}
			og.counts[a.Alias]++
			return fakeapi.JSON(http.StatusAccepted, accepted)
		}
		m := actionPath.FindStringSubmatch(r.EscapedPath)
		if m == nil || r.Query.Get("identifierType") != "alias" {
			return fakeapi.JSON(http.StatusNotFound, `{"message":"Could not find resource","took":0.0}`)
		}
		if og.status[m[1]] != "" {
			og.status[m[1]] = map[string]string{"close": "closed", "acknowledge": "acknowledged"}[m[2]]
		}
		return fakeapi.JSON(http.StatusAccepted, accepted)
	})
	return og
}

func (og *opsgenie) alerts() map[string]string {
	og.mu.Lock()
	defer og.mu.Unlock()
	out := map[string]string{}
	for k, v := range og.status {
		out[k] = v
	}
	return out
}

func config(og *opsgenie) sdk.Config { return sdk.Config{"api_key": apiKey, "api_url": og.URL} }

func TestAnAlertIsCreatedAcknowledgedAndClosedByAlias(t *testing.T) {
	og := newOpsgenie(t)
	cfg := config(og)
	cfg["team"], cfg["tags"] = "ops", "prod, web"
	renotify, ack := fakeapi.Alert(), fakeapi.Alert()
	renotify.Kind, renotify.NotificationCount = sdk.KindRenotify, 2
	ack.Kind = sdk.KindAcknowledged
	alias := Alias(fakeapi.Alert())
	for i, step := range []struct {
		ev     sdk.Event
		status string
	}{{fakeapi.Alert(), "open"}, {renotify, "open"}, {ack, "acknowledged"}, {fakeapi.Recovery(), "closed"}} {
		if err := sdktest.Notify(context.Background(), New(), cfg, step.ev); err != nil {
			t.Fatalf("Notify %s: %v", step.ev.Kind, err)
		}
		if got := og.alerts(); len(got) != 1 || got[alias] != step.status {
			t.Fatalf("after step %d (%s) Opsgenie has %v, want %s %s", i, step.ev.Kind, got, alias, step.status)
		}
	}
	if og.counts[alias] != 2 || !regexp.MustCompile(`^hbd-[0-9a-f]{32}$`).MatchString(alias) {
		t.Errorf("alias %q created %d times", alias, og.counts[alias])
	}
	var a alert
	if err := og.Requests()[0].JSON(&a); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.Message, "[CRITICAL] web01 cpu_monitor.cpu_percent 97.2 ≥ 95") || len([]rune(a.Message)) > 130 ||
		a.Priority != "P1" || a.Entity != "web01" || a.Details["url"] != "https://hbd.example.com/hosts/web01" ||
		a.Details["threshold"] != ">= 95" || a.Details["kind"] != "firing" || !strings.Contains(a.Description, "Host: web01") ||
		len(a.Responders) != 1 || a.Responders[0] != (responder{"team", "ops"}) || strings.Join(a.Tags, ",") != "hbd,critical,prod,web" {
		t.Errorf("create %s", og.Requests()[0].Body)
	}
	if r := og.Requests()[3]; r.EscapedPath != "/v2/alerts/"+alias+"/close" {
		t.Errorf("close %s", r.EscapedPath)
	}
}

func TestTestEventCreatesAndClosesItsOwnAlert(t *testing.T) {
	og := newOpsgenie(t)
	if err := sdktest.Notify(context.Background(), New(), config(og), fakeapi.Test()); err != nil {
		t.Fatal(err)
	}
	var a alert
	_ = og.Requests()[0].JSON(&a)
	if got := og.alerts(); len(got) != 1 || got[Alias(fakeapi.Test())] != "closed" || a.Priority != "P5" {
		t.Errorf("Opsgenie has %v; created %s", got, og.Requests()[0].Body)
	}
}

func TestNotifyClassifiesFailures(t *testing.T) {
	og := newOpsgenie(t)
	fakeapi.CheckFailures(t, New(), og.Server, config(og), fakeapi.Alert(), []fakeapi.Failure{
		{Name: "too many requests", Answer: fakeapi.Answer{Status: http.StatusTooManyRequests, Header: map[string]string{"Retry-After": "3"},
			Body: `{"message":"You are making too many requests! To avoid errors, we recommend you limit requests.","took":0.0}`},
			RetryAfter: 3 * time.Second, Quote: "too many requests"},
		{Name: "unprocessable", Answer: fakeapi.JSON(http.StatusUnprocessableEntity, `{"message":"Request body is not processable. Please check the errors.","errors":{"message":"Message can not be empty."}}`),
			Permanent: true, Quote: "not processable"},
		{Name: "forbidden", Answer: fakeapi.JSON(http.StatusForbidden, `{"message":"Key has no access to the requested resource"}`), Permanent: true, Quote: "no access"},
		{Name: "internal error", Answer: fakeapi.Answer{Status: http.StatusInternalServerError}, Quote: "500"},
	})
	cfg := config(og)
	cfg["api_key"] = "revokedKEY"
	err := sdktest.Notify(context.Background(), New(), cfg, fakeapi.Recovery())
	if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "opsgenie close alert") || !strings.Contains(err.Error(), "Could not authenticate") {
		t.Errorf("wrong key: Notify = %v, want a permanent error quoting Opsgenie", err)
	}
}

func TestValidate(t *testing.T) {
	if err := sdktest.Validate(New(), sdk.Config{"api_key": "k"}); err != nil {
		t.Errorf("valid: %v", err)
	}
	if err := sdktest.Validate(New(), sdk.Config{}); sdk.ErrorField(err) != "api_key" {
		t.Errorf("missing key: %v", err)
	}
	if err := sdktest.Validate(New(), sdk.Config{"api_key": "k", "api_url": "api.opsgenie.com"}); sdk.ErrorField(err) != "api_url" {
		t.Errorf("bad url: %v", err)
	}
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, New(), config(newOpsgenie(t)))
}

func TestAlertAndRecoveryOverPluginProtocol(t *testing.T) {
	og := newOpsgenie(t)
	reqs := fakeapi.OverPlugin(t, New(), og.Server, config(og))
	var a alert
	if len(reqs) != 2 || reqs[0].JSON(&a) != nil || !strings.Contains(a.Message, "97.2 ≥ 95") || a.Details["url"] == "" ||
		!strings.HasSuffix(reqs[1].Path, "/close") {
		t.Errorf("requests %+v", reqs)
	}
	if got := og.alerts(); got[Alias(fakeapi.Alert())] != "closed" {
		t.Errorf("Opsgenie has %v", got)
	}
}
