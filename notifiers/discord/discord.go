// Package discord delivers hbd alerts to a Discord channel through a
// channel webhook, as an embed.
package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
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
	e := embed{Title: truncate(escape(msg.Title), maxTitle), Description: truncate(escape(msg.Body), maxDescription),
		URL: ev.URL, Color: color(ev)}
	if !ev.Time.IsZero() {
		e.Timestamp = ev.Time.UTC().Format(time.RFC3339)
	}
	m := message{Username: s.username, Embeds: []embed{e}}
	m.AllowedMentions.Parse = []string{}
	body, err := json.Marshal(m)
	if err != nil {
		return sdk.Permanent(fmt.Errorf("encode message: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return sdk.Permanent(fmt.Errorf("build request: %w", sdk.ErrBadURL))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hbd-notifier-discord")
	resp, err := n.client.Do(req)
	if err != nil {
		return sdk.RequestError(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusTooManyRequests {
		if err := sdk.HTTPError(resp); err != nil {
			return fmt.Errorf("discord: %w", err)
		}
		return nil
	}
	return fmt.Errorf("discord: %w", rateLimited(resp))
}

// rateLimited reads a 429 answer: the wait is in the Retry-After header
// and, in seconds with a fraction, in the body's retry_after.
func rateLimited(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var answer struct {
		Message    string  `json:"message"`
		RetryAfter float64 `json:"retry_after"`
	}
	_ = json.Unmarshal(raw, &answer)
	err := &sdk.HTTPStatusError{StatusCode: resp.StatusCode, Body: truncate(answer.Message, 200)}
	wait, ok := sdk.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if secs := answer.RetryAfter; !ok && secs > 0 && secs < sdk.MaxRetryAfter.Seconds() {
		wait = time.Duration(math.Ceil(secs*1000)) * time.Millisecond
	}
	return sdk.RetryAfter(err, wait)
}

// color is the embed's colour, sdk.Color as a number.
func color(ev sdk.Event) int {
	c, _ := strconv.ParseInt(strings.TrimPrefix(sdk.Color(ev), "#"), 16, 32)
	return int(c)
}

// escape makes Discord's markdown characters literal (bold, strike-through,
// code, spoilers). Underscores stay: Discord does not read them as
// emphasis inside a word (cpu_monitor.cpu_percent), and escaping them
// would break the link in the body.
var escape = strings.NewReplacer(`\`, `\\`, "*", `\*`, "~", `\~`, "`", "\\`", "|", `\|`).Replace

func truncate(s string, max int) string {
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

// Interface guards
var _ sdk.Notifier = (*Notifier)(nil)
