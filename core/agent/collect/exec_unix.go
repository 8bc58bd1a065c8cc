//go:build unix

package collect

import (
	"os/exec"
	"syscall"
)

// killProcessGroupOnCancel starts the command in its own process group and
// kills the whole group when the command's context ends, so a timed-out
// script does not leave its children running.
func killProcessGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
