// Package transport abstracts the connection of a wandist link so that the
// daemon runs the same code over every transport.
//
// A Transport dials and listens; both sides end up with a Conn: an
// authenticated (mutual TLS 1.3), multiplexed connection to one peer that
// carries any number of bidirectional Streams. Three transports exist:
//
//   - NewQUIC: QUIC (quic-go) over UDP.
//   - NewTCP: TCP + TLS 1.3 + yamux, with TCP_NODELAY and TCP keepalive.
//   - NewMem: in-memory (buffered pipe + TLS 1.3 + yamux), for tests.
//
// ClientOver and ServerOver (overlay.go) make a Conn, named "relay", of TLS
// 1.3 and yamux over any byte stream, such as a Stream of another Conn
// (StreamConn) that a third node splices to the far end.
//
// TLS configurations are always supplied by the caller (certificates, ALPN,
// TLS 1.3 only, peer pinning callbacks); this package never builds an identity
// of its own. It only enforces TLS 1.3 as a floor and insists on ALPN
// (NextProtos must be set, and a protocol must be negotiated).
//
// # Connection establishment
//
// Dial returns only after the listener side has completed its handshake,
// verified the client (for example its pin check) and reserved a place for
// the connection in its accept queue: the acceptor then sends a one-byte
// confirmation (TCP, mem) or opens a one-byte unidirectional stream (QUIC)
// that Dial waits for. A client rejected by the listener therefore sees Dial
// fail instead of getting a connection that dies right away.
//
// Listeners admit a connection before keeping any state for it
// (Options.Admit, then a bounded number of handshakes in progress, in all
// and per source address; see gate), complete handshakes in the
// background, bounded by Options.HelloTimeout for the ClientHello (TCP,
// mem) and Options.HandshakeTimeout for all of it, and hand ready
// connections to Accept through a bounded queue of 32
// connections. Policy when that queue is full (the application does not call
// Accept fast enough): new connections are refused rather than queued or
// waited for; the dialer's Dial fails with an error matching
// ErrAcceptQueueFull, and the listener counts the refusal (see DroppedConns)
// and logs it. Failed inbound handshakes are reported to
// Options.OnHandshakeError and never disturb other connections. For QUIC,
// datagrams that are not QUIC at all are dropped silently by quic-go and are
// not reported. A QUIC listener with many handshakes in progress asks new
// clients to prove their source address with a Retry first (Options.RetryAbove).
//
// # Streams
//
// Streams are opened by either side. With QUIC a freshly opened stream is only
// known locally until its first byte is written, and with yamux the peer may see
// it before any data: callers must write a first frame right after OpenStream
// and must not rely on the peer's AcceptStream returning before that.
// Stream.Close closes both directions: pending writes are flushed and followed
// by end-of-stream, local reads stop (returning ErrClosed), and the peer's
// further writes fail (QUIC) or are discarded (yamux).
//
// A peer has at most Options.MaxIncomingStreams streams accepted and open
// at a time; a stream it opens beyond waits (QUIC: its OpenStream blocks;
// yamux: the stream is not accepted yet) and, over yamux, streams beyond
// the accept backlog as well are reset and counted (RefusedStreams,
// Options.OnStreamRefused). Close the streams AcceptStream returns: each
// holds its slot until then.
//
// When the Conn dies, pending and further stream operations fail with an error
// matching the Conn's Err (ErrClosed, ErrPeerClosed, ErrIdleTimeout, ...), never
// with a bare io.EOF. Data written just before either side closes the whole
// Conn is not guaranteed to be delivered: close streams and let the peer
// acknowledge at the application level first.
package transport

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"time"
)

// Stream is one bidirectional, ordered byte stream of a Conn.
type Stream interface {
	io.Reader
	io.Writer
	// Close closes both directions. It is idempotent.
	Close() error
	// SetDeadline sets the read and write deadlines; an expired deadline makes
	// Read and Write fail with an error matching os.ErrDeadlineExceeded.
	SetDeadline(t time.Time) error
}

// Conn is an authenticated, multiplexed connection to one peer.
type Conn interface {
	// OpenStream opens a new stream. See the package doc about writing a
	// first frame immediately.
	OpenStream(ctx context.Context) (Stream, error)
	// AcceptStream waits for the next stream opened by the peer.
	AcceptStream(ctx context.Context) (Stream, error)
	// ConnectionState describes the completed TLS handshake, including the
	// peer's certificates.
	ConnectionState() tls.ConnectionState
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
	// Transport names the transport: "quic", "tcp", "mem" or "relay".
	Transport() string
	// Done is closed once the connection is dead (peer closed, idle timeout,
	// local Close).
	Done() <-chan struct{}
	// Err tells why the connection died; nil while it is alive.
	Err() error
	// BytesReceived counts the bytes received from the peer so far, as the
	// transport reads them off the network (its own framing and probes
	// included), whether or not any stream's Read has taken them: a count
	// that moves shows the peer alive while a stream is left unread and
	// holds the bytes in front of the next frame of another (TCP's one
	// ordered byte stream). Safe for concurrent use.
	BytesReceived() uint64
	// Close closes the connection and all its streams. It is idempotent and
	// waits for the goroutines the connection started.
	Close() error
}

// Listener accepts authenticated connections.
type Listener interface {
	// Accept returns the next connection whose handshake completed.
	Accept(ctx context.Context) (Conn, error)
	Addr() net.Addr
	// Close stops listening. It is idempotent and waits for the listener's
	// goroutines; pending and later Accept calls return ErrClosed.
	// Connections already returned by Accept stay open.
	Close() error
}

// Transport creates connections of one kind.
type Transport interface {
	Name() string
	Listen(addr string, tlsConf *tls.Config) (Listener, error)
	// Dial connects to addr. It includes the TLS handshake and the listener's
	// confirmation; ctx bounds all of it. A dial that runs out of time fails
	// with a net.Error whose Timeout() is true and that matches
	// context.DeadlineExceeded.
	Dial(ctx context.Context, addr string, tlsConf *tls.Config) (Conn, error)
}

// DroppedConns is implemented by the listeners of this package. It counts the
// connections that completed their handshake but were refused because the
// accept queue was full.
type DroppedConns interface {
	DroppedConns() uint64
}

// Options tune a Transport. Zero fields take their defaults.
type Options struct {
	// HandshakeTimeout bounds an inbound handshake: a client that does not
	// finish TLS within it is dropped (default 5s).
	HandshakeTimeout time.Duration
	// KeepAlivePeriod is how often an idle connection is probed: QUIC
	// keepalive, yamux ping, TCP keepalive (default 1s).
	KeepAlivePeriod time.Duration
	// IdleTimeout is how long a connection may go without hearing from the
	// peer before it is declared dead: QUIC MaxIdleTimeout; for yamux both the
	// receive silence limit and ConnectionWriteTimeout (default 5s).
	IdleTimeout time.Duration
	// MaxIncomingStreams limits the streams the peer may have open towards
	// us (default 16). A stream counts until both sides closed it (QUIC) or
	// until it is closed locally (TCP, mem).
	//
	// QUIC: the peer cannot open more; its OpenStream waits (a peer that
	// ignores the limit is closed by quic-go with STREAM_LIMIT_ERROR).
	// TCP, mem (yamux): AcceptStream hands out at most this many open
	// streams; up to as many more wait in yamux's accept backlog, not
	// accepted, and streams beyond those are reset, counted (see
	// RefusedStreams) and reported to OnStreamRefused.
	MaxIncomingStreams int
	// QUICConns is how many QUIC connections carry one Conn (default 1,
	// at most MaxQUICConns): the dialer opens the others after the first,
	// and each stream is striped over all of them, so that one stream may
	// use all their congestion windows (see quic_stripe.go). A listener
	// takes up to as many from one dialer; a dialer or listener with 1
	// speaks the protocol of a single connection. A striped stream takes
	// a stream of each connection (MaxIncomingStreams holds per
	// connection); its member streams refused by the acceptor are counted
	// by the Conn's RefusedStreams and reported to OnStreamRefused.
	QUICConns int
	// Logger receives debug output (default: discard).
	Logger *slog.Logger
	// OnHandshakeError, if set, is called for every failed inbound handshake
	// (for counting or logging). The error matches ErrHandshake. It is called
	// from listener goroutines and must not block.
	OnHandshakeError func(remote net.Addr, err error)
	// Admit, if set, is asked about every inbound connection before the
	// listener keeps any state for it: TCP and mem at accept, before the
	// TLS handshake; QUIC before quic-go creates the connection, after the
	// source address was validated when RetryAbove asks for it. An error
	// refuses the connection (it is reported to OnHandshakeError); trusted
	// lets the source use the ReservedHandshakes slots. proven is false
	// for a QUIC source address no Retry validated (it may be spoofed). It
	// must not block.
	Admit func(remote net.Addr, proven bool) (trusted bool, err error)
	// ValidateSource, if set, tells whether a new QUIC client from remote
	// must prove its address with a Retry before Admit is asked, whatever
	// the load (see RetryAbove). It must not block.
	ValidateSource func(remote net.Addr) bool
	// MaxHandshakes bounds the inbound handshakes in progress per listener
	// (default 256); trusted sources may use ReservedHandshakes more
	// (default 32). MaxHandshakesPerSource bounds those from one IP address
	// (default 8). Connections beyond are refused at once.
	MaxHandshakes          int
	ReservedHandshakes     int
	MaxHandshakesPerSource int
	// HelloTimeout bounds the start of an inbound TCP or mem handshake: the
	// first byte of the ClientHello must arrive within half of it and the
	// whole ClientHello within it (default 2s, at most HandshakeTimeout).
	HelloTimeout time.Duration
	// RetryAbove: once this many inbound QUIC handshakes are in progress, a
	// new connection must first prove its source address with a Retry
	// (RFC 9000 8.1.2), which costs the listener no state (default 16).
	RetryAbove int
	// OnRetry, if set, is called for every Retry the QUIC listener asks for.
	// It must not block.
	OnRetry func(remote net.Addr)
	// OnInitialDropped, if set, is called for every Initial packet a QUIC
	// listener drops because its source sent more than 64 a second (burst
	// 128), before quic-go sees it (Linux). It must not block.
	OnInitialDropped func(remote net.Addr)
	// OnStreamRefused, if set, is called for every stream the peer opened
	// that was reset because of MaxIncomingStreams (TCP, mem). It is called
	// from connection goroutines and must not block.
	OnStreamRefused func(remote net.Addr)
}

const (
	defaultHandshakeTimeout   = 5 * time.Second
	defaultKeepAlivePeriod    = 1 * time.Second
	defaultIdleTimeout        = 5 * time.Second
	defaultMaxIncomingStreams = 16

	// acceptQueueLen is how many handshaken connections a listener holds for
	// Accept before it drops new ones.
	acceptQueueLen                = 32
	defaultMaxHandshakes          = 256
	defaultReservedHandshakes     = 32
	defaultMaxHandshakesPerSource = 8
	defaultHelloTimeout           = 2 * time.Second
	defaultRetryAbove             = 16
)

func (o Options) withDefaults() Options {
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = defaultHandshakeTimeout
	}
	if o.KeepAlivePeriod <= 0 {
		o.KeepAlivePeriod = defaultKeepAlivePeriod
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = defaultIdleTimeout
	}
	if o.MaxIncomingStreams <= 0 {
		o.MaxIncomingStreams = defaultMaxIncomingStreams
	}
	o.QUICConns = min(max(o.QUICConns, 1), MaxQUICConns)
	if o.MaxHandshakes <= 0 {
		o.MaxHandshakes = defaultMaxHandshakes
	}
	if o.ReservedHandshakes <= 0 {
		o.ReservedHandshakes = defaultReservedHandshakes
	}
	if o.MaxHandshakesPerSource <= 0 {
		o.MaxHandshakesPerSource = defaultMaxHandshakesPerSource
	}
	if o.HelloTimeout <= 0 {
		o.HelloTimeout = defaultHelloTimeout
	}
	o.HelloTimeout = min(o.HelloTimeout, o.HandshakeTimeout)
	if o.RetryAbove <= 0 {
		o.RetryAbove = defaultRetryAbove
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// streamRefused reports a stream refused by MaxIncomingStreams.
func (o Options) streamRefused(remote net.Addr) {
	o.Logger.Debug("transport: stream beyond the limit refused", "remote", remote, "max_incoming_streams", o.MaxIncomingStreams)
	if o.OnStreamRefused != nil {
		o.OnStreamRefused(remote)
	}
}

// handshakeFailed reports a failed inbound handshake.
func (o Options) handshakeFailed(remote net.Addr, err error) {
	o.Logger.Debug("transport: inbound handshake failed", "remote", remote, "err", err)
	if o.OnHandshakeError != nil {
		o.OnHandshakeError(remote, err)
	}
}
