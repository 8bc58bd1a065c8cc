package sdk

import (
	"errors"
)

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
// by [Permanent] (on either side of the wire), or by an [*HTTPStatusError]
// for a 4xx answer other than 408, 425 and 429 (or an unexpected 1xx or
// 3xx). The nearest mark in err's chain wins: [RetryAfter] marks an error
// retryable. Unmarked errors, timeouts and cancellations are retryable.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p) && p.Permanent()
}

// RemoteError is an error a notifier returned from Validate or Notify as it
// reaches the daemon (and sdktest's Harness) over the wire. Secret field
// values have been removed from Message by the plugin side of the SDK. An
// error the notifier marked [Permanent] arrives wrapped with Permanent, one
// marked with [RetryAfter] wrapped with RetryAfter (read the wait with
// [RetryAfterOf]).
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
}

// Error returns the plugin's message.
func (e *RemoteError) Error() string { return e.Message }

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
