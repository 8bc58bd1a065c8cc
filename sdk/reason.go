package sdk

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"regexp"
	"slices"
)

// Reasons: the generic outcomes of a failed call that [Reason] returns and
// the daemon shows to users who are not admins (a /test answer, the journal
// of a host). None holds anything the remote side sent or any configured
// value; the daemon shows "delivery failed" for any other text.
const (
	ReasonRefused  = "destination refused by policy"
	ReasonConnect  = "connection failed"
	ReasonResolve  = "name resolution failed"
	ReasonTimeout  = "timed out"
	ReasonTLS      = "TLS handshake or certificate check failed"
	ReasonRejected = "the receiver refused the message"
	ReasonSettings = "invalid channel settings"
	ReasonPlugin   = "notifier plugin unavailable"
	ReasonFailed   = "delivery failed"
)

// ReasonHTTP is the reason of an HTTP answer with status code, e.g. "HTTP
// 400 from the receiver".
func ReasonHTTP(code int) string { return fmt.Sprintf("HTTP %d from the receiver", code) }

// ReasonSMTP is the reason of an SMTP reply with code, e.g. "SMTP 535 from
// the server".
func ReasonSMTP(code int) string { return fmt.Sprintf("SMTP %d from the server", code) }

var (
	fixedReasons = []string{ReasonRefused, ReasonConnect, ReasonResolve, ReasonTimeout, ReasonTLS,
		ReasonRejected, ReasonSettings, ReasonPlugin, ReasonFailed}
	codeReason = regexp.MustCompile(`^(HTTP [1-5][0-9][0-9] from the receiver|SMTP [2-5][0-9][0-9] from the server)$`)
)

// ValidReason reports whether s is one of the reasons above: the daemon
// shows a plugin's reason only then.
func ValidReason(s string) bool {
	return slices.Contains(fixedReasons, s) || codeReason.MatchString(s)
}

type reasonError struct {
	err    error
	reason string
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

// WithReason returns err carrying reason, one of the Reason constants or
// [ReasonHTTP] / [ReasonSMTP], for [Reason] to report instead of what it
// would infer; the message stays err's. WithReason(nil, r) is nil.
func WithReason(err error, reason string) error {
	if err == nil {
		return nil
	}
	return &reasonError{err: err, reason: reason}
}

// Reason returns the generic outcome of err (see the Reason constants): a
// reason set by [WithReason], else one inferred from the errors err wraps
// (a [*DestinationError], an [*HTTPStatusError], a [*FieldError], an SMTP
// reply, a timeout, a failed name lookup, TLS or connection), else
// [ReasonFailed]. A [*RemoteError] gives the reason the plugin sent when it
// is valid. Reason(nil) is "".
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var (
		re   *reasonError
		rem  *RemoteError
		dst  *DestinationError
		hs   *HTTPStatusError
		fe   *FieldError
		tp   *textproto.Error
		dns  *net.DNSError
		ne   net.Error
		op   *net.OpError
		rhe  tls.RecordHeaderError
		cve  *tls.CertificateVerificationError
		uae  x509.UnknownAuthorityError
		hne  x509.HostnameError
		cie  x509.CertificateInvalidError
		alrt tls.AlertError
	)
	switch {
	case errors.As(err, &re) && ValidReason(re.reason):
		return re.reason
	case errors.As(err, &rem):
		if ValidReason(rem.Reason) {
			return rem.Reason
		}
		if rem.Field != "" {
			return ReasonSettings
		}
		return ReasonFailed
	case errors.Is(err, ErrDestinationRefused) || errors.As(err, &dst):
		return ReasonRefused
	case errors.As(err, &hs):
		return ReasonHTTP(hs.StatusCode)
	case errors.As(err, &fe):
		return ReasonSettings
	case errors.As(err, &tp) && tp.Code >= 200 && tp.Code < 600:
		return ReasonSMTP(tp.Code)
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return ReasonTimeout
	case errors.As(err, &dns):
		return ReasonResolve
	case errors.As(err, &rhe) || errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne) ||
		errors.As(err, &cie) || errors.As(err, &alrt):
		return ReasonTLS
	case errors.As(err, &op):
		return ReasonConnect
	}
	return ReasonFailed
}
