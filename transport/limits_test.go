package transport

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// testStreamLimit: a peer never has more than MaxIncomingStreams streams
// accepted and open; the stream beyond waits until one is closed, and the
// connection's traffic goes on. Over TCP and mem, a peer that ignores the
// limit (a yamux client with a larger backlog) has its extra streams reset
// and counted.
func testStreamLimit(t *testing.T, e *env) {
	if e.tc.name == "quic-stripes" {
		t.Skip("the limit holds per QUIC connection of the Conn (Options.QUICConns): TestQUICStripesStreamLimit")
	}
	const limit = 4
	o := e.opts()
	o.MaxIncomingStreams = limit
	var reported atomic.Uint64
	o.OnStreamRefused = func(net.Addr) { reported.Add(1) }
	tr := e.tc.mk(o)
	ln := e.listen(tr)
	client, server := e.connect(tr, ln, "")
	ctx := ctxTimeout(t, waitLong)

	var cs, ss []Stream
	for i := range limit {
		cs = append(cs, openWithByte(t, ctx, client, byte(i)))
		ss = append(ss, acceptByte(t, ctx, server, byte(i)))
	}
	// One more: QUIC's OpenStream waits for credit; yamux's stream waits
	// in the backlog. Either way the listener side does not get it.
	extra := make(chan error, 1)
	var extraStream Stream
	go func() {
		s, err := client.OpenStream(ctx)
		if err == nil {
			extraStream = s
			_, err = s.Write([]byte{limit})
		}
		extra <- err
	}()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	s, err := server.AcceptStream(short)
	cancel()
	if err == nil {
		s.Close()
		t.Fatalf("stream %d accepted with %d open and a limit of %d", limit+1, limit, limit)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AcceptStream beyond the limit: %v, want the context's deadline", err)
	}
	// Closing one stream on both sides makes room for the waiting one.
	cs[0].Close()
	ss[0].Close()
	last := acceptByte(t, ctx, server, limit)
	if err := <-extra; err != nil {
		t.Fatalf("the stream that waited for room: %v", err)
	}
	for _, s := range append(append(cs[1:], extraStream), append(ss[1:], last)...) {
		s.Close()
	}
	roundTrip(t, client, server, "after the limit")
	if n := server.(RefusedStreams).RefusedStreams(); n != 0 {
		t.Errorf("RefusedStreams = %d for a peer that kept to the limit", n)
	}

	if e.tc.rawDial != nil {
		hostileStreams(t, e, ln, limit, &reported)
		roundTrip(t, client, server, "next to a hostile peer")
	}
}

// hostileStreams connects a yamux client that does not wait for the
// listener's accept backlog and opens streams in bursts.
func hostileStreams(t *testing.T, e *env, ln Listener, limit int, reported *atomic.Uint64) {
	raw := e.tc.rawDial(t, ln.Addr().String())
	tc := tls.Client(raw, e.clientTLS())
	tc.SetDeadline(time.Now().Add(waitLong))
	var ack [1]byte
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(tc, ack[:]); err != nil || ack[0] != ackByte {
		t.Fatalf("confirmation: %v %x", err, ack)
	}
	tc.SetDeadline(time.Time{})
	cfg := yamux.DefaultConfig()
	cfg.AcceptBacklog = 1024 // opens without waiting for the listener's accepts
	cfg.LogOutput = io.Discard
	cfg.EnableKeepAlive = false
	sess, err := yamux.Client(tc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	hc := e.accept(ln)
	ctx := ctxTimeout(t, waitLong)
	refused := func() uint64 { return hc.(RefusedStreams).RefusedStreams() }
	waitRefused := func(want uint64) {
		t.Helper()
		for deadline := time.Now().Add(waitLong); refused() != want; {
			if time.Now().After(deadline) {
				t.Fatalf("RefusedStreams = %d, want %d", refused(), want)
			}
			time.Sleep(5 * time.Millisecond) // polling, not waiting for an event
		}
	}
	openN := func(n int) []*yamux.Stream {
		var out []*yamux.Stream
		for range n {
			s, err := sess.OpenStream() // sends the SYN at once
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	expectReset := func(ss []*yamux.Stream) {
		t.Helper()
		for _, s := range ss {
			s.SetReadDeadline(time.Now().Add(waitLong))
			if _, err := s.Read(make([]byte, 1)); !errors.Is(err, yamux.ErrConnectionReset) {
				t.Fatalf("stream %d beyond the limit: read %v, want a reset", s.StreamID(), err)
			}
		}
	}

	// Nobody accepts yet: `limit` streams wait in the backlog, the others
	// are reset.
	const burst = 20
	first := openN(burst)
	waitRefused(burst - uint64(limit))
	expectReset(first[limit:])
	// The waiting ones are accepted and carry data.
	var accepted []Stream
	for i, s := range first[:limit] {
		s.Write([]byte{byte(i)})
		accepted = append(accepted, acceptByte(t, ctx, hc, byte(i)))
	}
	// All slots are taken: the next `limit` wait, one more is reset, and
	// none is accepted.
	second := openN(limit + 1)
	waitRefused(burst - uint64(limit) + 1)
	expectReset(second[limit:])
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	s, err := hc.AcceptStream(short)
	cancel()
	if err == nil {
		s.Close()
		t.Fatalf("hostile peer got stream %d accepted with %d open", limit+1, limit)
	}
	// The accepted streams still work both ways.
	for i, s := range accepted {
		if _, err := s.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		first[i].SetReadDeadline(time.Now().Add(waitLong))
		var b [1]byte
		if _, err := io.ReadFull(first[i], b[:]); err != nil || b[0] != byte(i) {
			t.Fatalf("hostile stream %d: read %v %x", i, err, b)
		}
	}
	if got, want := reported.Load(), refused(); got != want {
		t.Errorf("OnStreamRefused called %d times, RefusedStreams = %d", got, want)
	}
	if hc.Err() != nil {
		t.Errorf("the hostile peer's connection died: %v", hc.Err())
	}
}

// openWithByte opens a stream on c and writes b, so that the peer sees it.
func openWithByte(t *testing.T, ctx context.Context, c Conn, b byte) Stream {
	t.Helper()
	s, err := c.OpenStream(ctx)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	if _, err := s.Write([]byte{b}); err != nil {
		t.Fatalf("write: %v", err)
	}
	return s
}

// acceptByte accepts a stream on c and checks that its first byte is want.
func acceptByte(t *testing.T, ctx context.Context, c Conn, want byte) Stream {
	t.Helper()
	s, err := c.AcceptStream(ctx)
	if err != nil {
		t.Fatalf("accept stream: %v", err)
	}
	s.SetDeadline(time.Now().Add(waitLong))
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err != nil || b[0] != want {
		t.Fatalf("accepted stream: read %v %x, want %x", err, b, want)
	}
	s.SetDeadline(time.Time{})
	return s
}

// TestRSTWatcher feeds yamux frames split at every possible point and
// checks that exactly the resets are reported, with their stream ids.
func TestRSTWatcher(t *testing.T) {
	frame := func(typ byte, flags uint16, id uint32, body []byte) []byte {
		h := make([]byte, yamuxHeaderSize)
		h[1] = typ
		binary.BigEndian.PutUint16(h[2:], flags)
		binary.BigEndian.PutUint32(h[4:], id)
		binary.BigEndian.PutUint32(h[8:], uint32(len(body)))
		if typ != yamuxTypeData {
			binary.BigEndian.PutUint32(h[8:], 1<<20) // a window delta, no body
			return h
		}
		return append(h, body...)
	}
	// A data body that looks like a reset header must not count.
	fake := frame(yamuxTypeWindowUpdate, yamuxFlagRST, 99, nil)
	var stream []byte
	stream = append(stream, frame(yamuxTypeData, 0x1, 3, fake)...)                 // SYN + data
	stream = append(stream, frame(yamuxTypeWindowUpdate, yamuxFlagRST, 5, nil)...) // reset 5
	stream = append(stream, frame(2, 0x1, 0, nil)...)                              // ping
	stream = append(stream, frame(yamuxTypeData, yamuxFlagRST|0x4, 7, []byte("bye"))...)
	for cut1 := 0; cut1 <= len(stream); cut1++ {
		for _, cut2 := range []int{cut1, (cut1 + len(stream)) / 2, len(stream)} {
			var got []uint32
			w := rstWatcher{onRST: func(id uint32) { got = append(got, id) }}
			w.observe(stream[:cut1])
			w.observe(stream[cut1:cut2])
			w.observe(stream[cut2:])
			if len(got) != 2 || got[0] != 5 || got[1] != 7 {
				t.Fatalf("cut at %d and %d: resets %v, want [5 7]", cut1, cut2, got)
			}
		}
	}
}
