// Package gotify delivers hbd alerts to a Gotify server
// (https://gotify.net) as application messages.
package gotify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hbdmon/hbd/sdk"
)

// Gotify priorities as its Android app treats them: 0 silent, 1-3 a
// notification without sound, 4-7 with sound, 8-10 high priority
// (heads-up, sound).
const (
	priorityMin      = 0
	priorityQuiet    = 2
	priorityNormal   = 5
	priorityUnknown  = 4
	priorityCritical = 8
	priorityMax      = 10
)

// ErrPriority is returned for a priority outside 0..10.
var ErrPriority = errors.New("must be a whole number from 0 to 10")

// Notifier sends Gotify messages. Call [New] to get one.
type Notifier struct {
	client *http.Client
}

// New returns a Gotify notifier.
func New() *Notifier { return &Notifier{client: sdk.HTTPClient(15 * time.Second)} }

// Schema describes the gotify channel type.
func (n *Notifier) Schema() sdk.Schema {
	return sdk.Schema{Type: "gotify", Label: "Gotify", Fields: append([]sdk.Field{
		{Key: "server_url", Label: "Server URL", Type: sdk.FieldText, Required: true,
			Help: "base URL of your Gotify server, e.g. https://gotify.example.com"},
		{Key: "token", Label: "Application token", Type: sdk.FieldSecret, Required: true,
			Help: "token of a Gotify application (Apps → Create application)"},
		{Key: "priority", Label: "Priority", Type: sdk.FieldNumber,
			Help: "0 to 10 for problem alerts; empty sends CRITICAL at 8, WARNING at 5, UNKNOWN at 4; recoveries go at 2"},
	}, sdk.TemplateFields()...)}
}

type settings struct {
	url, token string
	priority   *int
}

func (n *Notifier) parse(cfg sdk.Settings) (settings, error) {
	s := settings{url: strings.TrimRight(cfg.String("server_url"), "/") + "/message", token: cfg.String("token")}
	if _, err := sdk.ParseHTTPURL(cfg.String("server_url")); err != nil {
		return settings{}, &sdk.FieldError{Key: "server_url", Err: err}
	}
	if cfg.String("priority") != "" {
		p, ok := cfg.Int("priority")
		if !ok || p < priorityMin || p > priorityMax {
			return settings{}, &sdk.FieldError{Key: "priority", Err: ErrPriority}
		}
		s.priority = &p
	}
	return s, nil
}

// Validate checks cfg without contacting the server.
func (n *Notifier) Validate(cfg sdk.Settings) error {
	_, err := n.parse(cfg)
	return err
}

type message struct {
	Title    string         `json:"title"`
	Message  string         `json:"message"`
	Priority int            `json:"priority"`
	Extras   map[string]any `json:"extras,omitempty"`
}

// Notify posts ev. A rejected token (401, 403) is a permanent error; 429,
// 5xx and network failures are retried.
func (n *Notifier) Notify(ctx context.Context, cfg sdk.Settings, ev sdk.Event) error {
	s, err := n.parse(cfg)
	if err != nil {
		return sdk.Permanent(err)
	}
	msg := sdk.Render(ctx, cfg, ev)
	m := message{Title: msg.Title, Message: msg.Body, Priority: s.priorityFor(ev),
		Extras: map[string]any{"client::display": map[string]string{"contentType": "text/plain"}}}
	if ev.URL != "" {
		m.Extras["client::notification"] = map[string]any{"click": map[string]string{"url": ev.URL}}
	}
	// The header keeps the token out of URLs, and so out of proxy logs.
	if err := sdk.PostJSON(ctx, n.client, s.url, m, sdk.Header("User-Agent", "hbd-notifier-gotify"),
		sdk.Header("X-Gotify-Key", s.token)); err != nil {
		return fmt.Errorf("gotify: %w", err)
	}
	return nil
}

// priorityFor maps ev to a Gotify priority.
func (s settings) priorityFor(ev sdk.Event) int {
	switch {
	case ev.Test:
		return priorityNormal
	case ev.Level == sdk.LevelOK:
		return priorityQuiet
	case s.priority != nil:
		return *s.priority
	case ev.Level == sdk.LevelCritical:
		return priorityCritical
	case ev.Level == sdk.LevelWarning:
		return priorityNormal
	default:
		return priorityUnknown
	}
}

// Interface guards
var _ sdk.Notifier = (*Notifier)(nil)
