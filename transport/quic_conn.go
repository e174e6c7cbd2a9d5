package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// QUIC application error codes used when closing connections.
const (
	quicCodeClosed  quic.ApplicationErrorCode = 0
	quicCodeAborted quic.ApplicationErrorCode = 1
	quicCodeRefused quic.ApplicationErrorCode = 2 // accept queue full
	// quicCodeStreamClosed is sent in STOP_SENDING when a Stream is closed.
	quicCodeStreamClosed quic.StreamErrorCode = 0
)

// errQUICHandshakeIncomplete is reported for inbound QUIC handshakes that
// ended before the client was verified.
var errQUICHandshakeIncomplete = errors.New("quic handshake did not complete")

// quicConn is a Conn over a quic-go connection.
type quicConn struct {
	qc      *quic.Conn
	state   tls.ConnectionState
	release func() // frees the socket resources once the conn is dead
	done    chan struct{}

	mu  sync.Mutex
	err error // final once done is closed
}

func newQUICConn(qc *quic.Conn, release func()) *quicConn {
	c := &quicConn{
		qc:      qc,
		state:   qc.ConnectionState().TLS,
		release: release,
		done:    make(chan struct{}),
	}
	context.AfterFunc(qc.Context(), c.finish)
	return c
}

// finish runs once the quic-go connection is dead.
func (c *quicConn) finish() {
	err := quicDeathCause(context.Cause(c.qc.Context()))
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.release()
	close(c.done)
}

func quicDeathCause(cause error) error {
	if ae, ok := errors.AsType[*quic.ApplicationError](cause); ok {
		if ae.Remote {
			return peerClosedError(cause)
		}
		return ErrClosed
	}
	if _, ok := errors.AsType[*quic.IdleTimeoutError](cause); ok {
		return fmt.Errorf("%w: %w", ErrIdleTimeout, cause)
	}
	if _, ok := errors.AsType[*quic.StatelessResetError](cause); ok {
		return peerClosedError(cause)
	}
	if te, ok := errors.AsType[*quic.TransportError](cause); ok && te.Remote {
		return peerClosedError(cause)
	}
	return fmt.Errorf("transport: quic connection failed: %w", cause)
}

// abort closes the connection with err as its reason (if it is still alive)
// and waits until it is fully down.
func (c *quicConn) abort(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	code, msg := quicCodeAborted, err.Error()
	switch {
	case errors.Is(err, ErrClosed):
		code, msg = quicCodeClosed, "closed"
	case errors.Is(err, ErrAcceptQueueFull):
		code = quicCodeRefused
	}
	c.qc.CloseWithError(code, msg)
	<-c.done
}

func (c *quicConn) Close() error {
	c.abort(ErrClosed)
	return nil
}

// connErr converts a connection-level error: once the connection is dead,
// every operation reports its Err. quic-go's connection errors all match
// net.ErrClosed, and may reach streams shortly before the connection's
// context ends.
func (c *quicConn) connErr(err error) error {
	if errors.Is(err, net.ErrClosed) || c.qc.Context().Err() != nil {
		<-c.done
		return c.Err()
	}
	return err
}

func (c *quicConn) OpenStream(ctx context.Context) (Stream, error) {
	s, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		if ctx.Err() != nil && c.qc.Context().Err() == nil {
			return nil, ctx.Err()
		}
		return nil, c.connErr(err)
	}
	return &quicStream{c: c, s: s}, nil
}

func (c *quicConn) AcceptStream(ctx context.Context) (Stream, error) {
	s, err := c.qc.AcceptStream(ctx)
	if err != nil {
		if ctx.Err() != nil && c.qc.Context().Err() == nil {
			return nil, ctx.Err()
		}
		return nil, c.connErr(err)
	}
	return &quicStream{c: c, s: s}, nil
}

func (c *quicConn) ConnectionState() tls.ConnectionState { return c.state }
func (c *quicConn) LocalAddr() net.Addr                  { return c.qc.LocalAddr() }
func (c *quicConn) RemoteAddr() net.Addr                 { return c.qc.RemoteAddr() }
func (c *quicConn) Transport() string                    { return "quic" }
func (c *quicConn) Done() <-chan struct{}                { return c.done }
func (c *quicConn) BytesReceived() uint64                { return c.qc.ConnectionStats().BytesReceived }

// RefusedStreams is always 0: quic-go does not let the peer open more
// streams than MaxIncomingStreams (see Options).
func (c *quicConn) RefusedStreams() uint64 { return 0 }

func (c *quicConn) Err() error { return endErr(c.done, &c.mu, &c.err) }

// quicStream is a Stream of a quicConn.
type quicStream struct {
	c      *quicConn
	s      *quic.Stream
	closed atomic.Bool
}

func (s *quicStream) Read(b []byte) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	n, err := s.s.Read(b)
	if err != nil {
		err = s.mapErr(err)
	}
	return n, err
}

func (s *quicStream) Write(b []byte) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	n, err := s.s.Write(b)
	if err != nil {
		err = s.mapErr(err)
	}
	return n, err
}

func (s *quicStream) mapErr(err error) error {
	switch {
	case err == io.EOF:
		return err
	case s.closed.Load():
		return ErrClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		return deadlineError{}
	}
	if se, ok := errors.AsType[*quic.StreamError](err); ok {
		if se.Remote {
			return fmt.Errorf("%w: %w", ErrStreamReset, err)
		}
		return ErrClosed
	}
	return s.c.connErr(err)
}

// Close finishes the send direction after the data written so far and asks
// the peer to stop sending (STOP_SENDING).
func (s *quicStream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.s.CancelRead(quicCodeStreamClosed)
	// A Write blocked on flow control is not released by Close: a deadline
	// in the past releases it (what was already accepted is still sent).
	_ = s.s.SetWriteDeadline(time.Unix(1, 0))
	if err := s.s.Close(); err != nil && s.c.qc.Context().Err() == nil {
		return err
	}
	return nil
}

func (s *quicStream) SetDeadline(t time.Time) error      { return s.s.SetDeadline(t) }
func (s *quicStream) SetReadDeadline(t time.Time) error  { return s.s.SetReadDeadline(t) }
func (s *quicStream) SetWriteDeadline(t time.Time) error { return s.s.SetWriteDeadline(t) }

// reportingServerTLS wraps a server TLS config so that failed inbound QUIC
// handshakes reach Options.OnHandshakeError: quic-go keeps them to itself.
// A handshake counts as failed when it ends before VerifyConnection accepted
// the client; a rejection by the caller's VerifyConnection is reported with
// its error.
func reportingServerTLS(conf *tls.Config, o Options) *tls.Config {
	// As quic-go does: set up session ticket keys before cloning, so that
	// all the clones share them.
	_, _ = conf.DecryptTicket(nil, tls.ConnectionState{})
	inner := conf.Clone()
	userGetConfig := inner.GetConfigForClient
	inner.GetConfigForClient = nil
	outer := conf.Clone()
	outer.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		var remote net.Addr
		if hello.Conn != nil { // quic-go fills in a fake net.Conn with the addresses
			remote = hello.Conn.RemoteAddr()
		}
		var once sync.Once
		report := func(err error) {
			once.Do(func() { o.handshakeFailed(remote, handshakeError(err)) })
		}
		base := inner
		if userGetConfig != nil {
			c, err := userGetConfig(hello)
			if err != nil {
				report(err)
				return nil, err
			}
			if c != nil {
				base = c.Clone()
				if base.MinVersion < tls.VersionTLS13 {
					base.MinVersion = tls.VersionTLS13
				}
			}
		}
		per := base.Clone()
		var verified atomic.Bool
		userVerify := per.VerifyConnection
		per.VerifyConnection = func(cs tls.ConnectionState) error {
			if userVerify != nil {
				if err := userVerify(cs); err != nil {
					report(err)
					return err
				}
			}
			verified.Store(true)
			return nil
		}
		// hello.Context ends with the TLS handshake, successful or not.
		context.AfterFunc(hello.Context(), func() {
			if !verified.Load() {
				report(errQUICHandshakeIncomplete)
			}
		})
		return per, nil
	}
	return outer
}
