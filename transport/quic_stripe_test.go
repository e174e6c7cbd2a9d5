package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// waitMembers polls until c has n connections.
func waitMembers(t *testing.T, c Conn, n int) *stripedConn {
	t.Helper()
	sc, ok := c.(*stripedConn)
	if !ok {
		t.Fatalf("conn is a %T, want a *stripedConn", c)
	}
	deadline := time.Now().Add(waitLong)
	for sc.memberCount() != n {
		if time.Now().After(deadline) {
			t.Fatalf("conn has %d QUIC connections, want %d", sc.memberCount(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return sc
}

// A stream opened on a Conn of 3 QUIC connections is striped over all
// three, on both sides, and carries its data; closing one side ends the
// other.
func TestQUICStripesSpreadStreams(t *testing.T) {
	e := newEnv(t, transportCases()[0])
	o := e.opts()
	o.QUICConns = 3
	client, server := e.pair(o)
	waitMembers(t, client, 3)
	waitMembers(t, server, 3)
	for _, side := range []struct {
		name     string
		from, to Conn
	}{{"dialer", client, server}, {"acceptor", server, client}} {
		for i := range 3 {
			s, err := side.from.OpenStream(ctxTimeout(t, waitLong))
			if err != nil {
				t.Fatalf("%s: open stream %d: %v", side.name, i, err)
			}
			msg := fmt.Sprintf("%s %d", side.name, i)
			if _, err := s.Write([]byte(msg)); err != nil {
				t.Fatalf("%s: write: %v", side.name, err)
			}
			r, err := side.to.AcceptStream(ctxTimeout(t, waitLong))
			if err != nil {
				t.Fatalf("%s: accept stream %d: %v", side.name, i, err)
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(r, got); err != nil || string(got) != msg {
				t.Fatalf("%s: read %q, %v; want %q", side.name, got, err, msg)
			}
			for _, st := range []Stream{s, r} {
				used := map[*quicConn]bool{}
				for _, m := range st.(*stripedStream).members {
					used[m.c] = true
				}
				if len(used) != 3 {
					t.Fatalf("%s: stream %d on %d QUIC connections, want 3", side.name, i, len(used))
				}
			}
			s.Close()
			r.Close()
		}
	}
	client.Close()
	waitDone(t, server, "acceptor after the dialer closed")
}

// A dialer or a listener of one connection meets one of several: the Conn
// works with the one connection.
func TestQUICStripesMixed(t *testing.T) {
	for _, c := range []struct{ dialer, listener int }{{3, 1}, {1, 3}} {
		t.Run(fmt.Sprintf("dialer %d listener %d", c.dialer, c.listener), func(t *testing.T) {
			e := newEnv(t, transportCases()[0])
			lo, do := e.opts(), e.opts()
			lo.QUICConns, do.QUICConns = c.listener, c.dialer
			ln := e.listen(NewQUIC(lo))
			client, err := e.dial(NewQUIC(do), ln.Addr().String(), e.clientTLS())
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			server := e.accept(ln)
			for _, conn := range []Conn{client, server} {
				if sc, ok := conn.(*stripedConn); ok && sc.memberCount() != 1 {
					t.Fatalf("%d QUIC connections, want 1", sc.memberCount())
				}
			}
			s, err := client.OpenStream(ctxTimeout(t, waitLong))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			r, err := server.AcceptStream(ctxTimeout(t, waitLong))
			if err != nil {
				t.Fatal(err)
			}
			var b [1]byte
			if _, err := io.ReadFull(r, b[:]); err != nil || b[0] != 'x' {
				t.Fatalf("read %q, %v", b[:], err)
			}
		})
	}
}

// A connection that asks to join with a token the listener never gave is
// closed and reported as a failed handshake.
func TestQUICStripeJoinUnknownToken(t *testing.T) {
	e := newEnv(t, transportCases()[0])
	o := e.opts()
	o.QUICConns = 3
	ln := e.listen(NewQUIC(o))
	conf := e.clientTLS()
	conf.NextProtos = []string{testALPN + stripeALPNSuffix}
	ctx := ctxTimeout(t, waitLong)
	qc, err := quic.DialAddr(ctx, ln.Addr().String(), conf, &quic.Config{})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer qc.CloseWithError(0, "")
	err = joinStripe(ctx, qc, make([]byte, stripeTokenLen))
	if !errors.Is(err, errJoinRefused) {
		t.Fatalf("join with an unknown token: %v, want errJoinRefused", err)
	}
	if err := e.hs.next(t); !errors.Is(err, errJoinRefused) || !errors.Is(err, ErrHandshake) {
		t.Fatalf("reported %v, want a handshake error matching errJoinRefused", err)
	}
	select {
	case <-qc.Context().Done():
	case <-time.After(waitLong):
		t.Fatal("the joining connection was not closed")
	}
	quicCtx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if c, err := ln.Accept(quicCtx); err == nil {
		t.Fatalf("the join was accepted as a connection: %v", c.RemoteAddr())
	}
}

// MaxIncomingStreams holds per QUIC connection: a striped stream takes a
// stream on each, so a Conn of 2 takes the limit from its peer, and no
// more.
func TestQUICStripesStreamLimit(t *testing.T) {
	const limit = 4
	e := newEnv(t, transportCases()[0])
	o := e.opts()
	o.QUICConns, o.MaxIncomingStreams = 2, limit
	client, server := e.pair(o)
	waitMembers(t, client, 2)
	waitMembers(t, server, 2)
	ctx := ctxTimeout(t, waitLong)
	for i := range limit {
		s, err := client.OpenStream(ctx)
		if err != nil {
			t.Fatalf("open stream %d: %v", i, err)
		}
		if _, err := s.Write([]byte{byte(i)}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if _, err := server.AcceptStream(ctx); err != nil {
			t.Fatalf("accept stream %d: %v", i, err)
		}
	}
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if s, err := client.OpenStream(short); err == nil {
		s.Write([]byte{0xff})
		t.Fatalf("stream %d opened with %d open and a limit of %d per connection", limit+1, limit, limit)
	}
}

// The acceptor of striped streams refuses and counts member streams with
// a bad header, groups beyond MaxIncomingStreams partly arrived, and
// groups not complete within 2x IdleTimeout; once the late groups are
// gone, good streams pass again.
func TestQUICStripesRefused(t *testing.T) {
	cases := []struct {
		name    string
		members []stripeHeader // member i goes on connection i mod 2
		refused uint64         // at once
		after   uint64         // once the late groups are refused too
	}{
		{"bad size", []stripeHeader{{id: 1, index: 0, size: MaxQUICConns + 1}}, 1, 1},
		{"index beyond size", []stripeHeader{{id: 1, index: 2, size: 2}}, 1, 1},
		{"member twice", []stripeHeader{{id: 1, index: 0, size: 2}, {}, {id: 1, index: 0, size: 2}}, 1, 2},
		{"late", []stripeHeader{{id: 1, index: 0, size: 2}}, 0, 1},
		{"table full", []stripeHeader{{id: 1, index: 0, size: 2}, {id: 2, index: 1, size: 2},
			{id: 3, index: 0, size: 2}}, 1, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, transportCases()[0])
			o := e.opts()
			o.QUICConns, o.MaxIncomingStreams, o.IdleTimeout = 2, 2, time.Second
			client, server := e.pair(o)
			sc := waitMembers(t, client, 2)
			waitMembers(t, server, 2)
			ctx := ctxTimeout(t, waitLong)
			var raw []Stream
			for i, h := range tc.members {
				if h.size == 0 {
					continue
				}
				s, err := sc.members[i%2].OpenStream(ctx)
				if err != nil {
					t.Fatalf("open member %d: %v", i, err)
				}
				raw = append(raw, s)
				if _, err := s.Write(h.encode()); err != nil {
					t.Fatalf("write header %d: %v", i, err)
				}
			}
			waitRefused(t, server, tc.refused)
			waitRefused(t, server, tc.after)
			for _, s := range raw { // their slots of MaxIncomingStreams
				s.Close()
			}
			s, err := client.OpenStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Write([]byte("ok")); err != nil {
				t.Fatal(err)
			}
			r, err := server.AcceptStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got := make([]byte, 2)
			if _, err := io.ReadFull(r, got); err != nil || string(got) != "ok" {
				t.Fatalf("after the refusals: read %q, %v", got, err)
			}
		})
	}
}

// waitRefused polls until c refused n member streams.
func waitRefused(t *testing.T, c Conn, n uint64) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for c.(*stripedConn).RefusedStreams() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d member streams refused, want %d", c.(*stripedConn).RefusedStreams(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A chunk that names a member beyond its stream's as the next one makes
// the reader fail with errBadStripe, and keep failing.
func TestQUICStripesBadNextMember(t *testing.T) {
	e := newEnv(t, transportCases()[0])
	o := e.opts()
	o.QUICConns = 2
	client, server := e.pair(o)
	sc := waitMembers(t, client, 2)
	waitMembers(t, server, 2)
	ctx := ctxTimeout(t, waitLong)
	for i := range 2 {
		s, err := sc.members[i].OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		msg := stripeHeader{id: 9, index: i, size: 2}.encode()
		if i == 0 {
			msg = append(msg, 0, 1, 2, 'x') // one byte; the next chunk on member 2 of 2
		}
		if _, err := s.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	r, err := server.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b [2]byte
	for i := range 2 {
		if n, err := r.Read(b[:]); !errors.Is(err, errBadStripe) {
			t.Fatalf("read %d: %d bytes, %v; want errBadStripe", i, n, err)
		}
	}
}
