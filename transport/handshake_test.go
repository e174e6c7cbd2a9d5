package transport

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

func testPinRejected(t *testing.T, e *env) {
	tr := e.tc.mk(e.opts())
	ln := e.listen(tr)
	addr := ln.Addr().String()
	stranger := newIdentity(t, "stranger")

	// The listener does not know the client's key.
	_, err := e.dial(tr, addr, clientTLS(stranger, e.srv.pin))
	if err == nil {
		t.Fatal("dial with an unpinned client key succeeded")
	}
	if !errors.Is(err, ErrHandshake) {
		t.Errorf("dial error %v does not match ErrHandshake", err)
	}
	if hsErr := e.hs.next(t); !errors.Is(hsErr, errPinMismatch) {
		t.Errorf("listener reported %v, want the pin check's error", hsErr)
	}

	// The client does not know the listener's key.
	_, err = e.dial(tr, addr, clientTLS(e.cli, stranger.pin))
	if !errors.Is(err, errPinMismatch) || !errors.Is(err, ErrHandshake) {
		t.Errorf("dial error %v, want the pin check's error and ErrHandshake", err)
	}
	e.hs.next(t)

	// The listener still serves good clients.
	client, server := e.connect(tr, ln, "")
	roundTrip(t, client, server, "after the rejects")
}

func testGarbageClients(t *testing.T, e *env) {
	tr := e.tc.mk(e.opts())
	ln := e.listen(tr)
	addr := ln.Addr().String()
	client, server := e.connect(tr, ln, "") // must survive all of the below

	if e.tc.rawDial == nil { // QUIC: datagrams that are not QUIC
		udp, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		junk := make([]byte, 1200)
		for range 20 {
			rand.Read(junk)
			udp.Write(junk)
			udp.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		}
	} else {
		for _, junk := range [][]byte{
			[]byte("GET / HTTP/1.1\r\nHost: wandist\r\n\r\n"),
			randomBytes(4096),
		} {
			c := e.tc.rawDial(t, addr)
			c.Write(junk)
			e.hs.next(t)
			expectClosed(t, c)
		}
		// A TLS 1.2-only client.
		c := e.tc.rawDial(t, addr)
		conf := e.clientTLS()
		conf.MinVersion, conf.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		tc := tls.Client(c, conf)
		tc.SetDeadline(time.Now().Add(waitLong))
		if err := tc.Handshake(); err == nil {
			t.Error("TLS 1.2 handshake succeeded")
		}
		tc.Close()
		e.hs.next(t)
	}

	roundTrip(t, client, server, "existing connection unharmed")
	client2, server2 := e.connect(tr, ln, "")
	roundTrip(t, client2, server2, "new connection fine")
}

// expectClosed checks that the listener hung up on a raw connection.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(waitLong))
	if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("raw connection not closed by the listener: %v", err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func testSlowClient(t *testing.T, e *env) {
	o := e.opts()
	o.HandshakeTimeout = 400 * time.Millisecond
	o.HelloTimeout = 200 * time.Millisecond
	tr := e.tc.mk(o)
	ln := e.listen(tr)
	addr := ln.Addr().String()

	start := time.Now()
	if e.tc.rawDial != nil {
		c := e.tc.rawDial(t, addr) // and never sends a ClientHello
		if err := e.hs.next(t); !errors.Is(err, ErrHelloTimeout) {
			t.Errorf("silent client reported as %v, want ErrHelloTimeout", err)
		}
		expectClosed(t, c)
		// A ClientHello that arrives a byte at a time is cut off as well.
		c = e.tc.rawDial(t, addr)
		c.Write([]byte{recordHandshake, 3, 1})
		if err := e.hs.next(t); !errors.Is(err, ErrHelloTimeout) {
			t.Errorf("slow ClientHello reported as %v, want ErrHelloTimeout", err)
		}
		expectClosed(t, c)
		// Past the ClientHello, the handshake timeout rules.
		c = e.tc.rawDial(t, addr)
		c.Write(clientHello(t, e.clientTLS()))
		if err := e.hs.next(t); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("stalled handshake reported as %v, want a deadline error", err)
		}
		expectClosed(t, c)
	} else {
		// The listener's answers never reach the client, so its handshake
		// cannot progress.
		f := startUDPForwarder(t, addr)
		f.dropToClient.Store(true)
		_, err := e.dial(tr, f.Addr(), e.clientTLS())
		if err == nil {
			t.Fatal("dial without answers succeeded")
		}
		e.hs.next(t)
	}
	if d := time.Since(start); d < o.HelloTimeout/2 {
		t.Errorf("slow client dropped after %v, before the handshake timeout", d)
	}
	client, server := e.connect(tr, ln, "")
	roundTrip(t, client, server, "after the slow client")
}

func testListenerClose(t *testing.T, e *env) {
	tr := e.tc.mk(e.opts())
	ln, err := tr.Listen(e.tc.listenAddr, e.serverTLS())
	if err != nil {
		t.Fatal(err)
	}
	client, server := e.connect(tr, ln, "")

	acceptErr := make(chan error, 1)
	go func() {
		_, err := ln.Accept(context.Background())
		acceptErr <- err
	}()
	if err := ln.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ln.Close() // idempotent
	select {
	case err := <-acceptErr:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("pending Accept: %v, want ErrClosed", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Close did not release a pending Accept")
	}
	if _, err := ln.Accept(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Accept after Close: %v, want ErrClosed", err)
	}
	// Accepted connections outlive their listener.
	roundTrip(t, client, server, "listener gone, link alive")
}

func testDialClosedPort(t *testing.T, e *env) {
	tr := e.tc.mk(e.opts())
	ln, err := tr.Listen(e.tc.listenAddr, e.serverTLS())
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	start := time.Now()
	_, err = e.dial(tr, addr, e.clientTLS())
	if err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("dial to a closed port took %v", d)
	}
	if !strings.HasPrefix(e.tc.name, "quic") && !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial error %v does not match ECONNREFUSED", err)
	}
	if _, ok := errors.AsType[*net.OpError](err); !ok {
		t.Errorf("dial error %T is not a *net.OpError", err)
	}
	t.Logf("dial error after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

// testDialTimeout dials a peer that accepts but never answers.
func testDialTimeout(t *testing.T, e *env) {
	addr := e.tc.blackhole(t)
	tr := e.tc.mk(e.opts())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := tr.Dial(ctx, addr, e.clientTLS())
	if err == nil {
		t.Fatal("dial succeeded")
	}
	if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
		t.Errorf("dial error %v is not a net.Error with Timeout()", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial error %v does not match context.DeadlineExceeded", err)
	}
}

func testBadConfig(t *testing.T, e *env) {
	tr := e.tc.mk(e.opts())
	noALPN := e.serverTLS()
	noALPN.NextProtos = nil
	if _, err := tr.Listen(e.tc.listenAddr, noALPN); !errors.Is(err, ErrNoALPN) {
		t.Errorf("Listen without ALPN: %v, want ErrNoALPN", err)
	}
	if _, err := tr.Dial(context.Background(), "127.0.0.1:1", nil); err == nil {
		t.Error("Dial with a nil tls.Config succeeded")
	}
}

func testAcceptQueueFull(t *testing.T, e *env) {
	tr := e.tc.mk(e.opts())
	ln := e.listen(tr)
	addr := ln.Addr().String()
	for i := range acceptQueueLen { // nobody accepts: these fill the queue
		if _, err := e.dial(tr, addr, e.clientTLS()); err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
	}
	_, err := e.dial(tr, addr, e.clientTLS())
	if !errors.Is(err, ErrAcceptQueueFull) {
		t.Fatalf("dial beyond the accept queue: %v, want ErrAcceptQueueFull", err)
	}
	if n := ln.(DroppedConns).DroppedConns(); n != 1 {
		t.Errorf("DroppedConns = %d, want 1", n)
	}
	// The queued connections are intact, and accepting makes room again.
	for range acceptQueueLen {
		if c := e.accept(ln); c.Err() != nil {
			t.Fatalf("queued connection died: %v", c.Err())
		}
	}
	client, server := e.connect(tr, ln, "")
	roundTrip(t, client, server, "room again")
}

func testListenAddrInUse(t *testing.T, e *env) {
	tr := e.tc.mk(e.opts())
	ln := e.listen(tr)
	_, err := tr.Listen(ln.Addr().String(), e.serverTLS())
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Listen on a taken address: %v, want EADDRINUSE", err)
	}
}

// clientHello is the first TLS record a client with conf sends: its
// ClientHello.
func clientHello(t *testing.T, conf *tls.Config) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go tls.Client(a, conf).Handshake() // fails once the pipe is closed
	rec := make([]byte, recordHeaderLen)
	if _, err := io.ReadFull(b, rec); err != nil {
		t.Fatal(err)
	}
	rec = append(rec, make([]byte, int(rec[3])<<8|int(rec[4]))...)
	if _, err := io.ReadFull(b, rec[recordHeaderLen:]); err != nil {
		t.Fatal(err)
	}
	return rec
}
