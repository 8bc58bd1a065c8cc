// Package telegram delivers hbd alerts to a Telegram chat through a bot's
// sendMessage method.
package telegram

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/hbdmon/hbd/sdk"
)

// DefaultAPIURL is the Bot API server.
const DefaultAPIURL = "https://api.telegram.org"

// maxText bounds the message text, in runes, under Telegram's 4096.
const maxText = 3800

var (
	// ErrChatID is returned for a chat_id Telegram would not accept.
	ErrChatID = errors.New("must be a numeric chat ID (e.g. -1001234567890) or a public @channelusername")
	// ErrBotToken is returned for a token with characters no bot token
	// has (it goes into the request path).
	ErrBotToken = errors.New("must be the token BotFather gave, like 123456789:AAE… (letters, digits, ':', '_', '-')")
)

var (
	chatIDPattern = regexp.MustCompile(`^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$`)
	tokenPattern  = regexp.MustCompile(`^[A-Za-z0-9:_-]{1,200}$`)
)

// Notifier sends Telegram messages. Call [New] to get one.
type Notifier struct {
	client *http.Client
}

// New returns a Telegram notifier.
func New() *Notifier { return &Notifier{client: sdk.HTTPClient(15 * time.Second)} }

// Schema describes the telegram channel type.
func (n *Notifier) Schema() sdk.Schema {
	return sdk.Schema{Type: "telegram", Label: "Telegram", Fields: append([]sdk.Field{
		{Key: "bot_token", Label: "Bot token", Type: sdk.FieldSecret, Required: true,
			Help: "token of your bot, from @BotFather (123456789:AAE…)"},
		{Key: "chat_id", Label: "Chat ID", Type: sdk.FieldText, Required: true,
			Help: "numeric ID of the user, group or channel (groups are negative), or @channelusername; the bot must be a member"},
		{Key: "message_thread_id", Label: "Topic ID", Type: sdk.FieldNumber,
			Help: "forum topic to post in; empty for the chat's main thread"},
		{Key: "silent_recoveries", Label: "Silent recoveries", Type: sdk.FieldBool, Default: "true",
			Help: "deliver recoveries without a notification sound"},
		{Key: "api_url", Label: "Bot API URL", Type: sdk.FieldText, Default: DefaultAPIURL,
			Help: "Bot API server; change for a local Bot API server, tests or proxies"},
	}, sdk.TemplateFields()...)}
}

type settings struct {
	url, chatID      string
	thread           int
	silentRecoveries bool
}

func (n *Notifier) parse(cfg sdk.Settings) (settings, error) {
	s := settings{chatID: cfg.String("chat_id"), silentRecoveries: cfg.Bool("silent_recoveries")}
	token := cfg.String("bot_token")
	if !tokenPattern.MatchString(token) {
		return settings{}, &sdk.FieldError{Key: "bot_token", Err: ErrBotToken}
	}
	if !chatIDPattern.MatchString(s.chatID) {
		return settings{}, &sdk.FieldError{Key: "chat_id", Err: ErrChatID}
	}
	if cfg.String("message_thread_id") != "" {
		t, ok := cfg.Int("message_thread_id")
		if !ok || t <= 0 {
			return settings{}, &sdk.FieldError{Key: "message_thread_id", Err: errors.New("must be a positive whole number")}
		}
		s.thread = t
	}
	base := strings.TrimRight(cfg.String("api_url"), "/")
	if _, err := sdk.ParseHTTPURL(base); err != nil {
		return settings{}, &sdk.FieldError{Key: "api_url", Err: err}
	}
	s.url = base + "/bot" + token + "/sendMessage"
	return s, nil
}

// Validate checks cfg without contacting Telegram.
func (n *Notifier) Validate(cfg sdk.Settings) error {
	_, err := n.parse(cfg)
	return err
}

type linkPreview struct {
	IsDisabled bool `json:"is_disabled"`
}

type message struct {
	ChatID              string      `json:"chat_id"`
	MessageThreadID     int         `json:"message_thread_id,omitempty"`
	Text                string      `json:"text"`
	ParseMode           string      `json:"parse_mode"`
	LinkPreview         linkPreview `json:"link_preview_options"`
	DisableNotification bool        `json:"disable_notification,omitempty"`
}

// answer is the Bot API's reply to every method.
type answer struct {
	OK          bool   `json:"ok"`
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter      int   `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// Notify sends ev. A bad token, an unknown chat or a bot removed from it
// (4xx) are permanent errors; 429 (waiting the retry_after Telegram
// gives), 5xx and network failures are retried.
func (n *Notifier) Notify(ctx context.Context, cfg sdk.Settings, ev sdk.Event) error {
	s, err := n.parse(cfg)
	if err != nil {
		return sdk.Permanent(err)
	}
	msg := sdk.Render(ctx, cfg, ev)
	// HTML is the parse mode whose escaping is simplest: &, < and >.
	text := "<b>" + html.EscapeString(msg.Title) + "</b>\n\n" + html.EscapeString(sdk.Truncate(msg.Body, maxText))
	m := message{ChatID: s.chatID, MessageThreadID: s.thread, Text: text, ParseMode: "HTML",
		LinkPreview: linkPreview{IsDisabled: true}, DisableNotification: s.silentRecoveries && ev.IsRecovery()}
	// The Bot API explains a refusal in "description" and gives a flood
	// wait in parameters.retry_after; an answer that is not JSON (a proxy,
	// a gateway) is judged by its status. Errors never hold the URL, which
	// holds the token.
	var a answer
	err = sdk.PostJSON(ctx, n.client, s.url, m, sdk.Header("User-Agent", "hbd-notifier-telegram"), sdk.DecodeAnswer(&a),
		sdk.QuoteJSON("description"), sdk.RetryAfterJSON("parameters.retry_after", time.Second))
	switch {
	case err != nil && a.Parameters.MigrateToChatID != 0:
		return fmt.Errorf("telegram: %w (the group is now the supergroup %d: set chat_id to it)", err, a.Parameters.MigrateToChatID)
	case err != nil:
		return fmt.Errorf("telegram: %w", err)
	case !a.OK:
		return sdk.Permanent(sdk.WithReason(fmt.Errorf("telegram refused the message: %.200s", a.Description), sdk.ReasonRejected))
	}
	return nil
}

// Interface guards
var _ sdk.Notifier = (*Notifier)(nil)
