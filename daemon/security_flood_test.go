package daemon

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
)

// stopAdmissionClock freezes the clock of d's handshake rate limiter, so
// that no tokens come back during a test: a source gets exactly its burst.
func stopAdmissionClock(d *Daemon) {
	d.admit.mu.Lock()
	defer d.admit.mu.Unlock()
	t0 := time.Now()
	d.admit.now = func() time.Time { return t0 }
}

// floodSource is the source address of the flood: another loopback
// address than the peers', so that the test can show that the limit is per
// source.
var floodSource = net.IPv4(127, 0, 0, 2)

// TestHandshakeFloodPerSource floods the QUIC and the TCP link port with
// unauthenticated handshakes from one address. Exactly the burst is let
// through (and refused for presenting no certificate); the rest is refused
// by rate, before any cryptographic work, counted and logged. The link made
// before the flood goes on, and a new peer from another address links up
// during it.
func TestHandshakeFloodPerSource(t *testing.T) {
	for _, tr := range []string{"quic", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			// A burst other than the default: the limit is the configured one.
			east, _, logs, check := securedPair(t, tr, func(n *node) { n.cfg.Link.HandshakeBurst = 25 }, nil)
			stopAdmissionClock(east.d)
			handshakeBurst := float64(east.d.cfg.Link.HandshakeBurst)
			attempts := 3 * handshakeBurst
			addr := east.addr(tr)
			for range int(attempts) {
				if tr == "quic" {
					floodQUIC(t, addr)
				} else {
					floodTCP(t, addr)
				}
			}
			waitRejects(t, east.d, "rate_limited", attempts-handshakeBurst)
			waitRejects(t, east.d, string(auth.ReasonNoCertificate), handshakeBurst)
			r := logs.wait(t, "the flood", func(r logRecord) bool { return strings.HasPrefix(r.msg, "handshakes refused") })
			if host, _, _ := net.SplitHostPort(r.attrs["remote"].String()); host != floodSource.String() {
				t.Fatalf("rate limit logged for %q, want the flood's address %v", r.attrs["remote"], floodSource)
			}
			// A new peer, from 127.0.0.1, is not held back by the flood.
			north := newNode(t, tr, "north", "north-1")
			if err := addPeerForTest(east.d, peerOf(north, tr, "", "accept")); err != nil {
				t.Fatal(err)
			}
			north.cfg.Peers = []configs.Peer{peerOf(east, tr, addr, "connect")}
			north.start()
			waitLink(t, north.d, "east", "east-1")
			if n := rejects(east.d, "rate_limited"); n != attempts-handshakeBurst {
				t.Fatalf("rate_limited = %v after the new peer, want %v", n, attempts-handshakeBurst)
			}
			check()
		})
	}
}

// floodTLSConfig is an unauthenticated client: no certificate.
func floodTLSConfig() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: []string{ALPN}, ServerName: auth.ServerName}
}

// floodTCP makes one TLS handshake attempt from floodSource and waits for
// the daemon's verdict (a TLS 1.3 client finishes before the server has
// checked it).
func floodTCP(t *testing.T, addr string) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: floodSource}, Timeout: 5 * time.Second}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, floodTLSConfig())
	if err := c.Handshake(); err == nil {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("unauthenticated client was confirmed")
		}
	}
}

// floodQUIC makes one QUIC connection attempt from floodSource.
func floodQUIC(t *testing.T, addr string) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: floodSource})
	if err != nil {
		t.Fatal(err)
	}
	qt := &quic.Transport{Conn: udp}
	defer func() {
		qt.Close()
		udp.Close()
	}()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	qc, err := qt.Dial(ctx, raddr, floodTLSConfig(), &quic.Config{HandshakeIdleTimeout: 5 * time.Second})
	if err != nil {
		return
	}
	// A TLS 1.3 client may finish before the server refused it: wait for
	// the refusal (the server never confirms an unauthenticated client).
	defer qc.CloseWithError(0, "")
	if _, err := qc.AcceptUniStream(ctx); err == nil {
		t.Fatal("unauthenticated QUIC client was confirmed")
	}
}
