// Package discord delivers hbd alerts to a Discord channel through a
// channel webhook, as an embed.
package discord

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hbdmon/hbd/sdk"
)

// Discord's embed limits, in characters.
const (
	maxTitle       = 256
	maxDescription = 4096
	maxUsername    = 80
)

// Notifier posts to Discord webhooks. Call [New] to get one.
type Notifier struct {
	client *http.Client
}

// New returns a Discord notifier.
func New() *Notifier { return &Notifier{client: sdk.HTTPClient(15 * time.Second)} }

// Schema describes the discord channel type.
func (n *Notifier) Schema() sdk.Schema {
	return sdk.Schema{Type: "discord", Label: "Discord", Fields: append([]sdk.Field{
		{Key: "webhook_url", Label: "Webhook URL", Type: sdk.FieldSecret, Required: true,
			Help: "https://discord.com/api/webhooks/<id>/<token>, from the channel's Integrations settings"},
		{Key: "username", Label: "Username", Type: sdk.FieldText,
			Help: "name the messages are posted under; empty for the webhook's own name"},
	}, sdk.TemplateFields()...)}
}

type settings struct{ url, username string }

func (n *Notifier) parse(cfg sdk.Settings) (settings, error) {
	s := settings{url: cfg.String("webhook_url"), username: cfg.String("username")}
	u, err := sdk.ParseHTTPURL(s.url)
	if err != nil {
		return settings{}, &sdk.FieldError{Key: "webhook_url", Err: err}
	}
	// wait=true makes Discord answer only once the message is stored, and
	// report a failure instead of dropping it.
	q := u.Query()
	q.Set("wait", "true")
	u.RawQuery = q.Encode()
	s.url = u.String()
	if len([]rune(s.username)) > maxUsername {
		return settings{}, &sdk.FieldError{Key: "username", Err: fmt.Errorf("must be at most %d characters", maxUsername)}
	}
	return s, nil
}

// Validate checks cfg without contacting Discord.
func (n *Notifier) Validate(cfg sdk.Settings) error {
	_, err := n.parse(cfg)
	return err
}

type embed struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	URL         string `json:"url,omitempty"`
	Color       int    `json:"color"`
	Timestamp   string `json:"timestamp,omitempty"`
}

type message struct {
	Username string  `json:"username,omitempty"`
	Embeds   []embed `json:"embeds"`
	// AllowedMentions with no parse list keeps "@everyone" in a host name
	// from pinging anyone.
	AllowedMentions struct {
		Parse []string `json:"parse"`
	} `json:"allowed_mentions"`
}

// Notify posts ev. An unknown or revoked webhook (4xx) is a permanent
// error; 429 (waiting as long as Discord asks), 5xx and network failures
// are retried.
func (n *Notifier) Notify(ctx context.Context, cfg sdk.Settings, ev sdk.Event) error {
	s, err := n.parse(cfg)
	if err != nil {
		return sdk.Permanent(err)
	}
	msg := sdk.Render(ctx, cfg, ev)
	e := embed{Title: sdk.Truncate(escape(msg.Title), maxTitle), Description: sdk.Truncate(escape(msg.Body), maxDescription),
		URL: ev.URL, Color: color(ev)}
	if !ev.Time.IsZero() {
		e.Timestamp = ev.Time.UTC().Format(time.RFC3339)
	}
	m := message{Username: s.username, Embeds: []embed{e}}
	m.AllowedMentions.Parse = []string{}
	// Discord explains a refusal in "message"; a 429 gives the wait in
	// the Retry-After header and, in seconds with a fraction, in the
	// body's retry_after.
	if err := sdk.PostJSON(ctx, n.client, s.url, m, sdk.Header("User-Agent", "hbd-notifier-discord"),
		sdk.QuoteJSON("message"), sdk.RetryAfterJSON("retry_after", time.Second)); err != nil {
		return fmt.Errorf("discord: %w", err)
	}
	return nil
}

// color is the embed's colour, sdk.Color as a number.
func color(ev sdk.Event) int {
	c, _ := strconv.ParseInt(strings.TrimPrefix(sdk.Color(ev), "#"), 16, 32)
	return int(c)
}

// escape makes Discord's markdown literal (bold, strike-through, code,
// spoilers, headings, masked links); underscores inside words
// (cpu_monitor.cpu_percent) and the link in the body stay as they are.
var escape = sdk.EscapeMarkdown

// Interface guards
var _ sdk.Notifier = (*Notifier)(nil)
