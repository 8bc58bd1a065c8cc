// Package pagerduty turns hbd alerts into PagerDuty incidents through the
// Events API v2: a problem triggers (or updates) the alert of its host and
// metric, an acknowledgement in hbd acknowledges it, and the recovery
// resolves it.
package pagerduty

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hbdmon/hbd/sdk"
)

// DefaultAPIURL is the Events API v2 host.
const DefaultAPIURL = "https://events.pagerduty.com"

// Events API limits.
const (
	maxSummary  = 1024
	maxDedupKey = 255
)

// Event actions.
const (
	actionTrigger     = "trigger"
	actionAcknowledge = "acknowledge"
	actionResolve     = "resolve"
)

// Notifier sends PagerDuty events. Call [New] to get one.
type Notifier struct {
	client *http.Client
}

// New returns a PagerDuty notifier.
func New() *Notifier { return &Notifier{client: sdk.HTTPClient(15 * time.Second)} }

// Schema describes the pagerduty channel type.
func (n *Notifier) Schema() sdk.Schema {
	return sdk.Schema{Type: "pagerduty", Label: "PagerDuty", Fields: append([]sdk.Field{
		{Key: "routing_key", Label: "Integration key", Type: sdk.FieldSecret, Required: true,
			Help: "Events API v2 integration key of a service (Service → Integrations)"},
		{Key: "api_url", Label: "Events API URL", Type: sdk.FieldText, Default: DefaultAPIURL,
			Help: "Events API host; https://events.eu.pagerduty.com for EU accounts"},
	}, sdk.TemplateFields()...)}
}

type settings struct{ url, routingKey string }

func (n *Notifier) parse(cfg sdk.Settings) (settings, error) {
	base := strings.TrimRight(cfg.String("api_url"), "/")
	if _, err := sdk.ParseHTTPURL(base); err != nil {
		return settings{}, &sdk.FieldError{Key: "api_url", Err: err}
	}
	return settings{url: base + "/v2/enqueue", routingKey: cfg.String("routing_key")}, nil
}

// Validate checks cfg without contacting PagerDuty.
func (n *Notifier) Validate(cfg sdk.Settings) error {
	_, err := n.parse(cfg)
	return err
}

type link struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

type payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

type event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key"`
	Payload     *payload `json:"payload,omitempty"`
	Client      string   `json:"client,omitempty"`
	ClientURL   string   `json:"client_url,omitempty"`
	Links       []link   `json:"links,omitempty"`
}

// Notify sends ev. An invalid key or event (400) is a permanent error;
// 429, 5xx and network failures are retried. A test event triggers an
// info alert of its own and resolves it at once.
func (n *Notifier) Notify(ctx context.Context, cfg sdk.Settings, ev sdk.Event) error {
	s, err := n.parse(cfg)
	if err != nil {
		return sdk.Permanent(err)
	}
	key := DedupKey(ev)
	switch {
	case ev.EffectiveKind() == sdk.KindTest:
		if err := n.send(ctx, s, s.trigger(ctx, cfg, ev, key)); err != nil {
			return err
		}
		return n.send(ctx, s, event{RoutingKey: s.routingKey, EventAction: actionResolve, DedupKey: key})
	case ev.IsRecovery() || ev.Level == sdk.LevelOK:
		return n.send(ctx, s, event{RoutingKey: s.routingKey, EventAction: actionResolve, DedupKey: key})
	case ev.EffectiveKind() == sdk.KindAcknowledged:
		return n.send(ctx, s, event{RoutingKey: s.routingKey, EventAction: actionAcknowledge, DedupKey: key})
	default: // firing, renotify, flapping: PagerDuty adds it to the open alert
		return n.send(ctx, s, s.trigger(ctx, cfg, ev, key))
	}
}

// DedupKey is the PagerDuty dedup key of ev's alert: the same for every
// event of one host and metric, so the problem, its reminders and its
// recovery act on one PagerDuty alert. A test event has a key of its own.
func DedupKey(ev sdk.Event) string {
	if ev.EffectiveKind() == sdk.KindTest {
		return "hbd-test/" + sdk.SafeID(ev.ID)
	}
	key := "hbd/" + ev.Host + "/" + ev.MetricPath
	if len(key) > maxDedupKey {
		key = "hbd/" + sdk.SafeID(ev.Host+"/"+ev.MetricPath)
	}
	return key
}

// trigger builds the trigger event for ev.
func (s settings) trigger(ctx context.Context, cfg sdk.Settings, ev sdk.Event, key string) event {
	msg := sdk.Render(ctx, cfg, ev)
	p := &payload{Summary: sdk.Truncate(msg.Title, maxSummary), Source: ev.Host, Severity: severity(ev),
		Component: ev.MetricPath, Class: string(ev.EffectiveKind()),
		CustomDetails: map[string]any{"text": msg.Body, "level": ev.Level, "previous_level": ev.PreviousLevel, "value": ev.Value}}
	if p.Source == "" {
		p.Source = "hbd"
	}
	if !ev.Time.IsZero() {
		p.Timestamp = ev.Time.UTC().Format(time.RFC3339)
	}
	if ev.Comparison != "" {
		p.CustomDetails["threshold"] = ev.Comparison + " " + sdk.FormatValue(ev.Threshold)
	}
	if ev.Owner != "" {
		p.CustomDetails["owner"] = ev.Owner
	}
	e := event{RoutingKey: s.routingKey, EventAction: actionTrigger, DedupKey: key, Payload: p, Client: "hbd", ClientURL: ev.URL}
	if ev.URL != "" {
		e.Links = []link{{Href: ev.URL, Text: "Host in hbd"}}
	}
	return e
}

// severity maps ev to a PagerDuty severity.
func severity(ev sdk.Event) string {
	switch {
	case ev.EffectiveKind() == sdk.KindTest:
		return "info"
	case ev.Level == sdk.LevelCritical:
		return "critical"
	case ev.Level == sdk.LevelWarning:
		return "warning"
	default:
		return "error" // UNKNOWN: no data
	}
}

func (n *Notifier) send(ctx context.Context, s settings, e event) error {
	if err := sdk.PostJSON(ctx, n.client, s.url, e, sdk.Header("User-Agent", "hbd-notifier-pagerduty")); err != nil {
		return fmt.Errorf("pagerduty %s: %w", e.EventAction, err)
	}
	return nil
}

// Interface guards
var _ sdk.Notifier = (*Notifier)(nil)
