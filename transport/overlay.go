package transport

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// A Conn over a byte stream that something else carries: a relayed link
// runs TLS 1.3 and yamux, exactly as the TCP transport does, over a stream
// that another node splices to the far end. ClientOver and ServerOver are
// the two sides; StreamConn makes a Stream of another Conn the byte stream.

// RelayName is the transport name of a Conn made by ClientOver or
// ServerOver.
const RelayName = "relay"

// OverlayStreamWindow is the largest receive window of a stream of a Conn
// made by ClientOver or ServerOver (yamux's): what a sender may have in
// flight on one of its streams.
const OverlayStreamWindow = muxMaxStreamWindow

// RelayAddr names the far end of a relayed connection and the node that
// relays it (both "cluster/node").
type RelayAddr struct{ Via, End string }

// Network returns "relay".
func (a RelayAddr) Network() string { return RelayName }

// String is "relay:VIA>END".
func (a RelayAddr) String() string { return RelayName + ":" + a.Via + ">" + a.End }

// ClientOver runs the dialer's side of a connection over rc: TLS 1.3 with
// tlsConf (as Dial), waiting for the acceptor's confirmation, yamux
// client. ctx bounds it. It closes rc on failure; the Conn closes it.
func ClientOver(ctx context.Context, rc net.Conn, tlsConf *tls.Config, o Options) (Conn, error) {
	conf, err := prepareClientTLS(tlsConf, rc.RemoteAddr().String())
	if err != nil {
		rc.Close()
		return nil, err
	}
	c, err := clientHandshake(ctx, RelayName, rc, conf, o.withDefaults())
	if err != nil {
		return nil, dialError(ctx, RelayName, rc.RemoteAddr(), err)
	}
	return c, nil
}

// ServerOver runs the acceptor's side of a connection over rc: the
// ClientHello within Options.HelloTimeout, TLS 1.3 with tlsConf (as a
// listener: the client is verified by tlsConf), the confirmation, yamux
// server. ctx bounds it. It closes rc on failure. The error of a failed
// handshake matches ErrHandshake. Options.Admit is not asked: the caller
// admitted rc.
func ServerOver(ctx context.Context, rc net.Conn, tlsConf *tls.Config, o Options) (Conn, error) {
	conf, err := prepareTLS(tlsConf)
	if err != nil {
		rc.Close()
		return nil, err
	}
	q := newAcceptQueue() // one slot is used, and given back at once
	c, err := serverHandshake(ctx, RelayName, rc, conf, o.withDefaults(), q)
	if err != nil {
		return nil, err
	}
	q.unreserve()
	return c, nil
}

// StreamConn makes s a net.Conn with the given addresses, for ClientOver
// and ServerOver. Closing it closes s.
func StreamConn(s Stream, local, remote net.Addr) net.Conn {
	return &streamConn{Stream: s, local: local, remote: remote}
}

type streamConn struct {
	Stream
	local, remote net.Addr
}

// halfDeadlines is implemented by the Streams of this package.
type halfDeadlines interface {
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

func (c *streamConn) LocalAddr() net.Addr  { return c.local }
func (c *streamConn) RemoteAddr() net.Addr { return c.remote }

func (c *streamConn) SetReadDeadline(t time.Time) error {
	if h, ok := c.Stream.(halfDeadlines); ok {
		return h.SetReadDeadline(t)
	}
	return c.Stream.SetDeadline(t)
}

func (c *streamConn) SetWriteDeadline(t time.Time) error {
	if h, ok := c.Stream.(halfDeadlines); ok {
		return h.SetWriteDeadline(t)
	}
	return c.Stream.SetDeadline(t)
}
