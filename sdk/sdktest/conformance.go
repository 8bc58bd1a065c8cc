package sdktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hbdmon/hbd/sdk"
)

// Conformance checks the rules every hbd notifier must follow, each as a
// subtest of t:
//
//   - the schema passes [sdk.Schema.Check] and is the same on every call;
//   - Validate accepts valid and rejects it with any required field (that has
//     no default) removed or blank, naming that field;
//   - secret field values, set to distinctive strings, never appear in an
//     error from Validate or Notify, nor in a line logged through sdk.Logger;
//   - Notify fails, retryably, against a service that answers 500, one that
//     refuses connections, and one that never answers (where it must also
//     return soon after its context ends);
//   - Notify under a restricted destination policy ([sdk.Destinations])
//     refuses to reach its (local) service, as [sdk.HTTPClient] does;
//   - event IDs are opaque: every event Conformance sends has an ID with
//     "/", spaces and non-ASCII characters (one also "%", "?" and "#"), and
//     a notifier that puts such an ID into a URL path unescaped (instead of
//     [sdk.SafeID](ev.ID)), or that fails for such an ID where it succeeds
//     for a plain one, fails the check;
//   - Notify does not panic for an event of any kind ([sdk.SampleEvent]);
//   - the same notifier served over the real gRPC plumbing ([Start]) reports
//     the same schema, validation results and error classes.
//
// valid must be a complete, valid configuration whose addresses point only
// at servers the test itself started: Conformance never contacts anything
// else. For the failure checks it redirects every text or secret field
// holding an http(s) URL (or defaulting to one) to local test servers; a
// secret URL (a Discord or Teams webhook) keeps its path and query with a
// distinctive token appended to the path, which must stay out of errors
// and logs like every secret. A notifier without URL fields (e-mail, say)
// is sent the valid configuration with its secrets replaced, and the
// errors it returns are checked for leaks.
func Conformance(t *testing.T, n sdk.Notifier, valid sdk.Config) {
	t.Helper()
	schema := n.Schema()

	t.Run("schema", func(t *testing.T) {
		if err := schema.Check(); err != nil {
			t.Fatalf("Schema().Check(): %v", err)
		}
		if again := n.Schema(); !reflect.DeepEqual(schema, again) {
			t.Errorf("Schema() changed between calls: %+v then %+v", schema, again)
		}
	})

	t.Run("valid config accepted", func(t *testing.T) {
		if err := Validate(n, valid); err != nil {
			t.Fatalf("Validate(valid config) = %v, want nil", err)
		}
	})

	t.Run("required fields enforced", func(t *testing.T) {
		for _, f := range schema.Fields {
			if !f.Required || f.Default != "" {
				continue
			}
			for name, mutate := range map[string]func(sdk.Config){
				"missing": func(c sdk.Config) { delete(c, f.Key) },
				"blank":   func(c sdk.Config) { c[f.Key] = "  " },
			} {
				cfg := clone(valid)
				mutate(cfg)
				err := Validate(n, cfg)
				if err == nil {
					t.Errorf("Validate with %s %q = nil, want an error", name, f.Key)
					continue
				}
				if sdk.ErrorField(err) != f.Key && !strings.Contains(err.Error(), f.Key) {
					t.Errorf("Validate with %s %q = %q, which does not name the field", name, f.Key, err)
				}
			}
		}
	})

	secretValues, secrets := secretConfig(schema, valid)
	withSecrets := func(base sdk.Config) sdk.Config {
		cfg := clone(base)
		maps.Copy(cfg, secretValues)
		return cfg
	}
	urlKeys := urlFields(schema, valid)
	// redirected is the valid configuration with its secrets replaced and
	// every URL field pointing at base.
	redirected := func(base string) sdk.Config {
		return redirect(withSecrets(valid.WithDefaults(schema)), urlKeys, base)
	}

	t.Run("secrets stay out of validation errors", func(t *testing.T) {
		for _, f := range schema.Fields {
			if f.Type == sdk.FieldSecret {
				continue
			}
			cfg := withSecrets(valid)
			cfg[f.Key] = map[string]string{sdk.FieldNumber: "not-a-number", sdk.FieldBool: "maybe"}[f.Type]
			switch f.Type {
			case sdk.FieldText:
				cfg[f.Key] = "%zz invalid\x00"
			case sdk.FieldMultiline:
				cfg[f.Key] = "%zz invalid\x00\n{{"
			case sdk.FieldChoice:
				cfg[f.Key] = "not-one-of-the-options"
			}
			if err := Validate(n, cfg); err != nil {
				assertNoSecret(t, "Validate error with bad "+f.Key, err.Error(), secrets)
			}
		}
	})

	t.Run("notify failures are retryable and keep secrets out", func(t *testing.T) {
		if len(urlKeys) == 0 {
			logs := &lockedBuffer{}
			ctx, cancel := context.WithTimeout(captureLogs(context.Background(), logs), 10*time.Second)
			defer cancel()
			if err := Notify(ctx, n, withSecrets(valid), conformanceEvent()); err != nil {
				assertNoSecret(t, "Notify error", err.Error(), secrets)
			}
			assertNoSecret(t, "Notify log", logs.String(), secrets)
			return
		}
		for _, sc := range failingServices(t) {
			t.Run(sc.name, func(t *testing.T) {
				cfg := redirected(sc.url)
				logs := &lockedBuffer{}
				var ctx context.Context
				var cancel context.CancelFunc
				if sc.arrived != nil {
					// Cancelled once the request hangs on the server.
					ctx, cancel = context.WithCancel(captureLogs(context.Background(), logs))
				} else {
					ctx, cancel = context.WithTimeout(captureLogs(context.Background(), logs), sc.timeout)
				}
				defer cancel()
				done := make(chan error, 1)
				go func() { done <- Notify(ctx, n, cfg, conformanceEvent()) }()
				var err error
				returned := false
				if sc.arrived != nil {
					select {
					case <-sc.arrived:
						cancel() // the service will never answer: only ctx can end the call
					case err = <-done:
						returned = true
					}
				}
				if !returned {
					// A bound against a hang, not a speed requirement: a
					// notifier that ignores ctx waits for the hanging
					// service forever (or its own much later timeout).
					select {
					case err = <-done:
					case <-time.After(hangBound):
						t.Fatalf("Notify against %s did not return within %v of its context ending", sc.name, hangBound)
					}
				}
				if err == nil {
					t.Fatalf("Notify against %s = nil, want an error", sc.name)
				}
				if sdk.IsPermanent(err) {
					t.Errorf("Notify against %s = permanent error %q, want retryable", sc.name, err)
				}
				assertNoSecret(t, "Notify error", err.Error(), secrets)
				assertNoSecret(t, "Notify log", logs.String(), secrets)
			})
		}
	})

	// Without a URL field Conformance cannot tell where the notifier
	// connects, so the check only runs for notifiers that have one.
	if len(urlKeys) > 0 {
		t.Run("destination policy obeyed", func(t *testing.T) {
			var hits atomic.Int64
			internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				hits.Add(1)
				http.Error(w, "sdktest: internal service", http.StatusBadRequest)
			}))
			defer internal.Close()
			cfg := redirected(internal.URL)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			restricted := sdk.WithDestinations(ctx, &sdk.Destinations{Restricted: true})
			err := Notify(restricted, n, cfg, conformanceEvent())
			if !errors.Is(err, sdk.ErrDestinationRefused) || sdk.Reason(err) != sdk.ReasonRefused || !sdk.IsPermanent(err) {
				t.Errorf("Notify to loopback under a restricted policy = %v, want a permanent refusal: connect through sdk.HTTPClient or sdk.Dialer", err)
			}
			if hits.Load() != 0 {
				t.Errorf("the refused service got %d requests", hits.Load())
			}
		})
	}

	if len(urlKeys) > 0 {
		t.Run("event ids stay out of url paths", func(t *testing.T) {
			rec := NewReceiver(t)
			rec.Respond(http.StatusOK, "{}")
			cfg := redirected(rec.URL)
			send := func(id string) ([]Request, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				before := len(rec.Requests())
				ev := conformanceEvent()
				ev.ID = id
				err := Notify(ctx, n, cfg, ev)
				return rec.Requests()[before:], err
			}
			_, plainErr := send("sdktest-plain-id-1")
			for _, id := range awkwardIDs {
				reqs, err := send(id)
				if plainErr == nil && err != nil {
					t.Errorf("Notify fails for the event ID %q but not for a plain one: %v (treat Event.ID as opaque; use sdk.SafeID(ev.ID) in URLs)", id, err)
				}
				for _, r := range reqs {
					if rawIDInPath(r.RawPath, id) {
						t.Errorf("Notify put the raw event ID %q into the URL path %q: use sdk.SafeID(ev.ID)", id, r.RawPath)
					}
				}
			}
		})
	}

	t.Run("every event kind", func(t *testing.T) {
		cfg := withSecrets(valid)
		if len(urlKeys) > 0 {
			rec := NewReceiver(t)
			rec.Respond(http.StatusOK, "{}")
			cfg = redirected(rec.URL)
		}
		for _, k := range sdk.Kinds {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := Notify(ctx, n, cfg, sdk.SampleEvent(k))
			cancel()
			if err != nil && strings.Contains(err.Error(), "panic") {
				t.Errorf("Notify of a %s event: %v", k, err)
			}
		}
	})

	t.Run("over grpc", func(t *testing.T) {
		h := Start(t, n)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		got, err := h.Client.Schema(ctx)
		if err != nil {
			t.Fatalf("Schema over gRPC: %v", err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(schema)) {
			t.Errorf("Schema over gRPC = %+v, want %+v", got, schema)
		}
		if err := h.Client.Validate(ctx, valid); err != nil {
			t.Errorf("Validate(valid config) over gRPC = %v, want nil", err)
		}
		for _, f := range schema.Fields {
			if !f.Required || f.Default != "" {
				continue
			}
			cfg := clone(valid)
			delete(cfg, f.Key)
			if err := h.Client.Validate(ctx, cfg); err == nil {
				t.Errorf("Validate without %q over gRPC = nil, want an error", f.Key)
			}
		}
		if len(urlKeys) > 0 {
			svc := failingServices(t)[0]
			err := h.Client.Notify(ctx, redirected(svc.url), conformanceEvent())
			if err == nil || sdk.IsPermanent(err) {
				t.Errorf("Notify against %s over gRPC = %v, want a retryable error", svc.name, err)
			} else {
				assertNoSecret(t, "Notify error over gRPC", err.Error(), secrets)
			}
		}
		assertNoSecret(t, "plugin log", h.Logs(), secrets)
	})
}

// normalize makes a nil and an empty field list compare equal.
func normalize(s sdk.Schema) sdk.Schema {
	if len(s.Fields) == 0 {
		s.Fields = nil
	}
	return s
}

func clone(c sdk.Config) sdk.Config {
	out := make(sdk.Config, len(c))
	maps.Copy(out, c)
	return out
}

// secretConfig returns the values Conformance gives the secret fields and
// the text of each that must never leak: a distinctive, alphanumeric token,
// so a leak is unmistakable and format checks still pass. A secret field
// whose valid value is an http(s) URL gets that URL with the token
// appended to its path (a webhook URL's path is its credential).
func secretConfig(s sdk.Schema, valid sdk.Config) (values, tokens map[string]string) {
	values, tokens = map[string]string{}, map[string]string{}
	eff := valid.WithDefaults(s)
	for _, f := range s.Fields {
		if f.Type != sdk.FieldSecret {
			continue
		}
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		tok := "SdkTestSecret" + strings.ReplaceAll(f.Key, "_", "") + hex.EncodeToString(b)
		tokens[f.Key], values[f.Key] = tok, tok
		if u, err := sdk.ParseHTTPURL(eff[f.Key]); err == nil {
			u.Path = strings.TrimRight(u.Path, "/") + "/" + tok
			u.RawPath = ""
			values[f.Key] = u.String()
		}
	}
	return values, tokens
}

func assertNoSecret(t *testing.T, what, text string, secrets map[string]string) {
	t.Helper()
	for k, v := range secrets {
		if strings.Contains(text, v) {
			t.Errorf("%s contains the value of secret field %q: %s", what, k, text)
		}
	}
}

func captureLogs(ctx context.Context, out *lockedBuffer) context.Context {
	return sdk.WithLogger(ctx, hclog.New(&hclog.LoggerOptions{Output: out, Level: hclog.Trace}))
}

// urlFields returns the text and secret fields whose value in cfg, or
// default, is an http(s) URL.
func urlFields(s sdk.Schema, cfg sdk.Config) []string {
	var out []string
	eff := cfg.WithDefaults(s)
	for _, f := range s.Fields {
		if f.Type != sdk.FieldText && f.Type != sdk.FieldSecret {
			continue
		}
		if _, err := sdk.ParseHTTPURL(eff[f.Key]); err == nil {
			out = append(out, f.Key)
		}
	}
	return out
}

// redirect points the scheme and host of each URL field at base, keeping
// path and query.
func redirect(cfg sdk.Config, keys []string, base string) sdk.Config {
	out := clone(cfg)
	b, _ := sdk.ParseHTTPURL(base)
	for _, k := range keys {
		u, err := sdk.ParseHTTPURL(out[k])
		if err != nil {
			continue
		}
		u.Scheme, u.Host = b.Scheme, b.Host
		out[k] = u.String()
	}
	return out
}

type failingService struct {
	name    string
	url     string
	timeout time.Duration
	// arrived, when set, receives a value when a request reaches the
	// service (which then never answers).
	arrived chan struct{}
}

// hangBound is how long Conformance waits for Notify to return once its
// context has ended before it reports a hang.
const hangBound = 30 * time.Second

// failingServices starts the local services Notify must fail against.
func failingServices(t *testing.T) []failingService {
	t.Helper()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "sdktest: internal error", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)

	stop := make(chan struct{})
	arrived := make(chan struct{}, 1)
	hanging := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); hanging.Close() })

	return []failingService{
		{name: "HTTP 500", url: broken.URL, timeout: 10 * time.Second},
		{name: "connection refused", url: "http://" + closedAddr(t), timeout: 10 * time.Second},
		{name: "no answer", url: hanging.URL, arrived: arrived},
	}
}

// closedAddr returns a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("close: %v", err)
	}
	return addr
}

// awkwardIDs are event IDs as opaque as the daemon may send: "/",
// spaces, non-ASCII, and characters with a meaning in URLs.
var awkwardIDs = []string{
	"sdktest/web 01/zürich ünï/1",
	"sdktest/a%2Fb?c=d&e#f/2",
}

// rawIDInPath reports whether id, which holds "/", went into the escaped
// request path rawPath unescaped: its first part as a whole segment
// followed by (the start of) its second part as the next one. Escaped, the
// ID is a single segment; through sdk.SafeID it does not appear at all.
func rawIDInPath(rawPath, id string) bool {
	first, rest, _ := strings.Cut(id, "/")
	next, _, _ := strings.Cut(rest, "/")
	segs := strings.Split(rawPath, "/")
	for i := 0; i+1 < len(segs); i++ {
		if unescapeSegment(segs[i]) != first || segs[i+1] == "" {
			continue
		}
		if strings.HasPrefix(next, segs[i+1]) || strings.HasPrefix(next, unescapeSegment(segs[i+1])) {
			return true
		}
	}
	return false
}

func unescapeSegment(s string) string {
	if dec, err := url.PathUnescape(s); err == nil {
		return dec
	}
	return s
}

func conformanceEvent() sdk.Event {
	now := time.Now()
	return sdk.Event{
		ID: awkwardIDs[0], Kind: sdk.KindFiring, Channel: "sdktest", Host: "web01", Owner: "alice",
		MetricPath: "cpu_monitor.cpu_percent", Level: sdk.LevelCritical, PreviousLevel: sdk.LevelWarning,
		Value: 95.5, Threshold: 90, Comparison: ">=",
		Since: now.Add(-5 * time.Minute), Time: now, NotificationCount: 1,
		Text: "web01 cpu_monitor.cpu_percent 95.5 ≥ 90 (CRITICAL) for 3 samples", EpisodeStart: now.Add(-10 * time.Minute),
		URL: "https://hbd.example.com/hosts/web01",
	}
}
