package transport

import (
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wandist/wandist/internal/hostile"
)

func TestGateBounds(t *testing.T) {
	trustedIP := net.IPv4(10, 0, 0, 9)
	o := Options{
		MaxHandshakes: 4, ReservedHandshakes: 2, MaxHandshakesPerSource: 2,
		Admit: func(remote net.Addr, _ bool) (bool, error) {
			return remote.(*net.TCPAddr).IP.Equal(trustedIP), nil
		},
	}.withDefaults()
	g := newGate(o)
	from := func(last byte) net.Addr { return &net.TCPAddr{IP: net.IPv4(10, 0, 0, last), Port: 1} }
	enter := func(last byte, want error) func() {
		t.Helper()
		release, err := g.enter(from(last), true)
		if !errors.Is(err, want) {
			t.Fatalf("handshake from 10.0.0.%d with %d in progress: %v, want %v", last, g.inProgress(), err, want)
		}
		return release
	}
	r1 := enter(1, nil)
	enter(1, nil)
	enter(1, ErrTooManyFromSource)
	enter(2, nil)
	enter(3, nil)
	enter(4, ErrTooManyHandshakes)
	// The reserve is for trusted sources, up to their own per-source cap.
	rt := enter(9, nil)
	rt2 := enter(9, nil)
	enter(9, ErrTooManyHandshakes)
	r1()
	r1() // idempotent
	if n := g.inProgress(); n != 5 {
		t.Fatalf("in progress = %d after one release, want 5", n)
	}
	enter(1, ErrTooManyHandshakes) // the trusted ones count in the total
	rt()
	rt2()
	enter(1, nil)
	// Admit's refusal comes first and takes no slot.
	refuse := errors.New("refused")
	o.Admit = func(net.Addr, bool) (bool, error) { return false, refuse }
	g = newGate(o)
	enter(1, refuse)
	if g.inProgress() != 0 || len(g.bySource) != 0 {
		t.Fatalf("a refusal took a slot: %d in progress, %v", g.inProgress(), g.bySource)
	}
}

// TestTCPSlowlorisFromOneAddress holds idle connections, which never send
// a ClientHello, from one address: past MaxHandshakesPerSource they are
// closed at once, so a real client from another address still gets a
// handshake slot. Without the per-source cap the idle connections take
// every slot for HelloTimeout.
func TestTCPSlowlorisFromOneAddress(t *testing.T) {
	e := newEnv(t, transportCases()[1])
	o := e.opts()
	o.MaxHandshakes, o.MaxHandshakesPerSource = 8, 2
	o.HelloTimeout = o.HandshakeTimeout // long: only the cap protects
	tr := NewTCP(o)
	ln := e.listen(tr)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	for range 2 * o.MaxHandshakes {
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	for range 2*o.MaxHandshakes - o.MaxHandshakesPerSource {
		if err := e.hs.next(t); !errors.Is(err, ErrTooManyFromSource) {
			t.Fatalf("idle connection refused with %v, want ErrTooManyFromSource", err)
		}
	}
	client, server := e.connect(tr, ln, "")
	roundTrip(t, client, server, "a client beside the slowloris")
}

// TestQUICInitialFlood sends QUIC Initial packets with random connection
// IDs, each with the start of a ClientHello that never ends; they need no
// private key to make. Past
// RetryAbove handshakes in progress the listener answers with stateless
// Retries instead of creating connections, so its goroutines stay bounded;
// a real client still connects (through a Retry). Without the defence each
// packet makes a connection with two goroutines for the handshake timeout.
func TestQUICInitialFlood(t *testing.T) {
	e := newEnv(t, transportCases()[0])
	o := e.opts()
	var retries atomic.Int64
	o.OnRetry = func(net.Addr) { retries.Add(1) }
	tr := NewQUIC(o)
	ln := e.listen(tr)
	before := runtime.NumGoroutine()
	// From 32 addresses, so that the per-source cap is not what stops it.
	var srcs []*net.UDPConn
	for i := range 32 {
		src, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 1, byte(2+i))})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		srcs = append(srcs, src)
	}
	dst := ln.Addr().(*net.UDPAddr)
	const packets = 2000
	peak := 0
	for i := range packets {
		if _, err := srcs[i%len(srcs)].WriteToUDP(hostile.QUICInitial(), dst); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			peak = max(peak, runtime.NumGoroutine())
			time.Sleep(time.Millisecond) // pace the flood: quic-go drops what it cannot queue
		}
	}
	// Connections are made as quic-go works through its queue: watch a
	// little longer than it takes.
	for range 50 {
		peak = max(peak, runtime.NumGoroutine())
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("goroutines %d before, peak %d; %d Retries", before, peak, retries.Load())
	// Each connection quic-go makes runs 2 goroutines; the bound lets the
	// RetryAbove connections through, and quic-go's own helpers.
	if grown := peak - before; grown > 4*o.withDefaults().RetryAbove+50 {
		t.Errorf("goroutines grew by %d during a flood of %d Initials (%d Retries)", grown, packets, retries.Load())
	}
	if retries.Load() == 0 {
		t.Error("no Retry asked for during the flood")
	}
	client, server := e.connect(tr, ln, "")
	roundTrip(t, client, server, "a client after the flood")
}
