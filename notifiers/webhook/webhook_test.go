package webhook

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/sdktest"
)

func event() sdk.Event {
	return sdk.Event{ID: "ev-42", Channel: "ops-hook", Host: "db01", MetricPath: "disk_monitor./.percent",
		Level: sdk.LevelWarning, PreviousLevel: sdk.LevelOK, Value: 91.25,
		Since: time.Date(2024, 3, 23, 22, 0, 0, 0, time.UTC), Time: time.Date(2024, 3, 23, 22, 5, 0, 0, time.UTC),
		Message: "percent 91.25 >= 90", NotificationCount: 1}
}

// verify is what a receiver does with a signed request.
func verify(secret string, req sdktest.Request) bool {
	return hmac.Equal([]byte(req.Header.Get(SignatureHeader)), []byte(Sign(secret, req.Body)))
}

func TestNotifySendsSignedJSON(t *testing.T) {
	r := sdktest.NewReceiver(t)
	cfg := sdk.Config{"url": r.URL + "/hooks/hbd?x=1", "secret": "hook-secret-123",
		"headers": "Authorization: Bearer abc\nX-Team: ops, X-Accept: text/plain, application/json"}
	if err := sdktest.Notify(context.Background(), New(), cfg, event()); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	req, ok := r.Last()
	if !ok {
		t.Fatal("nothing received")
	}
	if req.Method != http.MethodPost || req.Path != "/hooks/hbd" || req.Query.Get("x") != "1" {
		t.Errorf("request %s %s?%s", req.Method, req.Path, req.Query.Encode())
	}
	if !verify("hook-secret-123", req) {
		t.Errorf("signature %q does not verify", req.Header.Get(SignatureHeader))
	}
	if verify("another-secret", req) {
		t.Error("signature verifies with the wrong secret")
	}
	for name, want := range map[string]string{
		"Content-Type": "application/json", "Authorization": "Bearer abc", "X-Team": "ops",
		"X-Accept": "text/plain, application/json", EventIDHeader: "ev-42", "User-Agent": "hbd-notifier-webhook",
	} {
		if got := req.Header.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	var p Payload
	if err := json.Unmarshal(req.Body, &p); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if p.Version != PayloadVersion || p.ID != "ev-42" || p.Key != sdk.SafeID("ev-42") || p.Kind != "firing" || p.Threshold != nil || p.Host != "db01" || p.MetricPath != "disk_monitor./.percent" ||
		p.Level != "WARNING" || p.PreviousLevel != "OK" || p.Value != 91.25 || p.Since == nil ||
		!p.Since.Equal(event().Since) || p.Title != "[WARNING] db01 disk_monitor./.percent = 91.25" || p.Test {
		t.Errorf("payload %+v", p)
	}
	var raw map[string]any
	_ = json.Unmarshal(req.Body, &raw)
	if raw["since"] != "2024-03-23T22:00:00Z" {
		t.Errorf("since encoded as %v, want RFC 3339 UTC", raw["since"])
	}
}

func TestPayloadCarriesTheEventText(t *testing.T) {
	r := sdktest.NewReceiver(t)
	ev := event()
	ev.Host, ev.MetricPath, ev.Level, ev.Value = "web02", "heartbeat.host", sdk.LevelCritical, 2
	ev.Text = "web02 is DOWN: no heartbeat for 2m10s (IPv4 and IPv6)"
	ev.EpisodeStart = ev.Since.Add(-time.Minute)
	if err := sdktest.Notify(context.Background(), New(), sdk.Config{"url": r.URL}, ev); err != nil {
		t.Fatal(err)
	}
	req, _ := r.Last()
	var raw map[string]any
	if err := json.Unmarshal(req.Body, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["summary"] != ev.Text || raw["title"] != "[CRITICAL] "+ev.Text || raw["episode_start"] != "2024-03-23T21:59:00Z" ||
		!strings.HasPrefix(raw["text"].(string), ev.Text+"\n") {
		t.Errorf("payload %s", req.Body)
	}
	// Without a Text (older daemons) the fields are absent and the title
	// keeps its old form.
	if err := sdktest.Notify(context.Background(), New(), sdk.Config{"url": r.URL}, event()); err != nil {
		t.Fatal(err)
	}
	req, _ = r.Last()
	raw = nil
	_ = json.Unmarshal(req.Body, &raw)
	if _, ok := raw["summary"]; ok || raw["episode_start"] != nil || raw["title"] != "[WARNING] db01 disk_monitor./.percent = 91.25" {
		t.Errorf("payload without text %s", req.Body)
	}
}

func TestNotifyMethodAndUnsigned(t *testing.T) {
	r := sdktest.NewReceiver(t)
	if err := sdktest.Notify(context.Background(), New(), sdk.Config{"url": r.URL, "method": "put"}, event()); err != nil {
		t.Fatal(err)
	}
	req, _ := r.Last()
	if req.Method != http.MethodPut || req.Header.Get(SignatureHeader) != "" {
		t.Errorf("method %s, signature %q", req.Method, req.Header.Get(SignatureHeader))
	}
}

func TestNotifyClassifiesAnswers(t *testing.T) {
	tests := []struct {
		status    int
		wantErr   bool
		permanent bool
	}{
		{200, false, false}, {202, false, false}, {204, false, false},
		{400, true, true}, {401, true, true}, {404, true, true}, {410, true, true},
		{408, true, false}, {429, true, false},
		{500, true, false}, {502, true, false}, {503, true, false},
	}
	r := sdktest.NewReceiver(t)
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			r.Respond(tt.status, "receiver says "+http.StatusText(tt.status))
			err := sdktest.Notify(context.Background(), New(), sdk.Config{"url": r.URL, "secret": "s3cr3t-value"}, event())
			if (err != nil) != tt.wantErr || sdk.IsPermanent(err) != tt.permanent {
				t.Fatalf("Notify with %d = %v (permanent %v), want error %v permanent %v",
					tt.status, err, sdk.IsPermanent(err), tt.wantErr, tt.permanent)
			}
			if err != nil && strings.Contains(err.Error(), "s3cr3t-value") {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     sdk.Config
		field   string
		wantErr error
	}{
		{"minimal", sdk.Config{"url": "https://example.com/hook"}, "", nil},
		{"missing url", sdk.Config{}, "url", sdk.ErrRequired},
		{"relative url", sdk.Config{"url": "/hook"}, "url", sdk.ErrBadURL},
		{"bad method", sdk.Config{"url": "https://x", "method": "GET"}, "method", ErrMethod},
		{"header without colon", sdk.Config{"url": "https://x", "headers": "Bearer-token-abc"}, "headers", ErrHeaderLine},
		{"bad header name", sdk.Config{"url": "https://x", "headers": "Bad Name: v"}, "headers", ErrHeaderName},
		{"reserved header", sdk.Config{"url": "https://x", "headers": "x-hbd-signature: forged"}, "headers", ErrHeaderReserved},
		{"comma list", sdk.Config{"url": "https://x", "headers": "A: 1, B: 2"}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sdktest.Validate(New(), tt.cfg)
			if !errors.Is(err, tt.wantErr) || sdk.ErrorField(err) != tt.field {
				t.Fatalf("Validate = %v (field %q), want %v on %q", err, sdk.ErrorField(err), tt.wantErr, tt.field)
			}
		})
	}
	err := sdktest.Validate(New(), sdk.Config{"url": "https://x", "headers": "Authorization: Bearer abc\nsecret-without-colon"})
	if err != nil {
		t.Fatalf("continuation line rejected: %v", err)
	}
	err = sdktest.Validate(New(), sdk.Config{"url": "https://x", "headers": "Bad Name: topsecretvalue"})
	if err == nil || strings.Contains(err.Error(), "topsecretvalue") {
		t.Fatalf("header error %v repeats the value", err)
	}
}

func TestConformance(t *testing.T) {
	r := sdktest.NewReceiver(t)
	sdktest.Conformance(t, New(), sdk.Config{"url": r.URL + "/hook", "secret": "abc", "headers": "X-A: 1"})
}

func TestSignedDeliveryOverPluginProtocol(t *testing.T) {
	r := sdktest.NewReceiver(t)
	h := sdktest.Start(t, New())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := sdk.Config{"url": r.URL, "secret": "wire-secret"}
	if err := h.Client.Notify(ctx, cfg, event()); err != nil {
		t.Fatalf("Notify over gRPC: %v", err)
	}
	req, _ := r.Last()
	if !verify("wire-secret", req) {
		t.Fatal("signature does not verify after the gRPC hop")
	}
	var p Payload
	if err := json.Unmarshal(req.Body, &p); err != nil || !p.Time.Equal(event().Time) || p.NotificationCount != 1 {
		t.Fatalf("payload after the gRPC hop: %+v (%v)", p, err)
	}
	r.Respond(http.StatusNotFound, "no such hook")
	if err := h.Client.Notify(ctx, cfg, event()); !sdk.IsPermanent(err) {
		t.Fatalf("404 over gRPC = %v, want permanent", err)
	}
	r.Respond(http.StatusBadGateway, "")
	if err := h.Client.Notify(ctx, cfg, event()); err == nil || sdk.IsPermanent(err) {
		t.Fatalf("502 over gRPC = %v, want retryable", err)
	}
}

func TestPayloadV2FieldsAndAwkwardIDs(t *testing.T) {
	r := sdktest.NewReceiver(t)
	ev := sdk.SampleEvent(sdk.KindAcknowledged)
	ev.ID = "web01/cpu/1/1 zürich\n"
	if err := sdktest.Notify(context.Background(), New(), sdk.Config{"url": r.URL}, ev); err != nil {
		t.Fatal(err)
	}
	req, _ := r.Last()
	var raw map[string]any
	if err := json.Unmarshal(req.Body, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["id"] != ev.ID || raw["key"] != sdk.SafeID(ev.ID) || raw["kind"] != "acknowledged" || raw["threshold"] != 95.0 ||
		raw["comparison"] != ">=" || raw["owner"] != "alice" || raw["url"] != ev.URL {
		t.Errorf("payload %s", req.Body)
	}
	// The ID holds bytes a header cannot carry: both headers hold its key.
	if req.Header.Get(EventKeyHeader) != sdk.SafeID(ev.ID) || req.Header.Get(EventIDHeader) != sdk.SafeID(ev.ID) {
		t.Errorf("headers %v", req.Header)
	}
}

func TestTemplatesSetTitleAndText(t *testing.T) {
	r := sdktest.NewReceiver(t)
	cfg := sdk.Config{"url": r.URL, sdk.TitleTemplateKey: "{{.Emoji}} {{.Host}} {{.Kind}}", sdk.BodyTemplateKey: "{{.Text}} -> {{.URL}}"}
	if err := sdktest.Validate(New(), cfg); err != nil {
		t.Fatal(err)
	}
	ev := sdk.SampleEvent(sdk.KindResolved)
	if err := sdktest.Notify(context.Background(), New(), cfg, ev); err != nil {
		t.Fatal(err)
	}
	req, _ := r.Last()
	var p Payload
	_ = json.Unmarshal(req.Body, &p)
	if p.Title != "✅ web01 resolved" || p.Text != ev.Text+" -> "+ev.URL {
		t.Errorf("title %q text %q", p.Title, p.Text)
	}
	bad := sdk.Config{"url": r.URL, sdk.BodyTemplateKey: "{{.Hostname}}"}
	if err := sdktest.Validate(New(), bad); sdk.ErrorField(err) != sdk.BodyTemplateKey {
		t.Errorf("Validate(bad template) = %v, want an error on %s", err, sdk.BodyTemplateKey)
	}
}

func TestRateLimitAsksToWait(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}))
	defer srv.Close()
	err := sdktest.Notify(context.Background(), New(), sdk.Config{"url": srv.URL}, event())
	if d, ok := sdk.RetryAfterOf(err); !ok || d != 7*time.Second || sdk.IsPermanent(err) {
		t.Errorf("Notify against 429 Retry-After 7 = %v (wait %v %v)", err, d, ok)
	}
}
