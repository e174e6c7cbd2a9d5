package transport

import (
	"context"
	"errors"
	"testing"
)

// overlayPair runs ClientOver and ServerOver over a stream of a fresh
// connection of e's transport (the carrier). srvPins are the client pins
// the server accepts (e's client's if none).
func overlayPair(t *testing.T, e *env, srvPins ...[32]byte) (carrier, cli, srv Conn, cliErr, srvErr error) {
	t.Helper()
	a, b := e.pair(e.opts())
	ctx := ctxTimeout(t, waitLong)
	if len(srvPins) == 0 {
		srvPins = [][32]byte{e.cli.pin}
	}
	type result struct {
		c   Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := b.AcceptStream(ctx)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		rc := StreamConn(s, RelayAddr{Via: "r", End: "server"}, RelayAddr{Via: "r", End: "client"})
		c, err := ServerOver(ctx, rc, serverTLS(e.srv, srvPins...), e.opts())
		ch <- result{c, err}
	}()
	s, err := a.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cli, cliErr = ClientOver(ctx, StreamConn(s, RelayAddr{Via: "r", End: "client"}, RelayAddr{Via: "r", End: "server"}), e.clientTLS(), e.opts())
	r := <-ch
	for _, c := range []Conn{cli, r.c} {
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return a, cli, r.c, cliErr, r.err
}

// TestOverStream: two Conns made over a stream of another Conn exchange
// streams both ways, are named "relay", and die with their carrier.
func TestOverStream(t *testing.T) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc)
			carrier, cli, srv, cerr, serr := overlayPair(t, e)
			if cerr != nil || serr != nil {
				t.Fatalf("client: %v, server: %v", cerr, serr)
			}
			for _, c := range []Conn{cli, srv} {
				if c.Transport() != RelayName {
					t.Errorf("Transport() = %q", c.Transport())
				}
			}
			if got := cli.RemoteAddr().String(); got != "relay:r>server" {
				t.Errorf("client's RemoteAddr = %q", got)
			}
			roundTrip(t, cli, srv, "through the carrier")
			roundTrip(t, srv, cli, "and back")
			roundTrip(t, cli, srv, "again")
			carrier.Close()
			waitDone(t, cli, "client over a closed carrier")
			waitDone(t, srv, "server over a closed carrier")
		})
	}
}

// TestOverStreamVerifies: the server side verifies the client as a
// listener does: a client it has no pin for fails on both sides.
func TestOverStreamVerifies(t *testing.T) {
	tc := transportCases()[2] // mem
	e := newEnv(t, tc)
	other := newIdentity(t, "other")
	_, cli, srv, cerr, serr := overlayPair(t, e, other.pin)
	if cli != nil || srv != nil {
		t.Fatal("a client without a pin got a connection")
	}
	if !errors.Is(serr, ErrHandshake) {
		t.Errorf("server error %v does not match ErrHandshake", serr)
	}
	if cerr == nil || errors.Is(cerr, context.DeadlineExceeded) {
		t.Errorf("client error = %v, want a refusal (not a timeout)", cerr)
	}
}
