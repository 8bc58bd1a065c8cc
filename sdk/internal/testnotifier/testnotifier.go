// Package testnotifier is the notifier the SDK's own tests serve: it posts
// the event title to an HTTP URL and, on request, misbehaves in the ways the
// SDK must cope with.
package testnotifier

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/hbdmon/hbd/sdk"
)

// Behaviours selected by Event.Message.
const (
	// Panic makes Notify panic with the token in the panic value.
	Panic = "panic"
	// Leak makes Notify log the token and return an error containing it.
	Leak = "leak"
	// Block makes Notify wait for its context to end.
	Block = "block"
	// Reject makes Notify return a permanent error.
	Reject = "reject"
	// Drop makes Notify succeed without sending anything.
	Drop = "drop"
)

// Notifier is the test notifier.
type Notifier struct {
	client *http.Client
}

var _ sdk.Notifier = (*Notifier)(nil)

// New returns a test notifier.
func New() *Notifier { return &Notifier{client: sdk.HTTPClient(5 * time.Second)} }

// Schema describes url (required text), token (required secret) and two
// optional typed fields.
func (n *Notifier) Schema() sdk.Schema {
	return sdk.Schema{Type: "test", Label: "Test", Fields: []sdk.Field{
		{Key: "url", Label: "URL", Type: sdk.FieldText, Required: true},
		{Key: "token", Label: "Token", Type: sdk.FieldSecret, Required: true},
		{Key: "retries", Label: "Retries", Type: sdk.FieldNumber, Default: "3"},
		{Key: "verbose", Label: "Verbose", Type: sdk.FieldBool},
	}}
}

// Validate checks the URL (the SDK has checked the schema rules).
func (n *Notifier) Validate(cfg sdk.Settings) error {
	if _, err := sdk.ParseHTTPURL(cfg.String("url")); err != nil {
		return &sdk.FieldError{Key: "url", Err: err}
	}
	return nil
}

// Notify posts the title to url with the token as bearer, unless ev.Message
// asks for one of the behaviours above.
func (n *Notifier) Notify(ctx context.Context, cfg sdk.Settings, ev sdk.Event) error {
	if err := n.Validate(cfg); err != nil {
		return sdk.Permanent(err)
	}
	token := cfg.String("token")
	switch ev.Message {
	case Panic:
		panic("boom with " + token)
	case Leak:
		sdk.Logger(ctx).Info("about to leak", "token", token)
		return errors.New("careless error mentioning " + token)
	case Block:
		<-ctx.Done()
		return ctx.Err()
	case Reject:
		return sdk.Permanent(errors.New("rejected by policy"))
	case Drop:
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.String("url"), strings.NewReader(sdk.RenderTitle(ev)))
	if err != nil {
		return sdk.Permanent(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Event-Id", ev.ID)
	return sdk.DoHTTP(n.client, req)
}
