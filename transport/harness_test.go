package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLong bounds every wait for an event that should happen in a test.
const waitLong = 10 * time.Second

// transportCase describes one transport for the shared conformance body.
type transportCase struct {
	name       string
	listenAddr string
	mk         func(o Options) Transport
	// forward puts a forwarder in front of target and returns its address
	// and a function that makes it go silent.
	forward func(t *testing.T, target string) (addr string, silence func())
	// rawDial opens a raw byte stream to a listener (nil for QUIC).
	rawDial func(t *testing.T, addr string) net.Conn
	// blackhole returns an address that takes connections (or datagrams)
	// but never answers.
	blackhole func(t *testing.T) string
}

func transportCases() []transportCase {
	memNet := NewMemNetwork()
	return []transportCase{
		{
			name:       "quic",
			listenAddr: "127.0.0.1:0",
			mk:         NewQUIC,
			forward: func(t *testing.T, target string) (string, func()) {
				f := startUDPForwarder(t, target)
				return f.Addr(), func() { f.silenced.Store(true) }
			},
			blackhole: func(t *testing.T) string {
				udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { udp.Close() })
				return udp.LocalAddr().String()
			},
		},
		{
			// A Conn of 3 QUIC connections (Options.QUICConns) must behave as
			// one: the conformance tests run over it too.
			name:       "quic-stripes",
			listenAddr: "127.0.0.1:0",
			mk:         func(o Options) Transport { o.QUICConns = 3; return NewQUIC(o) },
			forward: func(t *testing.T, target string) (string, func()) {
				f := startUDPForwarder(t, target)
				return f.Addr(), func() { f.silenced.Store(true) }
			},
			blackhole: func(t *testing.T) string {
				udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { udp.Close() })
				return udp.LocalAddr().String()
			},
		},
		{
			name:       "tcp",
			listenAddr: "127.0.0.1:0",
			mk:         NewTCP,
			forward: func(t *testing.T, target string) (string, func()) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				f := startStreamForwarder(t, ln, func() (net.Conn, error) { return net.Dial("tcp", target) })
				return f.Addr(), func() { f.silenced.Store(true) }
			},
			rawDial: func(t *testing.T, addr string) net.Conn {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
			blackhole: func(t *testing.T) string {
				// The kernel completes connects into the backlog.
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				return ln.Addr().String()
			},
		},
		{
			name:       "mem",
			listenAddr: "",
			mk:         memNet.Transport,
			forward: func(t *testing.T, target string) (string, func()) {
				ln, err := memNet.listenRaw("")
				if err != nil {
					t.Fatal(err)
				}
				f := startStreamForwarder(t, ln, func() (net.Conn, error) {
					return memNet.dialRaw(context.Background(), target)
				})
				return f.Addr(), func() { f.silenced.Store(true) }
			},
			rawDial: func(t *testing.T, addr string) net.Conn {
				c, err := memNet.dialRaw(context.Background(), addr)
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
			blackhole: func(t *testing.T) string {
				ln, err := memNet.listenRaw("")
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan struct{})
				go func() { // accept and hold, never read
					defer close(done)
					var held []net.Conn
					for {
						c, err := ln.Accept()
						if err != nil {
							for _, c := range held {
								c.Close()
							}
							return
						}
						held = append(held, c)
					}
				}()
				t.Cleanup(func() { ln.Close(); <-done })
				return ln.Addr().String()
			},
		},
	}
}

// hsRecorder collects OnHandshakeError calls.
type hsRecorder struct{ ch chan error }

func newHSRecorder() *hsRecorder { return &hsRecorder{ch: make(chan error, 64)} }

func (r *hsRecorder) record(_ net.Addr, err error) {
	select {
	case r.ch <- err:
	default:
	}
}

// next waits for the next reported handshake failure.
func (r *hsRecorder) next(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.ch:
		if !errors.Is(err, ErrHandshake) {
			t.Errorf("handshake error %v does not match ErrHandshake", err)
		}
		return err
	case <-time.After(waitLong):
		t.Fatal("OnHandshakeError was not called")
		return nil
	}
}

// env is the per-subtest fixture: identities and helpers.
type env struct {
	t   *testing.T
	tc  transportCase
	srv identity
	cli identity
	hs  *hsRecorder
}

func newEnv(t *testing.T, tc transportCase) *env {
	return &env{t: t, tc: tc, srv: newIdentity(t, "server"), cli: newIdentity(t, "client"), hs: newHSRecorder()}
}

// opts are Options suitable for most tests.
func (e *env) opts() Options {
	return Options{
		HandshakeTimeout: 5 * time.Second,
		KeepAlivePeriod:  500 * time.Millisecond,
		IdleTimeout:      10 * time.Second,
		OnHandshakeError: e.hs.record,
	}
}

func (e *env) serverTLS() *tls.Config { return serverTLS(e.srv, e.cli.pin) }
func (e *env) clientTLS() *tls.Config { return clientTLS(e.cli, e.srv.pin) }

func (e *env) listen(tr Transport) Listener {
	e.t.Helper()
	ln, err := tr.Listen(e.tc.listenAddr, e.serverTLS())
	if err != nil {
		e.t.Fatalf("listen: %v", err)
	}
	e.t.Cleanup(func() { ln.Close() })
	return ln
}

func (e *env) dial(tr Transport, addr string, conf *tls.Config) (Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := tr.Dial(ctx, addr, conf)
	if err == nil {
		e.t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func (e *env) accept(ln Listener) Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := ln.Accept(ctx)
	if err != nil {
		e.t.Fatalf("accept: %v", err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// connect dials addr (ln's own address if empty) and accepts on ln.
func (e *env) connect(tr Transport, ln Listener, addr string) (client, server Conn) {
	e.t.Helper()
	if addr == "" {
		addr = ln.Addr().String()
	}
	client, err := e.dial(tr, addr, e.clientTLS())
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	return client, e.accept(ln)
}

// pair sets up a transport, a listener and one connection.
func (e *env) pair(o Options) (client, server Conn) {
	tr := e.tc.mk(o)
	ln := e.listen(tr)
	return e.connect(tr, ln, "")
}

func waitDone(t *testing.T, c Conn, what string) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(waitLong):
		t.Fatalf("%s: Done not closed", what)
	}
	if c.Err() == nil {
		t.Fatalf("%s: Err is nil after Done", what)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
