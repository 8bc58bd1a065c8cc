package email

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/sdktest"
)

// echoSMTP is a real (minimal) SMTP server that answers AUTH with a 535
// reply quoting what the client sent, as the server of the attack report
// did.
type echoSMTP struct {
	host, port string

	mu    sync.Mutex
	auths []string
	conns int
}

func startEchoSMTP(t *testing.T) *echoSMTP {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := &echoSMTP{}
	s.host, s.port, _ = net.SplitHostPort(l.Addr().String())
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *echoSMTP) serve(c net.Conn) {
	defer c.Close()
	s.mu.Lock()
	s.conns++
	s.mu.Unlock()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	say := func(line string) { c.Write([]byte(line + "\r\n")) }
	say("220 echo.test ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO", "HELO":
			say("250-echo.test")
			say("250 AUTH PLAIN")
		case "AUTH":
			s.mu.Lock()
			s.auths = append(s.auths, line)
			s.mu.Unlock()
			say("535 5.7.8 authentication failed for " + strings.TrimPrefix(line, "AUTH PLAIN "))
		case "QUIT":
			say("221 bye")
			return
		default:
			say("502 5.5.2 not implemented")
		}
	}
}

func (s *echoSMTP) counts() (conns, auths int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, len(s.auths)
}

func forms(secret string) map[string]string {
	return map[string]string{
		"raw": secret, "query": url.QueryEscape(secret), "path": url.PathEscape(secret),
		"base64": base64.StdEncoding.EncodeToString([]byte(secret)),
	}
}

// TestAuthPlainEchoStaysOutOfErrors is the attack report's leak: a server
// echoing the AUTH PLAIN blob put the password, base64-encoded inside it,
// into the error.
func TestAuthPlainEchoStaysOutOfErrors(t *testing.T) {
	const pass = "Smtp-Pa55word!"
	srv := startEchoSMTP(t)
	h := sdktest.Start(t, New())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := sdk.Config{"host": srv.host, "port": srv.port, "username": "mailer", "password": pass,
		"from": "hbd@example.com", "to": "ops@example.com", "tls": "none"}
	err := h.Client.Notify(ctx, cfg, critical())
	var re *sdk.RemoteError
	if !errors.As(err, &re) || !sdk.IsPermanent(err) {
		t.Fatalf("Notify = %v, want a permanent plugin error", err)
	}
	if _, auths := srv.counts(); auths != 1 {
		t.Fatalf("server got %d AUTH commands, want 1", auths)
	}
	blob := base64.StdEncoding.EncodeToString([]byte("\x00mailer\x00" + pass))
	if strings.Contains(err.Error(), blob) {
		t.Fatalf("error quotes the AUTH PLAIN blob: %v", err)
	}
	for name, f := range forms(pass) {
		if strings.Contains(err.Error(), f) || strings.Contains(h.Logs(), f) {
			t.Fatalf("the %s form of the password left the plugin: %v", name, err)
		}
	}
	if re.Reason != "SMTP 535 from the server" {
		t.Errorf("reason = %q, want SMTP 535 from the server", re.Reason)
	}
}

// TestDialerObeysTheDestinationPolicy: the SMTP connection is checked
// against the channel's policy, in every TLS mode.
func TestDialerObeysTheDestinationPolicy(t *testing.T) {
	srv := startEchoSMTP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	restricted := sdk.WithDestinations(ctx, &sdk.Destinations{Restricted: true})
	for _, mode := range []string{TLSNone, TLSStartTLS, TLSImplicit} {
		cfg := sdk.Config{"host": srv.host, "port": srv.port, "from": "hbd@example.com", "to": "ops@example.com", "tls": mode}
		err := sdktest.Notify(restricted, New(), cfg, critical())
		if !errors.Is(err, sdk.ErrDestinationRefused) || sdk.Reason(err) != sdk.ReasonRefused || !sdk.IsPermanent(err) {
			t.Fatalf("tls %s: Notify to loopback under a restricted policy = %v, want a permanent refusal", mode, err)
		}
		cfg["host"] = "localhost"
		if err := sdktest.Notify(restricted, New(), cfg, critical()); !errors.Is(err, sdk.ErrDestinationRefused) {
			t.Fatalf("tls %s: Notify to localhost under a restricted policy = %v, want a refusal", mode, err)
		}
	}
	if conns, _ := srv.counts(); conns != 0 {
		t.Fatalf("the refused server got %d connections", conns)
	}
	// Allowed, the connection is made (the server refuses the dialogue).
	allowed := sdk.WithDestinations(ctx, &sdk.Destinations{Restricted: true, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	cfg := sdk.Config{"host": srv.host, "port": srv.port, "from": "hbd@example.com", "to": "ops@example.com", "tls": TLSNone}
	if err := sdktest.Notify(allowed, New(), cfg, critical()); errors.Is(err, sdk.ErrDestinationRefused) {
		t.Fatalf("Notify to an allowed address = %v", err)
	}
	if conns, _ := srv.counts(); conns != 1 {
		t.Fatalf("the allowed server got %d connections, want 1", conns)
	}
}

// TestImplicitTLSHandshakes: with tls: tls the dialer does the handshake
// (go-mail leaves it to a custom dialer): a server with an untrusted
// certificate fails the certificate check, not the SMTP dialogue.
func TestImplicitTLSHandshakes(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil) // only for its self-signed certificate
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{mustCert(t, ts)}})
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
			go func() {
				defer c.Close()
				c.Write([]byte("220 tls.test ESMTP\r\n"))
				time.Sleep(time.Second)
			}()
		}
	}()
	host, port, _ := net.SplitHostPort(l.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := sdk.Config{"host": host, "port": port, "from": "hbd@example.com", "to": "ops@example.com", "tls": TLSImplicit}
	err = sdktest.Notify(ctx, New(), cfg, critical())
	if err == nil || sdk.Reason(err) != sdk.ReasonTLS {
		t.Fatalf("Notify to an untrusted TLS server = %v (reason %q), want %q", err, sdk.Reason(err), sdk.ReasonTLS)
	}
}

func mustCert(t *testing.T, ts *httptest.Server) tls.Certificate {
	t.Helper()
	ts.StartTLS()
	defer ts.Close()
	return ts.TLS.Certificates[0]
}
