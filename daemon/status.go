package daemon

import (
	"errors"
	"fmt"

	"github.com/wandist/wandist/internal/wire"
)

// The outcome of a local client's request is an error: nil when it was
// done, or a *requestError saying why not, as the client will read it.
// statusOf is the one place where an outcome becomes the status and text
// of a wire Result.

// requestError is a request refused, with the wire status that says why.
type requestError struct {
	status uint8 // a wire.Status*, never StatusOK
	msg    string
}

func (e *requestError) Error() string { return e.msg }

// Is matches the kinds below: errors.Is(err, errBusy) holds for every
// refusal with StatusBusy.
func (e *requestError) Is(target error) bool {
	t, ok := target.(*requestError)
	return ok && t.msg == "" && t.status == e.status
}

// The kinds of refusal, one per wire status; refuse gives them a text.
var (
	errBusy        = &requestError{status: wire.StatusBusy}
	errNoMembers   = &requestError{status: wire.StatusNoMembers}
	errUnreachable = &requestError{status: wire.StatusUnreachable}
	errTooLarge    = &requestError{status: wire.StatusTooLarge}
	errBadRequest  = &requestError{status: wire.StatusBadRequest}
	errNoMailbox   = &requestError{status: wire.StatusNoMailbox}
	errUnavailable = &requestError{status: wire.StatusUnavailable}
)

// refuse returns a refusal of kind (one of the err* kinds above).
func refuse(kind *requestError, format string, a ...any) error {
	return &requestError{status: kind.status, msg: fmt.Sprintf(format, a...)}
}

// statusOf maps a request's outcome to the status and message its Result
// carries. An error that is not a requestError (from groups, say: a bad
// claim) is the client's bad request.
func statusOf(err error) (uint8, string) {
	if err == nil {
		return wire.StatusOK, ""
	}
	if re, ok := err.(*requestError); ok { // every refusal of this package
		return re.status, re.msg
	}
	var re *requestError
	if errors.As(err, &re) {
		return re.status, re.msg
	}
	return wire.StatusBadRequest, err.Error()
}
