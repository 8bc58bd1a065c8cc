package auth

import (
	"errors"
	"fmt"
	"time"
)

// Kinds of Error. The API answers each with one status code; nothing in
// this package knows which.
var (
	// ErrInvalid: the request cannot be honoured as sent (a field out of
	// bounds, a wrong current password, a login in open mode).
	ErrInvalid = errors.New("invalid request")
	// ErrUnauthenticated: wrong credentials, or the caller's session has
	// ended.
	ErrUnauthenticated = errors.New("not authenticated")
	// ErrForbidden: the caller may not do this (a cross-site login, a
	// change of a host's access by someone who does not own it).
	ErrForbidden = errors.New("forbidden")
)

// Error is the failure of an account operation: Kind is one of the
// sentinel errors above, Msg a message for the caller. Msg never holds a
// password or a secret; text the caller typed is quoted shortened and
// without control characters.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns Kind, so errors.Is(err, ErrInvalid) works.
func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind error, format string, a ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, a...)}
}

// ThrottledError refuses a password attempt (a login, or the current
// password of a password change) after repeated failures; another may be
// tried after RetryAfter.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("Too many failed logins: try again in %d seconds", e.RetrySeconds())
}

// RetrySeconds is RetryAfter in whole seconds, rounded up, at least 1.
func (e *ThrottledError) RetrySeconds() int {
	s := int((e.RetryAfter + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}
