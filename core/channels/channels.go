// Package channels is the registry of notification channels: those of the
// config file and those users create through the API (persisted through a
// Repository). It owns the channel model, its validation against the
// type's plugin schema, ownership and visibility (asked of the access
// policy), the masking of secrets, each channel's destination policy and
// the messages users read about channels. It knows nothing of HTTP (the
// API turns its sentinel errors into status codes) nor of delivery (the
// dispatcher reads channels from it and is told of deletions through a
// Watcher).
//
// Lifecycle: New, then Start (loads the user channels and checks the
// config channels), Reload after every config change; with several
// daemons on one database, Follow (on a goroutine) keeps the user
// channels in step with the other daemons' changes. All methods are safe
// for concurrent use.
package channels

import (
	"context"
	"errors"
	"time"

	"github.com/hbdmon/hbd/core/channels/channelrecord"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/sdk"
)

// Where a channel is defined.
const (
	SourceConfig = channelrecord.SourceConfig // hbd.yaml: read-only through the API
	SourceUser   = channelrecord.SourceUser   // created through the API, stored by the Repository
)

// Mask stands for every secret value the API returns. A PUT that sends it
// back keeps the stored secret.
const Mask = "•••"

// Bounds of a channel created or changed through the API.
const (
	MaxFields      = 64
	MaxValueLen    = 4096
	MaxHosts       = 64
	MaxHostPattern = 256
)

// MaxCoveredHosts bounds View.CoveredHosts.
const MaxCoveredHosts = 100

// Errors the API turns into status codes. Every error of a channel
// operation is an *Error wrapping one of them, with a message for the
// caller that holds no secret.
var (
	ErrNotFound    = errors.New("channel not found")                   // 404
	ErrForbidden   = errors.New("not the channel's owner")             // 403
	ErrReadOnly    = errors.New("channel is defined in the config")    // 403
	ErrExists      = errors.New("channel name taken")                  // 409
	ErrInvalid     = errors.New("invalid channel")                     // 400
	ErrUnavailable = errors.New("notifier plugin unavailable")         // 503
	ErrDelivery    = errors.New("test notification was not delivered") // 502
)

// Error is a channel operation's failure: Kind is one of the sentinel
// errors above, Msg what to tell the caller, Field the type field at
// fault when one is ("" otherwise).
type Error struct {
	Kind  error
	Msg   string
	Field string
}

// Error returns the message for the caller.
func (e *Error) Error() string { return e.Msg }

// Unwrap returns Kind, so errors.Is(err, ErrNotFound) works.
func (e *Error) Unwrap() error { return e.Kind }

// Channel is a notification channel from either source (its stored form,
// package channelrecord).
type Channel = channelrecord.Channel

// View is a channel as the API shows it: secrets are masked.
type View struct {
	Name      string
	Type      string
	TypeLabel string
	Owner     string // empty when the channel has none
	Private   bool
	MinLevel  string
	Hosts     []string
	// Fields lists the type's fields in schema order. When the type is
	// missing the schema is unknown, so every stored value is masked.
	Fields      []FieldView
	Source      string
	TypeMissing bool
	// CoveredCount is how many of the hosts hbd knows (watchhosts and
	// hosts that reported) and the caller may see the channel receives
	// alerts of now (the dispatcher's Coverage). CoveredHosts names them,
	// sorted, at most MaxCoveredHosts.
	CoveredCount int
	CoveredHosts []string
	// Problem, when set, says why the stored channel no longer passes its
	// type's checks (its plugin was replaced by a stricter one, say).
	Problem *Problem
}

// Problem is why a stored channel fails its type's checks.
type Problem struct {
	// Field is the type field at fault, "" when the plugin did not say.
	Field string
	// Message is the check's message, secrets removed.
	Message string
	// Since is when the problem was found.
	Since time.Time
}

// FieldView is one field of a View.
type FieldView struct {
	Key       string
	Label     string
	Value     string // Mask for secrets
	Sensitive bool
}

// Input is a create or update request. Nil pointers and absent Fields
// keys were not sent: an update keeps their stored values.
type Input struct {
	Name     string // ignored by updates (the name comes from the URL)
	Type     string // required to create; an update may only repeat it
	MinLevel *string
	Private  *bool
	Hosts    *[]string
	// Fields are the type's settings as sent; "" clears one, and Mask
	// keeps a stored secret.
	Fields map[string]string
}

// Repository persists the user channels (*store.Store provides it). Each
// call returns once committed.
type Repository interface {
	// UserChannels returns every user channel, by name.
	UserChannels(ctx context.Context) ([]Channel, error)
	// PutUserChannel creates or replaces a user channel.
	PutUserChannel(ctx context.Context, c Channel) error
	// DeleteUserChannel removes a user channel and its pending
	// deliveries; an unknown name is not an error.
	DeleteUserChannel(ctx context.Context, name string) error
}

// Journal records daemon events users read (*store.Store provides it).
type Journal interface {
	// Journal records msg about host ("" for daemon-wide entries) without
	// waiting for the commit.
	Journal(host, msg string)
}

// Notifier is what the registry needs of the plugin host
// (*pluginhost.Host provides it).
type Notifier interface {
	// Types returns the schema of every installed channel type.
	Types() map[string]sdk.Schema
	// Validate asks the type's plugin whether cfg is usable.
	Validate(ctx context.Context, typ string, cfg sdk.Config) error
	// Notify delivers ev through a channel of type typ configured by cfg.
	Notify(ctx context.Context, typ string, cfg sdk.Config, ev sdk.Event) error
}

// Policy is the access policy the registry asks (*access.Policy provides
// it).
type Policy interface {
	PrincipalOf(user string) (access.Principal, bool)
	IsAdmin(pr access.Principal) bool
	UserCanSee(user, host string) bool
	CanSeeChannel(pr access.Principal, ch access.Channel) bool
	OwnsChannel(pr access.Principal, ch access.Channel) bool
}

// Watcher learns that channels stopped existing; the dispatcher is one (it
// ends their delivery queues). Its methods are called synchronously and
// must not call back into the registry's change methods.
type Watcher interface {
	// ChannelDeleted is called once a user channel was deleted (the
	// Repository no longer holds it nor its pending deliveries), before
	// the deletion is journaled.
	ChannelDeleted(name string)
	// ChannelsReloaded is called by Reload: config channels may have been
	// removed.
	ChannelsReloaded()
}
