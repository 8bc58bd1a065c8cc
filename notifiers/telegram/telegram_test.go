package telegram

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

const botToken = "123456789:AAEhBOweik9ad9iLdBnSF0Zzv8xQbIbMtrw"

// telegramAPI imitates the Bot API: the token is in the path
// (/bot<token>/<method>), every answer is {"ok": …} JSON, an unknown token
// is 401 and an unknown chat 400.
func telegramAPI(t *testing.T) *fakeapi.Server {
	return fakeapi.New(t, func(r fakeapi.Request) fakeapi.Answer {
		var m message
		switch {
		case !strings.HasPrefix(r.Path, "/bot"):
			return fakeapi.JSON(http.StatusNotFound, `{"ok":false,"error_code":404,"description":"Not Found"}`)
		case r.Path != "/bot"+botToken+"/sendMessage":
			return fakeapi.JSON(http.StatusUnauthorized, `{"ok":false,"error_code":401,"description":"Unauthorized"}`)
		case r.JSON(&m) != nil || m.Text == "":
			return fakeapi.JSON(http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: message text is empty"}`)
		case m.ChatID == "-1001":
			return fakeapi.JSON(http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234567890}}`)
		case m.ChatID != "-1001234567890" && m.ChatID != "@hbd_alerts":
			return fakeapi.JSON(http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`)
		}
		return fakeapi.JSON(http.StatusOK, `{"ok":true,"result":{"message_id":42,"chat":{"id":-1001234567890,"type":"supergroup"},"date":1796096900,"text":"…"}}`)
	})
}

func config(s *fakeapi.Server) sdk.Config {
	return sdk.Config{"bot_token": botToken, "chat_id": "-1001234567890", "api_url": s.URL}
}

func sent(t *testing.T, r fakeapi.Request) message {
	t.Helper()
	var m message
	if err := r.JSON(&m); err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s %q: %s", r.Method, r.Path, r.Header.Get("Content-Type"), r.Body)
	}
	return m
}

func TestAlertAndRecoveryReachTheChat(t *testing.T) {
	s := telegramAPI(t)
	cfg := config(s)
	cfg["message_thread_id"] = "7"
	for _, ev := range []sdk.Event{fakeapi.Alert(), fakeapi.Recovery()} {
		if err := sdktest.Notify(context.Background(), New(), cfg, ev); err != nil {
			t.Fatalf("Notify %s: %v", ev.Kind, err)
		}
	}
	reqs := s.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	alert, recovery := sent(t, reqs[0]), sent(t, reqs[1])
	if !strings.HasPrefix(alert.Text, "<b>[CRITICAL] web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples &lt;&amp;&gt;</b>\n\n") ||
		!strings.Contains(alert.Text, "https://hbd.example.com/hosts/web01") || alert.ParseMode != "HTML" ||
		alert.ChatID != "-1001234567890" || alert.MessageThreadID != 7 || alert.DisableNotification || !alert.LinkPreview.IsDisabled {
		t.Errorf("alert %s", reqs[0].Body)
	}
	if !strings.HasPrefix(recovery.Text, "<b>[RECOVERED]") || !recovery.DisableNotification {
		t.Errorf("recovery %s", reqs[1].Body)
	}

	cfg["silent_recoveries"] = "false"
	cfg["chat_id"] = "@hbd_alerts"
	if err := sdktest.Notify(context.Background(), New(), cfg, fakeapi.Recovery()); err != nil {
		t.Fatal(err)
	}
	if m := sent(t, s.Last(t)); m.DisableNotification || m.ChatID != "@hbd_alerts" {
		t.Errorf("loud recovery %+v", m)
	}
}

func TestNotifyClassifiesFailures(t *testing.T) {
	s := telegramAPI(t)
	fakeapi.CheckFailures(t, New(), s, config(s), fakeapi.Alert(), []fakeapi.Failure{
		{Name: "flood wait", Answer: fakeapi.JSON(http.StatusTooManyRequests, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}`),
			RetryAfter: 3 * time.Second, Quote: "Too Many Requests: retry after 3"},
		{Name: "bad gateway page", Answer: fakeapi.Answer{Status: http.StatusBadGateway, Body: "<html>502 Bad Gateway</html>"}, Quote: "502"},
		{Name: "internal error", Answer: fakeapi.JSON(http.StatusInternalServerError, `{"ok":false,"error_code":500,"description":"Internal Server Error"}`), Quote: "Internal Server Error"},
		{Name: "bot blocked", Answer: fakeapi.JSON(http.StatusForbidden, `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`),
			Permanent: true, Quote: "bot was blocked"},
	})
	for quote, cfg := range map[string]sdk.Config{
		"Unauthorized":                       {"bot_token": "123:revokedTOKEN", "chat_id": "-1001234567890", "api_url": s.URL},
		"chat not found":                     {"bot_token": botToken, "chat_id": "42", "api_url": s.URL},
		"set chat_id to it":                  {"bot_token": botToken, "chat_id": "-1001", "api_url": s.URL},
		"the supergroup -1001234567890: set": {"bot_token": botToken, "chat_id": "-1001", "api_url": s.URL},
	} {
		err := sdktest.Notify(context.Background(), New(), cfg, fakeapi.Alert())
		if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), quote) || strings.Contains(err.Error(), "revokedTOKEN") {
			t.Errorf("%s: Notify = %v, want a permanent error quoting Telegram, without the token", quote, err)
		}
	}
}

func TestTheTokenStaysOutOfNetworkErrors(t *testing.T) {
	cfg := sdk.Config{"bot_token": botToken, "chat_id": "1", "api_url": "http://127.0.0.1:1"}
	err := sdktest.Notify(context.Background(), New(), cfg, fakeapi.Alert())
	if err == nil || sdk.IsPermanent(err) || strings.Contains(err.Error(), "AAEhBOweik9ad9iLdBnSF0Zzv8xQbIbMtrw") {
		t.Fatalf("Notify = %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name  string
		set   sdk.Config
		field string
		err   error
	}{
		{"valid", nil, "", nil},
		{"channel username", sdk.Config{"chat_id": "@hbd_alerts"}, "", nil},
		{"bad chat", sdk.Config{"chat_id": "hbd alerts"}, "chat_id", ErrChatID},
		{"token with a slash", sdk.Config{"bot_token": "123:abc/../x"}, "bot_token", ErrBotToken},
		{"thread zero", sdk.Config{"message_thread_id": "0"}, "message_thread_id", nil},
		{"bad api url", sdk.Config{"api_url": "api.telegram.org"}, "api_url", sdk.ErrBadURL},
		{"missing chat", sdk.Config{"chat_id": ""}, "chat_id", sdk.ErrRequired},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sdk.Config{"bot_token": botToken, "chat_id": "-100123"}
			for k, v := range tt.set {
				cfg[k] = v
			}
			err := sdktest.Validate(New(), cfg)
			if sdk.ErrorField(err) != tt.field || (tt.err != nil && !errors.Is(err, tt.err)) || (tt.field == "") != (err == nil) {
				t.Fatalf("Validate = %v (field %q), want %v on %q", err, sdk.ErrorField(err), tt.err, tt.field)
			}
		})
	}
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, New(), config(telegramAPI(t)))
}

func TestAlertAndRecoveryOverPluginProtocol(t *testing.T) {
	s := telegramAPI(t)
	reqs := fakeapi.OverPlugin(t, New(), s, config(s))
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	if a, r := sent(t, reqs[0]), sent(t, reqs[1]); !strings.Contains(a.Text, "97.2 ≥ 95") || !strings.Contains(a.Text, "https://hbd.example.com/hosts/web01") ||
		!strings.HasPrefix(r.Text, "<b>[RECOVERED]") {
		t.Errorf("alert %+v, recovery %+v", a, r)
	}
}
