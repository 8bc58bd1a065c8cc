// Command hbd-notifier-matrix is the hbd notifier plugin for Matrix.
// Install it in the daemon's plugins_dir; it is not meant to be run by hand.
package main

import (
	"github.com/hbdmon/hbd/notifiers/matrix"
	"github.com/hbdmon/hbd/sdk"
)

func main() { sdk.Serve(matrix.New()) }
