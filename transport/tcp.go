package transport

import (
	"context"
	"crypto/tls"
	"net"
)

// tcpTransport is TCP + TLS 1.3 + yamux.
type tcpTransport struct{ o Options }

// NewTCP returns a Transport over TCP with TLS 1.3 and yamux multiplexing.
// Sockets use TCP_NODELAY and TCP keepalive probes every
// Options.KeepAlivePeriod. The dialer is the yamux client, the acceptor the
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
	return newTLSMuxListener("tcp", raw, conf, t.o, setNoDelay), nil
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
	setNoDelay(rc)
	c, err := clientHandshake(ctx, "tcp", rc, conf, t.o)
	if err != nil {
		return nil, dialError(ctx, "tcp", rc.RemoteAddr(), err)
	}
	return c, nil
}

func setNoDelay(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
}
