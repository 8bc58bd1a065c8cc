// Package sdktest helps notifier authors test a notifier without a daemon:
// [Validate] and [Notify] call it in-process with the configuration the SDK
// would hand it, [Start] serves it in-process over the SDK's real
// go-plugin gRPC plumbing, [Conformance] checks the rules every notifier
// must follow, and [Receiver] stands in for the service it talks to.
package sdktest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/host"
	"github.com/hbdmon/hbd/sdk/internal/pluginrpc"
)

// Harness is a notifier served in-process exactly as [sdk.Serve] would serve
// it from its own binary (same gRPC server options, same defaults and
// schema check, same redaction and logging), with a daemon-side
// [*host.Client] connected to it.
type Harness struct {
	// Client calls the served notifier the way the daemon does.
	Client *host.Client

	logs *lockedBuffer
}

// Logs returns everything the plugin side logged so far (JSON lines, secret
// values already redacted by the SDK).
func (h *Harness) Logs() string { return h.logs.String() }

// Start serves n in-process and returns a connected harness. It fails tb if
// the plugin does not come up within 10 seconds, and stops the plugin when
// tb's test ends (logs are printed if the test failed).
func Start(tb testing.TB, n sdk.Notifier) *Harness {
	tb.Helper()
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})

	cfg := pluginrpc.NotifierServeConfig(n, logs)
	// In-process there is no PLUGIN_PROTOCOL_VERSIONS environment from a
	// client to negotiate with: serve the newest version only, as a
	// daemon of this SDK's generation would pick.
	cfg.VersionedPlugins = map[int]plugin.PluginSet{pluginrpc.ProtocolVersion: cfg.VersionedPlugins[pluginrpc.ProtocolVersion]}
	cfg.Test = &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed}
	go plugin.Serve(cfg)

	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-closed:
		cancel()
		tb.Fatalf("sdktest: plugin server stopped during start-up; logs:\n%s", logs)
	case <-time.After(10 * time.Second):
		cancel()
		tb.Fatalf("sdktest: plugin server did not start within 10s; logs:\n%s", logs)
	}
	// The default reattach runner polls this very process's pid forever;
	// an in-process runner ends when the server does.
	rc.ReattachFunc = func() (runner.AttachedRunner, error) { return inProcess{done: closed}, nil }

	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginrpc.Handshake,
		Plugins:          pluginrpc.PluginMap(), // what go-plugin uses on reattach
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "sdktest-host", Output: logs, Level: hclog.Warn}),
	})
	client, err := host.Dispense(pc)
	if err != nil {
		cancel()
		tb.Fatalf("sdktest: %v", err)
	}
	rpc, err := pc.Client() // the connection Dispense made
	if err != nil {
		cancel()
		tb.Fatalf("sdktest: connect: %v", err)
	}
	tb.Cleanup(func() {
		// Closing the client asks the server to shut down, which ends Serve.
		// Cancelling ctx too early would make go-plugin stop the server a
		// second time, concurrently (a data race inside go-plugin).
		_ = rpc.Close()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			cancel()
			<-closed
		}
		cancel()
		if tb.Failed() {
			tb.Logf("sdktest: plugin logs:\n%s", logs)
		}
	})
	return &Harness{Client: client, logs: logs}
}

// inProcess is the go-plugin runner for a plugin served by this process.
type inProcess struct{ done <-chan struct{} }

func (r inProcess) Wait(ctx context.Context) error {
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (inProcess) Kill(context.Context) error {
	return errors.New("sdktest: in-process plugin is stopped by test cleanup")
}
func (inProcess) ID() string { return "sdktest-in-process" }
func (inProcess) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}
func (inProcess) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// lockedBuffer is a bytes.Buffer safe for the concurrent writers of a served
// plugin.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
