package daemon

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/wire"
)

// partKeys returns n keys of partition p of a group of 2 partitions.
func partKeys(p uint64, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		if k := "k" + strconv.Itoa(i); groups.Partition(k, 2) == p {
			out = append(out, k)
		}
	}
	return out
}

// The owner of partition 0 of a partitioned group goes away with messages
// it took and did not confirm: they come back to its node, where the
// partition has no owner now. They wait there for one (wire-spec, Holding
// and routing again) without holding up the messages of partition 1, which
// reach their owner, through the hold; when a new owner of partition 0 joins, it gets them,
// once and in order, and nothing stays in the sender's buffer.
func TestHeldPartitionDoesNotStallOthers(t *testing.T) {
	east, west := pair(t, "mem")
	keys0, keys1 := partKeys(0, 6), partKeys(1, 6)

	rc := dialRaw(t, west) // owner of partition 0: reads, never confirms
	rc.write(&wire.Open{Req: 1})
	var id uint64
	rc.read(func(m wire.Message) bool { o, ok := m.(*wire.Opened); id = o.Mailbox; return ok })
	rc.write(&wire.Join{Req: 2, Mailbox: id, Group: "parts", PartitionCount: 2, Partitions: []uint64{0}})
	rc.read(func(m wire.Message) bool {
		r, ok := m.(*wire.Result)
		if ok && r.Status != wire.StatusOK {
			t.Fatalf("join of partition 0: %+v", r)
		}
		return ok
	})
	wc := connect(t, west)
	owner1, err := wc.NewMailbox(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := owner1.JoinPartitions(ctxT(t, 5*time.Second), "parts", 2, 1); err != nil {
		t.Fatal(err)
	}
	if err := east.d.WaitMembers(ctxT(t, 10*time.Second), "parts", 2); err != nil {
		t.Fatal(err)
	}

	pub := connect(t, east)
	send := func(k string) {
		t.Helper()
		if err := pub.SendGroup(ctxT(t, 5*time.Second), "parts", []byte(k), client.WithKey(k)); err != nil {
			t.Fatalf("send of %s: %v", k, err)
		}
	}
	for i := range 3 { // interleaved, as a publisher of both partitions sends
		send(keys0[i])
		send(keys1[i])
	}
	rc.read(func(wire.Message) bool { return rc.n == 3 })
	receiveKeys(t, owner1, keys1[:3])

	// The owner of partition 0 leaves with its 3 messages unconfirmed.
	rc.conn.Close()
	waitUntil(t, 20*time.Second, func() bool { return west.d.hold.status().Messages == 3 }, func() string {
		return "west holds " + strconv.Itoa(west.d.hold.status().Messages) + " messages, want partition 0's 3"
	})
	if err := east.d.WaitMembers(ctxT(t, 10*time.Second), "parts", 1); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys1[3:] {
		send(k)
	}
	receiveKeys(t, owner1, keys1[3:])
	// Partition 0's 3 are still held, not done: east keeps them (and, as
	// acknowledgements are cumulative, what it sent after them).
	if st := west.d.hold.status(); st.Messages != 3 || queued(east) < 3 {
		t.Fatalf("west's hold: %+v; east's buffer: %d messages; want partition 0's 3 held at west and kept at east", st, queued(east))
	}

	// A new owner of partition 0 gets what its predecessor did not confirm.
	owner0, err := wc.NewMailbox(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := owner0.JoinPartitions(ctxT(t, 5*time.Second), "parts", 2, 0); err != nil {
		t.Fatal(err)
	}
	receiveKeys(t, owner0, keys0[:3])
	waitUntil(t, 20*time.Second, func() bool { return queued(east) == 0 }, func() string {
		return strconv.Itoa(queued(east)) + " messages still in east's buffer"
	})
	if st := west.d.hold.status(); st.Messages != 0 || st.Expired+st.Undeliverable+st.RoutedOn != 0 {
		t.Fatalf("west's hold at the end: %+v, want empty, nothing discarded or routed on", st)
	}
}

// receiveKeys receives the payloads keys, in order, and then nothing more
// for a moment.
func receiveKeys(t *testing.T, mb *client.Mailbox, keys []string) {
	t.Helper()
	ctx := ctxT(t, 20*time.Second)
	for i, k := range keys {
		m, err := mb.Receive(ctx)
		if err != nil {
			t.Fatalf("%s: after %d of %v: %v", mb.Addr(), i, keys, err)
		}
		if string(m.Payload) != k {
			t.Fatalf("%s: message %d is %q, want %q (of %v): lost, duplicated or reordered", mb.Addr(), i, m.Payload, k, keys)
		}
	}
	ctx2, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if m, err := mb.Receive(ctx2); err == nil {
		t.Fatalf("%s: unexpected extra message %q after %v", mb.Addr(), m.Payload, keys)
	}
}
