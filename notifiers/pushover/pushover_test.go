package pushover

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/sdktest"
)

const okAnswer = `{"status":1,"request":"647d2300-702c-4b38-8b2f-d56326ae460b"}`

func newReceiver(t *testing.T) *sdktest.Receiver {
	t.Helper()
	r := sdktest.NewReceiver(t)
	r.Respond(http.StatusOK, okAnswer)
	return r
}

func config(r *sdktest.Receiver) sdk.Config {
	return sdk.Config{"token": "azGDORePK8gMaC0QOYAMyEEuzJnyUi", "user": "uQiRzpo4DXghDmr9QzzfQu27cmVRsG", "api_url": r.URL + "/1/messages.json"}
}

func critical() sdk.Event {
	return sdk.Event{ID: "ev-1", Host: "web01", MetricPath: "cpu_monitor.cpu_percent", Level: sdk.LevelCritical,
		PreviousLevel: sdk.LevelWarning, Value: 95.5, Since: time.Unix(1711234000, 0), Time: time.Unix(1711234567, 0),
		URL: "https://hbd.example/alerts"}
}

func TestNotifyPostsTheForm(t *testing.T) {
	recovery := critical()
	recovery.Level, recovery.PreviousLevel, recovery.Value = sdk.LevelOK, sdk.LevelCritical, 40
	warning := critical()
	warning.Level = sdk.LevelWarning
	test := sdk.Event{Test: true, Channel: "ops", Level: sdk.LevelCritical}
	worded := critical()
	worded.Text = "web01 cpu_monitor.cpu_percent 95.5 ≥ 95 (CRITICAL) for 3 samples"

	tests := []struct {
		name  string
		extra sdk.Config
		ev    sdk.Event
		want  map[string]string // "" means the parameter must be absent
	}{
		{"critical is an emergency", nil, critical(), map[string]string{
			"priority": "2", "retry": "60", "expire": "3600",
			"title": "[CRITICAL] web01 cpu_monitor.cpu_percent = 95.5",
			"url":   "https://hbd.example/alerts", "timestamp": "1711234567", "sound": "", "device": ""}},
		{"configured priority wins", sdk.Config{"priority": "1", "sound": "siren", "device": "phone"}, critical(), map[string]string{
			"priority": "1", "retry": "", "expire": "", "sound": "siren", "device": "phone"}},
		{"configured emergency gets retry and expire", sdk.Config{"priority": "2"}, warning, map[string]string{
			"priority": "2", "retry": "60", "expire": "3600"}},
		{"warning is normal", nil, warning, map[string]string{"priority": "0", "retry": ""}},
		{"recovery is quiet", sdk.Config{"priority": "2"}, recovery, map[string]string{
			"priority": "-1", "retry": "", "title": "[RECOVERED] web01 cpu_monitor.cpu_percent = 40 (was CRITICAL)"}},
		{"test message", nil, test, map[string]string{"priority": "0", "title": "[TEST] hbd test notification for channel ops"}},
		{"the daemon's text is the title", nil, worded, map[string]string{
			"title": "[CRITICAL] web01 cpu_monitor.cpu_percent 95.5 ≥ 95 (CRITICAL) for 3 samples"}},
		{"acknowledgement is quiet", sdk.Config{"priority": "2"}, sdk.SampleEvent(sdk.KindAcknowledged), map[string]string{
			"priority": "-1", "retry": "", "title": "[ACKNOWLEDGED] web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples"}},
		{"templates", sdk.Config{sdk.TitleTemplateKey: "{{.Emoji}} {{.Host}} down", sdk.BodyTemplateKey: "{{value .Value}}{{.Comparison}}{{value .Threshold}}"},
			sdk.SampleEvent(sdk.KindFiring), map[string]string{"title": "🔴 web01 down", "message": "97.2>=95"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t)
			cfg := config(r)
			maps.Copy(cfg, tt.extra)
			if err := sdktest.Notify(context.Background(), New(), cfg, tt.ev); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			req, ok := r.Last()
			if !ok {
				t.Fatal("nothing posted")
			}
			if req.Method != http.MethodPost || req.Path != "/1/messages.json" ||
				req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
				t.Fatalf("got %s %s (%s)", req.Method, req.Path, req.Header.Get("Content-Type"))
			}
			form, err := req.Form()
			if err != nil {
				t.Fatal(err)
			}
			if form.Get("token") != cfg["token"] || form.Get("user") != cfg["user"] || form.Get("message") == "" {
				t.Errorf("token/user/message not posted: %v", form)
			}
			for k, want := range tt.want {
				if got := form.Get(k); got != want || (want == "" && form.Has(k)) {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestNotifyClassifiesFailures(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		permanent bool
	}{
		{"invalid token", http.StatusBadRequest, `{"token":"invalid","errors":["application token is invalid"],"status":0}`, true},
		{"rate limited", http.StatusTooManyRequests, `{"status":0}`, false},
		{"server error", http.StatusInternalServerError, "oops", false},
		{"status 0 on 200", http.StatusOK, `{"status":0,"errors":["user key is invalid"]}`, true},
		{"garbage on 200", http.StatusOK, `<html>`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sdktest.NewReceiver(t)
			r.Respond(tt.status, tt.body)
			cfg := config(r)
			err := sdktest.Notify(context.Background(), New(), cfg, critical())
			if err == nil || sdk.IsPermanent(err) != tt.permanent {
				t.Fatalf("Notify = %v (permanent %v), want error with permanent %v", err, sdk.IsPermanent(err), tt.permanent)
			}
			if strings.Contains(err.Error(), cfg["token"]) || strings.Contains(err.Error(), cfg["user"]) {
				t.Fatalf("error leaks a key: %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	base := sdk.Config{"token": "t", "user": "u"}
	tests := []struct {
		name  string
		set   sdk.Config
		field string
	}{
		{"minimal", nil, ""},
		{"default api url", sdk.Config{"api_url": ""}, ""},
		{"missing token", sdk.Config{"token": ""}, "token"},
		{"missing user", sdk.Config{"user": " "}, "user"},
		{"priority too high", sdk.Config{"priority": "3"}, "priority"},
		{"priority not integer", sdk.Config{"priority": "1.5"}, "priority"},
		{"priority negative ok", sdk.Config{"priority": "-2"}, ""},
		{"api url not http", sdk.Config{"api_url": "ftp://x"}, "api_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := maps.Clone(base)
			maps.Copy(cfg, tt.set)
			err := sdktest.Validate(New(), cfg)
			if got := sdk.ErrorField(err); got != tt.field || (tt.field == "") != (err == nil) {
				t.Fatalf("Validate = %v (field %q), want field %q", err, got, tt.field)
			}
		})
	}
	// The schema lists the priorities, so the SDK refuses others first.
	if err := sdktest.Validate(New(), sdk.Config{"token": "t", "user": "u", "priority": "9"}); !errors.Is(err, sdk.ErrNotOption) {
		t.Errorf("Validate(priority 9) = %v, want ErrNotOption", err)
	}
}

func TestDefaultsToThePushoverAPI(t *testing.T) {
	cfg := sdk.Config{"token": "t", "user": "u"}.WithDefaults(New().Schema())
	if cfg["api_url"] != DefaultAPIURL {
		t.Fatalf("api_url default = %q", cfg["api_url"])
	}
	if _, err := url.Parse(DefaultAPIURL); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	r := newReceiver(t)
	sdktest.Conformance(t, New(), config(r))
}

func TestNotifyOverPluginProtocol(t *testing.T) {
	r := newReceiver(t)
	h := sdktest.Start(t, New())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := h.Client.Notify(ctx, config(r), critical()); err != nil {
		t.Fatalf("Notify over gRPC: %v", err)
	}
	req, ok := r.Last()
	if !ok {
		t.Fatal("nothing posted")
	}
	if form, _ := req.Form(); form.Get("priority") != "2" || form.Get("timestamp") != "1711234567" {
		t.Errorf("posted form %v", form)
	}

	r.Respond(http.StatusBadRequest, `{"status":0,"errors":["user identifier is invalid"]}`)
	err := h.Client.Notify(ctx, config(r), critical())
	if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "user identifier is invalid") {
		t.Fatalf("Notify with rejected key over gRPC = %v, want permanent error quoting Pushover", err)
	}
}
