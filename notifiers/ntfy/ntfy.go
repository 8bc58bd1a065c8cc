// Package ntfy publishes hbd alerts to an ntfy server (https://ntfy.sh or a
// self-hosted one). Like every notifier under notifiers/, it is built
// against the hbd SDK module only, exactly as a notifier outside the hbd
// repository would be.
package ntfy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/hbdmon/hbd/sdk"
)

// DefaultServerURL is the public ntfy server.
const DefaultServerURL = "https://ntfy.sh"

// ntfy priorities: 1 min, 2 low, 3 default, 4 high, 5 max/urgent.
const (
	priorityMin     = 1
	priorityLow     = 2
	priorityDefault = 3
	priorityHigh    = 4
	priorityMax     = 5
)

var (
	// ErrTopic is returned for a topic ntfy would not accept.
	ErrTopic = errors.New("must be 1 to 64 letters, digits, '-' or '_'")
	// ErrPriority is returned for a priority outside 1..5.
	ErrPriority = errors.New("must be a whole number from 1 (min) to 5 (max)")
)

var topicPattern = regexp.MustCompile(`^[-_A-Za-z0-9]{1,64}$`)

// Notifier publishes to ntfy. Call [New] to get one.
type Notifier struct {
	client *http.Client
}

// New returns an ntfy notifier.
func New() *Notifier { return &Notifier{client: sdk.HTTPClient(15 * time.Second)} }

// Schema describes the ntfy channel type.
func (n *Notifier) Schema() sdk.Schema {
	return sdk.Schema{Type: "ntfy", Label: "ntfy", Fields: append([]sdk.Field{
		{Key: "server_url", Label: "Server URL", Type: sdk.FieldText, Default: DefaultServerURL,
			Help: "Base URL of the ntfy server"},
		{Key: "topic", Label: "Topic", Type: sdk.FieldText, Required: true,
			Help: "Topic to publish to; on a public server anyone who knows it can read it"},
		{Key: "token", Label: "Access token", Type: sdk.FieldSecret,
			Help: "ntfy access token (tk_...) for protected topics"},
		{Key: "priority", Label: "Priority", Type: sdk.FieldNumber,
			Help: "1 (min) to 5 (max) for problem alerts; empty maps CRITICAL to 5, WARNING to 4, UNKNOWN to 3; recoveries are sent at 2"},
	}, sdk.TemplateFields()...)}
}

// settings is a validated ntfy channel configuration.
type settings struct {
	serverURL, topic, token string
	priority                int // 0 when not configured
}

func (n *Notifier) parse(cfg sdk.Settings) (settings, error) {
	s := settings{serverURL: strings.TrimRight(cfg.String("server_url"), "/"), topic: cfg.String("topic"), token: cfg.String("token")}
	if _, err := sdk.ParseHTTPURL(s.serverURL); err != nil {
		return settings{}, &sdk.FieldError{Key: "server_url", Err: err}
	}
	if !topicPattern.MatchString(s.topic) {
		return settings{}, &sdk.FieldError{Key: "topic", Err: ErrTopic}
	}
	if cfg.String("priority") != "" {
		p, ok := cfg.Int("priority")
		if !ok || p < priorityMin || p > priorityMax {
			return settings{}, &sdk.FieldError{Key: "priority", Err: ErrPriority}
		}
		s.priority = p
	}
	return s, nil
}

// Validate checks cfg without contacting the server.
func (n *Notifier) Validate(cfg sdk.Settings) error {
	_, err := n.parse(cfg)
	return err
}

// message is ntfy's JSON publish format.
type message struct {
	Topic    string   `json:"topic"`
	Title    string   `json:"title"`
	Message  string   `json:"message"`
	Priority int      `json:"priority"`
	Tags     []string `json:"tags,omitempty"`
	Click    string   `json:"click,omitempty"`
}

// Notify publishes ev. A rejected token or topic (4xx) is a permanent
// error; rate limiting (waiting as long as a Retry-After header asks), 5xx
// and network failures are retried by hbd.
func (n *Notifier) Notify(ctx context.Context, cfg sdk.Settings, ev sdk.Event) error {
	s, err := n.parse(cfg)
	if err != nil {
		return sdk.Permanent(err)
	}
	msg := sdk.Render(ctx, cfg, ev)
	m := message{
		Topic: s.topic, Title: msg.Title, Message: msg.Body,
		Priority: s.priorityFor(ev), Tags: tags(ev), Click: ev.URL,
	}
	bearer := ""
	if s.token != "" {
		bearer = "Bearer " + s.token
	}
	// JSON messages are published to the server root.
	if err := sdk.PostJSON(ctx, n.client, s.serverURL+"/", m, sdk.Header("User-Agent", "hbd-notifier-ntfy"),
		sdk.Header("Authorization", bearer)); err != nil {
		return fmt.Errorf("ntfy: %w", err)
	}
	return nil
}

// priorityFor maps ev to an ntfy priority.
func (s settings) priorityFor(ev sdk.Event) int {
	switch {
	case ev.Test:
		return priorityDefault
	case ev.Level == sdk.LevelOK:
		return priorityLow
	case s.priority != 0:
		return s.priority
	case ev.Level == sdk.LevelCritical:
		return priorityMax
	case ev.Level == sdk.LevelWarning:
		return priorityHigh
	default:
		return priorityDefault
	}
}

// tags returns ntfy emoji tags for ev's level.
func tags(ev sdk.Event) []string {
	switch ev.EffectiveKind() {
	case sdk.KindTest:
		return []string{"test_tube"}
	case sdk.KindAcknowledged:
		return []string{"eyes"}
	case sdk.KindFlapping:
		return []string{"repeat"}
	}
	switch ev.Level {
	case sdk.LevelCritical:
		return []string{"rotating_light"}
	case sdk.LevelWarning:
		return []string{"warning"}
	case sdk.LevelOK:
		return []string{"white_check_mark"}
	default:
		return []string{"grey_question"}
	}
}

// Interface guards
var _ sdk.Notifier = (*Notifier)(nil)
