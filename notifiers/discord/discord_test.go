package discord

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

const hookPath = "/api/webhooks/123456789012345678/Zp3kQ-webhook_token"

// discordAPI imitates Discord's execute-webhook endpoint.
func discordAPI(t *testing.T) *fakeapi.Server {
	return fakeapi.New(t, func(r fakeapi.Request) fakeapi.Answer {
		var m message
		switch {
		case r.Method != http.MethodPost:
			return fakeapi.JSON(http.StatusMethodNotAllowed, `{"message": "405: Method Not Allowed", "code": 0}`)
		case !strings.HasPrefix(r.Path, "/api/webhooks/123456789012345678/"):
			return fakeapi.JSON(http.StatusNotFound, `{"message": "Unknown Webhook", "code": 10015}`)
		case r.Path != hookPath:
			return fakeapi.JSON(http.StatusUnauthorized, `{"message": "Invalid Webhook Token", "code": 50027}`)
		case r.Header.Get("Content-Type") != "application/json" || r.JSON(&m) != nil || len(m.Embeds) == 0:
			return fakeapi.JSON(http.StatusBadRequest, `{"message": "Cannot send an empty message", "code": 50006}`)
		}
		return fakeapi.JSON(http.StatusOK, `{"id":"1187000000000000000","type":0,"content":"","channel_id":"1186000000000000000","embeds":[{}]}`)
	})
}

func config(s *fakeapi.Server) sdk.Config { return sdk.Config{"webhook_url": s.URL + hookPath} }

func TestAlertAndRecoveryReachTheWebhook(t *testing.T) {
	s := discordAPI(t)
	cfg := config(s)
	cfg["username"] = "hbd @everyone"
	for _, ev := range []sdk.Event{fakeapi.Alert(), fakeapi.Recovery()} {
		if err := sdktest.Notify(context.Background(), New(), cfg, ev); err != nil {
			t.Fatalf("Notify %s: %v", ev.Kind, err)
		}
	}
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].Query.Get("wait") != "true" {
		t.Fatalf("requests %+v", reqs)
	}
	var alert, recovery message
	if reqs[0].JSON(&alert) != nil || reqs[1].JSON(&recovery) != nil {
		t.Fatal("bodies are not JSON")
	}
	e := alert.Embeds[0]
	if !strings.HasPrefix(e.Title, "[CRITICAL] web01 cpu_monitor.cpu_percent 97.2 ≥ 95") || e.Color != 0xd32f2f ||
		e.URL != "https://hbd.example.com/hosts/web01" || e.Timestamp != "2026-12-01T03:48:20Z" ||
		alert.Username != "hbd @everyone" || alert.AllowedMentions.Parse == nil || len(alert.AllowedMentions.Parse) != 0 {
		t.Errorf("alert %s", reqs[0].Body)
	}
	if !strings.Contains(e.Description, "Host: web01") {
		t.Errorf("description %q", e.Description)
	}
	if r := recovery.Embeds[0]; !strings.HasPrefix(r.Title, "[RECOVERED]") || r.Color != 0x2e7d32 {
		t.Errorf("recovery %s", reqs[1].Body)
	}
}

func TestNotifyClassifiesFailures(t *testing.T) {
	s := discordAPI(t)
	fakeapi.CheckFailures(t, New(), s, config(s), fakeapi.Alert(), []fakeapi.Failure{
		{Name: "rate limited (header)", Answer: fakeapi.Answer{Status: http.StatusTooManyRequests,
			Header: map[string]string{"Retry-After": "3", "Content-Type": "application/json"},
			Body:   `{"message": "You are being rate limited.", "retry_after": 2.5, "global": false}`},
			RetryAfter: 3 * time.Second, Quote: "You are being rate limited."},
		{Name: "rate limited (body)", Answer: fakeapi.JSON(http.StatusTooManyRequests, `{"message": "You are being rate limited.", "retry_after": 0.25, "global": true}`),
			RetryAfter: 250 * time.Millisecond, Quote: "429"},
		{Name: "server error", Answer: fakeapi.Answer{Status: http.StatusBadGateway, Body: "upstream"}, Quote: "502"},
		{Name: "empty message", Answer: fakeapi.JSON(http.StatusBadRequest, `{"message": "Cannot send an empty message", "code": 50006}`),
			Permanent: true, Quote: "Cannot send an empty message"},
	})
	for name, path := range map[string]string{
		"Unknown Webhook":       "/api/webhooks/999/x",
		"Invalid Webhook Token": "/api/webhooks/123456789012345678/revoked",
	} {
		err := sdktest.Notify(context.Background(), New(), sdk.Config{"webhook_url": s.URL + path}, fakeapi.Alert())
		if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "revoked") {
			t.Errorf("%s: Notify = %v, want a permanent error quoting Discord, without the URL", name, err)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   sdk.Config
		field string
		err   error
	}{
		{"webhook", sdk.Config{"webhook_url": "https://discord.com/api/webhooks/1/x"}, "", nil},
		{"missing", sdk.Config{}, "webhook_url", sdk.ErrRequired},
		{"not a url", sdk.Config{"webhook_url": "discord.com/api/webhooks/1/x"}, "webhook_url", sdk.ErrBadURL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := sdktest.Validate(New(), tt.cfg)
			if sdk.ErrorField(err) != tt.field || !errors.Is(err, tt.err) {
				t.Fatalf("Validate = %v (field %q), want %v on %q", err, sdk.ErrorField(err), tt.err, tt.field)
			}
		})
	}
	if err := sdktest.Validate(New(), sdk.Config{"webhook_url": "https://x.example/h", "username": strings.Repeat("n", 81)}); sdk.ErrorField(err) != "username" {
		t.Errorf("long username: %v", err)
	}
}

func TestConformance(t *testing.T) {
	s := discordAPI(t)
	sdktest.Conformance(t, New(), config(s))
}

func TestAlertAndRecoveryOverPluginProtocol(t *testing.T) {
	s := discordAPI(t)
	reqs := fakeapi.OverPlugin(t, New(), s, config(s))
	var alert, recovery message
	if len(reqs) != 2 || reqs[0].JSON(&alert) != nil || reqs[1].JSON(&recovery) != nil {
		t.Fatalf("requests %+v", reqs)
	}
	if !strings.Contains(alert.Embeds[0].Title, "97.2 ≥ 95") || alert.Embeds[0].URL == "" || !strings.HasPrefix(recovery.Embeds[0].Title, "[RECOVERED]") {
		t.Errorf("alert %s, recovery %s", reqs[0].Body, reqs[1].Body)
	}
}

func TestEscapeKeepsMarkdownLiteral(t *testing.T) {
	if got := escape("a*b_c|d~e`f"); got != "a\\*b_c\\|d\\~e\\`f" {
		t.Errorf("escape = %q", got)
	}
}
