// Command hbd-notifier-ntfy is an example hbd notifier plugin publishing to
// ntfy. Build it into the daemon's plugins_dir; see ../../README.md.
package main

import (
	"github.com/hbdmon/hbd/examples/ntfy"
	"github.com/hbdmon/hbd/sdk"
)

func main() { sdk.Serve(ntfy.New()) }
