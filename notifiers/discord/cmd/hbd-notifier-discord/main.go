// Command hbd-notifier-discord is the hbd notifier plugin for Discord.
// Install it in the daemon's plugins_dir; it is not meant to be run by hand.
package main

import (
	"github.com/hbdmon/hbd/notifiers/discord"
	"github.com/hbdmon/hbd/sdk"
)

func main() { sdk.Serve(discord.New()) }
