package impair

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpEcho serves one echo per connection, and closes its side after the
// client half-closed.
func tcpEcho(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln
}

func tcpPair(t *testing.T) (*TCPRelay, *net.TCPConn) {
	t.Helper()
	ln := tcpEcho(t)
	r, err := NewTCPRelay("127.0.0.1:0", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return r, c.(*net.TCPConn)
}

// numbered is n 4-byte big-endian counters.
func numbered(n int) []byte {
	b := make([]byte, 4*n)
	for i := range n {
		binary.BigEndian.PutUint32(b[4*i:], uint32(i))
	}
	return b
}

func TestTCPRelayKeepsOrderUnderJitterAndHalfCloses(t *testing.T) {
	r, c := tcpPair(t)
	if err := r.SetFaults(Both, Faults{Delay: 5 * time.Millisecond, Jitter: 5 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	want := numbered(20000)
	go func() {
		for i := 0; i < len(want); i += 1000 { // many small writes: many chunks
			c.Write(want[i : i+1000])
		}
		c.CloseWrite()
	}()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c) // ends only if the relay passed the FIN both ways
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echoed %d bytes differ from the %d sent (order or content)", len(got), len(want))
	}
	if s := r.Stats(Both); s.Delayed == 0 || s.Packets < 2 {
		t.Fatalf("stats %+v: want delayed chunks", s)
	}
}

func TestTCPRelayBlackholeHoldsThenReleases(t *testing.T) {
	r, c := tcpPair(t)
	r.SetBlackhole(true)
	c.Write([]byte("held"))
	waitFor(t, "the relay to hold a chunk", func() bool { return r.Stats(Forward).Blackholed == 1 })
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 8)); err == nil {
		t.Fatalf("%d bytes crossed the blackhole", n)
	}
	if r.Conns() != 1 {
		t.Fatalf("%d relayed connections during the blackhole, want 1 (no FIN, no RST)", r.Conns())
	}
	r.SetBlackhole(false)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
		t.Fatalf("after the heal read %q, %v; want the held bytes", buf, err)
	}
}

func TestTCPRelayCorruptsTheStream(t *testing.T) {
	r, c := tcpPair(t)
	if err := r.SetFaults(Forward, Faults{Corrupt: 1}); err != nil {
		t.Fatal(err)
	}
	want := []byte("0123456789")
	c.Write(want)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, want) {
		t.Fatal("the stream crossed Corrupt 1 intact")
	}
	if s := r.Stats(Forward); s.Corrupted == 0 {
		t.Fatalf("stats %+v: no corruption counted", s)
	}
}

func TestTCPRelayCloseEndsConnections(t *testing.T) {
	r, c := tcpPair(t)
	c.Write([]byte("x"))
	waitFor(t, "the relayed connection", func() bool { return r.Conns() == 1 })
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the client's connection stayed open after the relay closed")
	}
}
