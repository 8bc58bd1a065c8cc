// Command hbd-notifier-webhook is the hbd notifier plugin for generic JSON
// webhooks. Install it in the daemon's plugins_dir; it is not meant to be
// run by hand.
package main

import (
	"github.com/hbdmon/hbd/notifiers/webhook"
	"github.com/hbdmon/hbd/sdk"
)

func main() { sdk.Serve(webhook.New()) }
