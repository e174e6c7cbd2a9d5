package daemon

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/wandist/wandist/client"
)

// Messages east buffers for west's member while west is down (rejoinHeld),
// and sends to north's member meanwhile (rejoinDirect).
const rejoinHeld, rejoinDirect = 50, 20

// restartWithMemberElsewhere sets up the case of groups.rejoin_grace: east
// sends to group "g", whose only member is on west; west dies without a
// word, and east buffers rejoinHeld messages ("0"...) for it; a member of
// "g" joins on north and takes east's next rejoinDirect messages. west
// comes back (with grace, and its clock now) and gets the buffered ones
// again before any member of "g" has joined on it: they are held. It
// returns west and north's member, which has read its messages.
func restartWithMemberElsewhere(t *testing.T, grace time.Duration, now func() time.Time) (west *node, mbN *client.Mailbox) {
	ns := mesh(t, "mem", []string{"east", "north", "west"}, func(n *node) {
		n.cfg.Link.KeepaliveInterval, n.cfg.Link.KeepaliveTimeout = 100*time.Millisecond, 500*time.Millisecond
		n.cfg.Groups.RejoinGrace = grace
	})
	east, north, west := ns[0], ns[1], ns[2]
	cw := connect(t, west)
	if mb, err := cw.NewMailbox(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	} else if err := mb.Join(ctxT(t, 5*time.Second), "g"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{east, north} {
		if err := n.d.WaitMembers(ctxT(t, 10*time.Second), "g", 1); err != nil {
			t.Fatal(err)
		}
	}
	pub := connect(t, east)
	send := func(i int) {
		t.Helper()
		if err := pub.SendGroup(ctxT(t, 5*time.Second), "g", []byte(strconv.Itoa(i))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	east.block("west", "west-1", true)
	west.block("east", "east-1", true)
	if err := east.d.WaitLink(ctxT(t, 10*time.Second), "west", "west-1", false); err != nil {
		t.Fatal(err)
	}
	cw.Close() // (it would reconnect to the new west, and rejoin)
	west.d.Close()
	for i := range rejoinHeld { // buffered at east for west's (unreachable) member
		send(i)
	}
	mbN = subscribe(t, north, "g", east)                    // (reachable members)
	for i := rejoinHeld; i < rejoinHeld+rejoinDirect; i++ { // to north's member, reachable
		send(i)
	}
	receiveSeqFrom(t, mbN, rejoinHeld, rejoinHeld+rejoinDirect, 20*time.Second)
	west.opts.Now = now
	east.block("west", "west-1", false)
	west.block("east", "east-1", false)
	west.start()
	waitLink(t, east.d, "west", "west-1")
	waitLink(t, west.d, "north", "north-1")
	if err := west.d.WaitMembers(ctxT(t, 10*time.Second), "g", 1); err != nil {
		t.Fatal(err) // west knows north's member
	}
	waitUntil(t, 20*time.Second, func() bool {
		return west.d.Status().Hold.Messages == rejoinHeld || reroutedRemote(west) > 0
	}, func() string { return fmt.Sprintf("west holds %+v", west.d.Status().Hold) })
	if n := reroutedRemote(west); n != 0 {
		t.Fatalf("west routed %v messages on to north within the rejoin grace, want none", n)
	}
	return west, mbN
}

func reroutedRemote(n *node) float64 { return testutil.ToFloat64(n.d.metrics.reroutedRemote) }

// A restarted node holds its group's messages for its consumer's rejoin
// during groups.rejoin_grace, though the group has a member on another
// node: the rejoined consumer gets them in order, and the other member
// gets none of them behind the newer ones it had.
func TestRejoinGraceHoldsForRestartedConsumer(t *testing.T) {
	west, mbN := restartWithMemberElsewhere(t, time.Minute, nil)
	mbW := subscribe(t, west, "g")
	receiveSeq(t, mbW, rejoinHeld, 20*time.Second)
	if n := reroutedRemote(west); n != 0 {
		t.Fatalf("west routed %v messages on, want none", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if m, err := mbN.Receive(ctx); err == nil {
		t.Fatalf("north's member got %q, routed on behind newer ones", m.Payload)
	}
}

// Past groups.rejoin_grace (west's clock jumps over it), what west holds for
// a group with no member on it is routed on to the member on north, by
// itself and in order.
func TestRejoinGraceEndRoutesOn(t *testing.T) {
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	west, mbN := restartWithMemberElsewhere(t, time.Minute, now)
	skew.Store(int64(time.Minute + time.Second))
	waitUntil(t, 20*time.Second, func() bool { return reroutedRemote(west) == rejoinHeld },
		func() string {
			return fmt.Sprintf("west routed %v on, holds %+v", reroutedRemote(west), west.d.Status().Hold)
		})
	if st := west.d.Status().Hold; st.RoutedOn != rejoinHeld || st.Messages != 0 {
		t.Fatalf("west's hold status %+v, want %d routed on and none held", st, rejoinHeld)
	}
	receiveSeq(t, mbN, rejoinHeld, 20*time.Second)
}
