package sdk

import (
	"io"
	"os"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Serve runs n as an hbd notifier plugin and returns when the daemon shuts
// the plugin down. It is the only call a plugin's main needs:
//
//	func main() { sdk.Serve(mynotifier.New()) }
//
// Serve speaks go-plugin's gRPC protocol with [Handshake], logs JSON lines
// to stderr (which the daemon forwards to its log), and exits the process
// when the daemon that started it goes away without shutting it down (for
// example after a SIGKILL). Nothing may be written to stdout before Serve:
// go-plugin's handshake line goes there.
func Serve(n Notifier) {
	stop := make(chan struct{})
	defer close(stop)
	go exitWithParent(stop, time.Second, func() { os.Exit(1) })
	plugin.Serve(ServeConfig(n, os.Stderr))
}

// ServeConfig returns the go-plugin server configuration [Serve] uses, with
// logs written as JSON lines to logOutput. It exists for in-process
// harnesses such as sdk/sdktest, which set its Test field; plugins call
// [Serve].
func ServeConfig(n Notifier, logOutput io.Writer) *plugin.ServeConfig {
	red := newRedactor(logOutput)
	log := newPluginLogger(n.Schema().Type, red)
	return &plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &Plugin{Impl: n, log: log, red: red}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(MaxMessageSize), grpc.MaxSendMsgSize(MaxMessageSize))
			return grpc.NewServer(opts...)
		},
		Logger: log,
	}
}

// exitWithParent calls exit once the process's parent changes, which on
// Unix means the parent died and the process was re-parented. go-plugin
// hosts normally stop their plugins, but a SIGKILLed daemon cannot, and an
// orphaned plugin would otherwise live forever.
func exitWithParent(stop <-chan struct{}, every time.Duration, exit func()) {
	parent := os.Getppid()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if os.Getppid() != parent {
				defaultLogger().Warn("parent process exited; stopping notifier plugin", "parent_pid", parent)
				exit()
				return
			}
		}
	}
}
