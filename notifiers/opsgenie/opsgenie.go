// Package opsgenie turns hbd alerts into Opsgenie alerts through the Alert
// API: a problem creates the alert of its host and metric (Opsgenie
// de-duplicates repeats by alias), an acknowledgement in hbd acknowledges
// it, and the recovery closes it.
package opsgenie

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hbdmon/hbd/sdk"
)

// DefaultAPIURL is Opsgenie's API host (EU accounts use
// https://api.eu.opsgenie.com).
const DefaultAPIURL = "https://api.opsgenie.com"

// Alert API limits, in characters.
const (
	maxMessage     = 130
	maxDescription = 15000
)

// Notifier sends Opsgenie alerts. Call [New] to get one.
type Notifier struct {
	client *http.Client
}

// New returns an Opsgenie notifier.
func New() *Notifier { return &Notifier{client: sdk.HTTPClient(15 * time.Second)} }

// Schema describes the opsgenie channel type.
func (n *Notifier) Schema() sdk.Schema {
	return sdk.Schema{Type: "opsgenie", Label: "Opsgenie", Fields: append([]sdk.Field{
		{Key: "api_key", Label: "API key", Type: sdk.FieldSecret, Required: true,
			Help: "key of an API integration (Settings → Integrations → API) with create and update access"},
		{Key: "api_url", Label: "API URL", Type: sdk.FieldText, Default: DefaultAPIURL,
			Help: "https://api.eu.opsgenie.com for EU accounts"},
		{Key: "team", Label: "Team", Type: sdk.FieldText,
			Help: "team to route the alerts to; empty for the integration's own routing"},
		{Key: "tags", Label: "Tags", Type: sdk.FieldText,
			Help: "extra alert tags, comma-separated; the level is always added"},
	}, sdk.TemplateFields()...)}
}

type settings struct {
	url, key, team string
	tags           []string
}

func (n *Notifier) parse(cfg sdk.Settings) (settings, error) {
	base := strings.TrimRight(cfg.String("api_url"), "/")
	if _, err := sdk.ParseHTTPURL(base); err != nil {
		return settings{}, &sdk.FieldError{Key: "api_url", Err: err}
	}
	return settings{url: base + "/v2/alerts", key: cfg.String("api_key"), team: cfg.String("team"), tags: cfg.List("tags")}, nil
}

// Validate checks cfg without contacting Opsgenie.
func (n *Notifier) Validate(cfg sdk.Settings) error {
	_, err := n.parse(cfg)
	return err
}

type responder struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

type alert struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias"`
	Description string            `json:"description"`
	Responders  []responder       `json:"responders,omitempty"`
	Tags        []string          `json:"tags"`
	Details     map[string]string `json:"details"`
	Entity      string            `json:"entity,omitempty"`
	Source      string            `json:"source"`
	Priority    string            `json:"priority"`
}

type action struct {
	Source string `json:"source"`
	User   string `json:"user,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Notify sends ev. A rejected key or alert (4xx) is a permanent error;
// 429, 5xx and network failures are retried. A test event creates an
// alert of its own and closes it at once.
func (n *Notifier) Notify(ctx context.Context, cfg sdk.Settings, ev sdk.Event) error {
	s, err := n.parse(cfg)
	if err != nil {
		return sdk.Permanent(err)
	}
	alias := Alias(ev)
	msg := sdk.Render(ctx, cfg, ev)
	switch {
	case ev.EffectiveKind() == sdk.KindTest:
		if err := n.send(ctx, s, "create", alias, s.alert(msg, ev, alias)); err != nil {
			return err
		}
		return n.send(ctx, s, "close", alias, action{Source: "hbd", Note: "hbd test notification"})
	case ev.IsRecovery() || ev.Level == sdk.LevelOK:
		return n.send(ctx, s, "close", alias, action{Source: "hbd", Note: msg.Title})
	case ev.EffectiveKind() == sdk.KindAcknowledged:
		return n.send(ctx, s, "acknowledge", alias, action{Source: "hbd", Note: msg.Title})
	default: // firing, renotify, flapping: Opsgenie counts repeats of an open alias
		return n.send(ctx, s, "create", alias, s.alert(msg, ev, alias))
	}
}

// Alias is the Opsgenie alias of ev's alert: the same for every event of
// one host and metric, and URL-safe ([sdk.SafeID]) because closing puts it
// into the request path. A test event has an alias of its own.
func Alias(ev sdk.Event) string {
	if ev.EffectiveKind() == sdk.KindTest {
		return "hbd-test-" + sdk.SafeID(ev.ID)
	}
	return "hbd-" + sdk.SafeID(ev.Host+"/"+ev.MetricPath)
}

// alert builds the create request for ev.
func (s settings) alert(msg sdk.Message, ev sdk.Event, alias string) alert {
	a := alert{Message: sdk.Truncate(msg.Title, maxMessage), Alias: alias, Description: sdk.Truncate(msg.Body, maxDescription),
		Tags: append([]string{"hbd", strings.ToLower(string(ev.Level))}, s.tags...), Entity: ev.Host, Source: "hbd",
		Priority: priority(ev), Details: map[string]string{"host": ev.Host, "metric": ev.MetricPath, "level": string(ev.Level),
			"value": sdk.FormatValue(ev.Value), "kind": string(ev.EffectiveKind())}}
	if s.team != "" {
		a.Responders = []responder{{Type: "team", Name: s.team}}
	}
	if ev.URL != "" {
		a.Details["url"] = ev.URL
	}
	if ev.Comparison != "" {
		a.Details["threshold"] = ev.Comparison + " " + sdk.FormatValue(ev.Threshold)
	}
	if ev.Owner != "" {
		a.Details["owner"] = ev.Owner
	}
	return a
}

// priority maps ev to an Opsgenie priority (P1 highest).
func priority(ev sdk.Event) string {
	switch {
	case ev.EffectiveKind() == sdk.KindTest:
		return "P5"
	case ev.Level == sdk.LevelCritical:
		return "P1"
	case ev.Level == sdk.LevelWarning:
		return "P3"
	default:
		return "P4" // UNKNOWN: no data
	}
}

// send POSTs body for op: "create" to /v2/alerts, "close" and
// "acknowledge" to /v2/alerts/<alias>/<op>?identifierType=alias (alias is
// URL-safe, see [Alias]).
func (n *Notifier) send(ctx context.Context, s settings, op, alias string, body any) error {
	u := s.url
	if op != "create" {
		u += "/" + alias + "/" + op + "?identifierType=alias"
	}
	if err := sdk.PostJSON(ctx, n.client, u, body, sdk.Header("User-Agent", "hbd-notifier-opsgenie"),
		sdk.Header("Authorization", "GenieKey "+s.key)); err != nil {
		return fmt.Errorf("opsgenie %s alert: %w", op, err)
	}
	return nil
}

// Interface guards
var _ sdk.Notifier = (*Notifier)(nil)
