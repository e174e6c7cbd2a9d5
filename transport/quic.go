package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"
)

// Flow-control windows. The connection window is larger than the stream
// windows of a link's three data streams together: a receiver that stops
// reading its data streams (local.inbox_full: hold) fills their windows,
// and the control stream (keepalives, acks) must still have room, or the
// link is declared dead (found by the chaos suite: stuck-consumer-hold).
const (
	quicMaxStreamWindow = 8 << 20
	quicMaxConnWindow   = 32 << 20
	// quicAckData is written on the unidirectional stream the acceptor opens
	// to confirm a connection (see the package doc).
	quicAckData = ackByte
)

// quicTransport is QUIC over UDP (quic-go).
type quicTransport struct{ o Options }

// NewQUIC returns a Transport over QUIC. Each listener owns a UDP socket that
// stays open, after the listener is closed, until the last connection it
// accepted is gone; each dialed connection owns a UDP socket, which on Linux
// reports ICMP errors during the handshake so that a dial to a closed port
// fails at once. 0-RTT is off.
// Handshakes are bounded by Options.HandshakeTimeout (quic-go's handshake
// idle timeout is half of it; quic-go's total handshake limit is twice that).
func NewQUIC(o Options) Transport { return &quicTransport{o: o.withDefaults()} }

func (t *quicTransport) Name() string { return "quic" }

func (t *quicTransport) config(server bool) *quic.Config {
	c := &quic.Config{
		HandshakeIdleTimeout:       t.o.HandshakeTimeout / 2,
		MaxIdleTimeout:             t.o.IdleTimeout,
		KeepAlivePeriod:            t.o.KeepAlivePeriod,
		MaxIncomingStreams:         int64(t.o.MaxIncomingStreams),
		MaxIncomingUniStreams:      -1, // none
		MaxStreamReceiveWindow:     quicMaxStreamWindow,
		MaxConnectionReceiveWindow: quicMaxConnWindow,
		// The whole connection window from the start: quic-go grows it only
		// as the application reads, so data held unread on a stream could
		// otherwise use all of a small window and starve the others.
		InitialConnectionReceiveWindow: quicMaxConnWindow,
		Allow0RTT:                      false,
		// qlog traces of every connection when QLOGDIR is set (nil otherwise).
		Tracer: qlog.DefaultConnectionTracer,
	}
	if !server {
		c.MaxIncomingUniStreams = 1 // the acceptor's confirmation
	}
	return c
}

func (t *quicTransport) Listen(addr string, tlsConf *tls.Config) (Listener, error) {
	conf, err := prepareTLS(tlsConf)
	if err != nil {
		return nil, err
	}
	if t.o.QUICConns > 1 {
		for _, p := range conf.NextProtos {
			conf.NextProtos = append(conf.NextProtos, p+stripeALPNSuffix)
		}
	}
	udpAddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", udpAddr)
	if err != nil {
		return nil, err
	}
	g := newGate(t.o)
	tr := &quic.Transport{
		Conn:                withGRO(udp, newInitialFilter(t.o.OnInitialDropped)),
		VerifySourceAddress: g.needRetry,
		ConnContext:         g.connContext,
	}
	ln, err := tr.Listen(reportingServerTLS(conf, t.o), t.config(true))
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &quicListener{
		o:      t.o,
		udp:    udp,
		tr:     tr,
		ln:     ln,
		q:      newAcceptQueue(),
		ctx:    ctx,
		cancel: cancel,
		refs:   1,
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

func (t *quicTransport) Dial(ctx context.Context, addr string, tlsConf *tls.Config) (Conn, error) {
	conf, err := prepareClientTLS(tlsConf, addr)
	if err != nil {
		return nil, err
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, dialError(ctx, "quic", nil, err)
	}
	network := "udp4"
	if raddr.IP.To4() == nil {
		network = "udp6"
	}
	udp, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, dialError(ctx, "quic", raddr, err)
	}
	// Report ICMP errors (port unreachable) while handshaking, so that a dial
	// to a closed port fails at once instead of at the handshake timeout.
	setRecvErr(udp, raddr, true)
	tr := &quic.Transport{Conn: withGRO(udp, nil)}
	release := func() {
		tr.Close()
		udp.Close()
	}
	qc, err := tr.Dial(ctx, raddr, conf, t.config(false))
	if err != nil {
		release()
		return nil, dialError(ctx, "quic", raddr, quicDialCause(err))
	}
	// Established connections ride out transient ICMP errors, as QUIC
	// expects; only the idle timeout decides.
	setRecvErr(udp, raddr, false)
	if t.o.QUICConns == 1 {
		c := newQUICConn(qc, release)
		if _, err := awaitQUICAck(ctx, qc, false); err != nil {
			c.abort(err)
			return nil, dialError(ctx, "quic", raddr, err)
		}
		return c, nil
	}
	c := newStripedConn(t.o, newQUICConn(qc, func() {}), release, false)
	token, err := awaitQUICAck(ctx, qc, true)
	if err != nil {
		c.abort(err)
		return nil, dialError(ctx, "quic", raddr, err)
	}
	if token == nil {
		c.resolve(modePlain)
		return c, nil
	}
	t.dialStripes(ctx, tr, raddr, conf, token, c, t.o.QUICConns-1)
	if c.memberCount() < 2 {
		// The listener no longer takes joins once it has streams on
		// one connection: the link must be dialled again.
		err := fmt.Errorf("%w: no further QUIC connection joined", errJoinRefused)
		c.abort(err)
		return nil, dialError(ctx, "quic", raddr, err)
	}
	c.resolve(modeStriped)
	return c, nil
}

// quicDialCause marks TLS failures reported by quic-go as handshake errors.
func quicDialCause(err error) error {
	if te, ok := errors.AsType[*quic.TransportError](err); ok && te.ErrorCode.IsCryptoError() {
		return handshakeError(err)
	}
	return err
}

// awaitQUICAck waits for the acceptor's confirmation stream and, with
// stripes, reads the join token that may follow the ack byte (nil: none).
func awaitQUICAck(ctx context.Context, qc *quic.Conn, stripes bool) ([]byte, error) {
	s, err := qc.AcceptUniStream(ctx)
	if err != nil {
		if cause := context.Cause(qc.Context()); cause != nil {
			err = cause
		}
		if ae, ok := errors.AsType[*quic.ApplicationError](err); ok && ae.Remote && ae.ErrorCode == quicCodeRefused {
			return nil, fmt.Errorf("%w: %w", ErrAcceptQueueFull, err)
		}
		return nil, handshakeError(quicDialCause(err))
	}
	var token []byte
	if stripes {
		token = readStripeToken(ctx, s)
	}
	s.CancelRead(0)
	return token, nil
}

// sendQUICAck confirms an accepted connection to its dialer, with the join
// token for its further connections if there is one.
func sendQUICAck(qc *quic.Conn, token []byte) error {
	s, err := qc.OpenUniStream()
	if err != nil {
		return err
	}
	if _, err := s.Write(append([]byte{quicAckData}, token...)); err != nil {
		if _, ok := errors.AsType[*quic.StreamError](err); ok {
			return nil // the dialer got the byte and already stopped reading
		}
		return err
	}
	// Close fails if the dialer already stopped reading; the byte is out.
	_ = s.Close()
	return nil
}

// needRetry tells quic-go to validate a new client's source address with a
// Retry, which costs no state, once RetryAbove handshakes are in progress.
// Options.ValidateSource may ask for it at any load.
func (g *gate) needRetry(remote net.Addr) bool {
	if g.inProgress() < g.o.RetryAbove && (g.o.ValidateSource == nil || !g.o.ValidateSource(remote)) {
		return false
	}
	if g.o.OnRetry != nil {
		g.o.OnRetry(remote)
	}
	return true
}

// slotKey keys a QUIC connection's handshake slot in its context.
type slotKey struct{}

// connContext admits a QUIC connection before quic-go creates it, and
// holds its handshake slot until the handshake ends: the context ends when
// the connection fails or closes, and the accept loop gives the slot back
// as soon as the handshake completes (handshakeDone).
func (g *gate) connContext(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
	release, err := g.enter(ci.RemoteAddr, ci.AddrVerified)
	if err != nil {
		g.o.handshakeFailed(ci.RemoteAddr, handshakeError(err))
		return nil, err
	}
	context.AfterFunc(ctx, release)
	return context.WithValue(ctx, slotKey{}, release), nil
}

// handshakeDone gives back the handshake slot of an accepted connection.
func handshakeDone(ctx context.Context) {
	if release, ok := ctx.Value(slotKey{}).(func()); ok {
		release()
	}
}

// quicListener accepts QUIC connections into an acceptQueue, confirming each.
type quicListener struct {
	o   Options
	udp *net.UDPConn
	tr  *quic.Transport
	ln  *quic.Listener
	q   *acceptQueue

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu   sync.Mutex
	refs int // the listener itself plus each live accepted connection

	stripes stripes // Conns that take further connections (QUICConns > 1)
}

func (l *quicListener) acceptLoop() {
	defer l.wg.Done()
	for {
		qc, err := l.ln.Accept(l.ctx)
		if err != nil {
			if l.ctx.Err() == nil {
				l.q.stop(fmt.Errorf("transport: quic listener failed: %w", err))
			}
			return
		}
		handshakeDone(qc.Context())
		l.retain()
		if strings.HasSuffix(qc.ConnectionState().TLS.NegotiatedProtocol, stripeALPNSuffix) {
			m := newQUICConn(qc, l.release)
			l.wg.Go(func() { l.join(m) })
			continue
		}
		l.admit(newQUICConn(qc, l.release))
	}
}

// admit queues a new connection for Accept and confirms it to its dialer.
func (l *quicListener) admit(qc *quicConn) {
	var c interface {
		Conn
		abort(error)
	} = qc
	var token []byte
	if l.o.QUICConns > 1 {
		sc := newStripedConn(l.o, qc, func() {}, true)
		tok, err := l.stripes.register(sc)
		if err != nil {
			sc.abort(err)
			return
		}
		c, token = sc, tok[:]
	}
	if !l.q.reserve() {
		l.o.Logger.Warn("transport: accept queue full, connection refused",
			"transport", "quic", "remote", qc.RemoteAddr())
		c.abort(ErrAcceptQueueFull)
		return
	}
	if err := sendQUICAck(qc.qc, token); err != nil {
		l.q.unreserve()
		err = handshakeError(fmt.Errorf("confirming connection: %w", err))
		c.abort(err)
		l.o.handshakeFailed(qc.RemoteAddr(), err)
		return
	}
	l.q.put(c)
}

func (l *quicListener) retain() {
	l.mu.Lock()
	l.refs++
	l.mu.Unlock()
}

// release drops a reference; the last one closes the UDP socket.
func (l *quicListener) release() {
	l.mu.Lock()
	l.refs--
	last := l.refs == 0
	l.mu.Unlock()
	if last {
		l.tr.Close()
		l.udp.Close()
	}
}

func (l *quicListener) Accept(ctx context.Context) (Conn, error) { return l.q.get(ctx) }
func (l *quicListener) Addr() net.Addr                           { return l.udp.LocalAddr() }
func (l *quicListener) DroppedConns() uint64                     { return l.q.dropped.Load() }

func (l *quicListener) Close() error {
	l.once.Do(func() {
		l.q.stop(ErrClosed)
		l.cancel()
		l.ln.Close()
		l.wg.Wait()
		l.q.drain()
		l.release()
	})
	return nil
}
