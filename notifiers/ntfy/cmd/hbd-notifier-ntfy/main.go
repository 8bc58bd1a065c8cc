// Command hbd-notifier-ntfy is the hbd notifier plugin for ntfy.
// Install it in the daemon's plugins_dir; it is not meant to be run by hand.
package main

import (
	"github.com/hbdmon/hbd/notifiers/ntfy"
	"github.com/hbdmon/hbd/sdk"
)

func main() { sdk.Serve(ntfy.New()) }
