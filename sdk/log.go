package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"slices"
	"strings"
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
// go-plugin. Without a logger in ctx it returns one writing to stderr.
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

// minRedactLen is the shortest secret value the redactor removes; shorter
// values are no secrets worth the mangled messages.
const minRedactLen = 4

// redacted replaces secret values in errors and logs, like masked fields in
// the API.
const redacted = "•••"

// redactor is an io.Writer that removes the secret values of in-flight calls
// from everything written through it. hclog writes each entry with a single
// Write, so a secret is never split across writes.
type redactor struct {
	out io.Writer

	mu      sync.Mutex // guards secrets and serialises writes to out
	secrets map[string]int
}

func newRedactor(out io.Writer) *redactor {
	return &redactor{out: out, secrets: make(map[string]int)}
}

// track registers the secrets of one call until the returned func is called.
func (r *redactor) track(secrets []string) (release func()) {
	forms := secretForms(secrets)
	if len(forms) == 0 {
		return func() {}
	}
	r.mu.Lock()
	for _, s := range forms {
		r.secrets[s]++
	}
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, s := range forms {
			if r.secrets[s]--; r.secrets[s] <= 0 {
				delete(r.secrets, s)
			}
		}
	}
}

func (r *redactor) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := p
	if len(r.secrets) > 0 {
		forms := make([]string, 0, len(r.secrets))
		for s := range r.secrets {
			forms = append(forms, s)
		}
		sortLongestFirst(forms)
		for _, s := range forms {
			out = bytes.ReplaceAll(out, []byte(s), []byte(redacted))
		}
	}
	if _, err := r.out.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// secretForms returns each secret as written raw and as it appears inside a
// JSON string, for secrets long enough to redact.
func secretForms(secrets []string) []string {
	var out []string
	for _, s := range secrets {
		if len(s) < minRedactLen {
			continue
		}
		out = append(out, s)
		for _, escapeHTML := range []bool{true, false} {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(escapeHTML)
			if err := enc.Encode(s); err == nil {
				if q := strings.TrimSuffix(strings.TrimSpace(buf.String()), `"`)[1:]; q != s {
					out = append(out, q)
				}
			}
		}
	}
	return out
}

// sortLongestFirst orders secrets so that one containing another is
// replaced before the shorter one can cut it apart.
func sortLongestFirst(forms []string) {
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
}

// redactString removes every secret in secrets from s.
func redactString(s string, secrets []string) string {
	forms := secretForms(secrets)
	sortLongestFirst(forms)
	for _, sec := range forms {
		s = strings.ReplaceAll(s, sec, redacted)
	}
	return s
}
