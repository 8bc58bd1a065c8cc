package ntfy

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/notifiers/internal/fakeapi"
	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/sdktest"
)

func event(level, previous sdk.Level) sdk.Event {
	return sdk.Event{ID: "ev-1", Host: "web01", MetricPath: "memory_monitor.percent", Level: level,
		PreviousLevel: previous, Value: 88.2, Time: time.Now(), URL: "https://hbd.example/alerts"}
}

func TestNotifyPublishesJSON(t *testing.T) {
	tests := []struct {
		name     string
		cfg      sdk.Config
		ev       sdk.Event
		priority int
		tag      string
	}{
		{"critical is max", nil, event(sdk.LevelCritical, sdk.LevelWarning), 5, "rotating_light"},
		{"warning is high", nil, event(sdk.LevelWarning, sdk.LevelOK), 4, "warning"},
		{"configured priority", sdk.Config{"priority": "3"}, event(sdk.LevelCritical, ""), 3, "rotating_light"},
		{"recovery is low", sdk.Config{"priority": "5"}, event(sdk.LevelOK, sdk.LevelCritical), 2, "white_check_mark"},
		{"test", nil, sdk.Event{Test: true, Channel: "phone"}, 3, "test_tube"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sdktest.NewReceiver(t)
			cfg := sdk.Config{"server_url": r.URL + "/", "topic": "hbd-alerts", "token": "tk_abc123"}
			maps.Copy(cfg, tt.cfg)
			if err := sdktest.Notify(context.Background(), New(), cfg, tt.ev); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			req, ok := r.Last()
			if !ok {
				t.Fatal("nothing published")
			}
			if req.Method != http.MethodPost || req.Path != "/" || req.Header.Get("Authorization") != "Bearer tk_abc123" {
				t.Errorf("%s %s, Authorization %q", req.Method, req.Path, req.Header.Get("Authorization"))
			}
			var m message
			if err := json.Unmarshal(req.Body, &m); err != nil {
				t.Fatalf("body: %v", err)
			}
			if m.Topic != "hbd-alerts" || m.Priority != tt.priority || !slices.Contains(m.Tags, tt.tag) ||
				m.Title != sdk.RenderTitle(tt.ev) || m.Message == "" || m.Click != tt.ev.URL {
				t.Errorf("published %+v", m)
			}
		})
	}
}

func TestNotifyWithoutTokenSendsNoAuthorization(t *testing.T) {
	r := sdktest.NewReceiver(t)
	if err := sdktest.Notify(context.Background(), New(), sdk.Config{"server_url": r.URL, "topic": "t"}, event(sdk.LevelWarning, "")); err != nil {
		t.Fatal(err)
	}
	if req, _ := r.Last(); req.Header.Get("Authorization") != "" {
		t.Fatal("Authorization sent without a token")
	}
}

func TestNotifyClassifiesAnswers(t *testing.T) {
	r := sdktest.NewReceiver(t)
	cfg := sdk.Config{"server_url": r.URL, "topic": "t", "token": "tk_secret"}
	for status, permanent := range map[int]bool{401: true, 403: true, 429: false, 500: false, 507: false} {
		r.Respond(status, `{"code":40101,"http":401,"error":"unauthorized"}`)
		err := sdktest.Notify(context.Background(), New(), cfg, event(sdk.LevelCritical, ""))
		if err == nil || sdk.IsPermanent(err) != permanent {
			t.Errorf("status %d: Notify = %v (permanent %v), want permanent %v", status, err, sdk.IsPermanent(err), permanent)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     sdk.Config
		field   string
		wantErr error
	}{
		{"topic only", sdk.Config{"topic": "alerts_1"}, "", nil},
		{"missing topic", sdk.Config{}, "topic", sdk.ErrRequired},
		{"topic with slash", sdk.Config{"topic": "a/b"}, "topic", ErrTopic},
		{"bad server", sdk.Config{"topic": "a", "server_url": "ntfy.sh"}, "server_url", sdk.ErrBadURL},
		{"priority 0", sdk.Config{"topic": "a", "priority": "0"}, "priority", ErrPriority},
		{"priority 5", sdk.Config{"topic": "a", "priority": "5"}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sdktest.Validate(New(), tt.cfg)
			if !errors.Is(err, tt.wantErr) || sdk.ErrorField(err) != tt.field {
				t.Fatalf("Validate = %v (field %q), want %v on %q", err, sdk.ErrorField(err), tt.wantErr, tt.field)
			}
		})
	}
}

func TestConformance(t *testing.T) {
	r := sdktest.NewReceiver(t)
	sdktest.Conformance(t, New(), sdk.Config{"server_url": r.URL, "topic": "hbd", "token": "tk_x"})
}

func TestPublishOverPluginProtocol(t *testing.T) {
	r := sdktest.NewReceiver(t)
	h := sdktest.Start(t, New())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	schema, err := h.Client.Schema(ctx)
	if err != nil || schema.Type != "ntfy" {
		t.Fatalf("Schema = %+v, %v", schema, err)
	}
	if err := h.Client.Notify(ctx, sdk.Config{"server_url": r.URL, "topic": "hbd"}, event(sdk.LevelCritical, "")); err != nil {
		t.Fatalf("Notify over gRPC: %v", err)
	}
	if len(r.Requests()) != 1 {
		t.Fatalf("receiver got %d requests", len(r.Requests()))
	}
}

// ntfyAPI imitates an ntfy server's JSON publishing: POST / with the topic
// in the body, an access token as Authorization: Bearer, errors as
// {"code", "http", "error"}.
func ntfyAPI(t *testing.T) *fakeapi.Server {
	return fakeapi.New(t, func(r fakeapi.Request) fakeapi.Answer {
		var m message
		switch {
		case r.Path != "/" || r.Method != http.MethodPost:
			return fakeapi.JSON(http.StatusNotFound, `{"code":40401,"http":404,"error":"page not found"}`)
		case r.Header.Get("Authorization") != "Bearer tk_abc123":
			return fakeapi.JSON(http.StatusUnauthorized, `{"code":40101,"http":401,"error":"unauthorized"}`)
		case r.JSON(&m) != nil || !topicPattern.MatchString(m.Topic):
			return fakeapi.JSON(http.StatusBadRequest, `{"code":40009,"http":400,"error":"invalid request: topic invalid"}`)
		case m.Topic != "hbd-alerts":
			return fakeapi.JSON(http.StatusForbidden, `{"code":40301,"http":403,"error":"forbidden"}`)
		}
		return fakeapi.JSON(http.StatusOK, `{"id":"sPs71M8A2T","time":1796096900,"event":"message","topic":"hbd-alerts"}`)
	})
}

func TestNotifyClassifiesTheServersFailures(t *testing.T) {
	s := ntfyAPI(t)
	cfg := sdk.Config{"server_url": s.URL, "topic": "hbd-alerts", "token": "tk_abc123"}
	fakeapi.CheckFailures(t, New(), s, cfg, fakeapi.Alert(), []fakeapi.Failure{
		{Name: "rate limited", Answer: fakeapi.Answer{Status: http.StatusTooManyRequests, Header: map[string]string{"Retry-After": "3"},
			Body: `{"code":42901,"http":429,"error":"limit reached: too many requests"}`}, RetryAfter: 3 * time.Second, Quote: "too many requests"},
		{Name: "server error", Answer: fakeapi.JSON(http.StatusInternalServerError, `{"code":50001,"http":500,"error":"internal server error"}`), Quote: "internal server error"},
	})
	for quote, set := range map[string]sdk.Config{"unauthorized": {"token": "tk_revoked"}, "forbidden": {"topic": "other"}} {
		c := maps.Clone(cfg)
		maps.Copy(c, set)
		if err := sdktest.Notify(context.Background(), New(), c, fakeapi.Alert()); !sdk.IsPermanent(err) || !strings.Contains(err.Error(), quote) {
			t.Errorf("%s: Notify = %v, want a permanent error quoting ntfy", quote, err)
		}
	}
}

func TestAlertAndRecoveryOverPluginProtocol(t *testing.T) {
	s := ntfyAPI(t)
	reqs := fakeapi.OverPlugin(t, New(), s, sdk.Config{"server_url": s.URL, "topic": "hbd-alerts", "token": "tk_abc123"})
	var a, r message
	if len(reqs) != 2 || reqs[0].JSON(&a) != nil || reqs[1].JSON(&r) != nil {
		t.Fatalf("requests %+v", reqs)
	}
	if !strings.Contains(a.Title, "97.2 ≥ 95") || a.Click != "https://hbd.example.com/hosts/web01" || a.Priority != 5 ||
		!strings.HasPrefix(r.Title, "[RECOVERED]") || r.Priority != 2 {
		t.Errorf("alert %+v, recovery %+v", a, r)
	}
}
