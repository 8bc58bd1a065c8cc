package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/sdktest"
)

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func TestDestinationsCheck(t *testing.T) {
	restricted := &sdk.Destinations{Restricted: true, OwnPorts: []int{50004}}
	tests := []struct {
		name string
		p    *sdk.Destinations
		addr string
		ok   bool
	}{
		{"public v4", restricted, "93.184.215.14:443", true},
		{"public v6", restricted, "[2606:2800:21f:cb07::1]:443", true},
		{"loopback", restricted, "127.0.0.1:8080", false},
		{"other loopback", restricted, "127.3.2.1:80", false},
		{"loopback v6", restricted, "[::1]:80", false},
		{"mapped loopback", restricted, "[::ffff:127.0.0.1]:80", false},
		{"nat64 loopback", restricted, "[64:ff9b::7f00:1]:80", false},
		{"metadata", restricted, "169.254.169.254:80", false},
		{"link-local v6", restricted, "[fe80::1]:80", false},
		{"unspecified", restricted, "0.0.0.0:80", false},
		{"this network", restricted, "0.1.2.3:80", false},
		{"unspecified v6", restricted, "[::]:80", false},
		{"private 10", restricted, "10.1.2.3:25", false},
		{"private 172", restricted, "172.20.0.1:25", false},
		{"private 192", restricted, "192.168.1.1:25", false},
		{"unique local", restricted, "[fd00:ec2::254]:80", false},
		{"cgnat", restricted, "100.64.0.1:80", false},
		{"multicast", restricted, "224.0.0.251:5353", false},
		{"multicast v6", restricted, "[ff02::1]:80", false},
		{"broadcast", restricted, "255.255.255.255:80", false},
		{"unrestricted loopback", &sdk.Destinations{}, "127.0.0.1:8080", true},
		{"unrestricted denied", &sdk.Destinations{Deny: prefixes("203.0.113.0/24")}, "203.0.113.9:443", false},
		{"deny wins over allow", &sdk.Destinations{Restricted: true, Allow: prefixes("10.0.0.0/8"), Deny: prefixes("10.9.0.0/16")}, "10.9.1.1:25", false},
		{"allowed private", &sdk.Destinations{Restricted: true, Allow: prefixes("10.0.0.0/8")}, "10.9.1.1:25", true},
		{"allowed loopback", &sdk.Destinations{Restricted: true, Allow: prefixes("127.0.0.1/32")}, "127.0.0.1:25", true},
		{"own port although allowed", &sdk.Destinations{Restricted: true, Allow: prefixes("127.0.0.0/8"), OwnPorts: []int{50004}}, "127.0.0.1:50004", false},
		{"own port elsewhere", restricted, "93.184.215.14:50004", true},
		{"no policy", nil, "127.0.0.1:80", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Check(netip.MustParseAddrPort(tt.addr))
			if (err == nil) != tt.ok {
				t.Fatalf("Check(%s) = %v, want ok %v", tt.addr, err, tt.ok)
			}
			if err != nil && (!errors.Is(err, sdk.ErrDestinationRefused) || !sdk.IsPermanent(err) || sdk.Reason(err) != sdk.ReasonRefused) {
				t.Fatalf("Check(%s) = %v: not a permanent refusal", tt.addr, err)
			}
		})
	}
}

func TestDestinationsRoundTrip(t *testing.T) {
	p := sdk.Destinations{Restricted: true, Allow: prefixes("10.0.0.0/8"), Deny: prefixes("::ffff:169.254.169.254/128"), OwnPorts: []int{1, 2}}
	got, err := sdk.ParseDestinations(p.Encode())
	if err != nil {
		t.Fatal(err)
	}
	// The mapped deny entry is kept in its IPv4 form, the form checked.
	if err := got.Check(netip.MustParseAddrPort("169.254.169.254:80")); err == nil {
		t.Fatal("mapped deny entry does not refuse its IPv4 address")
	}
	if !got.Restricted || len(got.Allow) != 1 || len(got.OwnPorts) != 2 {
		t.Fatalf("decoded %+v", got)
	}
	if _, err := sdk.ParseDestinations("{not json"); err == nil {
		t.Fatal("unreadable policy accepted")
	}
}

// server is a local HTTP server counting its requests.
type server struct {
	*httptest.Server
	hits atomic.Int64
}

func newServer(t *testing.T, addr string, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if strings.HasPrefix(addr, "127.0.0.1:") {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		// Linux routes all of 127/8 to loopback; other systems only 127.0.0.1.
		t.Skipf("this machine has no loopback address %s (only 127.0.0.1 is routed): %v", addr, err)
	}
	s.Server = &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	})}}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func get(ctx context.Context, c *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	return sdk.DoHTTP(c, req)
}

func TestHTTPClientEnforcesThePolicyOnEveryConnection(t *testing.T) {
	secret := newServer(t, "127.0.0.1:0", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"X-HBD-Host must name a host"}`)
	})
	c := sdk.HTTPClient(0)
	restricted := sdk.WithDestinations(context.Background(), &sdk.Destinations{Restricted: true})

	// Without a policy (or for an admin's channel) the server is reached;
	// its connection stays in the pool.
	if err := get(context.Background(), c, secret.URL); err == nil || !strings.Contains(err.Error(), "X-HBD-Host") {
		t.Fatalf("unrestricted GET = %v, want the server's answer", err)
	}
	before := secret.hits.Load()

	// Under the restricted policy neither the pooled connection nor a new
	// one is used, by address or by name (checked after resolution).
	_, port, _ := net.SplitHostPort(secret.Listener.Addr().String())
	for _, u := range []string{secret.URL, "http://localhost:" + port + "/"} {
		err := get(restricted, c, u)
		if !errors.Is(err, sdk.ErrDestinationRefused) || !sdk.IsPermanent(err) || sdk.Reason(err) != sdk.ReasonRefused {
			t.Fatalf("restricted GET %s = %v, want a permanent refusal", u, err)
		}
		if strings.Contains(err.Error(), "X-HBD-Host") {
			t.Fatalf("restricted GET %s read the answer back: %v", u, err)
		}
	}
	if got := secret.hits.Load(); got != before {
		t.Fatalf("the refused server got %d more requests", got-before)
	}
}

func TestHTTPClientChecksRedirects(t *testing.T) {
	inner := newServer(t, "127.0.0.2:0", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "internal") })
	outer := newServer(t, "127.0.0.1:0", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inner.URL+"/", http.StatusFound)
	})
	// 127.0.0.1 is allowed, the redirect's target 127.0.0.2 is not.
	ctx := sdk.WithDestinations(context.Background(), &sdk.Destinations{Restricted: true, Allow: prefixes("127.0.0.1/32")})
	err := get(ctx, sdk.HTTPClient(0), outer.URL)
	if !errors.Is(err, sdk.ErrDestinationRefused) {
		t.Fatalf("redirect to a refused address = %v, want a refusal", err)
	}
	if outer.hits.Load() != 1 || inner.hits.Load() != 0 {
		t.Fatalf("hits: outer %d inner %d, want 1 and 0", outer.hits.Load(), inner.hits.Load())
	}
}

func TestDialerChecksTheContextsPolicy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	d := sdk.Dialer(0)
	c, err := d.DialContext(context.Background(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("dial without a policy: %v", err)
	}
	c.Close()
	ctx := sdk.WithDestinations(context.Background(), &sdk.Destinations{Restricted: true})
	if _, err := d.DialContext(ctx, "tcp", l.Addr().String()); !errors.Is(err, sdk.ErrDestinationRefused) || sdk.Reason(err) != sdk.ReasonRefused {
		t.Fatalf("restricted dial = %v, want a refusal", err)
	}
	if _, err := d.DialContext(ctx, "unix", "/tmp/x.sock"); !errors.Is(err, sdk.ErrDestinationRefused) {
		t.Fatalf("restricted unix dial = %v, want a refusal", err)
	}
}

// policyProbe is a notifier that records what Notify was handed and GETs
// the configured url.
type policyProbe struct {
	mu     sync.Mutex
	url    string
	sawKey bool // the policy key was readable in the settings
	policy *sdk.Destinations
	client *http.Client
}

func (p *policyProbe) Schema() sdk.Schema {
	return sdk.Schema{Type: "probe", Label: "Probe", Fields: []sdk.Field{{Key: "url", Label: "URL", Type: sdk.FieldText, Required: true}}}
}
func (p *policyProbe) Validate(cfg sdk.Settings) error {
	if cfg.Raw(sdk.DestinationsKey) != "" {
		return errors.New("validate saw the policy key")
	}
	return nil
}
func (p *policyProbe) Notify(ctx context.Context, cfg sdk.Settings, _ sdk.Event) error {
	p.mu.Lock()
	p.url, p.sawKey = cfg.String("url"), cfg.Raw(sdk.DestinationsKey) != ""
	p.policy = sdk.DestinationsFrom(ctx)
	p.mu.Unlock()
	return get(ctx, p.client, cfg.String("url"))
}

func TestServedNotifierGetsThePolicyNotTheKey(t *testing.T) {
	srv := newServer(t, "127.0.0.1:0", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, "secret-looking answer")
	})
	probe := &policyProbe{client: sdk.HTTPClient(0)}
	h := sdktest.Start(t, probe)
	ctx := context.Background()
	cfg := sdk.Config{"url": srv.URL, sdk.DestinationsKey: sdk.Destinations{Restricted: true}.Encode()}
	err := h.Client.Notify(ctx, cfg, sdk.Event{ID: "e1"})
	var re *sdk.RemoteError
	if !errors.As(err, &re) || re.Reason != sdk.ReasonRefused || !sdk.IsPermanent(err) {
		t.Fatalf("Notify = %v (%#v), want a permanent refusal with its reason", err, re)
	}
	probe.mu.Lock()
	url, sawKey, policy := probe.url, probe.sawKey, probe.policy
	probe.mu.Unlock()
	if url != srv.URL || sawKey || policy == nil || !policy.Restricted {
		t.Fatalf("notifier saw url %q, the policy key %v and policy %+v", url, sawKey, policy)
	}
	if srv.hits.Load() != 0 {
		t.Fatal("the refused server was reached")
	}
	if err := h.Client.Validate(ctx, cfg); err != nil {
		t.Fatalf("Validate = %v", err)
	}

	// Unrestricted, the answer comes back with its generic reason.
	cfg[sdk.DestinationsKey] = sdk.Destinations{}.Encode()
	err = h.Client.Notify(ctx, cfg, sdk.Event{ID: "e2"})
	if !errors.As(err, &re) || re.Reason != sdk.ReasonHTTP(400) || sdk.Reason(err) != "HTTP 400 from the receiver" {
		t.Fatalf("Notify = %v (%#v), want reason HTTP 400", err, re)
	}

	// An unreadable policy fails closed.
	cfg[sdk.DestinationsKey] = "{"
	if err := h.Client.Notify(ctx, cfg, sdk.Event{ID: "e3"}); err == nil || !sdk.IsPermanent(err) {
		t.Fatalf("Notify with an unreadable policy = %v, want a permanent error", err)
	}
	if srv.hits.Load() != 1 {
		t.Fatalf("server hits = %d, want 1", srv.hits.Load())
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&sdk.HTTPStatusError{StatusCode: 503, Body: "remote text"}, "HTTP 503 from the receiver"},
		{&sdk.FieldError{Key: "url", Err: sdk.ErrBadURL}, sdk.ReasonSettings},
		{sdk.WithReason(errors.New("pushover said no: remote text"), sdk.ReasonRejected), sdk.ReasonRejected},
		{sdk.WithReason(errors.New("x"), "made-up reason with remote text"), sdk.ReasonFailed},
		{context.DeadlineExceeded, sdk.ReasonTimeout},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, sdk.ReasonConnect},
		{&net.DNSError{Err: "no such host", Name: "x.invalid"}, sdk.ReasonResolve},
		{&sdk.RemoteError{Message: "remote text", Reason: "HTTP 404 from the receiver"}, "HTTP 404 from the receiver"},
		{&sdk.RemoteError{Message: "remote text", Reason: "remote text"}, sdk.ReasonFailed},
		{errors.New("anything"), sdk.ReasonFailed},
	}
	for _, tt := range tests {
		if got := sdk.Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
		if !sdk.ValidReason(sdk.Reason(tt.err)) {
			t.Errorf("Reason(%v) is not a valid reason", tt.err)
		}
	}
}
