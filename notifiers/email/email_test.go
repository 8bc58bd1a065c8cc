package email

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/sdktest"
)

const (
	testUser = "hbd"
	testPass = "correct horse"
)

// received is one message the test SMTP server accepted.
type received struct {
	from string
	to   []string
	data []byte
}

// smtpServer is a real SMTP server on a local port that requires PLAIN
// authentication and records what it accepts.
type smtpServer struct {
	host string
	port string

	mu       sync.Mutex
	messages []received
	rcptCode map[string]int // recipient -> SMTP code to refuse it with
}

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	s := &smtpServer{rcptCode: map[string]int{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{srv: s}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	s.host, s.port, _ = net.SplitHostPort(l.Addr().String())
	return s
}

func (s *smtpServer) refuse(rcpt string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcptCode[rcpt] = code
}

func (s *smtpServer) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

func (s *smtpServer) config() sdk.Config {
	return sdk.Config{"host": s.host, "port": s.port, "username": testUser, "password": testPass,
		"from": "hbd alerts <hbd@example.com>", "to": "ops@example.com, Oncall <oncall@example.com>", "tls": "none"}
}

type session struct {
	srv    *smtpServer
	authed bool
	msg    received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != testUser || pass != testPass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
		}
		s.authed = true
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	s.msg = received{from: from}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.srv.mu.Lock()
	code := s.srv.rcptCode[to]
	s.srv.mu.Unlock()
	if code != 0 {
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "recipient refused"}
	}
	s.msg.to = append(s.msg.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = data
	s.srv.mu.Lock()
	s.srv.messages = append(s.srv.messages, s.msg)
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.msg = received{} }
func (s *session) Logout() error { return nil }

func critical() sdk.Event {
	return sdk.Event{ID: "ev-7", Host: "web01", MetricPath: "cpu_monitor.cpu_percent", Level: sdk.LevelCritical,
		PreviousLevel: sdk.LevelWarning, Value: 95.5, Since: time.Date(2024, 3, 23, 22, 0, 0, 0, time.UTC),
		Time: time.Date(2024, 3, 23, 22, 5, 0, 0, time.UTC)}
}

// parse decodes a received message into its headers and plain-text body.
func parse(t *testing.T, raw []byte) (mail.Header, string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	var body io.Reader = m.Body
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return m.Header, string(b)
}

func TestMailSaysTheDaemonsText(t *testing.T) {
	srv := startSMTP(t)
	ev := critical()
	ev.Host, ev.MetricPath, ev.Value = "web02", "heartbeat.host", 2
	ev.Text = "web02 is DOWN: no heartbeat for 2m10s (IPv4 and IPv6)"
	if err := sdktest.Notify(context.Background(), New(), srv.config(), ev); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	got := srv.received()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	h, body := parse(t, got[0].data)
	if subject, _ := new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); subject != "[CRITICAL] "+ev.Text {
		t.Errorf("Subject = %q", subject)
	}
	if !strings.HasPrefix(body, ev.Text+"\r\n") && !strings.HasPrefix(body, ev.Text+"\n") {
		t.Errorf("body does not begin with the text: %q", body)
	}
}

func TestNotifySendsMail(t *testing.T) {
	srv := startSMTP(t)
	if err := sdktest.Notify(context.Background(), New(), srv.config(), critical()); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	got := srv.received()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	if got[0].from != "hbd@example.com" || !slices.Equal(got[0].to, []string{"ops@example.com", "oncall@example.com"}) {
		t.Errorf("envelope from %q to %v", got[0].from, got[0].to)
	}
	h, body := parse(t, got[0].data)
	subject, _ := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if subject != "[CRITICAL] web01 cpu_monitor.cpu_percent = 95.5" {
		t.Errorf("Subject = %q", subject)
	}
	if to, _ := h.AddressList("To"); len(to) != 2 || to[1].Address != "oncall@example.com" {
		t.Errorf("To = %v", to)
	}
	if h.Get("Message-Id") != "<hbd."+sdk.SafeID("ev-7")+"@example.com>" || h.Get("X-Hbd-Level") != "CRITICAL" {
		t.Errorf("Message-ID %q, X-HBD-Level %q", h.Get("Message-Id"), h.Get("X-Hbd-Level"))
	}
	for _, want := range []string{"web01 cpu_monitor.cpu_percent is CRITICAL (was WARNING).", "Value: 95.5", "Since: 2024-03-23T22:00:00Z"} {
		if !strings.Contains(body, want) {
			t.Errorf("body %q lacks %q", body, want)
		}
	}
}

func TestNotifyClassifiesFailures(t *testing.T) {
	srv := startSMTP(t)
	srv.refuse("gone@example.com", 550)
	srv.refuse("full@example.com", 452)
	closed := func() string {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		_, port, _ := net.SplitHostPort(l.Addr().String())
		_ = l.Close()
		return port
	}()
	tests := []struct {
		name      string
		set       sdk.Config
		permanent bool
	}{
		{"wrong password", sdk.Config{"password": "Tr0ub4dor-wrong"}, true},
		{"recipient unknown", sdk.Config{"to": "gone@example.com"}, true},
		{"mailbox full", sdk.Config{"to": "full@example.com"}, false},
		{"connection refused", sdk.Config{"port": closed}, false},
		{"starttls not offered", sdk.Config{"tls": "starttls"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := srv.config()
			maps.Copy(cfg, tt.set)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := sdktest.Notify(ctx, New(), cfg, critical())
			if err == nil || sdk.IsPermanent(err) != tt.permanent {
				t.Fatalf("Notify = %v (permanent %v), want error with permanent %v", err, sdk.IsPermanent(err), tt.permanent)
			}
			t.Logf("error: %v", err)
			if strings.Contains(err.Error(), cfg["password"]) {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	base := sdk.Config{"host": "smtp.example.com", "from": "hbd@example.com", "to": "a@example.com"}
	tests := []struct {
		name    string
		set     sdk.Config
		field   string
		wantErr error
	}{
		{"minimal", nil, "", nil},
		{"all tls modes", sdk.Config{"tls": "TLS", "port": "465"}, "", nil},
		{"bad tls mode", sdk.Config{"tls": "ssl"}, "tls", ErrTLSMode},
		{"missing host", sdk.Config{"host": ""}, "host", sdk.ErrRequired},
		{"port not a number", sdk.Config{"port": "smtp"}, "port", sdk.ErrNotNumber},
		{"port out of range", sdk.Config{"port": "70000"}, "port", ErrPort},
		{"fractional port", sdk.Config{"port": "25.5"}, "port", ErrPort},
		{"bad from", sdk.Config{"from": "not an address"}, "from", ErrAddress},
		{"bad recipient", sdk.Config{"to": "a@example.com, nobody"}, "to", ErrAddress},
		{"only commas", sdk.Config{"to": " , ,"}, "to", sdk.ErrRequired},
		{"password without user", sdk.Config{"password": "pw"}, "password", ErrPasswordWithoutUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := maps.Clone(base)
			maps.Copy(cfg, tt.set)
			err := sdktest.Validate(New(), cfg)
			if !errors.Is(err, tt.wantErr) || sdk.ErrorField(err) != tt.field {
				t.Fatalf("Validate = %v (field %q), want %v on %q", err, sdk.ErrorField(err), tt.wantErr, tt.field)
			}
			if tt.field != "" && !strings.HasPrefix(err.Error(), tt.field+":") {
				t.Errorf("message %q does not name the field", err)
			}
		})
	}
}

func TestConformance(t *testing.T) {
	srv := startSMTP(t)
	sdktest.Conformance(t, New(), srv.config())
}

func TestNotifyOverPluginProtocol(t *testing.T) {
	srv := startSMTP(t)
	h := sdktest.Start(t, New())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ev := sdk.Event{Test: true, Channel: "mail-ops", ID: "t-1"}
	if err := h.Client.Notify(ctx, srv.config(), ev); err != nil {
		t.Fatalf("Notify over gRPC: %v", err)
	}
	got := srv.received()
	if len(got) != 1 {
		t.Fatalf("server received %d messages", len(got))
	}
	if hdr, _ := parse(t, got[0].data); !strings.Contains(hdr.Get("Subject"), "test notification for channel mail-ops") {
		t.Errorf("Subject = %q", hdr.Get("Subject"))
	}

	cfg := srv.config()
	cfg["password"] = "Wr0ngPassw0rd"
	err := h.Client.Notify(ctx, cfg, ev)
	if !sdk.IsPermanent(err) || strings.Contains(err.Error(), "Wr0ngPassw0rd") {
		t.Fatalf("Notify with a wrong password over gRPC = %v, want permanent error without the password", err)
	}
	if err := h.Client.Validate(ctx, sdk.Config{"host": "h", "from": "a@b.c", "to": "d@e.f", "tls": "ssl"}); sdk.ErrorField(err) != "tls" {
		t.Fatalf("Validate(tls=ssl) over gRPC = %v, want an error on field tls", err)
	}
}
