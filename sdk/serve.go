package sdk

import (
	"io"
	"os"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/hbdmon/hbd/sdk/internal/pluginrpc"
)

// Serve runs n as an hbd notifier plugin and returns when the daemon shuts
// the plugin down. It is the only call a plugin's main needs:
//
//	func main() { sdk.Serve(mynotifier.New()) }
//
// Serve speaks the daemon's plugin protocol (go-plugin over gRPC), logs
// JSON lines to stderr (which the daemon forwards to its log), and exits
// the process when the daemon that started it goes away without shutting
// it down (for example after a SIGKILL). Nothing may be written to stdout
// before Serve: the protocol's handshake line goes there.
func Serve(n Notifier) {
	stop := make(chan struct{})
	defer close(stop)
	go exitWithParent(stop, time.Second, func() { os.Exit(1) })
	plugin.Serve(serveConfig(n, os.Stderr))
}

func init() {
	pluginrpc.NotifierServeConfig = func(n any, logs io.Writer) *plugin.ServeConfig {
		return serveConfig(n.(Notifier), logs)
	}
}

// serveConfig returns the go-plugin server configuration [Serve] uses, with
// logs written as JSON lines to logOutput.
func serveConfig(n Notifier, logOutput io.Writer) *plugin.ServeConfig {
	red := newRedactor(logOutput)
	log := newPluginLogger(n.Schema().Type, red)
	return pluginrpc.ServeConfig(newGRPCServer(n, log, red), log)
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
