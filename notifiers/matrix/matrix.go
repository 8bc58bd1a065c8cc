// Package matrix delivers hbd alerts to a Matrix room through the
// client-server API, as the user whose access token the channel holds.
package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/hbdmon/hbd/sdk"
)

// DefaultHomeserverURL is matrix.org's client-server API.
const DefaultHomeserverURL = "https://matrix-client.matrix.org"

// maxBody bounds the message body, in runes (events are limited to 64 KiB).
const maxBody = 16000

// ErrRoomID is returned for a room that is not a room ID.
var ErrRoomID = errors.New("must be a room ID such as !AbCdEf:example.org (Room settings → Advanced), not an alias")

// Notifier sends Matrix messages. Call [New] to get one.
type Notifier struct {
	client *http.Client
}

// New returns a Matrix notifier.
func New() *Notifier { return &Notifier{client: sdk.HTTPClient(15 * time.Second)} }

// Schema describes the matrix channel type.
func (n *Notifier) Schema() sdk.Schema {
	return sdk.Schema{Type: "matrix", Label: "Matrix", Fields: append([]sdk.Field{
		{Key: "homeserver_url", Label: "Homeserver URL", Type: sdk.FieldText, Default: DefaultHomeserverURL,
			Help: "client-server API base of the bot user's homeserver"},
		{Key: "access_token", Label: "Access token", Type: sdk.FieldSecret, Required: true,
			Help: "access token of the user that posts (a dedicated bot account is best)"},
		{Key: "room_id", Label: "Room ID", Type: sdk.FieldText, Required: true,
			Help: "!…:server ID of a room the user has joined"},
		{Key: "msgtype", Label: "Message type", Type: sdk.FieldChoice, Default: "m.text",
			Options: []sdk.Option{{Value: "m.text", Label: "text"}, {Value: "m.notice", Label: "notice (bot message, quieter)"}},
			Help:    "m.text notifies like a person's message; m.notice is shown as a bot's"},
	}, sdk.TemplateFields()...)}
}

type settings struct {
	url, token, msgtype string
}

func (n *Notifier) parse(cfg sdk.Settings) (settings, error) {
	s := settings{token: cfg.String("access_token"), msgtype: cfg.String("msgtype")}
	base := strings.TrimRight(cfg.String("homeserver_url"), "/")
	if _, err := sdk.ParseHTTPURL(base); err != nil {
		return settings{}, &sdk.FieldError{Key: "homeserver_url", Err: err}
	}
	room := cfg.String("room_id")
	if !strings.HasPrefix(room, "!") || len(room) < 2 || len(room) > 255 || strings.IndexFunc(room, unicode.IsSpace) >= 0 {
		return settings{}, &sdk.FieldError{Key: "room_id", Err: ErrRoomID}
	}
	s.url = base + "/_matrix/client/v3/rooms/" + url.PathEscape(room) + "/send/m.room.message/"
	return s, nil
}

// Validate checks cfg without contacting the homeserver.
func (n *Notifier) Validate(cfg sdk.Settings) error {
	_, err := n.parse(cfg)
	return err
}

type message struct {
	MsgType       string `json:"msgtype"`
	Body          string `json:"body"`
	Format        string `json:"format"`
	FormattedBody string `json:"formatted_body"`
}

// Notify sends ev. The transaction ID is derived from the event ID with
// sdk.SafeID, so a retried delivery is stored once by the homeserver. A
// rejected token or a room the user is not in (4xx) is a permanent error;
// 429 (waiting the retry_after_ms the homeserver gives), 5xx and network
// failures are retried.
func (n *Notifier) Notify(ctx context.Context, cfg sdk.Settings, ev sdk.Event) error {
	s, err := n.parse(cfg)
	if err != nil {
		return sdk.Permanent(err)
	}
	msg := sdk.Render(ctx, cfg, ev)
	text := truncate(msg.Body, maxBody)
	body, err := json.Marshal(message{MsgType: s.msgtype, Body: msg.Title + "\n\n" + text, Format: "org.matrix.custom.html",
		FormattedBody: "<b>" + html.EscapeString(msg.Title) + "</b><br>" + strings.ReplaceAll(html.EscapeString(text), "\n", "<br>")})
	if err != nil {
		return sdk.Permanent(fmt.Errorf("encode message: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.url+sdk.SafeID(ev.ID), bytes.NewReader(body))
	if err != nil {
		return sdk.Permanent(fmt.Errorf("build request: %w", sdk.ErrBadURL))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hbd-notifier-matrix")
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := n.client.Do(req)
	if err != nil {
		return sdk.RequestError(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusTooManyRequests {
		return fmt.Errorf("matrix: %w", rateLimited(resp))
	}
	if err := sdk.HTTPError(resp); err != nil {
		return fmt.Errorf("matrix: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return nil
}

// rateLimited reads an M_LIMIT_EXCEEDED answer: the wait is in the
// Retry-After header (Matrix 1.10 and later) or the body's retry_after_ms.
func rateLimited(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var answer struct {
		ErrCode      string `json:"errcode"`
		Error        string `json:"error"`
		RetryAfterMS int64  `json:"retry_after_ms"`
	}
	_ = json.Unmarshal(raw, &answer)
	err := &sdk.HTTPStatusError{StatusCode: resp.StatusCode, Body: truncate(answer.ErrCode+": "+answer.Error, 200)}
	wait, ok := sdk.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if ms := answer.RetryAfterMS; !ok && ms > 0 && ms < sdk.MaxRetryAfter.Milliseconds() {
		wait = time.Duration(ms) * time.Millisecond
	}
	return sdk.RetryAfter(err, wait)
}

func truncate(s string, max int) string {
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

// Interface guards
var _ sdk.Notifier = (*Notifier)(nil)
