// Command hbd-notifier-pagerduty is the hbd notifier plugin for PagerDuty.
// Install it in the daemon's plugins_dir; it is not meant to be run by hand.
package main

import (
	"github.com/hbdmon/hbd/notifiers/pagerduty"
	"github.com/hbdmon/hbd/sdk"
)

func main() { sdk.Serve(pagerduty.New()) }
