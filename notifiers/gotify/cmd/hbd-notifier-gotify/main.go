// Command hbd-notifier-gotify is the hbd notifier plugin for Gotify.
// Install it in the daemon's plugins_dir; it is not meant to be run by hand.
package main

import (
	"github.com/hbdmon/hbd/notifiers/gotify"
	"github.com/hbdmon/hbd/sdk"
)

func main() { sdk.Serve(gotify.New()) }
