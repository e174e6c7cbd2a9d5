package daemon

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/internal/wire"
)

// rawClient is a local client that speaks the protocol by hand, so that a
// test decides when (and whether) it confirms what it is given.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *wire.Reader
	n    uint64 // deliveries read
}

func dialRaw(t *testing.T, n *node) *rawClient {
	t.Helper()
	return dialRawVersion(t, n, wire.LocalVersion)
}

// dialRawVersion is dialRaw, saying hello in the given local protocol
// version.
func dialRawVersion(t *testing.T, n *node, version uint64) *rawClient {
	t.Helper()
	c, err := net.Dial("unix", n.cfg.Local.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	rc := &rawClient{t: t, conn: c, r: wire.NewReader(c, 1<<20)}
	rc.write(&wire.ClientHello{Version: version, Name: "raw"})
	if m, err := rc.r.ReadMessage(); err != nil || m.(*wire.ServerHello).Status != wire.StatusOK {
		t.Fatalf("hello: %v %v", m, err)
	}
	return rc
}

func (rc *rawClient) write(m wire.Message) {
	if _, err := rc.conn.Write(wire.AppendFrame(nil, m)); err != nil {
		rc.t.Fatal(err)
	}
}

// join opens a mailbox and joins group with it.
func (rc *rawClient) join(group string) uint64 {
	rc.write(&wire.Open{Req: 1})
	var id uint64
	rc.read(func(m wire.Message) bool {
		o, ok := m.(*wire.Opened)
		id = o.Mailbox
		return ok
	})
	rc.write(&wire.Join{Req: 2, Mailbox: id, Group: group})
	rc.read(func(m wire.Message) bool { _, ok := m.(*wire.Result); return ok })
	return id
}

// read reads frames, counting deliveries, until until says stop.
func (rc *rawClient) read(until func(wire.Message) bool) {
	rc.t.Helper()
	for {
		m, err := rc.r.ReadMessage()
		if err != nil {
			rc.t.Fatal(err)
		}
		switch m := m.(type) {
		case *wire.Deliver:
			rc.n++
		case *wire.DeliverBatch:
			rc.n += uint64(m.Payloads.Count())
		}
		if until(m) {
			return
		}
	}
}

// queued is what east's buffer holds for west.
func queued(east *node) int { return east.d.peer("west", "west-1").queue.Stats().Messages }

// A reliable message is acknowledged to its sender only once the receiving
// client confirmed it: a client that read every message but confirmed none
// leaves them all in the sender's buffer; its DeliverAck frees them.
func TestReliableAckedOnlyOnceConfirmed(t *testing.T) {
	const n = 300
	east, west, rc := rawMemberGot(t, n)
	// Nothing is done at west, so no ack can have gone to east.
	w := west.d.peer("east", "east-1")
	w.recvMu.Lock()
	base := w.recv[0].base
	w.recvMu.Unlock()
	if q := queued(east); base != 0 || q != n {
		t.Fatalf("west's client read %d messages and confirmed none, yet west's lane is done up to %d and east holds %d", n, base, q)
	}
	rc.write(&wire.DeliverAck{Count: n})
	waitUntil(t, 10*time.Second, func() bool { return queued(east) == 0 }, func() string {
		return strconv.Itoa(queued(east)) + " messages still in east's buffer after the confirmation"
	})
}

// A client that goes away with messages it did not confirm loses none of
// them: the receiving node has its link reset, the sender resends, and the
// group's next member gets every message, once.
func TestUnconfirmedRedeliveredToNextMember(t *testing.T) {
	const n = 200
	east, west, rc := rawMemberGot(t, n)
	rc.write(&wire.DeliverAck{Count: 50}) // the first 50 only
	waitUntil(t, 10*time.Second, func() bool { return queued(east) == n-50 }, func() string {
		return strconv.Itoa(queued(east)) + " messages in east's buffer, want " + strconv.Itoa(n-50)
	})
	next := subscribe(t, west, "g")
	rc.conn.Close()
	receiveSeqFrom(t, next, 50, n, 20*time.Second)
	waitUntil(t, 10*time.Second, func() bool { return queued(east) == 0 }, func() string {
		return strconv.Itoa(queued(east)) + " messages still in east's buffer"
	})
}

// rawMemberGot links east and west, joins a raw client of west to group
// "g", sends it n messages "0".."n-1" from east, and returns once the raw
// client read them all (confirming none).
func rawMemberGot(t *testing.T, n int) (east, west *node, rc *rawClient) {
	t.Helper()
	east, west = pair(t, "mem")
	rc = dialRaw(t, west)
	rc.join("g")
	if err := east.d.WaitMembers(ctxT(t, 5*time.Second), "g", 1); err != nil {
		t.Fatal(err)
	}
	pub := connect(t, east)
	for i := range n {
		sendAsync(t, pub, client.Target{Group: "g"}, []byte(strconv.Itoa(i)))
	}
	if err := pub.Flush(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	rc.read(func(wire.Message) bool { return rc.n == uint64(n) })
	return east, west, rc
}

// waitUntil polls cond until it holds, failing with what() after d.
func waitUntil(t *testing.T, d time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
