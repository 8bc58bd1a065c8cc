package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/host"
)

// Inspection is what Inspect learned from a plugin binary.
type Inspection struct {
	// Schema is the channel type the binary reports.
	Schema sdk.Schema
	// Protocol is the notifier protocol version it speaks with this
	// daemon.
	Protocol int
}

// Inspect starts the notifier binary at path the way the host does (same
// handshake, minimal environment, started in its directory), asks for its
// schema, checks it and stops the process, all within timeout. The error
// is the first useful line of what went wrong (the handshake error, with
// the binary's panic from stderr) for `hbd plugin inspect`. It needs no
// daemon and no plugins_dir.
func Inspect(ctx context.Context, path string, timeout time.Duration) (Inspection, error) {
	exe, err := filepath.Abs(path)
	if err != nil {
		return Inspection{}, err
	}
	fi, err := os.Stat(exe)
	switch {
	case err != nil:
		return Inspection{}, unwrapPath(err)
	case !fi.Mode().IsRegular():
		return Inspection{}, errors.New("not a regular file")
	case fi.Mode().Perm()&0o111 == 0:
		return Inspection{}, errors.New("not executable (chmod +x it)")
	}
	opts := Options{}
	opts.fill()
	cmd := exec.Command(exe)
	cmd.Env = opts.Env
	cmd.Dir = filepath.Dir(exe)
	cfg := host.ClientConfig(cmd, hclog.NewNullLogger())
	cfg.SkipHostEnv = true
	cfg.StartTimeout = timeout
	stderr := &tailBuffer{max: 8 << 10}
	cfg.Stderr = stderr
	pc := plugin.NewClient(cfg)
	defer pc.Kill()
	cl, err := host.Dispense(pc)
	if err != nil {
		return Inspection{}, errors.New((&startError{err: err, stderr: stderr.String()}).summary())
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	schema, err := cl.Schema(ctx)
	if err != nil {
		return Inspection{}, fmt.Errorf("schema: %s", firstLine(err.Error()))
	}
	res := Inspection{Schema: schema, Protocol: cl.ProtocolVersion()}
	if err := schema.Check(); err != nil {
		return res, fmt.Errorf("invalid schema (the daemon refuses this binary): %w", err)
	}
	return res, nil
}
