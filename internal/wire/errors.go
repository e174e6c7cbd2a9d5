package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors wrapped by *FrameError. Test for them with errors.Is.
var (
	// ErrFrameTooLarge: the header announces a body longer than the limit.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrBadVersion: the header's version byte is not Version.
	ErrBadVersion = errors.New("wire: unsupported frame version")
	// ErrBadFlags: the header's flags are not zero.
	ErrBadFlags = errors.New("wire: unsupported frame flags")
	// ErrMalformed: the body does not decode as a message of its type.
	ErrMalformed = errors.New("wire: malformed frame body")
	// ErrUnknownType: the frame type is not defined by this package.
	ErrUnknownType = errors.New("wire: unknown frame type")
)

// FrameError describes a frame that cannot be accepted. Err is one of the
// sentinel errors above; Reason says what exactly was wrong (for a body that
// does not decode, it names the field, e.g. "Data.Payload: length 500 beyond
// end of body (12 bytes left)").
type FrameError struct {
	Offset int64  // stream offset of the frame's header; -1 if unknown
	Type   Type   // frame type (from the header)
	Reason string // human-readable detail
	Err    error  // sentinel: ErrFrameTooLarge, ErrBadVersion, ErrBadFlags, ErrMalformed, ErrUnknownType
}

// Error returns, for example,
// "frame at offset 1234 (type Data): body length 99999999 exceeds limit 1114112".
func (e *FrameError) Error() string {
	reason := e.Reason
	if reason == "" && e.Err != nil {
		reason = e.Err.Error()
	}
	if e.Offset < 0 {
		return fmt.Sprintf("frame (type %v): %s", e.Type, reason)
	}
	return fmt.Sprintf("frame at offset %d (type %v): %s", e.Offset, e.Type, reason)
}

// Unwrap returns the sentinel error.
func (e *FrameError) Unwrap() error { return e.Err }
