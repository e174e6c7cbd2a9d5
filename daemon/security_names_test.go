package daemon

import (
	"testing"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/transport"
)

// TestPinnedKeyClaimingAnotherName: west's pinned key, used by a node that
// calls itself north-1 (another cluster, also a configured peer) or
// west-2 (another node of west's cluster), is refused in the TLS handshake
// with reason name_mismatch; and a link whose Hello names another node than
// its certificate is refused, with the same reason. Each is counted and
// logged; west's real link goes on.
func TestPinnedKeyClaimingAnotherName(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		east, west, logs, check := securedPair(t, tr, nil, nil)
		north := newNode(t, tr, "north", "north-1")
		if err := addPeerForTest(east.d, peerOf(north, tr, "", "accept")); err != nil {
			t.Fatal(err)
		}
		reason := string(auth.ReasonNameMismatch)

		// The certificate says west/west-1, the Hello north/north-1.
		var trp transport.Transport
		switch tr {
		case "quic":
			trp = transport.NewQUIC(transport.Options{})
		case "tcp":
			trp = transport.NewTCP(transport.Options{})
		default:
			trp = transport.NewMem(transport.Options{})
		}
		w := helloAs(t, trp, east.addr(tr), east, west, auth.PeerID{Cluster: "north", Node: "north-1"})
		if w.Status != wire.WelcomeRefused {
			t.Fatalf("Hello naming another node than the certificate: Welcome %+v", w)
		}
		waitRejects(t, east.d, reason, 1)
		logs.wait(t, "the Hello naming another node", func(r logRecord) bool {
			return r.msg == "inbound link refused" && r.attrs["peer"].String() == "west/west-1"
		})

		// Impostors with west's key (they redial until closed, so each
		// adds at least one rejection).
		for _, claim := range []auth.PeerID{{Cluster: "north", Node: "north-1"}, {Cluster: "west", Node: "west-2"}} {
			before := rejects(east.d, reason)
			impostor := newNode(t, tr, claim.Cluster, claim.Node)
			impostor.key, impostor.opts.Key = west.key, west.key
			impostor.cfg.Local.Socket = ""
			impostor.cfg.Listen = configs.Listen{}
			impostor.cfg.Peers = []configs.Peer{peerOf(east, tr, east.addr(tr), "connect")}
			impostor.start()
			logs.wait(t, "the impostor "+claim.String(), func(r logRecord) bool {
				return r.msg == "peer rejected" && r.attrs["reason"].String() == reason && r.attrs["claimed"].String() == claim.String()
			})
			impostor.d.Close()
			if n := rejects(east.d, reason); n <= before {
				t.Fatalf("impostor %v: rejections %q stayed at %v", claim, reason, n)
			}
		}
		if ups := east.d.LinkUps("north", "north-1"); ups != 0 {
			t.Fatalf("a link to north-1 came up %d times", ups)
		}
		check()
	})
}

// helloAs connects to target with as's certificate and sends a Hello that
// names claim; it returns the Welcome.
func helloAs(t *testing.T, trp transport.Transport, addr string, target, as *node, claim auth.PeerID) *wire.Welcome {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	conn := dialAs(t, ctx, trp, addr, target, as)
	defer conn.Close()
	ctl, err := conn.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	ctl.SetDeadline(time.Now().Add(10 * time.Second))
	ctl.Write(wire.AppendFrame(nil, &wire.Hello{Cluster: claim.Cluster, Node: claim.Node, Incarnation: 7, MaxFrame: 1 << 20}))
	typ, body, err := wire.NewReader(ctl, 1<<20).ReadFrame()
	var w wire.Welcome
	if err != nil || typ != wire.TypeWelcome || w.DecodeBody(body) != nil {
		t.Fatalf("welcome: %v %v", typ, err)
	}
	return &w
}
