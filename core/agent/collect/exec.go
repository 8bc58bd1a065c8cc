package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/hbdmon/hbd/core/protocol"
)

// MaxExecOutput bounds what an exec plugin may print on stdout.
const MaxExecOutput = 64 << 10

// maxStderr bounds the stderr excerpt quoted in errors.
const maxStderr = 512

// ExecSpec describes an exec plugin: Command is the argv (no shell); the
// process group is killed when Timeout passes.
type ExecSpec struct {
	Name    string
	Command []string
	Timeout time.Duration
	// Units are the units the plugin's config declares (hbc.yaml
	// "units"), validated with protocol.ValidatePluginUnits; nil: none.
	Units map[string]string
}

// ExecPlugin runs a command each Collect and parses its stdout: a JSON
// object whose leaves are numbers (nested objects allowed). Non-JSON output,
// any other JSON value, a non-numeric leaf, more than MaxExecOutput bytes,
// a non-zero exit or a timeout are errors naming the cause.
type ExecPlugin struct {
	spec ExecSpec
}

// NewExec returns an exec plugin.
func NewExec(spec ExecSpec) *ExecPlugin { return &ExecPlugin{spec: spec} }

// Name implements Plugin.
func (p *ExecPlugin) Name() string { return p.spec.Name }

// Collect implements Plugin.
func (p *ExecPlugin) Collect(ctx context.Context) (map[string]any, error) {
	if len(p.spec.Command) == 0 {
		return nil, errors.New("no command")
	}
	runCtx, cancel := context.WithTimeout(ctx, p.spec.Timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, p.spec.Command[0], p.spec.Command[1:]...)
	stdout := &cappedBuffer{max: MaxExecOutput}
	stderr := &cappedBuffer{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	killProcessGroupOnCancel(cmd)
	// A child that outlives the command and keeps the pipes open must not
	// hold Collect past the timeout.
	cmd.WaitDelay = time.Second

	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("timed out after %s", p.spec.Timeout)
	case err != nil:
		return nil, fmt.Errorf("command failed: %w%s", err, stderrNote(stderr))
	case stdout.overflow:
		return nil, fmt.Errorf("output exceeds %d bytes", MaxExecOutput)
	}
	return parseOutput(stdout.Bytes())
}

// parseOutput parses plugin output: a JSON object whose leaves are
// numbers, checked with protocol.Flatten.
func parseOutput(out []byte) (map[string]any, error) {
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		if len(bytes.TrimSpace(out)) == 0 {
			return nil, errors.New("no output")
		}
		return nil, fmt.Errorf("output is not JSON: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("output must be a JSON object, got %s", jsonKind(v))
	}
	if _, err := protocol.Flatten(obj); err != nil {
		return nil, err
	}
	return obj, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

func stderrNote(stderr *cappedBuffer) string {
	s := strings.TrimSpace(stderr.String())
	if s == "" {
		return ""
	}
	return fmt.Sprintf("; stderr: %q", s)
}

// cappedBuffer keeps the first max bytes written and notes any excess. It
// never fails a write, so the child is not killed by a broken pipe. (The
// buffer is a field, not embedded: an embedded bytes.Buffer's ReadFrom
// would let io.Copy bypass the cap.)
type cappedBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := b.max - b.buf.Len(); n > room {
		b.overflow = true
		p = p[:max(room, 0)]
	}
	b.buf.Write(p)
	return n, nil
}

func (b *cappedBuffer) Bytes() []byte  { return b.buf.Bytes() }
func (b *cappedBuffer) String() string { return b.buf.String() }

// Units implements Uniter: the units of the plugin's config.
func (p *ExecPlugin) Units() map[string]string { return p.spec.Units }

// Interface guards
var (
	_ Plugin = (*ExecPlugin)(nil)
	_ Uniter = (*ExecPlugin)(nil)
)
