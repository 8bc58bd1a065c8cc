// Package teams delivers hbd alerts to a Microsoft Teams channel or chat
// through a Workflows (Power Automate) webhook, as an Adaptive Card.
//
// The webhook is the "When a Teams webhook request is received" trigger of
// a workflow that posts the card it gets, e.g. Teams' "Post to a channel
// when a webhook request is received" template. (The older Office 365
// connectors' incoming webhooks are retired by Microsoft.)
package teams

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hbdmon/hbd/sdk"
)

// maxText bounds a card's text, in runes: the whole request must stay
// under the workflow trigger's 28 KiB message limit.
const maxText = 6000

// Notifier posts Adaptive Cards to Teams workflow webhooks. Call [New] to
// get one.
type Notifier struct {
	client *http.Client
}

// New returns a Teams notifier.
func New() *Notifier { return &Notifier{client: sdk.HTTPClient(15 * time.Second)} }

// Schema describes the teams channel type.
func (n *Notifier) Schema() sdk.Schema {
	return sdk.Schema{Type: "teams", Label: "Microsoft Teams", Fields: append([]sdk.Field{
		{Key: "webhook_url", Label: "Workflow webhook URL", Type: sdk.FieldSecret, Required: true,
			Help: "HTTP POST URL of the workflow's \"When a Teams webhook request is received\" trigger (it holds a signature)"},
	}, sdk.TemplateFields()...)}
}

func (n *Notifier) parse(cfg sdk.Settings) (string, error) {
	u := cfg.String("webhook_url")
	if _, err := sdk.ParseHTTPURL(u); err != nil {
		return "", &sdk.FieldError{Key: "webhook_url", Err: err}
	}
	return u, nil
}

// Validate checks cfg without contacting Teams.
func (n *Notifier) Validate(cfg sdk.Settings) error {
	_, err := n.parse(cfg)
	return err
}

// element is an Adaptive Card element or action; unused keys stay out.
type element struct {
	Type   string `json:"type"`
	Text   string `json:"text,omitempty"`
	Title  string `json:"title,omitempty"`
	URL    string `json:"url,omitempty"`
	Weight string `json:"weight,omitempty"`
	Size   string `json:"size,omitempty"`
	Color  string `json:"color,omitempty"`
	Wrap   bool   `json:"wrap,omitempty"`
}

type card struct {
	Schema  string    `json:"$schema"`
	Type    string    `json:"type"`
	Version string    `json:"version"`
	Body    []element `json:"body"`
	Actions []element `json:"actions,omitempty"`
}

type attachment struct {
	ContentType string `json:"contentType"`
	Content     card   `json:"content"`
}

// message is what the workflow trigger receives: a message with one
// Adaptive Card attachment.
type message struct {
	Type        string       `json:"type"`
	Attachments []attachment `json:"attachments"`
}

// Notify posts ev as a card. A rejected or removed workflow (4xx) is a
// permanent error; 429 (waiting as long as the service asks), 5xx and
// network failures are retried.
func (n *Notifier) Notify(ctx context.Context, cfg sdk.Settings, ev sdk.Event) error {
	u, err := n.parse(cfg)
	if err != nil {
		return sdk.Permanent(err)
	}
	m := message{Type: "message", Attachments: []attachment{{
		ContentType: "application/vnd.microsoft.card.adaptive", Content: newCard(sdk.Render(ctx, cfg, ev), ev)}}}
	if err := sdk.PostJSON(ctx, n.client, u, m, sdk.Header("User-Agent", "hbd-notifier-teams")); err != nil {
		return fmt.Errorf("teams: %w", err)
	}
	return nil
}

// newCard lays ev out: a coloured title, the message and a button to the host's page. Text goes in unescaped: Teams renders a
// small markdown subset in which hbd's texts (names like
// cpu_monitor.cpu_percent, "[CRITICAL]") stay literal, and it shows
// backslash escapes as typed.
func newCard(msg sdk.Message, ev sdk.Event) card {
	c := card{Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard", Version: "1.4"}
	c.Body = append(c.Body, element{Type: "TextBlock", Text: msg.Title, Weight: "Bolder", Size: "Medium", Color: color(ev), Wrap: true})
	c.Body = append(c.Body, element{Type: "TextBlock", Text: sdk.Truncate(strings.TrimSpace(msg.Body), maxText), Wrap: true})
	if ev.URL != "" {
		c.Actions = []element{{Type: "Action.OpenUrl", Title: "Open in hbd", URL: ev.URL}}
	}
	return c
}

// color is the Adaptive Card text colour for ev's level.
func color(ev sdk.Event) string {
	switch {
	case ev.IsRecovery() || ev.Level == sdk.LevelOK:
		return "Good"
	case ev.EffectiveKind() == sdk.KindAcknowledged, ev.EffectiveKind() == sdk.KindTest:
		return "Accent"
	case ev.Level == sdk.LevelCritical:
		return "Attention"
	case ev.Level == sdk.LevelWarning:
		return "Warning"
	default:
		return "Default"
	}
}

// Interface guards
var _ sdk.Notifier = (*Notifier)(nil)
