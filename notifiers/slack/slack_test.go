package slack

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
	hookPath = "/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX"
	botToken = "xoxb-1234-5678-abcdefABCDEF"
)

// slackAPI imitates Slack: an incoming webhook at hookPath answering "ok"
// (or Slack's plain-text error codes), and chat.postMessage answering
// {"ok": …} JSON with HTTP 200 even when it refuses.
func slackAPI(t *testing.T) *fakeapi.Server {
	return fakeapi.New(t, func(r fakeapi.Request) fakeapi.Answer {
		var m message
		switch {
		case r.Method != http.MethodPost:
			return fakeapi.Answer{Status: http.StatusMethodNotAllowed}
		case r.Path == hookPath:
			if r.JSON(&m) != nil || m.Text == "" {
				return fakeapi.Answer{Status: http.StatusBadRequest, Body: "invalid_payload"}
			}
			return fakeapi.Answer{Body: "ok"}
		case strings.HasPrefix(r.Path, "/services/"):
			return fakeapi.Answer{Status: http.StatusNotFound, Body: "no_service"}
		case r.Path == "/api/chat.postMessage":
			switch {
			case r.Header.Get("Authorization") != "Bearer "+botToken:
				return fakeapi.JSON(http.StatusOK, `{"ok":false,"error":"invalid_auth"}`)
			case r.JSON(&m) != nil || m.Text == "":
				return fakeapi.JSON(http.StatusOK, `{"ok":false,"error":"no_text"}`)
			case m.Channel != "C0123456789":
				return fakeapi.JSON(http.StatusOK, `{"ok":false,"error":"channel_not_found"}`)
			}
			return fakeapi.JSON(http.StatusOK, `{"ok":true,"channel":"C0123456789","ts":"1503435956.000247","message":{"type":"message"}}`)
		}
		return fakeapi.Answer{Status: http.StatusNotFound}
	})
}

func hookConfig(s *fakeapi.Server) sdk.Config { return sdk.Config{"webhook_url": s.URL + hookPath} }

func botConfig(s *fakeapi.Server) sdk.Config {
	return sdk.Config{"token": botToken, "channel": "C0123456789", "api_url": s.URL + "/api"}
}

func posted(t *testing.T, r fakeapi.Request) message {
	t.Helper()
	var m message
	if err := r.JSON(&m); err != nil || len(m.Attachments) != 1 {
		t.Fatalf("posted %s (%v)", r.Body, err)
	}
	if r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
	}
	return m
}

func TestWebhookPostsTheAlertAndItsRecovery(t *testing.T) {
	s := slackAPI(t)
	for _, ev := range []sdk.Event{fakeapi.Alert(), fakeapi.Recovery()} {
		if err := sdktest.Notify(context.Background(), New(), hookConfig(s), ev); err != nil {
			t.Fatalf("Notify %s: %v", ev.Kind, err)
		}
	}
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].Path != hookPath || reqs[0].Header.Get("Authorization") != "" {
		t.Fatalf("requests %+v", reqs)
	}
	alert, recovery := posted(t, reqs[0]), posted(t, reqs[1])
	a := alert.Attachments[0]
	if !strings.HasPrefix(alert.Text, "[CRITICAL] web01 cpu_monitor.cpu_percent 97.2 ≥ 95") || a.Color != sdk.ColorCritical ||
		a.TitleLink != "https://hbd.example.com/hosts/web01" || a.TS != 1796096900 || alert.Channel != "" {
		t.Errorf("alert %+v", alert)
	}
	if !strings.Contains(a.Text, "samples &lt;&amp;&gt;") || strings.Contains(a.Text, "<&>") {
		t.Errorf("mrkdwn control characters not escaped: %q", a.Text)
	}
	if !strings.HasPrefix(recovery.Text, "[RECOVERED] web01 cpu_monitor.cpu_percent is OK again") || recovery.Attachments[0].Color != sdk.ColorResolved {
		t.Errorf("recovery %+v", recovery)
	}
}

func TestBotTokenUsesChatPostMessage(t *testing.T) {
	s := slackAPI(t)
	cfg := botConfig(s)
	cfg["webhook_url"] = s.URL + hookPath // the token wins
	if err := sdktest.Notify(context.Background(), New(), cfg, fakeapi.Test()); err != nil {
		t.Fatal(err)
	}
	r := s.Last(t)
	m := posted(t, r)
	if r.Path != "/api/chat.postMessage" || r.Header.Get("Authorization") != "Bearer "+botToken ||
		m.Channel != "C0123456789" || !strings.HasPrefix(m.Text, "[TEST]") {
		t.Errorf("%s %s: %+v", r.Path, r.Header.Get("Authorization"), m)
	}
}

func TestNotifyClassifiesFailures(t *testing.T) {
	s := slackAPI(t)
	t.Run("webhook", func(t *testing.T) {
		fakeapi.CheckFailures(t, New(), s, hookConfig(s), fakeapi.Alert(), []fakeapi.Failure{
			{Name: "archived channel", Answer: fakeapi.Answer{Status: http.StatusGone, Body: "channel_is_archived"}, Permanent: true, Quote: "channel_is_archived"},
			{Name: "revoked token", Answer: fakeapi.Answer{Status: http.StatusForbidden, Body: "invalid_token"}, Permanent: true, Quote: "invalid_token"},
			{Name: "rate limited", Answer: fakeapi.Answer{Status: http.StatusTooManyRequests, Header: map[string]string{"Retry-After": "3"}}, RetryAfter: 3 * time.Second, Quote: "429"},
			{Name: "rollup error", Answer: fakeapi.Answer{Status: http.StatusInternalServerError, Body: "rollup_error"}, Quote: "rollup_error"},
		})
		err := sdktest.Notify(context.Background(), New(), sdk.Config{"webhook_url": s.URL + "/services/T0001/B0001/revoked"}, fakeapi.Alert())
		if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "no_service") {
			t.Errorf("unknown webhook: %v", err)
		}
	})
	t.Run("bot", func(t *testing.T) {
		fakeapi.CheckFailures(t, New(), s, botConfig(s), fakeapi.Alert(), []fakeapi.Failure{
			{Name: "rate limited", Answer: fakeapi.Answer{Status: http.StatusTooManyRequests, Header: map[string]string{"Retry-After": "3"}}, RetryAfter: 3 * time.Second, Quote: "429"},
			{Name: "ratelimited in the answer", Answer: fakeapi.JSON(http.StatusOK, `{"ok":false,"error":"ratelimited"}`), Quote: "ratelimited"},
			{Name: "not json", Answer: fakeapi.Answer{Body: "<html>"}, Quote: "unreadable"},
		})
		for name, cfg := range map[string]sdk.Config{
			"invalid_auth":      {"token": "xoxb-revoked", "channel": "C0123456789", "api_url": s.URL + "/api"},
			"channel_not_found": {"token": botToken, "channel": "#nowhere", "api_url": s.URL + "/api"},
		} {
			err := sdktest.Notify(context.Background(), New(), cfg, fakeapi.Alert())
			if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), name) {
				t.Errorf("%s: Notify = %v, want a permanent error quoting Slack", name, err)
			}
		}
	})
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   sdk.Config
		field string
		err   error
	}{
		{"webhook", sdk.Config{"webhook_url": "https://hooks.slack.com/services/T/B/X"}, "", nil},
		{"bot", sdk.Config{"token": "xoxb-1", "channel": "#ops"}, "", nil},
		{"nothing", sdk.Config{}, "webhook_url", ErrNoDestination},
		{"bad webhook", sdk.Config{"webhook_url": "hooks.slack.com/x"}, "webhook_url", sdk.ErrBadURL},
		{"bot without channel", sdk.Config{"token": "xoxb-1"}, "channel", ErrChannel},
		{"bad api url", sdk.Config{"token": "xoxb-1", "channel": "C1", "api_url": "ftp://x"}, "api_url", sdk.ErrBadURL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := sdktest.Validate(New(), tt.cfg)
			if sdk.ErrorField(err) != tt.field || !errors.Is(err, tt.err) {
				t.Fatalf("Validate = %v (field %q), want %v on %q", err, sdk.ErrorField(err), tt.err, tt.field)
			}
		})
	}
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, New(), botConfig(slackAPI(t)))
}

func TestAlertAndRecoveryOverPluginProtocol(t *testing.T) {
	s := slackAPI(t)
	reqs := fakeapi.OverPlugin(t, New(), s, hookConfig(s))
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	if a, r := posted(t, reqs[0]), posted(t, reqs[1]); !strings.Contains(a.Text, "97.2 ≥ 95") ||
		a.Attachments[0].TitleLink != "https://hbd.example.com/hosts/web01" || !strings.HasPrefix(r.Text, "[RECOVERED]") {
		t.Errorf("alert %+v, recovery %+v", a, r)
	}
}
