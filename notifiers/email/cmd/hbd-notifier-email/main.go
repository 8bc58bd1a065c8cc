// Command hbd-notifier-email is the hbd notifier plugin for e-mail over
// SMTP. Install it in the daemon's plugins_dir; it is not meant to be run by
// hand.
package main

import (
	"github.com/hbdmon/hbd/notifiers/email"
	"github.com/hbdmon/hbd/sdk"
)

func main() { sdk.Serve(email.New()) }
