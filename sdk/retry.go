package sdk

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter bounds the wait a [RetryAfter] error (or a Retry-After
// header read by [ParseRetryAfter]) can carry; longer waits are cut to it.
// The daemon applies its own, lower bound (see docs/NOTIFICATIONS.md).
const MaxRetryAfter = 24 * time.Hour

// retryAfterError marks an error as retryable after a wait the service
// asked for.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string   { return e.err.Error() }
func (e *retryAfterError) Unwrap() error   { return e.err }
func (e *retryAfterError) Permanent() bool { return false }

// RetryAfter marks err as retryable and asks the daemon to wait at least d
// before the next attempt, as a service asks with a 429 or 503 answer and a
// Retry-After header (or a "retry_after" field in its body). The daemon
// waits max(d, its own backoff), bounded by its maximum retry delay; the
// retry still counts as an attempt. The result is never [IsPermanent], even
// when err was marked [Permanent]. d <= 0 leaves the wait to the daemon;
// d above [MaxRetryAfter] is cut to it. RetryAfter(nil, d) is nil. The wait
// survives the trip to the daemon.
//
// [HTTPError], [DoHTTP] and [Send] already return such an error for a 429
// or 503 answer with a Retry-After header, and [Send] with
// [RetryAfterJSON] for one that gives the wait in its body.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: min(max(d, 0), MaxRetryAfter)}
}

// RetryAfterOf returns the wait asked for by the [RetryAfter] mark on err
// or an error it wraps; ok is false when there is none or it asks for no
// wait.
func RetryAfterOf(err error) (d time.Duration, ok bool) {
	var ra *retryAfterError
	if !errors.As(err, &ra) || ra.after <= 0 {
		return 0, false
	}
	return ra.after, true
}

// ParseRetryAfter reads the value of a Retry-After header: a number of
// seconds ("3") or an HTTP date ("Wed, 21 Oct 2026 07:28:00 GMT"), which is
// turned into the time left after now. ok is false for an empty or
// malformed value. The result is never negative and at most
// [MaxRetryAfter].
func ParseRetryAfter(value string, now time.Time) (d time.Duration, ok bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), MaxRetryAfter), true
}
