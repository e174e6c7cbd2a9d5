package transport

import (
	"context"
	"crypto/tls"
	"net"
)

// tcpTransport is TCP + TLS 1.3 + yamux.
type tcpTransport struct{ o Options }

// NewTCP returns a Transport over TCP with TLS 1.3 and yamux multiplexing.
// Sockets use TCP_NODELAY, TCP keepalive probes every
// Options.KeepAlivePeriod, and (Linux) TCP_NOTSENT_LOWAT of notSentLowat,
// so that bulk data waits in the lanes, where priorities apply, and not in
// the kernel's send buffer. The dialer is the yamux client, the acceptor the
// yamux server.
func NewTCP(o Options) Transport { return &tcpTransport{o: o.withDefaults()} }

func (t *tcpTransport) Name() string { return "tcp" }

func (t *tcpTransport) keepAlive() net.KeepAliveConfig {
	ka, idle := t.o.KeepAlivePeriod, t.o.IdleTimeout
	return net.KeepAliveConfig{
		Enable:   true,
		Idle:     ka,
		Interval: ka,
		Count:    max(1, int((idle+ka-1)/ka)),
	}
}

func (t *tcpTransport) Listen(addr string, tlsConf *tls.Config) (Listener, error) {
	conf, err := prepareTLS(tlsConf)
	if err != nil {
		return nil, err
	}
	lc := net.ListenConfig{KeepAliveConfig: t.keepAlive()}
	raw, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	return newTLSMuxListener("tcp", raw, conf, t.o, tuneTCP), nil
}

func (t *tcpTransport) Dial(ctx context.Context, addr string, tlsConf *tls.Config) (Conn, error) {
	conf, err := prepareClientTLS(tlsConf, addr)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{KeepAliveConfig: t.keepAlive()}
	rc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, dialError(ctx, "tcp", nil, err)
	}
	tuneTCP(rc)
	c, err := clientHandshake(ctx, "tcp", rc, conf, t.o)
	if err != nil {
		return nil, dialError(ctx, "tcp", rc.RemoteAddr(), err)
	}
	return c, nil
}

// notSentLowat bounds the bytes a link's TCP socket holds that the kernel
// has not sent yet. Without it the send buffer grows to net.ipv4.tcp_wmem's
// maximum (4 MiB here: 320 ms at 100 Mbit/s), and a high-priority frame
// written after bulk waits behind all of it; with it, behind at most this
// much plus what the congestion window has in flight, and one write chunk
// per bulk stream in yamux (muxWriteChunk).
const notSentLowat = 128 << 10

// tuneTCP sets a link socket's options: TCP_NODELAY, and TCP_NOTSENT_LOWAT
// where the system has it. A failure leaves the kernel's defaults, which
// work, only with less say for priorities.
func tuneTCP(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	_ = tc.SetNoDelay(true)
	setNotSentLowat(tc, notSentLowat)
}
