package teams

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/notifiers/internal/fakeapi"
	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/sdktest"
)

const (
	workflowPath = "/workflows/2b7f0c1e3d4a/triggers/manual/paths/invoke"
	signature    = "Xk3vQ9sigNATUREz"
)

// teamsAPI imitates a Power Automate workflow's HTTP trigger: the
// signature travels in the query, the card must be a message with an
// Adaptive Card attachment, and success is 202 with no body.
func teamsAPI(t *testing.T) *fakeapi.Server {
	return fakeapi.New(t, func(r fakeapi.Request) fakeapi.Answer {
		var m message
		switch {
		case r.Path != workflowPath:
			return fakeapi.JSON(http.StatusNotFound, `{"error":{"code":"WorkflowNotFound","message":"The workflow could not be found."}}`)
		case r.Query.Get("sig") != signature || r.Query.Get("api-version") == "":
			return fakeapi.JSON(http.StatusUnauthorized, `{"error":{"code":"DirectApiInvalidAuthorizationSignature","message":"The provided authentication token is not valid."}}`)
		case r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.JSON(&m) != nil ||
			len(m.Attachments) != 1 || m.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive":
			return fakeapi.JSON(http.StatusBadRequest, `{"error":{"code":"TriggerInputSchemaMismatch","message":"The input body for trigger 'manual' of type 'Request' did not match its schema definition."}}`)
		}
		return fakeapi.Answer{Status: http.StatusAccepted}
	})
}

func config(s *fakeapi.Server) sdk.Config {
	return sdk.Config{"webhook_url": s.URL + workflowPath + "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=" + signature}
}

func cardOf(t *testing.T, r fakeapi.Request) card {
	t.Helper()
	var m message
	if err := r.JSON(&m); err != nil || m.Type != "message" || len(m.Attachments) != 1 {
		t.Fatalf("posted %s", r.Body)
	}
	c := m.Attachments[0].Content
	if c.Type != "AdaptiveCard" || c.Version != "1.4" || len(c.Body) < 2 || c.Body[0].Type != "TextBlock" {
		t.Fatalf("card %s", r.Body)
	}
	return c
}

func TestAlertAndRecoveryReachTheWorkflow(t *testing.T) {
	s := teamsAPI(t)
	for _, ev := range []sdk.Event{fakeapi.Alert(), fakeapi.Recovery()} {
		if err := sdktest.Notify(context.Background(), New(), config(s), ev); err != nil {
			t.Fatalf("Notify %s: %v", ev.Kind, err)
		}
	}
	reqs := s.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	alert, recovery := cardOf(t, reqs[0]), cardOf(t, reqs[1])
	if !strings.HasPrefix(alert.Body[0].Text, "[CRITICAL] web01 cpu_monitor.cpu_percent 97.2 ≥ 95") || alert.Body[0].Color != "Attention" ||
		len(alert.Actions) != 1 || alert.Actions[0].URL != "https://hbd.example.com/hosts/web01" {
		t.Errorf("alert card %s", reqs[0].Body)
	}
	if !strings.Contains(alert.Body[1].Text, "Host: web01\nMetric: cpu_monitor.cpu_percent") {
		t.Errorf("card text %q", alert.Body[1].Text)
	}
	if !strings.HasPrefix(recovery.Body[0].Text, "[RECOVERED]") || recovery.Body[0].Color != "Good" ||
		!strings.Contains(recovery.Body[1].Text, "is OK again") {
		t.Errorf("recovery card %s", reqs[1].Body)
	}
}

func TestTemplatesWriteTheCard(t *testing.T) {
	s := teamsAPI(t)
	cfg := config(s)
	cfg["title_template"] = "{{.Emoji}} {{.Host}} {{.Kind}}"
	cfg["body_template"] = "{{.Text}} (owner {{.Owner}})"
	if err := sdktest.Notify(context.Background(), New(), cfg, fakeapi.Alert()); err != nil {
		t.Fatal(err)
	}
	if c := cardOf(t, s.Last(t)); c.Body[0].Text != "🔴 web01 firing" || !strings.HasSuffix(c.Body[1].Text, "(owner alice)") {
		t.Errorf("card %+v", c)
	}
}

func TestTestCard(t *testing.T) {
	s := teamsAPI(t)
	if err := sdktest.Notify(context.Background(), New(), config(s), fakeapi.Test()); err != nil {
		t.Fatal(err)
	}
	c := cardOf(t, s.Last(t))
	if !strings.HasPrefix(c.Body[0].Text, "[TEST]") || c.Body[0].Color != "Accent" || len(c.Body) != 2 {
		t.Errorf("test card %+v", c)
	}
}

func TestNotifyClassifiesFailures(t *testing.T) {
	s := teamsAPI(t)
	fakeapi.CheckFailures(t, New(), s, config(s), fakeapi.Alert(), []fakeapi.Failure{
		{Name: "throttled", Answer: fakeapi.Answer{Status: http.StatusTooManyRequests, Header: map[string]string{"Retry-After": "3"},
			Body: `{"error":{"code":"WorkflowRequestsThrottled","message":"Number of requests exceeded the limit"}}`},
			RetryAfter: 3 * time.Second, Quote: "WorkflowRequestsThrottled"},
		{Name: "unavailable", Answer: fakeapi.Answer{Status: http.StatusServiceUnavailable, Header: map[string]string{"Retry-After": "3"}}, RetryAfter: 3 * time.Second, Quote: "503"},
		{Name: "gateway timeout", Answer: fakeapi.Answer{Status: http.StatusGatewayTimeout}, Quote: "504"},
	})
	for code, url := range map[string]string{
		"WorkflowNotFound":                       s.URL + "/workflows/gone/triggers/manual/paths/invoke?api-version=1&sig=" + signature,
		"DirectApiInvalidAuthorizationSignature": s.URL + workflowPath + "?api-version=1&sig=wrongSIGNATURE",
	} {
		err := sdktest.Notify(context.Background(), New(), sdk.Config{"webhook_url": url}, fakeapi.Alert())
		if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), code) || strings.Contains(err.Error(), "SIGNATURE") {
			t.Errorf("%s: Notify = %v, want a permanent error quoting Teams, without the URL", code, err)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := sdktest.Validate(New(), sdk.Config{}); !errors.Is(err, sdk.ErrRequired) || sdk.ErrorField(err) != "webhook_url" {
		t.Errorf("missing: %v", err)
	}
	if err := sdktest.Validate(New(), sdk.Config{"webhook_url": "prod-01.westus.logic.azure.com/workflows"}); !errors.Is(err, sdk.ErrBadURL) {
		t.Errorf("not a url: %v", err)
	}
}

func TestConformance(t *testing.T) {
	s := teamsAPI(t)
	sdktest.Conformance(t, New(), config(s))
}

func TestAlertAndRecoveryOverPluginProtocol(t *testing.T) {
	s := teamsAPI(t)
	reqs := fakeapi.OverPlugin(t, New(), s, config(s))
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	if a, r := cardOf(t, reqs[0]), cardOf(t, reqs[1]); !strings.Contains(a.Body[0].Text, "97.2 ≥ 95") || len(a.Actions) != 1 ||
		!strings.HasPrefix(r.Body[0].Text, "[RECOVERED]") {
		t.Errorf("alert %s, recovery %s", reqs[0].Body, reqs[1].Body)
	}
}
