// Command hbd-notifier-telegram is the hbd notifier plugin for Telegram.
// Install it in the daemon's plugins_dir; it is not meant to be run by hand.
package main

import (
	"github.com/hbdmon/hbd/notifiers/telegram"
	"github.com/hbdmon/hbd/sdk"
)

func main() { sdk.Serve(telegram.New()) }
