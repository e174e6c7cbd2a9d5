package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/transport"
)

// rawPeer dials d as the pinned node `as` and completes the handshake by
// hand, so a test can then misbehave on the link.
func rawPeer(t *testing.T, tr string, target *node, as *node) (transport.Conn, transport.Stream, *wire.Reader) {
	t.Helper()
	var trp transport.Transport
	switch tr {
	case "quic":
		trp = transport.NewQUIC(transport.Options{})
	case "tcp":
		trp = transport.NewTCP(transport.Options{})
	default:
		trp = transport.NewMem(transport.Options{})
	}
	return handshakeAs(t, trp, tr, target, as)
}

// dialAs dials target at addr over trp with as's key and certificate,
// pinning target's key. The connection is closed when the test ends.
func dialAs(t *testing.T, ctx context.Context, trp transport.Transport, addr string, target, as *node) transport.Conn {
	t.Helper()
	targetID := auth.PeerID{Cluster: target.cfg.Cluster, Node: target.cfg.Node}
	pins := auth.NewPinSet()
	pins.Set(targetID, []ed25519.PublicKey{target.pub()})
	id := auth.Identity{ID: auth.PeerID{Cluster: as.cfg.Cluster, Node: as.cfg.Node}, Key: as.key}
	tc, err := auth.ClientTLSConfig(id, pins, targetID, []string{ALPN}, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := trp.Dial(ctx, addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// handshakeAs dials target over trp as the pinned node `as` and completes
// the link handshake (Hello, Welcome, Ready) by hand.
func handshakeAs(t *testing.T, trp transport.Transport, tr string, target, as *node) (transport.Conn, transport.Stream, *wire.Reader) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	conn := dialAs(t, ctx, trp, target.addr(tr), target, as)
	ctl, err := conn.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctl.Write(wire.AppendFrame(nil, &wire.Hello{Cluster: as.cfg.Cluster, Node: as.cfg.Node, Incarnation: 7, MaxFrame: 1 << 20}))
	r := wire.NewReader(ctl, 1<<20)
	typ, body, err := r.ReadFrame()
	var w wire.Welcome
	if err != nil || typ != wire.TypeWelcome || w.DecodeBody(body) != nil || w.Status != wire.WelcomeOK {
		t.Fatalf("welcome: %v %v %+v", typ, err, w)
	}
	ctl.Write(wire.AppendFrame(nil, &wire.Ready{}))
	return conn, ctl, r
}

// expectClosed reads until the link ends and returns the GoAway seen, if any.
func expectClosed(t *testing.T, r *wire.Reader) *wire.GoAway {
	t.Helper()
	for {
		typ, body, err := r.ReadFrame()
		if err != nil {
			return nil
		}
		if typ == wire.TypeGoAway {
			var g wire.GoAway
			if err := g.DecodeBody(body); err != nil {
				t.Fatal(err)
			}
			return &g
		}
	}
}

func TestHostileFramesOnLink(t *testing.T) {
	cases := []struct {
		name  string
		bytes func() []byte
	}{
		{"oversized frame header", func() []byte {
			h := make([]byte, wire.HeaderSize)
			h[0], h[1] = wire.Version, byte(wire.TypePing)
			binary.BigEndian.PutUint32(h[4:], 1<<30)
			return h
		}},
		{"garbage", func() []byte { return bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 64) }},
		{"data frame on control stream", func() []byte { return wire.AppendFrame(nil, &wire.Data{Seq: 1, To: 1, Payload: []byte("x")}) }},
		{"truncated body", func() []byte {
			f := wire.AppendFrame(nil, &wire.MembersDelta{Incarnation: 7, Version: 1, Op: 1, Group: "g", Mailbox: 1})
			binary.BigEndian.PutUint32(f[4:], 2) // claims a 2-byte body
			return f[:wire.HeaderSize+2]
		}},
	}
	forEachTransport(t, func(t *testing.T, tr string) {
		east, west := pair(t, tr)
		mb := subscribe(t, west, "g", east)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				// A pinned third node, so the handshake passes.
				rogue := newNode(t, tr, "north", "north-1")
				rp := peerOf(rogue, tr, "", "accept")
				if err := addPeerForTest(east.d, rp); err != nil {
					t.Fatal(err)
				}
				_, ctl, r := rawPeer(t, tr, east, rogue)
				waitLink(t, east.d, "north", "north-1")
				before := testutil.ToFloat64(east.d.metrics.protocolErrors.WithLabelValues("frame"))
				ctl.Write(tc.bytes())
				g := expectClosed(t, r)
				if g != nil && g.Code != wire.GoAwayProtocol {
					t.Fatalf("GoAway code %d, want protocol", g.Code)
				}
				ctx := ctxT(t, 5*time.Second)
				if err := east.d.WaitLink(ctx, "north", "north-1", false); err != nil {
					t.Fatal(err)
				}
				if after := testutil.ToFloat64(east.d.metrics.protocolErrors.WithLabelValues("frame")); after <= before {
					t.Fatalf("protocol error not counted (%v -> %v)", before, after)
				}
				// The real link still works.
				ec := connect(t, east)
				if err := ec.SendGroup(ctx, "g", []byte("0")); err != nil {
					t.Fatal(err)
				}
				receiveSeq(t, mb, 1, 5*time.Second)
			})
		}
	})
}

// addPeerForTest adds a peer to a running daemon (tests only; reload comes later).
func addPeerForTest(d *Daemon, pc configs.Peer) error {
	id := auth.PeerID{Cluster: pc.Cluster, Node: pc.Node}
	if pc.Transport == "" {
		pc.Transport = "quic"
	}
	tr := d.transports[pc.Transport]
	d.pins.Set(id, pc.PublicKeys)
	p := newPeer(d, id, pc, tr, d.newQueue(pc))
	d.peersMu.Lock()
	d.peers[id] = p
	d.peersGen.Add(1)
	d.peersMu.Unlock()
	return nil
}

func TestLocalSocketBadInput(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	n.cfg.Local.Token = "s3cret"
	n.start()
	dial := func() net.Conn {
		c, err := net.Dial("unix", n.cfg.Local.Socket)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return c
	}
	hello := func(c net.Conn, token string) *wire.ServerHello {
		c.Write(wire.AppendFrame(nil, &wire.ClientHello{Version: wire.LocalVersion, Name: "t", Token: token}))
		typ, body, err := wire.NewReader(c, 1<<20).ReadFrame()
		if err != nil || typ != wire.TypeServerHello {
			t.Fatalf("server hello: %v %v", typ, err)
		}
		var sh wire.ServerHello
		if err := sh.DecodeBody(body); err != nil {
			t.Fatal(err)
		}
		return &sh
	}
	// Wrong token: refused, counted.
	if sh := hello(dial(), "wrong"); sh.Status != wire.StatusUnauthorized {
		t.Fatalf("bad token: status %d", sh.Status)
	}
	rejects := func(reason string) float64 {
		return testutil.ToFloat64(n.d.metrics.localRejects.WithLabelValues(reason))
	}
	if v := rejects("bad_token"); v != 1 {
		t.Fatalf("local rejections for a bad token %v, want 1", v)
	}
	// Garbage instead of a hello: the connection is closed, the daemon lives.
	g := dial()
	g.Write(bytes.Repeat([]byte("GET / HTTP/1.1\r\n"), 10))
	if _, err := io.ReadAll(g); err != nil && !errors.Is(err, net.ErrClosed) {
		var ne net.Error
		if !errors.As(err, &ne) {
			t.Fatalf("garbage: %v", err)
		}
	}
	waitUntil(t, 5*time.Second, func() bool { return rejects("bad_hello") == 1 }, func() string { return "garbage not counted (bad_hello)" })
	// Unsupported version.
	v := dial()
	v.Write(wire.AppendFrame(nil, &wire.ClientHello{Version: 99, Token: "s3cret"}))
	typ, body, err := wire.NewReader(v, 1<<20).ReadFrame()
	var sh wire.ServerHello
	if err != nil || typ != wire.TypeServerHello || sh.DecodeBody(body) != nil || sh.Status != wire.StatusBadRequest {
		t.Fatalf("version 99: %v %v %+v", typ, err, sh)
	}
	if v := rejects("bad_version"); v != 1 {
		t.Fatalf("local rejections for a bad version %v, want 1", v)
	}
	// A good client after all that, then an oversized frame from it.
	c := dial()
	if sh := hello(c, "s3cret"); sh.Status != wire.StatusOK || sh.Cluster != "east" {
		t.Fatalf("good hello: %+v", sh)
	}
	h := make([]byte, wire.HeaderSize)
	h[0], h[1] = wire.Version, byte(wire.TypeSend)
	binary.BigEndian.PutUint32(h[4:], 1<<30)
	c.Write(h)
	if _, err := io.ReadAll(c); err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || ne.Timeout() {
			t.Fatalf("oversized frame: connection not closed: %v", err)
		}
	}
	waitUntil(t, 5*time.Second, func() bool { return rejects("bad_frame") == 1 }, func() string { return "oversized frame not counted (bad_frame)" })
	// A connection that never says hello is closed at the handshake
	// timeout, and counted.
	dial()
	waitUntil(t, 15*time.Second, func() bool { return rejects("no_hello") >= 1 }, func() string { return "silent connection not counted (no_hello)" })
	// The daemon still serves.
	ok := dial()
	if sh := hello(ok, "s3cret"); sh.Status != wire.StatusOK {
		t.Fatalf("daemon stopped serving: %+v", sh)
	}
	_ = strconv.Itoa
	_ = context.Background
}

func TestMaxLocalClients(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	n.cfg.Local.MaxClients = 2
	n.start()
	for i := 0; i < 2; i++ {
		connect(t, n)
	}
	_, err := client.Connect(ctxT(t, 5*time.Second), client.Options{Socket: n.cfg.Local.Socket})
	if !errors.Is(err, client.ErrBusy) {
		t.Fatalf("third client: %v, want ErrBusy", err)
	}
}
