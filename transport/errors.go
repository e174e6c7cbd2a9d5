package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

var (
	// ErrClosed is returned for operations on a locally closed Conn, Stream or
	// Listener, and is the Err of a Conn closed locally.
	ErrClosed = errors.New("transport: closed")
	// ErrPeerClosed is the Err of a Conn that the peer closed or reset.
	ErrPeerClosed = errors.New("transport: closed by peer")
	// ErrIdleTimeout is the Err of a Conn whose peer went silent for longer
	// than Options.IdleTimeout.
	ErrIdleTimeout = errors.New("transport: peer idle timeout")
	// ErrStreamReset is returned by stream operations after the peer aborted
	// the stream.
	ErrStreamReset = errors.New("transport: stream reset by peer")
	// ErrHandshake is matched by every error passed to
	// Options.OnHandshakeError, and by Dial errors caused by the handshake.
	ErrHandshake = errors.New("transport: handshake failed")
	// ErrNoALPN is returned when the TLS config sets no NextProtos, or when
	// the peer did not negotiate an application protocol.
	ErrNoALPN = errors.New("transport: ALPN required")
	// ErrAcceptQueueFull is matched by the Dial error of a connection that
	// the listener refused because its accept queue was full.
	ErrAcceptQueueFull = errors.New("transport: accept queue full")
)

// ctxError is the error of an operation cut short by its context. It is a
// net.Error that times out when the context's deadline passed, and it matches
// both the context error and the underlying cause.
type ctxError struct {
	ctxErr error // context.DeadlineExceeded or context.Canceled
	cause  error // what the operation returned, may be nil
}

func (e *ctxError) Error() string {
	if e.cause == nil || errors.Is(e.cause, e.ctxErr) {
		return e.ctxErr.Error()
	}
	return e.ctxErr.Error() + " (" + e.cause.Error() + ")"
}

func (e *ctxError) Timeout() bool   { return errors.Is(e.ctxErr, context.DeadlineExceeded) }
func (e *ctxError) Temporary() bool { return e.Timeout() }
func (e *ctxError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.ctxErr}
	}
	return []error{e.ctxErr, e.cause}
}

// dialError wraps a failed dial as a *net.OpError. If ctx is done, the inner
// error is a *ctxError so that Timeout() and errors.Is(context.DeadlineExceeded)
// hold for deadline expiry.
func dialError(ctx context.Context, network string, addr net.Addr, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = &ctxError{ctxErr: ctx.Err(), cause: err}
	} else if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return err // already a dial error from package net
	}
	return &net.OpError{Op: "dial", Net: network, Addr: addr, Err: err}
}

// deadlineError is returned by stream operations whose deadline expired.
type deadlineError struct{}

func (deadlineError) Error() string   { return "transport: deadline exceeded" }
func (deadlineError) Timeout() bool   { return true }
func (deadlineError) Temporary() bool { return true }
func (deadlineError) Unwrap() error   { return os.ErrDeadlineExceeded }

// isPeerGone reports whether err from reading or writing the raw connection
// means the peer closed or reset it.
func isPeerGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.ErrClosedPipe) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// peerClosedError builds the Err of a Conn that the peer closed.
func peerClosedError(cause error) error {
	if cause == nil {
		return ErrPeerClosed
	}
	return fmt.Errorf("%w: %w", ErrPeerClosed, cause)
}

// handshakeError wraps an inbound or outbound handshake failure.
func handshakeError(err error) error {
	if errors.Is(err, ErrHandshake) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrHandshake, err)
}

// endErr is a Conn's Err: *err, read under mu, once done is closed; nil
// while the Conn lives.
func endErr(done <-chan struct{}, mu *sync.Mutex, err *error) error {
	select {
	case <-done:
		mu.Lock()
		defer mu.Unlock()
		return *err
	default:
		return nil
	}
}
