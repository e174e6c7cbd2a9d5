package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

const (
	// muxMaxStreamWindow is yamux's per-stream receive window limit.
	muxMaxStreamWindow = 16 << 20
	// muxStreamCloseTimeout is how long a stream we closed waits for the
	// peer's end-of-stream before it is reset.
	muxStreamCloseTimeout = 30 * time.Second
)

// errMuxSessionFailed is the Err of a yamux session that ended for a reason
// other than an I/O error, e.g. a protocol violation by the peer.
var errMuxSessionFailed = errors.New("transport: yamux session failed")

// muxConn is a Conn made of a TLS connection multiplexed by yamux (TCP and
// mem transports).
//
// Liveness: yamux's own keepalive is off. A monitor goroutine declares the
// peer dead when nothing was read from it for Options.IdleTimeout, and pings
// it whenever it was quiet for Options.KeepAlivePeriod. A write that yamux
// cannot hand to the connection within IdleTimeout
// (yamux.ErrConnectionWriteTimeout) also kills the session.
type muxConn struct {
	name  string
	sess  *yamux.Session
	raw   *trackedConn
	state tls.ConnectionState
	opts  Options
	done  chan struct{}
	in    *incomingLimit // MaxIncomingStreams

	mu      sync.Mutex
	err     error // why the conn died; final once done is closed
	closing bool  // Close was called: no new goroutines

	wg      sync.WaitGroup
	pinging atomic.Bool
}

func newMuxConn(name string, tc *tls.Conn, rc net.Conn, client bool, o Options) (*muxConn, error) {
	raw := newTrackedConn(tc, rc, o.IdleTimeout)
	c := &muxConn{
		name:  name,
		raw:   raw,
		state: tc.ConnectionState(),
		opts:  o,
		done:  make(chan struct{}),
	}
	c.in = newIncomingLimit(o.MaxIncomingStreams, client, func() { o.streamRefused(rc.RemoteAddr()) })
	raw.rst.onRST = c.in.sentRST // before yamux writes anything
	cfg := &yamux.Config{
		AcceptBacklog:          o.MaxIncomingStreams,
		EnableKeepAlive:        false, // see monitor
		KeepAliveInterval:      o.KeepAlivePeriod,
		ConnectionWriteTimeout: o.IdleTimeout,
		MaxStreamWindowSize:    muxMaxStreamWindow,
		StreamOpenTimeout:      0, // a busy peer may accept late; liveness is the monitor's job
		StreamCloseTimeout:     muxStreamCloseTimeout,
		Logger:                 yamuxLogger{o.Logger.With("transport", name)},
	}
	var sess *yamux.Session
	var err error
	if client {
		sess, err = yamux.Client(raw, cfg)
	} else {
		sess, err = yamux.Server(raw, cfg)
	}
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("transport: yamux: %w", err)
	}
	c.sess = sess
	c.wg.Add(1)
	go c.monitor()
	return c, nil
}

// monitor watches the session until it ends, probing the peer when quiet.
func (c *muxConn) monitor() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.KeepAlivePeriod)
	defer t.Stop()
	for {
		select {
		case <-c.sess.CloseChan():
			c.mu.Lock()
			if c.err == nil {
				c.err = c.deathCause()
			}
			c.mu.Unlock()
			close(c.done)
			return
		case <-t.C:
		}
		c.in.prune(handedRetention(c.opts))
		quiet := c.raw.sinceLastRead()
		if quiet >= c.opts.IdleTimeout {
			c.fail(fmt.Errorf("%w: nothing received for %v", ErrIdleTimeout, quiet.Round(time.Millisecond)), true)
			continue
		}
		// Probe on every tick without traffic (quiet is at least about one
		// period then; the slack tolerates an early tick).
		if quiet >= c.opts.KeepAlivePeriod/2 && c.pinging.CompareAndSwap(false, true) {
			c.wg.Add(1) // the monitor's own count keeps Close's Wait from returning
			go func() {
				defer c.wg.Done()
				defer c.pinging.Store(false)
				_, _ = c.sess.Ping() // the pong shows up in sinceLastRead
			}()
		}
	}
}

// deathCause explains a session that ended without fail being called.
func (c *muxConn) deathCause() error {
	err := c.raw.firstErr()
	switch {
	case err == nil:
		return errMuxSessionFailed
	case isPeerGone(err):
		return peerClosedError(err)
	default:
		return fmt.Errorf("transport: %s connection failed: %w", c.name, err)
	}
}

// fail records err as the reason (unless one is known) and ends the session.
// abrupt skips the TLS close_notify, for peers that are not listening.
func (c *muxConn) fail(err error, abrupt bool) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	if abrupt {
		c.raw.abrupt.Store(true)
	}
	c.sess.Close()
}

// deadErr waits until the session is fully down and returns its Err.
func (c *muxConn) deadErr() error {
	<-c.done
	return c.Err()
}

// mapErr converts a session-level yamux error.
func (c *muxConn) mapErr(err error) error {
	if errors.Is(err, yamux.ErrConnectionWriteTimeout) {
		c.fail(fmt.Errorf("%w: %w", ErrIdleTimeout, err), true)
		return c.deadErr()
	}
	if c.sess.IsClosed() {
		return c.deadErr()
	}
	return err
}

func (c *muxConn) OpenStream(ctx context.Context) (Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil, c.deadErr()
	}
	c.wg.Add(1)
	c.mu.Unlock()

	// yamux's OpenStream ignores contexts (it blocks while too many streams
	// await the peer's accept), so it runs in a goroutine that hands the
	// stream over, or closes it if the caller gave up.
	type result struct {
		s   *yamux.Stream
		err error
	}
	ch := make(chan result)
	go func() {
		defer c.wg.Done()
		s, err := c.sess.OpenStream()
		select {
		case ch <- result{s, err}:
		case <-ctx.Done():
			if s != nil {
				s.Close()
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, c.mapErr(r.err)
		}
		return &muxStream{c: c, s: r.s}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// AcceptStream waits for a free slot of MaxIncomingStreams, then for a
// stream (see incomingLimit). A caller waiting here holds a slot.
func (c *muxConn) AcceptStream(ctx context.Context) (Stream, error) {
	select {
	case c.in.slots <- struct{}{}:
	case <-ctx.Done():
		if c.sess.IsClosed() {
			return nil, c.deadErr()
		}
		return nil, ctx.Err()
	case <-c.done:
		return nil, c.deadErr()
	}
	s, err := c.sess.AcceptStreamWithContext(ctx)
	if err != nil {
		c.in.release()
		if ctx.Err() != nil && !c.sess.IsClosed() {
			return nil, ctx.Err()
		}
		return nil, c.mapErr(err)
	}
	c.in.handOut(s.StreamID())
	return &muxStream{c: c, s: s, incoming: true}, nil
}

// RefusedStreams counts the streams the peer opened beyond
// MaxIncomingStreams and its accept backlog, which were reset.
func (c *muxConn) RefusedStreams() uint64 { return c.in.refused.Load() }

func (c *muxConn) ConnectionState() tls.ConnectionState { return c.state }
func (c *muxConn) LocalAddr() net.Addr                  { return c.raw.raw.LocalAddr() }
func (c *muxConn) RemoteAddr() net.Addr                 { return c.raw.raw.RemoteAddr() }
func (c *muxConn) Transport() string                    { return c.name }
func (c *muxConn) Done() <-chan struct{}                { return c.done }
func (c *muxConn) BytesReceived() uint64                { return c.raw.received.Load() }

func (c *muxConn) Err() error { return endErr(c.done, &c.mu, &c.err) }

func (c *muxConn) Close() error {
	c.abort(ErrClosed)
	return nil
}

// abort closes the connection with err as its reason (if it is still alive)
// and waits for its goroutines.
func (c *muxConn) abort(err error) {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.fail(err, false)
	c.wg.Wait()
}

// yamuxLogger adapts slog to yamux.Logger.
type yamuxLogger struct{ l *slog.Logger }

func (y yamuxLogger) Print(v ...any)                 { y.l.Debug(fmt.Sprint(v...)) }
func (y yamuxLogger) Printf(format string, v ...any) { y.l.Debug(fmt.Sprintf(format, v...)) }
func (y yamuxLogger) Println(v ...any)               { y.l.Debug(fmt.Sprint(v...)) }
