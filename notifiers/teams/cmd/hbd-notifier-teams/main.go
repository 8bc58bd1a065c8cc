// Command hbd-notifier-teams is the hbd notifier plugin for Microsoft Teams.
// Install it in the daemon's plugins_dir; it is not meant to be run by hand.
package main

import (
	"github.com/hbdmon/hbd/notifiers/teams"
	"github.com/hbdmon/hbd/sdk"
)

func main() { sdk.Serve(teams.New()) }
