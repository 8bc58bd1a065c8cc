package sdk

import (
	"context"
	"errors"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hbdmon/hbd/sdk/internal/notifierpb"
	"google.golang.org/grpc"
)

// Handshake is the go-plugin handshake shared by the daemon and every
// notifier plugin. ProtocolVersion changes only when the wire protocol breaks
// compatibility; the daemon then refuses plugins built against another
// version with a message naming both. The cookie only tells a binary it was
// started by hbd (running a plugin by hand prints a hint and exits); it is not
// a security measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "HBD_NOTIFIER_PLUGIN",
	MagicCookieValue: "8c1d6f0e-hbd-notifier-7a42b9e5",
}

// ProtocolVersion is the notifier wire protocol version in [Handshake].
const ProtocolVersion = 1

// PluginName is the name under which a notifier is served and dispensed in
// the go-plugin plugin map.
const PluginName = "notifier"

// MaxMessageSize bounds a single gRPC message in either direction (a
// configuration or event larger than gRPC's 4 MiB default is accepted).
const MaxMessageSize = 16 << 20

// Plugin is the go-plugin glue for a notifier: on the plugin side it serves
// Impl, on the daemon side it produces a [*Client]. Most code uses [Serve],
// [PluginMap] and [Dispense] instead of touching it.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin

	// Impl is the served notifier; nil on the daemon side.
	Impl Notifier

	log hclog.Logger
	red *redactor
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// GRPCServer registers the notifier service on s (go-plugin calls it in the
// plugin process).
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("sdk: Plugin.Impl is nil")
	}
	red, log := p.red, p.log
	if red == nil {
		red = newRedactor(os.Stderr)
	}
	if log == nil {
		log = newPluginLogger(p.Impl.Schema().Type, red)
	}
	notifierpb.RegisterNotifierServer(s, newGRPCServer(p.Impl, log, red))
	return nil
}

// GRPCClient returns a [*Client] over conn (go-plugin calls it in the daemon
// on Dispense).
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &Client{rpc: notifierpb.NewNotifierClient(conn)}, nil
}

// PluginMap returns the plugin map the daemon passes to go-plugin's client.
func PluginMap() map[string]plugin.Plugin {
	return map[string]plugin.Plugin{PluginName: &Plugin{}}
}
