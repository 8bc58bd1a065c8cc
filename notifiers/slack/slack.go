// Package slack delivers hbd alerts to Slack, through an incoming webhook
// or, with a bot token, through the Web API's chat.postMessage.
package slack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hbdmon/hbd/sdk"
)

// DefaultAPIURL is the base of Slack's Web API.
const DefaultAPIURL = "https://slack.com/api"

// maxText bounds the attachment text, in runes (Slack cuts longer text).
const maxText = 3000

var (
	// ErrNoDestination is returned when neither a webhook URL nor a bot
	// token is set.
	ErrNoDestination = errors.New("set an incoming webhook URL, or a bot token and a channel")
	// ErrChannel is returned for a bot token without a channel.
	ErrChannel = errors.New("is required with a bot token: a channel ID such as C0123456789, or #name")
)

// retryableErrors are chat.postMessage error codes that a later attempt may
// not get; every other code is permanent (bad token, unknown channel, …).
var retryableErrors = []string{"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}

// Notifier posts to Slack. Call [New] to get one.
type Notifier struct {
	client *http.Client
}

// New returns a Slack notifier.
func New() *Notifier { return &Notifier{client: sdk.HTTPClient(15 * time.Second)} }

// Schema describes the slack channel type.
func (n *Notifier) Schema() sdk.Schema {
	return sdk.Schema{Type: "slack", Label: "Slack", Fields: append([]sdk.Field{
		{Key: "webhook_url", Label: "Incoming webhook URL", Type: sdk.FieldSecret,
			Help: "https://hooks.slack.com/services/…; or leave empty and use a bot token"},
		{Key: "token", Label: "Bot token", Type: sdk.FieldSecret,
			Help: "xoxb-… token of a Slack app with chat:write; used instead of the webhook when set"},
		{Key: "channel", Label: "Channel", Type: sdk.FieldText,
			Help: "with a bot token: channel ID (C0123456789) or #name the bot is a member of"},
		{Key: "api_url", Label: "Web API URL", Type: sdk.FieldText, Default: DefaultAPIURL,
			Help: "base of Slack's Web API for the bot token; change only for tests or proxies"},
	}, sdk.TemplateFields()...)}
}

// settings is a validated slack channel: url is where to post, token is
// set for the Web API.
type settings struct {
	url, token, channel string
}

func (n *Notifier) parse(cfg sdk.Settings) (settings, error) {
	s := settings{token: cfg.String("token"), channel: cfg.String("channel")}
	hook := cfg.String("webhook_url")
	switch {
	case s.token != "":
		if _, err := sdk.ParseHTTPURL(cfg.String("api_url")); err != nil {
			return settings{}, &sdk.FieldError{Key: "api_url", Err: err}
		}
		if s.channel == "" {
			return settings{}, &sdk.FieldError{Key: "channel", Err: ErrChannel}
		}
		s.url = strings.TrimRight(cfg.String("api_url"), "/") + "/chat.postMessage"
	case hook != "":
		if _, err := sdk.ParseHTTPURL(hook); err != nil {
			return settings{}, &sdk.FieldError{Key: "webhook_url", Err: err}
		}
		s.url = hook
	default:
		return settings{}, &sdk.FieldError{Key: "webhook_url", Err: ErrNoDestination}
	}
	return s, nil
}

// Validate checks cfg without contacting Slack.
func (n *Notifier) Validate(cfg sdk.Settings) error {
	_, err := n.parse(cfg)
	return err
}

// attachment is a Slack message attachment: a coloured bar with a linked
// title.
type attachment struct {
	Color     string `json:"color"`
	Title     string `json:"title"`
	TitleLink string `json:"title_link,omitempty"`
	Text      string `json:"text"`
	Footer    string `json:"footer"`
	TS        int64  `json:"ts,omitempty"`
}

type message struct {
	Channel     string       `json:"channel,omitempty"`
	Text        string       `json:"text"`
	Attachments []attachment `json:"attachments"`
}

// Notify posts ev. Rejected webhooks, tokens and channels are permanent
// errors; 429 (waiting as long as Slack asks), 5xx and network failures
// are retried.
func (n *Notifier) Notify(ctx context.Context, cfg sdk.Settings, ev sdk.Event) error {
	s, err := n.parse(cfg)
	if err != nil {
		return sdk.Permanent(err)
	}
	msg := sdk.Render(ctx, cfg, ev)
	m := message{Channel: s.channel, Text: escape(msg.Title), Attachments: []attachment{{
		Color: sdk.Color(ev), Title: escape(msg.Title), TitleLink: ev.URL, Footer: "hbd",
		Text: escape(sdk.Truncate(msg.Body, maxText)), TS: ev.Time.Unix(),
	}}}
	if ev.Time.IsZero() {
		m.Attachments[0].TS = 0
	}
	opts := []sdk.CallOption{sdk.Header("Content-Type", "application/json; charset=utf-8"), sdk.Header("User-Agent", "hbd-notifier-slack")}
	if s.token == "" {
		if err := sdk.PostJSON(ctx, n.client, s.url, m, opts...); err != nil {
			return fmt.Errorf("slack webhook: %w", err)
		}
		return nil
	}
	// chat.postMessage answers 200 with {"ok": false, "error": "<code>"}
	// when it refuses.
	var answer struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	opts = append(opts, sdk.Header("Authorization", "Bearer "+s.token), sdk.DecodeAnswer(&answer))
	if err := sdk.PostJSON(ctx, n.client, s.url, m, opts...); err != nil {
		return fmt.Errorf("slack chat.postMessage: %w", err)
	}
	if answer.OK {
		return nil
	}
	err = fmt.Errorf("slack chat.postMessage refused the message: %.100s", answer.Error)
	if slices.Contains(retryableErrors, answer.Error) {
		return err
	}
	return sdk.Permanent(sdk.WithReason(err, sdk.ReasonRejected))
}

// escape makes s literal text in Slack's mrkdwn: &, < and > are its only
// control characters (links and mentions are written <…>). Titles and
// bodies, from templates too, are text: a host name cannot mention
// @channel or fake a link.
var escape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// Interface guards
var _ sdk.Notifier = (*Notifier)(nil)
