// Package webhook delivers hbd alerts as JSON HTTP requests to any URL,
// optionally signed with HMAC-SHA256.
//
// The request body is a [Payload] encoded as JSON. When the channel has a
// secret, the request carries
//
//	X-HBD-Signature: sha256=<hex of HMAC-SHA256(secret, raw request body)>
//
// which the receiver recomputes over the exact bytes it received and
// compares in constant time. Every request also carries X-HBD-Event-Key,
// the event ID made URL- and header-safe by [sdk.SafeID], the same across
// retries of one notification, for deduplication, and X-HBD-Event-Id, the
// opaque event ID itself (its SafeID when the ID holds bytes a header
// cannot carry).
//
// A 429 or 503 answer with a Retry-After header is retried no sooner than
// it asks (up to the daemon's bound); the channel's optional title and body
// templates ([sdk.TemplateFields]) set the payload's title and text.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/hbdmon/hbd/sdk"
)

// Header names set by the webhook notifier.
const (
	SignatureHeader = "X-HBD-Signature"
	EventIDHeader   = "X-HBD-Event-Id"
	EventKeyHeader  = "X-HBD-Event-Key"
)

// PayloadVersion is the version of the [Payload] format. Version 1
// payloads are version 2 payloads without key, kind, threshold,
// comparison and owner; fields are only ever added.
const PayloadVersion = 2

var (
	// ErrMethod is returned for a method other than POST, PUT or PATCH.
	ErrMethod = errors.New("must be POST, PUT or PATCH")
	// ErrHeaderLine is returned for a headers entry that is not "Name: value".
	ErrHeaderLine = errors.New(`each header must be written "Name: value"`)
	// ErrHeaderName is returned for a header name that is not an HTTP token.
	ErrHeaderName = errors.New("header name is not a valid HTTP header name")
	// ErrHeaderReserved is returned for a header hbd or HTTP sets itself.
	ErrHeaderReserved = errors.New("header is set by hbd and cannot be configured")
)

var headerName = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")

// reservedHeaders may not be configured: HTTP derives them from the request,
// or the notifier sets them.
var reservedHeaders = []string{"Host", "Content-Length", "Transfer-Encoding", "Connection", SignatureHeader, EventIDHeader, EventKeyHeader}

// Notifier sends webhook requests. Call [New] to get one.
type Notifier struct {
	client *http.Client
}

// New returns a webhook notifier.
func New() *Notifier {
	return &Notifier{client: sdk.HTTPClient(15 * time.Second)}
}

// Schema describes the webhook channel type.
func (n *Notifier) Schema() sdk.Schema {
	return sdk.Schema{Type: "webhook", Label: "Webhook", Fields: append([]sdk.Field{
		{Key: "url", Label: "URL", Type: sdk.FieldText, Required: true,
			Help: "http:// or https:// address that receives the JSON event"},
		{Key: "method", Label: "Method", Type: sdk.FieldText, Default: http.MethodPost,
			Help: "POST, PUT or PATCH"},
		{Key: "headers", Label: "Extra headers", Type: sdk.FieldMultiline,
			Help: `"Name: value" per line, or separated by commas; use lines when a value contains a comma. Values are stored and shown in clear`},
		{Key: "secret", Label: "Signing secret", Type: sdk.FieldSecret,
			Help: "When set, the body is signed: X-HBD-Signature: sha256=<hex HMAC-SHA256 of the body>"},
	}, sdk.TemplateFields()...)}
}

// Payload is the JSON body of a webhook request.
type Payload struct {
	// Version is PayloadVersion.
	Version int `json:"version"`
	// ID is the event's opaque ID; Key is sdk.SafeID(ID), safe in URLs
	// and file names.
	ID  string `json:"id"`
	Key string `json:"key"`
	// Kind is "firing", "renotify", "resolved", "acknowledged",
	// "flapping" or "test".
	Kind string `json:"kind,omitempty"`
	// Threshold and Comparison (">=" or "<=") are the alert rule's limit;
	// absent for heartbeats and missing data.
	Threshold  *float64 `json:"threshold,omitempty"`
	Comparison string   `json:"comparison,omitempty"`
	// Owner is the host owner's user name, when the host has one.
	Owner             string     `json:"owner,omitempty"`
	Channel           string     `json:"channel,omitempty"`
	Host              string     `json:"host"`
	MetricPath        string     `json:"metric_path"`
	Level             string     `json:"level"`
	PreviousLevel     string     `json:"previous_level,omitempty"`
	Value             float64    `json:"value"`
	Since             *time.Time `json:"since,omitempty"`
	Time              *time.Time `json:"time,omitempty"`
	Message           string     `json:"message,omitempty"`
	Test              bool       `json:"test"`
	NotificationCount int        `json:"notification_count"`
	URL               string     `json:"url,omitempty"`
	// Summary is what happened in one sentence ("web02 is DOWN: no
	// heartbeat for 2m10s (IPv4 and IPv6)"), the daemon's event Text;
	// absent when the daemon does not send one (older daemons, tests).
	Summary string `json:"summary,omitempty"`
	// EpisodeStart is when the alert episode began (the metric left OK);
	// absent when unknown.
	EpisodeStart *time.Time `json:"episode_start,omitempty"`
	// Title and Text are the channel's title and body templates rendered
	// for the event, or the SDK's default renderings (which begin with
	// Summary when set), for receivers that only display text.
	Title string `json:"title"`
	Text  string `json:"text"`
}

// NewPayload returns the payload sent for ev with the default title and
// text ([sdk.RenderTitle], [sdk.RenderBody]).
func NewPayload(ev sdk.Event) Payload {
	return newPayload(ev, sdk.Message{Title: sdk.RenderTitle(ev), Body: sdk.RenderBody(ev)})
}

func newPayload(ev sdk.Event, msg sdk.Message) Payload {
	p := Payload{
		Version: PayloadVersion, ID: ev.ID, Key: sdk.SafeID(ev.ID), Kind: string(ev.EffectiveKind()),
		Comparison: ev.Comparison, Owner: ev.Owner,
		Channel: ev.Channel, Host: ev.Host, MetricPath: ev.MetricPath,
		Level: string(ev.Level), PreviousLevel: string(ev.PreviousLevel), Value: ev.Value,
		Since: timeOrNil(ev.Since), Time: timeOrNil(ev.Time), Message: ev.Message, Test: ev.Test,
		NotificationCount: ev.NotificationCount, URL: ev.URL,
		Summary: strings.TrimSpace(ev.Text), EpisodeStart: timeOrNil(ev.EpisodeStart),
		Title: msg.Title, Text: msg.Body,
	}
	if ev.Comparison != "" {
		th := ev.Threshold
		p.Threshold = &th
	}
	return p
}

// headerSafe reports whether s can be sent as a header value as is:
// printable ASCII only.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// Sign returns the X-HBD-Signature value for body signed with secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// settings is a validated webhook channel configuration.
type settings struct {
	url, method, secret string
	headers             http.Header
}

func (n *Notifier) parse(cfg sdk.Settings) (settings, error) {
	s := settings{url: cfg.String("url"), method: strings.ToUpper(cfg.String("method")), secret: cfg.Raw("secret")}
	if _, err := sdk.ParseHTTPURL(s.url); err != nil {
		return settings{}, &sdk.FieldError{Key: "url", Err: err}
	}
	switch s.method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return settings{}, &sdk.FieldError{Key: "method", Err: ErrMethod}
	}
	h, err := parseHeaders(cfg.Raw("headers"))
	if err != nil {
		return settings{}, &sdk.FieldError{Key: "headers", Err: err}
	}
	s.headers = h
	return s, nil
}

// parseHeaders reads "Name: value" entries separated by newlines or commas.
// An entry without a colon continues the previous header's value, so
// "Accept: text/plain, application/json" keeps its comma. Errors name the
// header or entry number, never a value, which may be a credential.
func parseHeaders(raw string) (http.Header, error) {
	h := http.Header{}
	last := ""
	for i, entry := range strings.FieldsFunc(raw, func(r rune) bool { return r == '\n' || r == ',' }) {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, value, ok := strings.Cut(entry, ":")
		name = strings.TrimSpace(name)
		if !ok || !headerName.MatchString(name) {
			if last == "" {
				if ok {
					return nil, fmt.Errorf("entry %d: %w", i+1, ErrHeaderName)
				}
				return nil, fmt.Errorf("entry %d: %w", i+1, ErrHeaderLine)
			}
			vals := h.Values(last)
			vals[len(vals)-1] += ", " + entry
			continue
		}
		for _, r := range reservedHeaders {
			if strings.EqualFold(name, r) {
				return nil, fmt.Errorf("%s: %w", r, ErrHeaderReserved)
			}
		}
		h.Add(name, strings.TrimSpace(value))
		last = name
	}
	return h, nil
}

// Validate checks cfg without sending anything.
func (n *Notifier) Validate(cfg sdk.Settings) error {
	_, err := n.parse(cfg)
	return err
}

// Notify sends ev as JSON. 4xx answers other than 408, 425 and 429 are
// permanent errors; 5xx answers, timeouts and network failures retryable.
func (n *Notifier) Notify(ctx context.Context, cfg sdk.Settings, ev sdk.Event) error {
	s, err := n.parse(cfg)
	if err != nil {
		return sdk.Permanent(err)
	}
	body, err := json.Marshal(newPayload(ev, sdk.Render(ctx, cfg, ev)))
	if err != nil {
		return sdk.Permanent(fmt.Errorf("encode event: %w", err))
	}
	key, id := sdk.SafeID(ev.ID), ev.ID
	if !headerSafe(id) {
		id = key
	}
	signature := ""
	if s.secret != "" {
		signature = Sign(s.secret, body)
	}
	// The operator's headers may replace Content-Type and User-Agent, not
	// the event and signature headers (parseHeaders refuses those).
	return sdk.Send(ctx, n.client, s.method, s.url, body,
		sdk.Header("Content-Type", "application/json"), sdk.Header("User-Agent", "hbd-notifier-webhook"), sdk.Headers(s.headers),
		sdk.Header(EventKeyHeader, key), sdk.Header(EventIDHeader, id), sdk.Header(SignatureHeader, signature))
}

// Interface guards
var _ sdk.Notifier = (*Notifier)(nil)
