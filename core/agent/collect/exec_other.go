//go:build !unix

package collect

import "os/exec"

// killProcessGroupOnCancel keeps exec.CommandContext's default: only the
// command itself is killed where process groups are not available.
func killProcessGroupOnCancel(*exec.Cmd) {}
