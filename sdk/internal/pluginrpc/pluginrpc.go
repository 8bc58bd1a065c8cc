// Package pluginrpc is the go-plugin plumbing shared by the two ends of the
// notifier protocol: the plugin side (package sdk, whose Serve is all a
// plugin author sees), the daemon side (sdk/host) and the in-process
// harness (sdk/sdktest). Nothing here is part of the author API, so a
// go-plugin release changes this package and sdk/host, never what plugin
// authors compile against.
package pluginrpc

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/hbdmon/hbd/sdk/internal/notifierpb"
)

// Handshake is the go-plugin handshake shared by the daemon and every
// notifier plugin. The protocol version is negotiated: both ends serve
// every version in [ProtocolVersions] and go-plugin picks the highest one
// the other end knows, so a plugin built against an older SDK keeps
// working with a newer daemon and the other way round. The cookie only
// tells a binary it was started by hbd (running a plugin by hand prints a
// hint and exits); it is not a security measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  MinProtocolVersion,
	MagicCookieKey:   "HBD_NOTIFIER_PLUGIN",
	MagicCookieValue: "8c1d6f0e-hbd-notifier-7a42b9e5",
}

// Notifier wire protocol versions. Version 2 added the event's kind,
// threshold, comparison and owner, the error's retry-after and the choice
// and multiline field types (see proto/notifier.proto); the messages are
// otherwise the same, so one gRPC service serves both.
const (
	// ProtocolVersion is the newest version, the one this SDK speaks
	// with a daemon (or plugin) of the same generation.
	ProtocolVersion = 2
	// MinProtocolVersion is the oldest version still spoken.
	MinProtocolVersion = 1
)

// ProtocolVersions lists the versions both ends serve, oldest first.
var ProtocolVersions = []int{1, 2}

// pluginName is the name under which a notifier is served and dispensed in
// the go-plugin plugin map.
const pluginName = "notifier"

// MaxMessageSize bounds a single gRPC message in either direction (a
// configuration or event larger than gRPC's 4 MiB default is accepted).
const MaxMessageSize = 16 << 20

// grpcPlugin is the go-plugin glue for a notifier: in the plugin process it
// registers server, in the daemon it returns the generated client.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin

	server notifierpb.NotifierServer // nil on the daemon side
}

var _ plugin.GRPCPlugin = (*grpcPlugin)(nil)

// GRPCServer registers the notifier service on s (go-plugin calls it in the
// plugin process).
func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.server == nil {
		return errors.New("pluginrpc: no notifier server")
	}
	notifierpb.RegisterNotifierServer(s, p.server)
	return nil
}

// GRPCClient returns the notifier client over conn (go-plugin calls it in
// the daemon on Dispense).
func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return notifierpb.NewNotifierClient(conn), nil
}

// PluginMap returns the plugin map the daemon passes to go-plugin's client.
func PluginMap() map[string]plugin.Plugin {
	return map[string]plugin.Plugin{pluginName: &grpcPlugin{}}
}

// VersionedPluginMap returns the plugin map of every version in
// [ProtocolVersions], for go-plugin's client.
func VersionedPluginMap() map[int]plugin.PluginSet {
	out := make(map[int]plugin.PluginSet, len(ProtocolVersions))
	for _, v := range ProtocolVersions {
		out[v] = PluginMap()
	}
	return out
}

// ServeConfig returns the go-plugin server configuration that serves srv
// with log as go-plugin's logger.
func ServeConfig(srv notifierpb.NotifierServer, log hclog.Logger) *plugin.ServeConfig {
	versioned := make(map[int]plugin.PluginSet, len(ProtocolVersions))
	for _, v := range ProtocolVersions {
		versioned[v] = plugin.PluginSet{pluginName: &grpcPlugin{server: srv}}
	}
	return &plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: versioned,
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(MaxMessageSize), grpc.MaxSendMsgSize(MaxMessageSize))
			return grpc.NewServer(opts...)
		},
		Logger: log,
	}
}

// Dispense connects through rpc and returns the generated notifier client.
func Dispense(rpc plugin.ClientProtocol) (notifierpb.NotifierClient, error) {
	raw, err := rpc.Dispense(pluginName)
	if err != nil {
		return nil, fmt.Errorf("dispense notifier plugin: %w", err)
	}
	c, ok := raw.(notifierpb.NotifierClient)
	if !ok {
		return nil, fmt.Errorf("dispense notifier plugin: got %T, want a notifier client", raw)
	}
	return c, nil
}

// NotifierServeConfig returns the server configuration sdk.Serve uses for
// notifier n (an sdk.Notifier), with its logs written as JSON lines to
// logs. Package sdk sets it when it is initialised; sdktest calls it to
// serve a notifier in-process exactly as sdk.Serve does, without package
// sdk exporting go-plugin types. (It cannot name sdk.Notifier: sdk imports
// this package.)
var NotifierServeConfig func(n any, logs io.Writer) *plugin.ServeConfig
