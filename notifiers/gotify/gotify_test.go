package gotify

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

const appToken = "AqKx3p.vYb7Dk2Z"

// gotifyAPI imitates a Gotify server's POST /message: the application
// token in X-Gotify-Key, errors as {"error", "errorCode",
// "errorDescription"}.
func gotifyAPI(t *testing.T) *fakeapi.Server {
	return fakeapi.New(t, func(r fakeapi.Request) fakeapi.Answer {
		var m message
		switch {
		case r.Path != "/gotify/message" || r.Method != http.MethodPost:
			return fakeapi.JSON(http.StatusNotFound, `{"error":"Not Found","errorCode":404,"errorDescription":"page not found"}`)
		case r.Header.Get("X-Gotify-Key") != appToken:
			return fakeapi.JSON(http.StatusUnauthorized, `{"error":"Unauthorized","errorCode":401,"errorDescription":"you need to provide a valid access token or user credentials to access this api"}`)
		case r.JSON(&m) != nil || m.Message == "":
			return fakeapi.JSON(http.StatusBadRequest, `{"error":"Bad Request","errorCode":400,"errorDescription":"Field 'message' is required"}`)
		}
		return fakeapi.JSON(http.StatusOK, `{"id":25,"appid":5,"message":"…","title":"…","priority":8,"date":"2026-12-01T03:48:20Z"}`)
	})
}

// config serves Gotify under a path prefix, as behind a reverse proxy.
func config(s *fakeapi.Server) sdk.Config {
	return sdk.Config{"server_url": s.URL + "/gotify/", "token": appToken}
}

func TestAlertAndRecoveryReachTheServer(t *testing.T) {
	s := gotifyAPI(t)
	for _, ev := range []sdk.Event{fakeapi.Alert(), fakeapi.Recovery(), fakeapi.Test()} {
		if err := sdktest.Notify(context.Background(), New(), config(s), ev); err != nil {
			t.Fatalf("Notify %s: %v", ev.Kind, err)
		}
	}
	reqs := s.Requests()
	var alert, recovery, test message
	if len(reqs) != 3 || reqs[0].JSON(&alert) != nil || reqs[1].JSON(&recovery) != nil || reqs[2].JSON(&test) != nil {
		t.Fatalf("requests %+v", reqs)
	}
	click, _ := alert.Extras["client::notification"].(map[string]any)["click"].(map[string]any)
	if alert.Title != "[CRITICAL] web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples <&>" || alert.Priority != 8 ||
		!strings.Contains(alert.Message, "Host: web01") || click["url"] != "https://hbd.example.com/hosts/web01" {
		t.Errorf("alert %s", reqs[0].Body)
	}
	if !strings.HasPrefix(recovery.Title, "[RECOVERED]") || recovery.Priority != 2 || test.Priority != 5 {
		t.Errorf("recovery %s, test %s", reqs[1].Body, reqs[2].Body)
	}
}

func TestConfiguredPriority(t *testing.T) {
	s := gotifyAPI(t)
	cfg := config(s)
	cfg["priority"] = "10"
	warning := fakeapi.Alert()
	warning.Level = sdk.LevelWarning
	for _, ev := range []sdk.Event{warning, fakeapi.Recovery()} {
		if err := sdktest.Notify(context.Background(), New(), cfg, ev); err != nil {
			t.Fatal(err)
		}
	}
	var w, r message
	_ = s.Requests()[0].JSON(&w)
	_ = s.Requests()[1].JSON(&r)
	if w.Priority != 10 || r.Priority != 2 {
		t.Errorf("priorities %d, %d", w.Priority, r.Priority)
	}
}

func TestNotifyClassifiesFailures(t *testing.T) {
	s := gotifyAPI(t)
	fakeapi.CheckFailures(t, New(), s, config(s), fakeapi.Alert(), []fakeapi.Failure{
		{Name: "proxy rate limit", Answer: fakeapi.Answer{Status: http.StatusTooManyRequests, Header: map[string]string{"Retry-After": "3"}}, RetryAfter: 3 * time.Second, Quote: "429"},
		{Name: "restarting", Answer: fakeapi.Answer{Status: http.StatusServiceUnavailable, Body: "503 Service Unavailable"}, Quote: "503"},
		{Name: "forbidden", Answer: fakeapi.JSON(http.StatusForbidden, `{"error":"Forbidden","errorCode":403,"errorDescription":"you are not allowed to access this api"}`),
			Permanent: true, Quote: "you are not allowed"},
	})
	cfg := config(s)
	cfg["token"] = "revokedTOKEN"
	if err := sdktest.Notify(context.Background(), New(), cfg, fakeapi.Alert()); !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "valid access token") {
		t.Errorf("revoked token: Notify = %v, want a permanent error quoting Gotify", err)
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
		{"no server", sdk.Config{"server_url": ""}, "server_url", sdk.ErrRequired},
		{"bad server", sdk.Config{"server_url": "gotify.example.com"}, "server_url", sdk.ErrBadURL},
		{"priority 11", sdk.Config{"priority": "11"}, "priority", ErrPriority},
		{"priority 0", sdk.Config{"priority": "0"}, "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sdk.Config{"server_url": "https://gotify.example.com", "token": "t"}
			for k, v := range tt.set {
				cfg[k] = v
			}
			err := sdktest.Validate(New(), cfg)
			if sdk.ErrorField(err) != tt.field || !errors.Is(err, tt.err) {
				t.Fatalf("Validate = %v (field %q), want %v on %q", err, sdk.ErrorField(err), tt.err, tt.field)
			}
		})
	}
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, New(), config(gotifyAPI(t)))
}

func TestAlertAndRecoveryOverPluginProtocol(t *testing.T) {
	s := gotifyAPI(t)
	reqs := fakeapi.OverPlugin(t, New(), s, config(s))
	var a, r message
	if len(reqs) != 2 || reqs[0].JSON(&a) != nil || reqs[1].JSON(&r) != nil || !strings.Contains(a.Title, "97.2 ≥ 95") ||
		!strings.Contains(a.Message, "https://hbd.example.com/hosts/web01") || !strings.HasPrefix(r.Title, "[RECOVERED]") {
		t.Errorf("requests %+v", reqs)
	}
}
