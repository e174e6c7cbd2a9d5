package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
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
// through to cryptography (and refused for presenting no certificate); over
// QUIC twice the burst, as attempts whose address a Retry proved take from
// their own bucket. The rest is refused by rate, before any cryptographic
// work, counted and logged. The link made before the flood goes on, and a
// new peer from another address links up during it.
func TestHandshakeFloodPerSource(t *testing.T) {
	for _, tr := range []string{"quic", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			// A burst other than the default: the limit is the configured one.
			east, _, logs, check := securedPair(t, tr, func(n *node) {
				n.cfg.Link.HandshakeBurst = 25
				n.cfg.Link.HandshakeRateTotal = 10000 // not what is tested here (TestHandshakeFloodManySources)
			}, nil)
			stopAdmissionClock(east.d)
			handshakeBurst := float64(east.d.cfg.Link.HandshakeBurst)
			through := handshakeBurst
			if tr == "quic" {
				through = 2 * handshakeBurst
			}
			attempts := 3 * handshakeBurst
			addr := east.addr(tr)
			for range int(attempts) {
				if tr == "quic" {
					floodQUIC(t, addr)
				} else {
					floodTCP(t, addr)
				}
			}
			// quic-go's client sends its Initial again after a refusal, and
			// each one is refused again: at least one refusal per attempt.
			waitRejectsAtLeast(t, east.d, "rate_limited", attempts-through)
			waitRejects(t, east.d, string(auth.ReasonNoCertificate), through)
			if tr == "quic" && testutil.ToFloat64(east.d.metrics.quicRetries) == 0 {
				t.Error("no Retry asked of a source over its rate")
			}
			r := logs.wait(t, "the flood", func(r logRecord) bool { return strings.HasPrefix(r.msg, "handshakes refused") })
			if host, _, _ := net.SplitHostPort(r.attrs["remote"].String()); host != floodSource.String() {
				t.Fatalf("rate limit logged for %q, want the flood's address %v", r.attrs["remote"], floodSource)
			}
			limited := rejects(east.d, "rate_limited")
			// A new peer, from 127.0.0.1, is not held back by the flood.
			north := newNode(t, tr, "north", "north-1")
			if err := addPeerForTest(east.d, peerOf(north, tr, "", "accept")); err != nil {
				t.Fatal(err)
			}
			north.cfg.Peers = []configs.Peer{peerOf(east, tr, addr, "connect")}
			north.start()
			waitLink(t, north.d, "east", "east-1")
			if n := rejects(east.d, "rate_limited"); n != limited {
				t.Fatalf("rate_limited = %v after the new peer, want %v", n, limited)
			}
			check()
		})
	}
}

// waitRejectsAtLeast waits until d counted at least want rejections for
// reason.
func waitRejectsAtLeast(t *testing.T, d *Daemon, reason string, want float64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); rejects(d, reason) < want; {
		if time.Now().After(deadline) {
			t.Fatalf("handshake rejections %q = %v, want at least %v", reason, rejects(d, reason), want)
		}
		time.Sleep(5 * time.Millisecond) // polling
	}
}

// TestHandshakeFloodManySources floods the link ports with unauthenticated
// handshakes from 50 addresses, each within its own rate: past
// link.handshake_rate_total they are refused before any cryptographic work
// (half of it for proven sources, half for QUIC sources a Retry did not
// prove yet). A peer that linked before, restarted
// during the flood, links again at once: its address is trusted and not
// held to the total.
func TestHandshakeFloodManySources(t *testing.T) {
	for _, tr := range []string{"quic", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			east, west, _, check := securedPair(t, tr, func(n *node) { n.cfg.Link.HandshakeRateTotal = 200 }, nil)
			stopAdmissionClock(east.d)
			// Half of the total for proven sources (TCP, QUIC after a
			// Retry), half for unproven ones, each in bursts of a tenth of
			// a second's worth (the clock is stopped: the bursts are all
			// that pass). West's first link, not yet trusted, took one,
			// which may have come back before the clock stopped.
			burst := float64(east.d.cfg.Link.HandshakeRateTotal / 2 / 10)
			through := burst
			if tr == "quic" {
				through += burst
			}
			const sources = 50
			addr := east.addr(tr)
			for i := range sources {
				src := net.IPv4(127, 0, 2, byte(10+i))
				if tr == "quic" {
					floodQUICFrom(t, src, addr)
				} else {
					floodTCPFrom(t, src, addr)
				}
			}
			waitRejectsAtLeast(t, east.d, "rate_limited_total", sources-through)
			waitRejectsAtLeast(t, east.d, string(auth.ReasonNoCertificate), through-1)
			if n := rejects(east.d, string(auth.ReasonNoCertificate)); n > through {
				t.Fatalf("%v handshakes reached cryptography, more than the %v link.handshake_rate_total lets through", n, through)
			}
			if n := rejects(east.d, "rate_limited"); n != 0 {
				t.Errorf("%v refused by the per-address rate, want 0: each source stayed within it", n)
			}
			// The total's bucket is empty (the clock is stopped): west
			// restarts and links again.
			west.d.Close()
			west.start()
			waitLink(t, west.d, "east", "east-1")
			waitLink(t, east.d, "west", "west-1")
			_ = check // it sends to west's member of before the restart
			mb := subscribe(t, west, "after", east)
			if err := connect(t, east).SendGroup(ctxT(t, 5*time.Second), "after", []byte("after")); err != nil {
				t.Fatal(err)
			}
			if m, err := mb.Receive(ctxT(t, 5*time.Second)); err != nil || string(m.Payload) != "after" {
				t.Fatalf("after the restart: %v %v", m, err)
			}
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
func floodTCP(t *testing.T, addr string) { floodTCPFrom(t, floodSource, addr) }

func floodTCPFrom(t *testing.T, src net.IP, addr string) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 5 * time.Second}
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
func floodQUIC(t *testing.T, addr string) { floodQUICFrom(t, floodSource, addr) }

func floodQUICFrom(t *testing.T, src net.IP, addr string) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: src})
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

// TestAdmissionTrustsConfiguredAddresses: the IPs written in peers'
// addresses, and addresses peers linked from, are not held to
// link.handshake_rate_total; every other source is.
func TestAdmissionTrustsConfiguredAddresses(t *testing.T) {
	t0 := time.Now()
	a := &admission{rate: 100, burst: 100, total: 2, now: func() time.Time { return t0 }}
	a.trustAddress("10.0.0.7:7102")
	a.trustAddress("peer.example:7102") // a name: not resolved, not trusted
	peer := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 40000}
	for i := range 10 {
		if trusted, err := a.admit(peer, true); err != nil || !trusted {
			t.Fatalf("configured peer's attempt %d: trusted=%v, %v", i, trusted, err)
		}
	}
	stranger := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 8), Port: 40000}
	if _, err := a.admit(stranger, true); err != nil {
		t.Fatalf("first stranger's attempt: %v", err)
	}
	if _, err := a.admit(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 9)}, true); !errors.Is(err, ErrRateLimitedTotal) {
		t.Fatalf("second stranger past the total: %v, want ErrRateLimitedTotal", err)
	}
	a.trust(stranger) // it linked as a pinned peer
	if trusted, err := a.admit(stranger, true); err != nil || !trusted {
		t.Fatalf("a source a peer linked from: trusted=%v, %v", trusted, err)
	}
}
