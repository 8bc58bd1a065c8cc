// Package email delivers hbd alerts as plain-text e-mail over SMTP.
package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/hbdmon/hbd/sdk"
)

// TLS modes of the tls field.
const (
	TLSNone     = "none"     // plain SMTP; credentials travel in clear
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS, which is required
	TLSImplicit = "tls"      // TLS from the first byte (SMTPS, usually port 465)
)

// sendTimeout bounds one delivery when the caller's context allows longer.
const sendTimeout = 30 * time.Second

var (
	// ErrTLSMode is returned for a tls value other than none, starttls or tls.
	ErrTLSMode = errors.New("must be one of none, starttls, tls")
	// ErrPort is returned for a port outside 1..65535.
	ErrPort = errors.New("must be a whole number from 1 to 65535")
	// ErrAddress is returned for a from or to entry that is not an e-mail
	// address.
	ErrAddress = errors.New("is not a valid e-mail address")
	// ErrPasswordWithoutUser is returned when a password is set without a
	// username.
	ErrPasswordWithoutUser = errors.New("is set but username is empty")
)

// Notifier sends e-mail. Call [New] to get one.
type Notifier struct{}

// New returns an e-mail notifier.
func New() *Notifier { return &Notifier{} }

// Schema describes the email channel type.
func (n *Notifier) Schema() sdk.Schema {
	return sdk.Schema{Type: "email", Label: "E-mail", Fields: append([]sdk.Field{
		{Key: "host", Label: "SMTP server", Type: sdk.FieldText, Required: true,
			Help: "Host name or address of the SMTP server"},
		{Key: "port", Label: "Port", Type: sdk.FieldNumber, Default: "587",
			Help: "587 for submission with STARTTLS, 465 for implicit TLS, 25 for relays"},
		{Key: "username", Label: "Username", Type: sdk.FieldText,
			Help: "SMTP login; empty to send without authentication"},
		{Key: "password", Label: "Password", Type: sdk.FieldSecret},
		{Key: "from", Label: "From", Type: sdk.FieldText, Required: true,
			Help: `Sender address, e.g. "hbd <hbd@example.com>"`},
		{Key: "to", Label: "To", Type: sdk.FieldText, Required: true,
			Help: "Recipient addresses, comma-separated"},
		{Key: "tls", Label: "TLS", Type: sdk.FieldText, Default: TLSStartTLS,
			Help: "starttls (required upgrade), tls (implicit TLS) or none (clear text, trusted relays only)"},
	}, sdk.TemplateFields()...)}
}

// settings is a validated email channel configuration.
type settings struct {
	host               string
	port               int
	username, password string
	from               string
	to                 []string
	tls                string
}

func (n *Notifier) parse(cfg sdk.Settings) (settings, error) {
	port, ok := cfg.Int("port")
	s := settings{
		host: cfg.String("host"), port: port, username: cfg.String("username"), password: cfg.Raw("password"),
		tls: strings.ToLower(cfg.String("tls")),
	}
	if !ok || port < 1 || port > 65535 {
		return settings{}, &sdk.FieldError{Key: "port", Err: ErrPort}
	}
	switch s.tls {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return settings{}, &sdk.FieldError{Key: "tls", Err: ErrTLSMode}
	}
	if s.password != "" && s.username == "" {
		return settings{}, &sdk.FieldError{Key: "password", Err: ErrPasswordWithoutUser}
	}
	from, err := mail.ParseAddress(cfg.String("from"))
	if err != nil {
		return settings{}, &sdk.FieldError{Key: "from", Err: ErrAddress}
	}
	s.from = from.String()
	for i, raw := range cfg.List("to") {
		addr, err := mail.ParseAddress(raw)
		if err != nil {
			return settings{}, &sdk.FieldError{Key: "to", Err: fmt.Errorf("entry %d %w", i+1, ErrAddress)}
		}
		s.to = append(s.to, addr.Address)
	}
	if len(s.to) == 0 {
		return settings{}, &sdk.FieldError{Key: "to", Err: sdk.ErrRequired}
	}
	return s, nil
}

// Validate checks cfg without contacting the mail server.
func (n *Notifier) Validate(cfg sdk.Settings) error {
	_, err := n.parse(cfg)
	return err
}

// Notify sends ev as one message to all recipients. SMTP 5xx answers
// (rejected login, refused recipient) are permanent errors; 4xx answers and
// connection failures are retryable.
func (n *Notifier) Notify(ctx context.Context, cfg sdk.Settings, ev sdk.Event) error {
	s, err := n.parse(cfg)
	if err != nil {
		return sdk.Permanent(err)
	}
	msg, err := s.message(ev, sdk.Render(ctx, cfg, ev))
	if err != nil {
		return sdk.Permanent(err)
	}
	client, err := s.client(ctx)
	if err != nil {
		return sdk.Permanent(fmt.Errorf("smtp client: %w", err))
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return classify(fmt.Errorf("smtp %s:%d: %w", s.host, s.port, err))
	}
	return nil
}

// dialer connects through the SDK's dialer, which checks the channel's
// destination policy (carried by the ctx go-mail dials with) on every
// address it connects to; in implicit TLS mode it also does the TLS
// handshake, which go-mail leaves to a custom dialer.
func (s settings) dialer(timeout time.Duration) gomail.DialContextFunc {
	d := sdk.Dialer(timeout)
	if s.tls != TLSImplicit {
		return d.DialContext
	}
	td := &tls.Dialer{NetDialer: d, Config: &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}}
	return td.DialContext
}

// message builds the e-mail for ev with the subject and body of text. Its
// Message-ID derives from the event ID (through sdk.SafeID: the ID is
// opaque and may hold characters a Message-ID cannot), so a retried
// notification can be recognised as the same message.
func (s settings) message(ev sdk.Event, text sdk.Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return nil, &sdk.FieldError{Key: "from", Err: ErrAddress}
	}
	if err := msg.To(s.to...); err != nil {
		return nil, &sdk.FieldError{Key: "to", Err: ErrAddress}
	}
	msg.Subject(text.Title)
	msg.SetBodyString(gomail.TypeTextPlain, text.Body)
	if ev.Time.IsZero() {
		msg.SetDate()
	} else {
		msg.SetDateWithValue(ev.Time)
	}
	domain := "hbd.invalid"
	if at := strings.LastIndexByte(s.from, '@'); at >= 0 {
		domain = strings.Trim(s.from[at+1:], "> ")
	}
	if ev.ID != "" {
		msg.SetMessageIDWithValue("hbd." + sdk.SafeID(ev.ID) + "@" + domain)
	} else {
		msg.SetMessageID()
	}
	msg.SetGenHeader("X-HBD-Host", ev.Host)
	msg.SetGenHeader("X-HBD-Level", string(ev.Level))
	return msg, nil
}

// client returns a go-mail client for s whose timeout also respects ctx.
func (s settings) client(ctx context.Context) (*gomail.Client, error) {
	timeout := sendTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(dl)), time.Millisecond)
	}
	opts := []gomail.Option{gomail.WithPort(s.port), gomail.WithTimeout(timeout), gomail.WithDialContextFunc(s.dialer(timeout))}
	switch s.tls {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		// The dialer did the handshake. go-mail's WithSSL would skip its
		// TLS step and take the connection for unencrypted (refusing PLAIN
		// auth); the opportunistic policy finds no STARTTLS on a TLS
		// connection and reads its state as encrypted.
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if s.username != "" {
		auth := gomail.SMTPAuthAutoDiscover
		if s.tls == TLSNone {
			// The operator chose clear text; go-mail would otherwise refuse
			// PLAIN on an unencrypted connection.
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(s.username), gomail.WithPassword(s.password))
	}
	return gomail.NewClient(s.host, opts...)
}

// classify marks SMTP failures that retrying cannot fix as permanent, and
// gives SMTP replies their generic reason (the code, never the server's
// text).
func classify(err error) error {
	var send *gomail.SendError
	if errors.As(err, &send) && send.ErrorCode() >= 200 {
		err = sdk.WithReason(err, sdk.ReasonSMTP(send.ErrorCode()))
		if !send.IsTemp() && send.ErrorCode() >= 500 {
			return sdk.Permanent(err)
		}
	}
	var proto *textproto.Error
	if errors.As(err, &proto) && proto.Code >= 500 {
		return sdk.Permanent(err)
	}
	for _, cfgErr := range []error{gomail.ErrNoSupportedAuthDiscovered, gomail.ErrPlainAuthNotSupported, gomail.ErrLoginAuthNotSupported} {
		if errors.Is(err, cfgErr) {
			return sdk.Permanent(err)
		}
	}
	return err
}

// Interface guards
var _ sdk.Notifier = (*Notifier)(nil)
