package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"
)

// A Conn of several QUIC connections (Options.QUICConns > 1).
//
// quic-go's congestion control is loss-based and per connection: on a path
// with random loss its window stays small, and after a blackout it starts
// again from little. A Conn made of several connections stripes each
// stream over all of them (quic_stripe_stream.go): a stream is one QUIC
// stream per connection, its bytes cut into chunks that go on each in
// turn and are put back in order by the reader, so that one stream may use
// the windows of all the connections.
//
// The protocol (docs/wire-spec.md, "Several QUIC connections"):
//   - a listener with QUICConns > 1 writes a join token (stripeTokenLen
//     random bytes) after the ack byte on its confirmation stream; one
//     with QUICConns 1 writes the ack byte alone, and a dialer with
//     QUICConns 1 reads no further than it;
//   - a dialer with QUICConns > 1 that got a token dials QUICConns-1 more
//     connections from the same UDP socket, each with the ALPN protocol
//     the first one negotiated plus stripeALPNSuffix; on each it opens a
//     stream, writes the token, and takes the connection as a member of
//     its Conn once the listener answers the ack byte on that stream;
//   - a listener takes a connection that negotiated a suffixed protocol
//     only as such a join: within HandshakeTimeout, with the token of a
//     live Conn whose peer presented the same certificate, while that Conn
//     has fewer than the listener's QUICConns members; it closes any other;
//   - both sides agree whether the Conn stripes (stripeMode); if it does
//     not, its streams are plain streams of the first connection.
//
// The Conn dies when any of its connections dies, with that connection's
// error, and closing it closes them all. Options.MaxIncomingStreams holds
// for each connection.

// MaxQUICConns is the most QUIC connections one Conn may have.
const MaxQUICConns = 16

const (
	stripeTokenLen   = 16
	stripeALPNSuffix = "+stripe"
)

// errJoinRefused is why a listener closes a joining connection.
var errJoinRefused = errors.New("transport: quic join refused")

// stripedConn is a Conn over one or more quicConns.
type stripedConn struct {
	o          Options
	isListener bool      // the Conn was accepted
	first      *quicConn // the connection of the handshake (TLS state, addresses)
	release    func()    // runs once every member is down
	ctx        context.Context
	cancel     context.CancelFunc // ends ctx: the Conn is dying
	incoming   chan Stream        // streams the peer opened, from the members' acceptors
	resolved   chan struct{}      // closed once mode is known
	done       chan struct{}
	wg         sync.WaitGroup // the members' acceptors and watchers, the stream classifiers
	refused    atomic.Uint64  // member streams refused (bad header, table full, group late)

	mu      sync.Mutex
	members []*quicConn             // guarded by mu; grows as connections join
	mode    stripeMode              // guarded by mu; final once resolved is closed
	nextID  uint64                  // guarded by mu: the id of the next striped stream opened
	pending map[uint64]*stripeGroup // guarded by mu: striped streams partly arrived
	err     error                   // guarded by mu: why the Conn died, final once done is closed
}

// newStripedConn makes a Conn of first; a listener's decides within
// HandshakeTimeout whether it stripes (see stripeMode).
func newStripedConn(o Options, first *quicConn, release func(), listener bool) *stripedConn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &stripedConn{o: o, isListener: listener, first: first, release: release, ctx: ctx, cancel: cancel,
		incoming: make(chan Stream), resolved: make(chan struct{}), done: make(chan struct{}),
		pending: map[uint64]*stripeGroup{}}
	c.add(first, 1)
	if listener {
		c.resolveLater()
	}
	go c.run()
	return c
}

// add makes m a member unless the Conn is dying or already has limit
// members.
func (c *stripedConn) add(m *quicConn, limit int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil || len(c.members) >= limit {
		return false
	}
	c.members = append(c.members, m)
	c.wg.Go(func() {
		select {
		case <-m.done:
			c.fail(m.Err())
		case <-c.ctx.Done():
		}
	})
	c.wg.Go(func() { c.acceptFrom(m) })
	return true
}

// memberCount returns how many connections the Conn has.
func (c *stripedConn) memberCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.members)
}

// acceptFrom hands the streams the peer opens on m to AcceptStream, at
// once when the Conn does not stripe, else once their group is complete.
func (c *stripedConn) acceptFrom(m *quicConn) {
	for {
		s, err := m.AcceptStream(c.ctx)
		if err != nil {
			if c.ctx.Err() == nil {
				c.fail(err)
			}
			return
		}
		if c.resolveOnStream() == modePlain {
			c.deliver(s)
			continue
		}
		c.wg.Go(func() { c.classify(s.(*quicStream)) })
	}
}

// deliver hands s to AcceptStream, or closes it if the Conn dies first.
func (c *stripedConn) deliver(s Stream) {
	select {
	case c.incoming <- s:
	case <-c.ctx.Done():
		s.Close()
	}
}

// fail starts the Conn's death; the first cause wins.
func (c *stripedConn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.cancel()
}

// run closes every member once the Conn is dying, then releases.
func (c *stripedConn) run() {
	<-c.ctx.Done()
	c.mu.Lock()
	err, members := c.err, append([]*quicConn(nil), c.members...)
	c.mu.Unlock()
	for _, m := range members {
		m.abort(err)
	}
	c.wg.Wait()
	c.release()
	close(c.done)
}

func (c *stripedConn) abort(err error) {
	c.fail(err)
	<-c.done
}

func (c *stripedConn) Close() error {
	c.abort(ErrClosed)
	return nil
}

func (c *stripedConn) OpenStream(ctx context.Context) (Stream, error) {
	select {
	case <-c.resolved:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.ctx.Done():
		<-c.done
		return nil, c.Err()
	}
	c.mu.Lock()
	mode, id, members := c.mode, c.nextID, append([]*quicConn(nil), c.members...)
	c.nextID++
	c.mu.Unlock()
	var s Stream
	var err error
	if mode == modePlain {
		s, err = members[0].OpenStream(ctx)
	} else {
		s, err = c.openStriped(ctx, id, members)
	}
	if err != nil && c.ctx.Err() != nil && ctx.Err() == nil {
		<-c.done
		return nil, c.Err()
	}
	return s, err
}

func (c *stripedConn) AcceptStream(ctx context.Context) (Stream, error) {
	select {
	case s := <-c.incoming:
		return s, nil
	case <-c.ctx.Done():
		<-c.done
		return nil, c.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *stripedConn) ConnectionState() tls.ConnectionState { return c.first.state }
func (c *stripedConn) LocalAddr() net.Addr                  { return c.first.LocalAddr() }
func (c *stripedConn) RemoteAddr() net.Addr                 { return c.first.RemoteAddr() }
func (c *stripedConn) Transport() string                    { return "quic" }
func (c *stripedConn) Done() <-chan struct{}                { return c.done }

// RefusedStreams counts the member streams of striped streams refused:
// a bad header, too many groups partly arrived, or a group not complete
// in time (see classify).
func (c *stripedConn) RefusedStreams() uint64 { return c.refused.Load() }

func (c *stripedConn) BytesReceived() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n uint64
	for _, m := range c.members {
		n += m.BytesReceived()
	}
	return n
}

func (c *stripedConn) Err() error { return endErr(c.done, &c.mu, &c.err) }

// newStripeToken returns a random join token.
func newStripeToken() ([stripeTokenLen]byte, error) {
	var t [stripeTokenLen]byte
	_, err := rand.Read(t[:])
	return t, err
}

// dialStripes dials n more connections for c from tr and adds those that
// join; one that fails is left out (c then has fewer).
func (t *quicTransport) dialStripes(ctx context.Context, tr *quic.Transport, raddr *net.UDPAddr, conf *tls.Config, token []byte, c *stripedConn, n int) {
	jconf := conf.Clone()
	jconf.NextProtos = []string{c.first.state.NegotiatedProtocol + stripeALPNSuffix}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			qc, err := tr.Dial(ctx, raddr, jconf, t.config(false))
			if err != nil {
				t.o.Logger.Debug("transport: quic stripe dial failed", "remote", raddr, "err", err)
				return
			}
			m := newQUICConn(qc, func() {})
			if err := joinStripe(ctx, qc, token); err != nil {
				t.o.Logger.Debug("transport: quic stripe join failed", "remote", raddr, "err", err)
				m.abort(err)
				return
			}
			if !c.add(m, MaxQUICConns) || c.modeNow() != modeUnknown {
				m.abort(ErrClosed)
			}
		})
	}
	wg.Wait()
}

// joinStripe presents token on a new stream of qc and waits for the ack.
func joinStripe(ctx context.Context, qc *quic.Conn, token []byte) error {
	s, err := qc.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	defer s.CancelRead(quicCodeStreamClosed)
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	if _, err := s.Write(token); err != nil {
		return err
	}
	var ack [1]byte
	if _, err := io.ReadFull(s, ack[:]); err != nil {
		return fmt.Errorf("%w: %w", errJoinRefused, err)
	}
	if ack[0] != ackByte {
		return fmt.Errorf("%w: answer %#x", errJoinRefused, ack[0])
	}
	return nil
}

// readStripeToken reads the join token that may follow the ack byte on the
// acceptor's confirmation stream; nil if the acceptor sent none.
func readStripeToken(ctx context.Context, s *quic.ReceiveStream) []byte {
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetReadDeadline(d)
	}
	buf := make([]byte, 1+stripeTokenLen)
	if _, err := io.ReadFull(s, buf); err != nil || buf[0] != ackByte {
		return nil
	}
	return buf[1:]
}

// stripes are a listener's Conns that take joining connections.
type stripes struct {
	mu    sync.Mutex
	conns map[[stripeTokenLen]byte]*stripedConn // guarded by mu
}

// register makes c joinable with a new token until it dies.
func (st *stripes) register(c *stripedConn) ([stripeTokenLen]byte, error) {
	tok, err := newStripeToken()
	if err != nil {
		return tok, err
	}
	st.mu.Lock()
	if st.conns == nil {
		st.conns = map[[stripeTokenLen]byte]*stripedConn{}
	}
	st.conns[tok] = c
	st.mu.Unlock()
	context.AfterFunc(c.ctx, func() {
		st.mu.Lock()
		delete(st.conns, tok)
		st.mu.Unlock()
	})
	return tok, nil
}

func (st *stripes) lookup(tok [stripeTokenLen]byte) *stripedConn {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.conns[tok]
}

// join takes a connection that negotiated a stripe protocol into the Conn
// its token names, or closes it.
func (l *quicListener) join(m *quicConn) {
	ctx, cancel := context.WithTimeout(l.ctx, l.o.HandshakeTimeout)
	defer cancel()
	if err := l.joinConn(ctx, m); err != nil {
		err = handshakeError(fmt.Errorf("%w: %w", errJoinRefused, err))
		m.abort(err)
		l.o.handshakeFailed(m.RemoteAddr(), err)
	}
}

func (l *quicListener) joinConn(ctx context.Context, m *quicConn) error {
	s, err := m.qc.AcceptStream(ctx)
	if err != nil {
		return err
	}
	defer s.CancelRead(quicCodeStreamClosed)
	defer s.Close()
	d, _ := ctx.Deadline()
	_ = s.SetDeadline(d)
	var tok [stripeTokenLen]byte
	if _, err := io.ReadFull(s, tok[:]); err != nil {
		return fmt.Errorf("reading the token: %w", err)
	}
	c := l.stripes.lookup(tok)
	switch {
	case c == nil:
		return errors.New("unknown or expired token")
	case !samePeer(c.first.state, m.state):
		return errors.New("the peer's certificate differs from its first connection's")
	case !c.join(m, l.o.QUICConns):
		return fmt.Errorf("the connection has %d QUIC connections already, carries streams on its first one, or is closing", c.memberCount())
	}
	if _, err := s.Write([]byte{ackByte}); err != nil {
		return err
	}
	return nil
}

// samePeer reports whether two handshakes' peers presented the same leaf
// certificate.
func samePeer(a, b tls.ConnectionState) bool {
	return len(a.PeerCertificates) > 0 && len(b.PeerCertificates) > 0 &&
		bytes.Equal(a.PeerCertificates[0].Raw, b.PeerCertificates[0].Raw)
}
