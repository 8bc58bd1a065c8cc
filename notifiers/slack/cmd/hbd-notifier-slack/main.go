// Command hbd-notifier-slack is the hbd notifier plugin for Slack.
// Install it in the daemon's plugins_dir; it is not meant to be run by hand.
package main

import (
	"github.com/hbdmon/hbd/notifiers/slack"
	"github.com/hbdmon/hbd/sdk"
)

func main() { sdk.Serve(slack.New()) }
