package sdk

import (
	"context"
	"fmt"
	"os/exec"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hbdmon/hbd/sdk/internal/notifierpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ClientConfig returns the go-plugin client configuration for launching the
// notifier binary run by cmd: the hbd [Handshake], [PluginMap], gRPC only,
// automatic mutual TLS, and plugin logs forwarded to logger. The daemon may
// adjust it before plugin.NewClient, for example set SecureConfig to pin the
// binary's SHA-256 or StartTimeout.
func ClientConfig(cmd *exec.Cmd, logger hclog.Logger) *plugin.ClientConfig {
	return &plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          PluginMap(),
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
	raw, err := rpc.Dispense(PluginName)
	if err != nil {
		return nil, fmt.Errorf("dispense notifier plugin: %w", err)
	}
	c, ok := raw.(*Client)
	if !ok {
		return nil, fmt.Errorf("dispense notifier plugin: got %T, want *sdk.Client", raw)
	}
	return c, nil
}

// Client is the daemon's handle on one running notifier plugin. It is safe
// for concurrent use. Every call is bounded by its ctx, whose deadline
// reaches the plugin.
//
// Errors: a problem the plugin reports is a [*RemoteError] ([IsPermanent]
// tells whether to retry, [ErrorField] which config key is at fault); a
// broken connection wraps [ErrUnavailable]; a timeout or cancellation wraps
// ctx's error; a call the plugin does not know wraps [ErrUnimplemented].
type Client struct {
	rpc notifierpb.NotifierClient
}

// Schema asks the plugin for its channel type description. The result is not
// checked; callers should run [Schema.Check] before trusting it.
func (c *Client) Schema(ctx context.Context) (Schema, error) {
	resp, err := c.rpc.Schema(ctx, &notifierpb.SchemaRequest{})
	if err != nil {
		return Schema{}, callError(ctx, "schema", err)
	}
	return schemaFromPB(resp), nil
}

// Validate asks the plugin whether cfg is a usable channel configuration.
func (c *Client) Validate(ctx context.Context, cfg Config) error {
	resp, err := c.rpc.Validate(ctx, &notifierpb.ValidateRequest{Config: cfg})
	if err != nil {
		return callError(ctx, "validate", err)
	}
	return errorFromPB(resp.GetError())
}

// Notify asks the plugin to deliver ev through the channel configured by cfg.
func (c *Client) Notify(ctx context.Context, cfg Config, ev Event) error {
	resp, err := c.rpc.Notify(ctx, &notifierpb.NotifyRequest{Config: cfg, Event: eventToPB(ev)})
	if err != nil {
		return callError(ctx, "notify", err)
	}
	return errorFromPB(resp.GetError())
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
		return Permanent(fmt.Errorf("notifier %s: %w", call, ErrUnimplemented))
	case codes.ResourceExhausted:
		return Permanent(fmt.Errorf("notifier %s: %s", call, st.Message()))
	default:
		return fmt.Errorf("notifier %s: %w: %s", call, ErrUnavailable, st.Message())
	}
}
