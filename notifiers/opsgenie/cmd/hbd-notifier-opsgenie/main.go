// Command hbd-notifier-opsgenie is the hbd notifier plugin for Opsgenie.
// Install it in the daemon's plugins_dir; it is not meant to be run by hand.
package main

import (
	"github.com/hbdmon/hbd/notifiers/opsgenie"
	"github.com/hbdmon/hbd/sdk"
)

func main() { sdk.Serve(opsgenie.New()) }
