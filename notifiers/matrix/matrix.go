// Package matrix delivers hbd alerts to a Matrix room through the
// client-server API, as the user whose access token the channel holds.
package matrix

import (
	"context"
	"errors"
	"fmt"
	"html"
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
	text := sdk.Truncate(msg.Body, maxBody)
	m := message{MsgType: s.msgtype, Body: msg.Title + "\n\n" + text, Format: "org.matrix.custom.html",
		FormattedBody: "<b>" + html.EscapeString(msg.Title) + "</b><br>" + strings.ReplaceAll(html.EscapeString(text), "\n", "<br>")}
	// An M_LIMIT_EXCEEDED answer gives the wait in the Retry-After header
	// (Matrix 1.10 and later) or the body's retry_after_ms.
	err = sdk.SendJSON(ctx, n.client, http.MethodPut, s.url+sdk.SafeID(ev.ID), m,
		sdk.Header("User-Agent", "hbd-notifier-matrix"), sdk.Header("Authorization", "Bearer "+s.token),
		sdk.QuoteJSON("errcode", "error"), sdk.RetryAfterJSON("retry_after_ms", time.Millisecond))
	if err != nil {
		return fmt.Errorf("matrix: %w", err)
	}
	return nil
}

// Interface guards
var _ sdk.Notifier = (*Notifier)(nil)
