package matrix

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/notifiers/internal/fakeapi"
	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/sdktest"
)

const (
	accessToken = "syt_aGJk_QmFzZTY0U2VjcmV0_1a2b3c"
	roomID      = "!OGEhHVWSdvArJzumhm:example.org"
)

var sendPath = regexp.MustCompile(`^/_matrix/client/v3/rooms/([^/]+)/send/m\.room\.message/([^/]+)$`)

// matrixAPI imitates a homeserver's send endpoint: PUT
// /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}, the
// token in an Authorization: Bearer header, errors as {"errcode", "error"}.
// Like Synapse it answers a repeated transaction ID with the first event's
// ID; events counts the messages it stored.
func matrixAPI(t *testing.T, events *[]string) *fakeapi.Server {
	txns := map[string]string{}
	return fakeapi.New(t, func(r fakeapi.Request) fakeapi.Answer {
		m := sendPath.FindStringSubmatch(r.EscapedPath)
		var msg message
		switch {
		case m == nil:
			return fakeapi.JSON(http.StatusNotFound, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
		case r.Header.Get("Authorization") != "Bearer "+accessToken:
			return fakeapi.JSON(http.StatusUnauthorized, `{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token passed.","soft_logout":false}`)
		case r.Method != http.MethodPut:
			return fakeapi.JSON(http.StatusMethodNotAllowed, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
		case m[1] != "%21OGEhHVWSdvArJzumhm:example.org" && m[1] != "!OGEhHVWSdvArJzumhm:example.org":
			return fakeapi.JSON(http.StatusForbidden, `{"errcode":"M_FORBIDDEN","error":"User @hbd:example.org not in room"}`)
		case r.JSON(&msg) != nil || msg.Body == "":
			return fakeapi.JSON(http.StatusBadRequest, `{"errcode":"M_BAD_JSON","error":"Content must be a JSON object"}`)
		}
		if id, ok := txns[m[2]]; ok {
			return fakeapi.JSON(http.StatusOK, `{"event_id":"`+id+`"}`)
		}
		id := "$event" + m[2][:8]
		txns[m[2]] = id
		*events = append(*events, msg.Body)
		return fakeapi.JSON(http.StatusOK, `{"event_id":"`+id+`"}`)
	})
}

func config(s *fakeapi.Server) sdk.Config {
	return sdk.Config{"homeserver_url": s.URL, "access_token": accessToken, "room_id": roomID}
}

func TestAlertAndRecoveryReachTheRoom(t *testing.T) {
	var events []string
	s := matrixAPI(t, &events)
	for _, ev := range []sdk.Event{fakeapi.Alert(), fakeapi.Recovery()} {
		if err := sdktest.Notify(context.Background(), New(), config(s), ev); err != nil {
			t.Fatalf("Notify %s: %v", ev.Kind, err)
		}
	}
	reqs := s.Requests()
	if len(reqs) != 2 || len(events) != 2 {
		t.Fatalf("%d requests, %d events", len(reqs), len(events))
	}
	// The event ID holds "/", a space and "é": the transaction ID is its
	// SafeID, one path segment.
	if want := "/_matrix/client/v3/rooms/%21OGEhHVWSdvArJzumhm:example.org/send/m.room.message/" + sdk.SafeID(fakeapi.Alert().ID); reqs[0].EscapedPath != want {
		t.Errorf("path %s, want %s", reqs[0].EscapedPath, want)
	}
	var alert, recovery message
	_ = reqs[0].JSON(&alert)
	_ = reqs[1].JSON(&recovery)
	if alert.MsgType != "m.text" || alert.Format != "org.matrix.custom.html" ||
		!strings.HasPrefix(alert.Body, "[CRITICAL] web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples <&>\n\n") ||
		!strings.HasPrefix(alert.FormattedBody, "<b>[CRITICAL] web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples &lt;&amp;&gt;</b><br>") ||
		!strings.Contains(alert.FormattedBody, "<br>Host: web01<br>") || !strings.Contains(alert.Body, "https://hbd.example.com/hosts/web01") {
		t.Errorf("alert %s", reqs[0].Body)
	}
	if !strings.HasPrefix(recovery.Body, "[RECOVERED]") || reqs[1].EscapedPath == reqs[0].EscapedPath {
		t.Errorf("recovery %s %s", reqs[1].EscapedPath, reqs[1].Body)
	}
}

func TestARetriedDeliveryIsStoredOnce(t *testing.T) {
	var events []string
	s := matrixAPI(t, &events)
	cfg := config(s)
	cfg["msgtype"] = "m.notice"
	s.Queue(fakeapi.JSON(http.StatusBadGateway, `<html>`)) // a proxy in front of a restarting homeserver
	if err := sdktest.Notify(context.Background(), New(), cfg, fakeapi.Alert()); err == nil || sdk.IsPermanent(err) {
		t.Fatalf("first attempt = %v, want a retryable error", err)
	}
	for range 2 {
		if err := sdktest.Notify(context.Background(), New(), cfg, fakeapi.Alert()); err != nil {
			t.Fatal(err)
		}
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[0].EscapedPath != reqs[1].EscapedPath || reqs[1].EscapedPath != reqs[2].EscapedPath || len(events) != 1 {
		t.Fatalf("%d requests, %d events stored", len(reqs), len(events))
	}
	var m message
	if _ = reqs[2].JSON(&m); m.MsgType != "m.notice" {
		t.Errorf("msgtype %q", m.MsgType)
	}
}

func TestNotifyClassifiesFailures(t *testing.T) {
	var events []string
	s := matrixAPI(t, &events)
	fakeapi.CheckFailures(t, New(), s, config(s), fakeapi.Alert(), []fakeapi.Failure{
		{Name: "limit exceeded (body)", Answer: fakeapi.JSON(http.StatusTooManyRequests, `{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":3000}`),
			RetryAfter: 3 * time.Second, Quote: "M_LIMIT_EXCEEDED"},
		{Name: "limit exceeded (header)", Answer: fakeapi.Answer{Status: http.StatusTooManyRequests, Header: map[string]string{"Retry-After": "3"},
			Body: `{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":500}`}, RetryAfter: 3 * time.Second, Quote: "Too Many Requests"},
		{Name: "server error", Answer: fakeapi.JSON(http.StatusInternalServerError, `{"errcode":"M_UNKNOWN","error":"Internal server error"}`), Quote: "M_UNKNOWN"},
	})
	for quote, cfg := range map[string]sdk.Config{
		"M_UNKNOWN_TOKEN": {"homeserver_url": s.URL, "access_token": "syt_revokedTOKEN", "room_id": roomID},
		"M_FORBIDDEN":     {"homeserver_url": s.URL, "access_token": accessToken, "room_id": "!other:example.org"},
	} {
		err := sdktest.Notify(context.Background(), New(), cfg, fakeapi.Alert())
		if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), quote) || strings.Contains(err.Error(), "revokedTOKEN") {
			t.Errorf("%s: Notify = %v, want a permanent error quoting the homeserver", quote, err)
		}
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
		{"alias", sdk.Config{"room_id": "#ops:example.org"}, "room_id", ErrRoomID},
		{"space", sdk.Config{"room_id": "!a b:example.org"}, "room_id", ErrRoomID},
		{"msgtype", sdk.Config{"msgtype": "m.emote"}, "msgtype", sdk.ErrNotOption},
		{"homeserver", sdk.Config{"homeserver_url": "matrix.org"}, "homeserver_url", sdk.ErrBadURL},
		{"no token", sdk.Config{"access_token": ""}, "access_token", sdk.ErrRequired},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sdk.Config{"access_token": "t", "room_id": roomID}
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
	var events []string
	sdktest.Conformance(t, New(), config(matrixAPI(t, &events)))
}

func TestAlertAndRecoveryOverPluginProtocol(t *testing.T) {
	var events []string
	s := matrixAPI(t, &events)
	reqs := fakeapi.OverPlugin(t, New(), s, config(s))
	if len(reqs) != 2 || len(events) != 2 || !strings.Contains(events[0], "97.2 ≥ 95") ||
		!strings.Contains(events[0], "https://hbd.example.com/hosts/web01") || !strings.HasPrefix(events[1], "[RECOVERED]") {
		t.Errorf("events %q", events)
	}
}
