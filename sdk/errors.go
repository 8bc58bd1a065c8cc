package sdk

import (
	"errors"
)

// ErrUnavailable means the plugin process could not be reached (it died, or
// the connection broke). The call may succeed after the daemon restarts it.
var ErrUnavailable = errors.New("notifier plugin unavailable")

// ErrUnimplemented means the plugin does not know the call, typically because
// it was built against an older SDK. It is permanent.
var ErrUnimplemented = errors.New("notifier plugin does not implement this call")

// permanent is implemented by errors that know whether retrying can help.
type permanent interface{ Permanent() bool }

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Permanent() bool { return true }

// Permanent marks err as not worth retrying: the same call with the same
// configuration will fail again (bad credentials, a rejected request). The
// daemon gives up on the delivery and journals the error instead of retrying.
// Permanent(nil) is nil. The mark survives the trip to the daemon.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, is marked permanent:
// by [Permanent], by an [*HTTPStatusError] for a 4xx answer other than 408
// and 429, or by a [*RemoteError] that the plugin marked so. Unmarked errors,
// timeouts and cancellations are retryable.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p) && p.Permanent()
}

// RemoteError is an error a plugin returned from Validate or Notify, as the
// daemon's [Client] receives it. Secret field values have been removed from
// Message by the plugin side of the SDK.
type RemoteError struct {
	// Message is the plugin's error text.
	Message string
	// Field is the configuration key at fault when the plugin returned a
	// [*FieldError], else "".
	Field string
	// Reason is the generic outcome the plugin reported (see [Reason]);
	// "" from plugins that predate it. Check it with [ValidReason] before
	// showing it: it comes from the plugin.
	Reason string

	permanent bool
}

// Error returns the plugin's message.
func (e *RemoteError) Error() string { return e.Message }

// Permanent reports whether the plugin marked the error as not worth retrying.
func (e *RemoteError) Permanent() bool { return e.permanent }

// ErrorField returns the configuration key an error is about: the Key of a
// [*FieldError] or the Field of a [*RemoteError] anywhere in err's chain, or
// "" when the error does not name one.
func ErrorField(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Key
	}
	var re *RemoteError
	if errors.As(err, &re) {
		return re.Field
	}
	return ""
}
