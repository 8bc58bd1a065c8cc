package sdk

import (
	"context"
	"io"
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/hashicorp/go-hclog"
)

type loggerKey struct{}

// WithLogger returns a copy of ctx carrying l, for [Logger] to find. The SDK
// does this before each call into a Notifier; tests use it to capture logs.
func WithLogger(ctx context.Context, l hclog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// Logger returns the logger a Notifier should use during a call. In a served
// plugin it writes JSON lines to stderr, which the daemon forwards into its
// own log with the plugin's name; never write to stdout, which belongs to
// the plugin protocol. Without a logger in ctx it returns one writing to
// stderr.
func Logger(ctx context.Context) hclog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(hclog.Logger); ok {
		return l
	}
	return defaultLogger()
}

var defaultLogger = sync.OnceValue(func() hclog.Logger {
	return newPluginLogger("notifier", os.Stderr)
})

// newPluginLogger returns the JSON logger go-plugin's host side understands.
// The level comes from HBD_PLUGIN_LOG_LEVEL (default debug); the daemon's
// own level filters again.
func newPluginLogger(name string, out io.Writer) hclog.Logger {
	level := hclog.LevelFromString(os.Getenv("HBD_PLUGIN_LOG_LEVEL"))
	if level == hclog.NoLevel {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      level,
		Output:     out,
		JSONFormat: true,
	})
}

// redactor is an io.Writer that removes the secret values of in-flight calls
// from everything written through it (see [Redact]). hclog writes each entry
// with a single Write, so a secret is never split across writes.
type redactor struct {
	out io.Writer

	mu      sync.Mutex // guards secrets and match, serialises writes to out
	secrets map[string]int
	match   *redaction // built from secrets on first use after a change
}

func newRedactor(out io.Writer) *redactor {
	return &redactor{out: out, secrets: make(map[string]int)}
}

// track registers the secrets of one call until the returned func is called.
func (r *redactor) track(secrets []string) (release func()) {
	if len(secrets) == 0 {
		return func() {}
	}
	r.mu.Lock()
	for _, s := range secrets {
		r.secrets[s]++
	}
	r.match = nil
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, s := range secrets {
			if r.secrets[s]--; r.secrets[s] <= 0 {
				delete(r.secrets, s)
			}
		}
		r.match = nil
	}
}

func (r *redactor) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := p
	if len(r.secrets) > 0 {
		if r.match == nil {
			r.match = newRedaction(slices.Sorted(maps.Keys(r.secrets)))
		}
		if red := r.match.apply(string(p)); red != string(p) {
			out = []byte(red)
		}
	}
	if _, err := r.out.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
