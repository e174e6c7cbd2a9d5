package daemon

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/internal/wire"
)

// relayWorld starts west-2, west-1 (linked to west-2) and east-1, which
// is configured to dial both west nodes but whose paths to and from west-2
// are cut both ways: east-1 reaches west-2 only through west-1.
func relayWorld(t *testing.T, tr string) (east, w1, w2 *node) {
	t.Helper()
	east = newNode(t, tr, "east", "east-1")
	w1, w2 = newNode(t, tr, "west", "west-1"), newNode(t, tr, "west", "west-2")
	w2.cfg.Peers = []configs.Peer{peerOf(w1, tr, "", "accept"), peerOf(east, tr, "", "accept")}
	w2.start()
	w2.block("east", "east-1", true)
	w1.cfg.Peers = []configs.Peer{peerOf(w2, tr, w2.addr(tr), "connect"), peerOf(east, tr, "", "accept")}
	w1.start()
	waitLink(t, w1.d, "west", "west-2")
	east.cfg.Peers = []configs.Peer{peerOf(w1, tr, w1.addr(tr), "connect"), peerOf(w2, tr, w2.addr(tr), "connect")}
	east.gate.setBlocked(w2.d.id.ID, true)
	east.start()
	waitLink(t, east.d, "west", "west-1")
	return east, w1, w2
}

// TestRelayedLink: east-1 cannot reach west-2 but gets a link to it through
// west-1; messages to a member on west-2 arrive exactly once and in order,
// also across the loss of the relay (west-1 cut from east-1, then back).
func TestRelayedLink(t *testing.T) {
	for _, tr := range testTransports {
		t.Run(tr, func(t *testing.T) {
			east, w1, w2 := relayWorld(t, tr)
			waitLink(t, east.d, "west", "west-2")
			st := east.d.peer("west", "west-2").status()
			if st.transport != "relay" || !strings.Contains(st.remote, "west/west-1") {
				t.Fatalf("east-1's link to west-2: transport %q remote %q; want relayed by west/west-1", st.transport, st.remote)
			}
			mb := subscribe(t, w2, "orders", east)
			pub := connect(t, east)
			const half, n = 200, 400
			for i := range half {
				sendAsync(t, pub, client.Target{Group: "orders"}, []byte(strconv.Itoa(i)))
			}
			if err := pub.Flush(ctxT(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			const first = 10 // then the relay goes, with the rest in flight or queued
			for i := range first {
				if m, err := mb.Receive(ctxT(t, 20*time.Second)); err != nil || string(m.Payload) != strconv.Itoa(i) {
					t.Fatalf("message %d: %v %v", i, m, err)
				}
			}
			if testutil.ToFloat64(w1.d.metrics.relayedBytes) == 0 {
				t.Error("west-1 counted no relayed bytes")
			}
			if !east.d.peer("west", "west-2").relayFirst.Load() {
				t.Error("east-1 will dial west-2 directly first again, though only the relay reached it")
			}

			east.block("west", "west-1", true) // the relay is gone: so is the relayed link
			if err := east.d.WaitLink(ctxT(t, 10*time.Second), "west", "west-2", false); err != nil {
				t.Fatal(err)
			}
			// The relay frees the pair (its link from east-1 ended), and
			// west-2 its end of the pipe (LinkDown from the relay).
			waitUntil(t, 10*time.Second, func() bool {
				return w1.d.relay.active.Load() == 0 && testutil.ToFloat64(w1.d.metrics.pipes.WithLabelValues(pipeRoleRelay)) == 0 &&
					w2.d.relay.endpoints.Load() == 0 && testutil.ToFloat64(w2.d.metrics.pipes.WithLabelValues(pipeRoleEndpoint)) == 0
			}, func() string { return "the pipes of the relayed link outlived the relay's link" })
			for i := half; i < n; i++ {
				sendAsync(t, pub, client.Target{Group: "orders"}, []byte(strconv.Itoa(i)))
			}
			if err := pub.Flush(ctxT(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			east.block("west", "west-1", false)
			receiveSeqFrom(t, mb, first, n, 30*time.Second)
		})
	}
}

// TestRelayRefused: a pipe to a node of another cluster, or to a node the
// relay has no link to, is refused (PipeClose with the reason's code) and
// counted; the link that carried it stays up.
func TestRelayRefused(t *testing.T) {
	east, w1, w2 := relayWorld(t, "mem")
	l := east.d.peer("west", "west-1").currentLink()
	inCluster := w2.d.peer("west", "west-1").currentLink()
	for _, c := range []struct {
		target auth.PeerID
		reason string
		code   uint8
		busy   bool  // maxPipes in progress
		over   *link // the link to ask on (l if nil)
	}{
		{target: auth.PeerID{Cluster: "east", Node: "east-2"}, reason: relayNotOwnCluster, code: wire.PipeNotOwnCluster},
		{target: auth.PeerID{Cluster: "west", Node: "west-9"}, reason: relayNoLink, code: wire.PipeNoLink},
		{target: auth.PeerID{Cluster: "west", Node: "west-1"}, reason: relayNoLink, code: wire.PipeNoLink},
		{target: auth.PeerID{Cluster: "west", Node: "west-2"}, reason: relayTooMany, code: wire.PipeTooMany, busy: true},
		{target: auth.PeerID{Cluster: "west", Node: "west-2"}, reason: relayBadRequest, code: wire.PipeBadRequest, over: inCluster},
		{target: auth.PeerID{Cluster: "west", Node: "-bad name-"}, reason: relayBadRequest, code: wire.PipeBadRequest},
	} {
		busy := int64(0)
		if c.busy {
			busy = int64(w1.d.relay.lim.maxPipes)
			w1.d.relay.active.Add(busy)
		}
		l := l
		if c.over != nil {
			l = c.over
		}
		before := testutil.ToFloat64(w1.d.metrics.relayRefused.WithLabelValues(c.reason))
		pc, err := l.newEndpoint(func(id uint64) *pipeConn { return newPipeConn(l.pm, id, nil, nil) }, c.target)
		if err != nil {
			t.Fatal(err)
		}
		_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		var buf [1]byte
		n, err := pc.Read(buf[:])
		var pe *pipeCloseError
		if !errors.As(err, &pe) || pe.code != c.code || n != 0 {
			t.Fatalf("pipe to %v: read %d bytes, err %v; want it closed with code %d (%s)", c.target, n, err, c.code, c.reason)
		}
		pc.Close()
		waitUntil(t, 5*time.Second, func() bool {
			return testutil.ToFloat64(w1.d.metrics.relayRefused.WithLabelValues(c.reason)) == before+1
		}, func() string { return "refusal of " + c.target.Node + " not counted as " + c.reason })
		w1.d.relay.active.Add(-busy)
	}
	if east.d.peer("west", "west-1").currentLink() != l {
		t.Fatal("a refused pipe ended the link")
	}
}
