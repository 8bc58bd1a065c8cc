// Command hbd-notifier-pushover is the hbd notifier plugin for Pushover.
// Install it in the daemon's plugins_dir; it is not meant to be run by hand.
package main

import (
	"github.com/hbdmon/hbd/notifiers/pushover"
	"github.com/hbdmon/hbd/sdk"
)

func main() { sdk.Serve(pushover.New()) }
