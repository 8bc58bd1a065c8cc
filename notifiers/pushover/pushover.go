// Package pushover delivers hbd alerts as Pushover push notifications.
package pushover

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hbdmon/hbd/sdk"
)

// DefaultAPIURL is Pushover's message endpoint.
const DefaultAPIURL = "https://api.pushover.net/1/messages.json"

// Pushover priorities (https://pushover.net/api#priority).
const (
	priorityLowest    = -2
	priorityQuiet     = -1
	priorityNormal    = 0
	priorityEmergency = 2
)

// Emergency notifications repeat every emergencyRetry until acknowledged,
// for at most emergencyExpire.
const (
	emergencyRetry  = 60
	emergencyExpire = 3600
)

// Pushover's limits on title and message length, in characters.
const (
	maxTitle   = 250
	maxMessage = 1024
)

// ErrPriority is returned for a priority outside Pushover's -2..2.
var ErrPriority = errors.New("must be an integer from -2 to 2")

// Notifier sends Pushover notifications. The zero value is not usable; call
// [New].
type Notifier struct {
	client *http.Client
}

// New returns a Pushover notifier.
func New() *Notifier {
	return &Notifier{client: sdk.HTTPClient(15 * time.Second)}
}

// Schema describes the pushover channel type.
func (n *Notifier) Schema() sdk.Schema {
	return sdk.Schema{Type: "pushover", Label: "Pushover", Fields: append([]sdk.Field{
		{Key: "token", Label: "App token", Type: sdk.FieldSecret, Required: true,
			Help: "API token of your Pushover application"},
		{Key: "user", Label: "User key", Type: sdk.FieldSecret, Required: true,
			Help: "User or group key to notify"},
		{Key: "sound", Label: "Sound", Type: sdk.FieldText,
			Help: "Pushover sound name; empty for the user's default"},
		{Key: "priority", Label: "Priority", Type: sdk.FieldChoice,
			Help:    "Priority of problem alerts; empty maps CRITICAL to emergency (repeated until acknowledged in Pushover), others to normal; recoveries and acknowledgements are always sent quiet",
			Options: priorityOptions},
		{Key: "device", Label: "Device", Type: sdk.FieldText,
			Help: "Send to this device only; empty for all of the user's devices"},
		{Key: "api_url", Label: "API URL", Type: sdk.FieldText, Default: DefaultAPIURL,
			Help: "Pushover message endpoint; change only for tests or proxies"},
	}, sdk.TemplateFields()...)}
}

// priorityOptions are Pushover's priorities.
var priorityOptions = []sdk.Option{
	{Value: "-2", Label: "Lowest (no notification)"},
	{Value: "-1", Label: "Quiet"},
	{Value: "0", Label: "Normal"},
	{Value: "1", Label: "High (bypasses quiet hours)"},
	{Value: "2", Label: "Emergency (repeated until acknowledged)"},
}

// settings is a validated pushover channel configuration.
type settings struct {
	token, user, sound, device string
	priority                   *int
	apiURL                     string
}

func (n *Notifier) parse(cfg sdk.Settings) (settings, error) {
	s := settings{
		token: cfg.String("token"), user: cfg.String("user"),
		sound: cfg.String("sound"), device: cfg.String("device"), apiURL: cfg.String("api_url"),
	}
	if _, err := sdk.ParseHTTPURL(s.apiURL); err != nil {
		return settings{}, &sdk.FieldError{Key: "api_url", Err: err}
	}
	if cfg.String("priority") != "" {
		p, ok := cfg.Int("priority")
		if !ok || p < priorityLowest || p > priorityEmergency {
			return settings{}, &sdk.FieldError{Key: "priority", Err: ErrPriority}
		}
		s.priority = &p
	}
	return s, nil
}

// Validate checks cfg without contacting Pushover.
func (n *Notifier) Validate(cfg sdk.Settings) error {
	_, err := n.parse(cfg)
	return err
}

// Notify posts ev to Pushover. Rejected credentials or parameters (4xx) are
// permanent errors; 5xx, 429 and network failures are retryable, a 429 or
// 503 with Retry-After no sooner than it asks ([sdk.HTTPError]).
func (n *Notifier) Notify(ctx context.Context, cfg sdk.Settings, ev sdk.Event) error {
	s, err := n.parse(cfg)
	if err != nil {
		return sdk.Permanent(err)
	}
	// Pushover answers 200 with {"status":1} on success.
	var answer struct {
		Status int      `json:"status"`
		Errors []string `json:"errors"`
	}
	err = sdk.PostForm(ctx, n.client, s.apiURL, s.form(ev, sdk.Render(ctx, cfg, ev)),
		sdk.Header("User-Agent", "hbd-notifier-pushover"), sdk.DecodeAnswer(&answer))
	if err != nil {
		return fmt.Errorf("pushover: %w", err)
	}
	if answer.Status != 1 {
		return sdk.Permanent(sdk.WithReason(fmt.Errorf("pushover refused the message: %s", strings.Join(answer.Errors, "; ")), sdk.ReasonRejected))
	}
	return nil
}

// form builds the message parameters for ev rendered as msg.
func (s settings) form(ev sdk.Event, msg sdk.Message) url.Values {
	f := url.Values{}
	f.Set("token", s.token)
	f.Set("user", s.user)
	f.Set("title", sdk.Truncate(msg.Title, maxTitle))
	f.Set("message", sdk.Truncate(msg.Body, maxMessage))
	p := s.priorityFor(ev)
	f.Set("priority", strconv.Itoa(p))
	if p == priorityEmergency {
		f.Set("retry", strconv.Itoa(emergencyRetry))
		f.Set("expire", strconv.Itoa(emergencyExpire))
	}
	if s.sound != "" {
		f.Set("sound", s.sound)
	}
	if s.device != "" {
		f.Set("device", s.device)
	}
	if ev.URL != "" {
		f.Set("url", ev.URL)
		f.Set("url_title", "Open in hbd")
	}
	if !ev.Time.IsZero() {
		f.Set("timestamp", strconv.FormatInt(ev.Time.Unix(), 10))
	}
	return f
}

// priorityFor maps an event to a Pushover priority: recoveries and
// acknowledgements are quiet, test messages normal, problems use the
// configured priority or, without one, emergency for CRITICAL and normal
// otherwise.
func (s settings) priorityFor(ev sdk.Event) int {
	switch {
	case ev.EffectiveKind() == sdk.KindTest:
		return priorityNormal
	case ev.Level == sdk.LevelOK, ev.EffectiveKind() == sdk.KindAcknowledged:
		return priorityQuiet
	case s.priority != nil:
		return *s.priority
	case ev.Level == sdk.LevelCritical:
		return priorityEmergency
	default:
		return priorityNormal
	}
}

// Interface guards
var _ sdk.Notifier = (*Notifier)(nil)
