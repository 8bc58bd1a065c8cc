// Package slack delivers hbd alerts to Slack, through an incoming webhook
// or, with a bot token, through the Web API's chat.postMessage.
package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
		Text: escape(truncate(msg.Body, maxText)), TS: ev.Time.Unix(),
	}}}
	if ev.Time.IsZero() {
		m.Attachments[0].TS = 0
	}
	body, err := json.Marshal(m)
	if err != nil {
		return sdk.Permanent(fmt.Errorf("encode message: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return sdk.Permanent(fmt.Errorf("build request: %w", sdk.ErrBadURL))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "hbd-notifier-slack")
	if s.token == "" {
		if err := sdk.DoHTTP(n.client, req); err != nil {
			return fmt.Errorf("slack webhook: %w", err)
		}
		return nil
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	return n.postMessage(req)
}

// postMessage sends a chat.postMessage request, which answers 200 with
// {"ok": false, "error": "<code>"} when it refuses.
func (n *Notifier) postMessage(req *http.Request) error {
	resp, err := n.client.Do(req)
	if err != nil {
		return sdk.RequestError(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if err := sdk.HTTPError(resp); err != nil {
		return fmt.Errorf("slack chat.postMessage: %w", err)
	}
	var answer struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&answer); err != nil {
		return sdk.WithReason(fmt.Errorf("slack chat.postMessage: unreadable answer: %w", err), sdk.ReasonFailed)
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

func truncate(s string, max int) string {
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

// Interface guards
var _ sdk.Notifier = (*Notifier)(nil)
