package spool

import (
	"errors"
	"fmt"
)

// Sentinel errors. Test for them with errors.Is: the errors returned or
// passed to done callbacks wrap them, and the underlying OS error when there
// is one.
var (
	// ErrFull: the record would take the segment files past Options.MaxBytes.
	// Appends succeed again once acknowledgements free segments.
	ErrFull = errors.New("spool: full")
	// ErrBusy: more than MaxQueuedBytes are waiting for the writer.
	ErrBusy = errors.New("spool: busy")
	// ErrClosed: the spool is closed.
	ErrClosed = errors.New("spool: closed")
	// ErrBroken: an fsync failed; every later write fails with it, because the
	// state of the file after a failed fsync is unknown.
	ErrBroken = errors.New("spool: broken by a failed fsync")
	// ErrTooLarge: one record's plaintext exceeds MaxQueuedBytes.
	ErrTooLarge = errors.New("spool: record too large")
	// ErrKeyMismatch: Open found records with a correct checksum that do not
	// decrypt with Options.Key. The returned error also wraps a *CorruptError
	// naming the first such record.
	ErrKeyMismatch = errors.New("spool: the spool key does not match the key the records were written with")
	// ErrLocked: another open spool holds the directory (its LOCK file).
	ErrLocked = errors.New("spool: directory in use")
)

// CorruptError describes a place in a segment file that cannot be used (a
// record that does not decode, or an unsupported header). Open reports the
// same information as a Problem when it can recover around it.
type CorruptError struct {
	File   string // path of the segment file
	Offset int64  // offset of the bad record (0 for the header)
	Reason string // what was wrong, e.g. "CRC mismatch"
}

// Error returns, for example, "spool: /var/lib/wandist/0000000000000003.seg
// at offset 4096: CRC mismatch".
func (e *CorruptError) Error() string {
	return fmt.Sprintf("spool: %s at offset %d: %s", e.File, e.Offset, e.Reason)
}
