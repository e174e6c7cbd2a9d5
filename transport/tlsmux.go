package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// After the TLS handshake the acceptor of a TCP or mem connection sends one
// byte that Dial waits for: ackByte once it has verified the client and
// reserved a place in its accept queue, nackByte if the queue is full.
const (
	ackByte  = 0x57
	nackByte = 0x4e
)

var errBadAck = errors.New("unexpected confirmation byte")

// longAgo is a deadline in the past, to interrupt blocked I/O.
var longAgo = time.Unix(1, 0)

// tlsMuxListener turns raw connections into muxConns: it accepts in one
// goroutine, admits each connection through its gate, handshakes it in its
// own goroutine bounded by Options.HelloTimeout and HandshakeTimeout, and
// queues the results for Accept.
type tlsMuxListener struct {
	name    string
	raw     net.Listener
	conf    *tls.Config
	opts    Options
	prepare func(net.Conn) // optional per-connection socket setup

	q      *acceptQueue
	ctx    context.Context // cancelled by Close; aborts handshakes
	cancel context.CancelFunc
	gate   *gate
	wg     sync.WaitGroup
	once   sync.Once
}

func newTLSMuxListener(name string, raw net.Listener, conf *tls.Config, o Options, prepare func(net.Conn)) *tlsMuxListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &tlsMuxListener{
		name:    name,
		raw:     raw,
		conf:    conf,
		opts:    o,
		prepare: prepare,
		q:       newAcceptQueue(),
		ctx:     ctx,
		cancel:  cancel,
		gate:    newGate(o),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *tlsMuxListener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		rc, err := l.raw.Accept()
		if err != nil {
			if l.ctx.Err() != nil {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				l.q.stop(fmt.Errorf("transport: %s listener failed: %w", l.name, err))
				return
			}
			// Transient (e.g. out of file descriptors): back off like net/http.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.opts.Logger.Warn("transport: accept failed", "transport", l.name, "err", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		release, err := l.gate.enter(rc.RemoteAddr(), true)
		if err != nil {
			rc.Close()
			l.opts.handshakeFailed(rc.RemoteAddr(), handshakeError(err))
			continue
		}
		l.wg.Add(1)
		go l.handshake(rc, release)
	}
}

func (l *tlsMuxListener) handshake(rc net.Conn, release func()) {
	defer l.wg.Done()
	defer release()
	if l.prepare != nil {
		l.prepare(rc)
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.opts.HandshakeTimeout)
	defer cancel()
	c, err := serverHandshake(ctx, l.name, rc, l.conf, l.opts, l.q)
	switch {
	case errors.Is(err, ErrAcceptQueueFull):
		l.opts.Logger.Warn("transport: accept queue full, connection refused",
			"transport", l.name, "remote", rc.RemoteAddr())
	case err != nil:
		if l.ctx.Err() == nil { // not just the listener closing
			l.opts.handshakeFailed(rc.RemoteAddr(), err)
		}
	default:
		l.q.put(c)
	}
}

func (l *tlsMuxListener) Accept(ctx context.Context) (Conn, error) { return l.q.get(ctx) }
func (l *tlsMuxListener) Addr() net.Addr                           { return l.raw.Addr() }
func (l *tlsMuxListener) DroppedConns() uint64                     { return l.q.dropped.Load() }

func (l *tlsMuxListener) Close() error {
	var err error
	l.once.Do(func() {
		l.q.stop(ErrClosed)
		l.cancel()
		err = l.raw.Close()
		l.wg.Wait()
		l.q.drain()
	})
	return err
}

// serverHandshake runs the acceptor's side of a connection: TLS handshake,
// checks, a slot in q, confirmation byte, yamux server session. On success
// the returned conn holds a reserved slot of q. It closes rc on failure.
func serverHandshake(ctx context.Context, name string, rc net.Conn, conf *tls.Config, o Options, q *acceptQueue) (*muxConn, error) {
	stop := context.AfterFunc(ctx, func() { rc.SetDeadline(longAgo) })
	hello, err := readHello(ctx, rc, o.HelloTimeout)
	tc := tls.Server(&batchConn{Conn: &prefixConn{Conn: rc, pre: hello}}, conf)
	if err == nil {
		err = tc.HandshakeContext(ctx)
	}
	if err == nil {
		err = checkNegotiated(tc.ConnectionState())
	}
	reserved := false
	if err == nil {
		reply := byte(nackByte)
		if reserved = q.reserve(); reserved {
			reply = ackByte
		}
		_, err = tc.Write([]byte{reply})
	}
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err == nil && !reserved {
		err = ErrAcceptQueueFull
	}
	if err != nil {
		if reserved {
			q.unreserve()
		}
		rc.Close()
		if errors.Is(err, ErrAcceptQueueFull) {
			return nil, err
		}
		if ctx.Err() != nil {
			err = &ctxError{ctxErr: ctx.Err(), cause: err}
		}
		return nil, handshakeError(err)
	}
	rc.SetDeadline(time.Time{})
	c, err := newMuxConn(name, tc, rc, false, o)
	if err != nil {
		q.unreserve()
	}
	return c, err
}

// clientHandshake runs the dialer's side of a connection: TLS handshake,
// checks, waiting for the acceptor's confirmation, yamux client session. It
// closes rc on failure.
func clientHandshake(ctx context.Context, name string, rc net.Conn, conf *tls.Config, o Options) (*muxConn, error) {
	stop := context.AfterFunc(ctx, func() { rc.SetDeadline(longAgo) })
	tc := tls.Client(&batchConn{Conn: rc}, conf)
	err := tc.HandshakeContext(ctx)
	if err == nil {
		err = checkNegotiated(tc.ConnectionState())
	}
	if err == nil {
		var b [1]byte
		if _, err = io.ReadFull(tc, b[:]); err == nil {
			switch b[0] {
			case ackByte:
			case nackByte:
				err = ErrAcceptQueueFull
			default:
				err = errBadAck
			}
		}
	}
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		rc.Close()
		if errors.Is(err, ErrAcceptQueueFull) {
			return nil, err
		}
		return nil, handshakeError(err)
	}
	rc.SetDeadline(time.Time{})
	return newMuxConn(name, tc, rc, true, o)
}
