package client

import "github.com/wandist/wandist/internal/wire"

// A reliable or durable message may reach a client twice: the receiving
// daemon acknowledges it to its sending node only once this client
// confirmed it (DeliverAck), so a crash of that daemon between the two
// makes the sending node deliver it again. The client drops such a
// redelivery by the message's stream (its sending node, and the node's
// incarnation or durable stream) and Seq.

// streamKey names one stream of messages from one sending node.
type streamKey struct {
	cluster, node string
	stream        uint64
	kind          uint64 // the Deliver's FlagDurable and FlagHigh bits: lanes number their Seqs apart
}

// maxSeenWords bounds a stream's window of remembered Seqs above its floor
// (64 Seqs a word: 4 Mi Seqs, 512 KiB). A message more than that ahead of
// the floor is not remembered: should it come again, it is delivered again.
const maxSeenWords = 1 << 16

// seenSet is what a client remembers of one stream: every Seq <= floor was
// dealt with (the daemon said so), and bits[head:] holds the Seqs above
// base that this client got (bit i of that window: Seq base+1+i).
type seenSet struct {
	floor uint64
	base  uint64 // <= floor, a multiple of 64 below it
	bits  []uint64
	head  int // the words before it were forgotten (compacted away once they are half of bits)
}

// add records seq (with the daemon's floor) and reports whether it was
// there before.
func (s *seenSet) add(seq, floor uint64) (dup bool) {
	if floor > s.floor {
		s.advance(floor)
	}
	if seq <= s.floor {
		return true
	}
	i := seq - s.base - 1
	w := i / 64
	if w >= maxSeenWords {
		return false
	}
	for uint64(len(s.bits)-s.head) <= w {
		s.bits = append(s.bits, 0)
	}
	word := &s.bits[s.head+int(w)]
	bit := uint64(1) << (i % 64)
	if *word&bit != 0 {
		return true
	}
	*word |= bit
	return false
}

// advance moves the floor up, forgetting the words wholly below it.
func (s *seenSet) advance(floor uint64) {
	s.floor = floor
	drop := (floor - s.base) / 64
	if drop == 0 {
		return
	}
	s.base += drop * 64
	if live := uint64(len(s.bits) - s.head); drop >= live {
		s.bits, s.head = s.bits[:0], 0
		return
	}
	s.head += int(drop)
	if s.head > len(s.bits)/2 {
		s.bits = s.bits[:copy(s.bits, s.bits[s.head:])]
		s.head = 0
	}
}

// dedup is the reader's memory of the streams it got messages from, with
// the last one looked up kept at hand (a burst comes from one stream).
// Owned by the reader goroutine.
type dedup struct {
	sets    map[streamKey]*seenSet
	last    streamKey
	lastSet *seenSet
}

func (d *dedup) set(from *wire.Deliver) *seenSet {
	k := streamKey{from.FromCluster, from.FromNode, from.Stream, from.Flags & (wire.FlagDurable | wire.FlagHigh)}
	if d.lastSet != nil && k == d.last {
		return d.lastSet
	}
	s := d.sets[k]
	if s == nil {
		if d.sets == nil {
			d.sets = map[streamKey]*seenSet{}
		}
		s = &seenSet{}
		d.sets[k] = s
	}
	d.last, d.lastSet = k, s
	return s
}

// seen records a delivery and reports whether this client got it before.
// Messages without a Seq (at-most-once, local) are never duplicates.
func (d *dedup) seen(m *wire.Deliver) bool {
	if m.Seq == 0 {
		return false
	}
	return d.set(m).add(m.Seq, m.Floor)
}

// dispatch hands a delivery to its mailbox, dropping a reliable or durable
// message this client already got. Called by the reader (or restore,
// before it runs).
func (c *Client) dispatch(d *wire.Deliver) {
	if c.seen.seen(d) {
		c.duplicates.Add(1)
		return
	}
	if c.routeReply(d) {
		return
	}
	c.mmu.Lock()
	mb := c.mailboxes[d.Mailbox]
	c.mmu.Unlock()
	if mb != nil {
		mb.push(d)
	}
}

// dispatchBatch hands the deliveries of a batch to their mailbox, in
// order, without those this client already got, and returns how many the
// batch held. Called by the reader.
func (c *Client) dispatchBatch(b *wire.DeliverBatch) int {
	c.mmu.Lock()
	mb := c.mailboxes[b.Mailbox]
	c.mmu.Unlock()
	if b.Seq == 0 {
		if mb != nil {
			mb.pushBatch(b)
		}
		return b.Payloads.Count()
	}
	set := c.seen.set(&wire.Deliver{FromCluster: b.FromCluster, FromNode: b.FromNode, Stream: b.Stream, Flags: b.Flags})
	var dups []int // rare: after a restart of the daemon
	n := 0
	for rest := b.Payloads; len(rest) > 0; n++ {
		_, rest = rest.Next()
		if set.add(b.Seq+uint64(n), b.Floor) {
			dups = append(dups, n)
		}
	}
	if mb == nil {
		return n
	}
	if len(dups) == 0 {
		mb.pushBatch(b)
		return n
	}
	c.duplicates.Add(uint64(len(dups)))
	i := 0
	for rest := b.Payloads; len(rest) > 0; i++ {
		var p []byte
		p, rest = rest.Next()
		if len(dups) > 0 && dups[0] == i {
			dups = dups[1:]
			continue
		}
		d := b.Deliver(i, p)
		mb.push(&d)
	}
	return n
}
