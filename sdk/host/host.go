// Package host is the daemon's side of the hbd notifier plugin protocol: it
// launches a notifier binary with hashicorp/go-plugin and calls Schema,
// Validate and Notify on it over gRPC. Plugin authors do not use it (they
// write against package sdk and call sdk.Serve); the daemon's plugin
// manager (core/pluginhost) and sdk/sdktest's harness do.
//
// The daemon launches each hbd-notifier-* binary with [ClientConfig],
// obtains a [*Client] with [Dispense], and calls it. The wire messages are
// an internal detail of the sdk module (see ../proto/notifier.proto).
package host

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/internal/notifierpb"
	"github.com/hbdmon/hbd/sdk/internal/pluginrpc"
)

// ProtocolVersion is the newest notifier wire protocol version the daemon
// speaks. go-plugin negotiates the version with each plugin: a plugin built
// against an older SDK speaks [MinProtocolVersion] (see
// [Client.ProtocolVersion]); one built for a version outside
// MinProtocolVersion..ProtocolVersion is refused.
const ProtocolVersion = pluginrpc.ProtocolVersion

// MinProtocolVersion is the oldest notifier wire protocol version the
// daemon still speaks.
const MinProtocolVersion = pluginrpc.MinProtocolVersion

// ErrUnavailable means the plugin process could not be reached (it died, or
// the connection broke). The call may succeed after the daemon restarts it.
// [sdk.Reason] reports it as [sdk.ReasonPlugin].
var ErrUnavailable = sdk.WithReason(errors.New("notifier plugin unavailable"), sdk.ReasonPlugin)

// ErrUnimplemented means the plugin does not know the call, typically because
// it was built against an older SDK. It is permanent.
var ErrUnimplemented = errors.New("notifier plugin does not implement this call")

// ClientConfig returns the go-plugin client configuration for launching the
// notifier binary run by cmd: the hbd handshake and plugin map, gRPC only,
// automatic mutual TLS, and plugin logs forwarded to logger. The daemon may
// adjust it before plugin.NewClient, for example set SecureConfig to pin the
// binary's SHA-256 or StartTimeout.
func ClientConfig(cmd *exec.Cmd, logger hclog.Logger) *plugin.ClientConfig {
	return &plugin.ClientConfig{
		HandshakeConfig:  pluginrpc.Handshake,
		VersionedPlugins: pluginrpc.VersionedPluginMap(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           logger,
	}
}

// Dispense starts pc's plugin process if needed, connects and returns the
// notifier client. The client stays valid until pc is killed or the process
// dies; calls then fail with [ErrUnavailable].
func Dispense(pc *plugin.Client) (*Client, error) {
	rpc, err := pc.Client()
	if err != nil {
		return nil, fmt.Errorf("connect to notifier plugin: %w", err)
	}
	c, err := pluginrpc.Dispense(rpc)
	if err != nil {
		return nil, err
	}
	return &Client{rpc: c, version: pc.NegotiatedVersion()}, nil
}

// Client is the daemon's handle on one running notifier plugin. It is safe
// for concurrent use. Every call is bounded by its ctx, whose deadline
// reaches the plugin.
//
// Errors: a problem the plugin reports is an [*sdk.RemoteError]
// ([sdk.IsPermanent] tells whether to retry, [sdk.ErrorField] which config
// key is at fault); a broken connection wraps [ErrUnavailable]; a timeout or
// cancellation wraps ctx's error; a call the plugin does not know wraps
// [ErrUnimplemented].
type Client struct {
	rpc     notifierpb.NotifierClient
	version int
}

// ProtocolVersion returns the wire protocol version negotiated with the
// plugin: [ProtocolVersion] for a plugin built against this SDK,
// [MinProtocolVersion] for one built against an SDK before protocol 2,
// which ignores the event's Kind, Threshold, Comparison and Owner, never
// reports a retry-after and knows no choice or multiline fields.
func (c *Client) ProtocolVersion() int { return c.version }

// Schema asks the plugin for its channel type description. The result is not
// checked; callers should run [sdk.Schema.Check] before trusting it.
func (c *Client) Schema(ctx context.Context) (sdk.Schema, error) {
	resp, err := c.rpc.Schema(ctx, &notifierpb.SchemaRequest{})
	if err != nil {
		return sdk.Schema{}, callError(ctx, "schema", err)
	}
	return schemaFromPB(resp), nil
}

// Validate asks the plugin whether cfg is a usable channel configuration.
func (c *Client) Validate(ctx context.Context, cfg sdk.Config) error {
	resp, err := c.rpc.Validate(ctx, &notifierpb.ValidateRequest{Config: cfg})
	if err != nil {
		return callError(ctx, "validate", err)
	}
	return errorFromPB(resp.GetError())
}

// Notify asks the plugin to deliver ev through the channel configured by cfg.
// A plugin speaking protocol 1 gets the event as that protocol knows it:
// without the fields added since, and with an acknowledgement said in its
// Text ("Acknowledged: …"), since it cannot tell one from a new alert.
func (c *Client) Notify(ctx context.Context, cfg sdk.Config, ev sdk.Event) error {
	if c.version < 2 {
		ev = protocol1Event(ev)
	}
	resp, err := c.rpc.Notify(ctx, &notifierpb.NotifyRequest{Config: cfg, Event: eventToPB(ev)})
	if err != nil {
		return callError(ctx, "notify", err)
	}
	return errorFromPB(resp.GetError())
}

// protocol1Event is ev as protocol 1 carries it.
func protocol1Event(ev sdk.Event) sdk.Event {
	if ev.Kind == sdk.KindAcknowledged {
		text := ev.Text
		if text == "" {
			text = ev.Host + " " + ev.MetricPath + " " + string(ev.Level)
		}
		ev.Text = "Acknowledged: " + text
	}
	ev.Kind, ev.Threshold, ev.Comparison, ev.Owner = "", 0, "", ""
	return ev
}

// callError maps a gRPC transport failure to the SDK's error vocabulary.
func callError(ctx context.Context, call string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("notifier %s: %w", call, ctxErr)
	}
	// From here on ctx is live: a Canceled status means the connection
	// was closed under the call (plugin killed), hence unavailable.
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.DeadlineExceeded:
		return fmt.Errorf("notifier %s: %w", call, context.DeadlineExceeded)
	case codes.Unimplemented:
		return sdk.Permanent(fmt.Errorf("notifier %s: %w", call, ErrUnimplemented))
	case codes.ResourceExhausted:
		return sdk.Permanent(fmt.Errorf("notifier %s: %s", call, st.Message()))
	default:
		return fmt.Errorf("notifier %s: %w: %s", call, ErrUnavailable, st.Message())
	}
}

// Conversions between the SDK's Go types and the wire messages, daemon
// side: the plugin's side is in package sdk.

func schemaFromPB(p *notifierpb.SchemaResponse) sdk.Schema {
	s := sdk.Schema{Type: p.GetType(), Label: p.GetLabel(), Fields: make([]sdk.Field, 0, len(p.GetFields()))}
	for _, f := range p.GetFields() {
		sf := sdk.Field{
			Key: f.GetKey(), Label: f.GetLabel(), Type: f.GetType(), Required: f.GetRequired(),
			Default: f.GetDefault(), Help: f.GetHelp(),
		}
		for _, o := range f.GetOptions() {
			sf.Options = append(sf.Options, sdk.Option{Value: o.GetValue(), Label: o.GetLabel()})
		}
		s.Fields = append(s.Fields, sf)
	}
	return s
}

func eventToPB(e sdk.Event) *notifierpb.Event {
	return &notifierpb.Event{
		Id: e.ID, Channel: e.Channel, Host: e.Host, MetricPath: e.MetricPath,
		Level: string(e.Level), PreviousLevel: string(e.PreviousLevel), Value: e.Value,
		Since: timeToPB(e.Since), Time: timeToPB(e.Time), Message: e.Message,
		Test: e.Test, NotificationCount: int64(e.NotificationCount), Url: e.URL,
		Text: e.Text, EpisodeStart: timeToPB(e.EpisodeStart),
		Kind: string(e.Kind), Threshold: e.Threshold, Comparison: e.Comparison, Owner: e.Owner,
	}
}

func timeToPB(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// errorFromPB decodes a notifier's error: an [*sdk.RemoteError], wrapped
// with [sdk.Permanent] when the notifier marked it so.
func errorFromPB(p *notifierpb.Error) error {
	if p == nil {
		return nil
	}
	msg := p.GetMessage()
	if msg == "" {
		msg = "notifier plugin reported an error without a message"
	}
	err := &sdk.RemoteError{Message: msg, Field: p.GetField(), Reason: p.GetReason()}
	if p.GetPermanent() {
		return sdk.Permanent(err)
	}
	if ms := p.GetRetryAfterMs(); ms > 0 {
		return sdk.RetryAfter(err, time.Duration(min(ms, int64(sdk.MaxRetryAfter/time.Millisecond)))*time.Millisecond)
	}
	return err
}
