package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/wandist/wandist/internal/wire"
)

// Errors returned by the SDK; test them with errors.Is.
var (
	ErrBusy         = errors.New("wandist: destination busy (buffer full)")
	ErrNoMembers    = errors.New("wandist: group has no members")
	ErrUnreachable  = errors.New("wandist: destination unreachable")
	ErrTooLarge     = errors.New("wandist: message too large")
	ErrNoMailbox    = errors.New("wandist: no such mailbox")
	ErrBadRequest   = errors.New("wandist: bad request")
	ErrUnauthorized = errors.New("wandist: not authorized by the daemon")
	ErrUnavailable  = errors.New("wandist: daemon unavailable")
	ErrClosed       = errors.New("wandist: client closed")
	ErrTimeout      = &timeoutError{}
)

// Error is a failure the daemon reported, with its explanation. It matches
// the sentinel of its kind with errors.Is.
type Error struct {
	Kind    error  // one of the sentinels above
	Message string // the daemon's explanation
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Message
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

func statusError(status uint8, msg string) error {
	var kind error
	switch status {
	case wire.StatusOK:
		return nil
	case wire.StatusBusy:
		kind = ErrBusy
	case wire.StatusNoMembers:
		kind = ErrNoMembers
	case wire.StatusUnreachable:
		kind = ErrUnreachable
	case wire.StatusTooLarge:
		kind = ErrTooLarge
	case wire.StatusNoMailbox:
		kind = ErrNoMailbox
	case wire.StatusUnauthorized:
		kind = ErrUnauthorized
	case wire.StatusUnavailable:
		kind = ErrUnavailable
	case wire.StatusBadRequest:
		kind = ErrBadRequest
	default:
		kind = fmt.Errorf("wandist: unknown status %d", status)
	}
	return &Error{Kind: kind, Message: msg}
}

// timeoutError is ErrTimeout: it is a net.Error whose Timeout() is true, and
// it matches context.DeadlineExceeded with errors.Is.
type timeoutError struct{}

func (*timeoutError) Error() string   { return "wandist: timeout" }
func (*timeoutError) Timeout() bool   { return true }
func (*timeoutError) Temporary() bool { return true }
func (*timeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded
}

func ctxError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimeout
	}
	return err
}
