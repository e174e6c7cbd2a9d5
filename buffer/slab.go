package buffer

import (
	"bytes"
	"sync"
)

// EnqueueCopy copies each message it accepts, and its payload when small,
// into blocks instead of an allocation each: a sender's daemon copies every
// message it accepts (the read buffer it came in is reused), and an
// allocation per 128-byte message, in fresh memory scattered over the heap,
// was a tenth of its CPU time; then the garbage collections that the
// allocations paid for were a third (a daemon's heap is small, so at a
// million messages a second it collected a hundred times a second).
//
// So the blocks are recycled. A block counts the messages (or payloads) in
// it that the queue holds; once the lane has moved on to another block and
// the count is back to zero, the block is free again: it goes to a pool
// (sync.Pool, shared by the queues) that the next blocks come from. A lane
// releases its messages in order (cumulative acks; at-most-once messages as
// they are sent), so blocks free up in the order they filled.
//
// A link writer reads the messages Next handed it after Next returned, and
// a message it holds may leave the queue meanwhile (an ack from an older
// link, a TTL that ran out after a Rewind). So a block freed while any
// batch handed out by Next is outstanding waits (pending) until every such
// batch is Done. A caller of Next that never calls Done is safe: nothing is
// recycled then, and blocks go to the garbage collector.
const (
	slabBlock = 16 << 10 // bytes in a payload block
	slabMax   = 2 << 10  // larger payloads get an allocation of their own
	msgBlock  = 64       // Messages in a message block (about 170 bytes each)
	// maxPending bounds the blocks of each kind a queue keeps for reuse
	// while batches are out (beyond, they go to the garbage collector).
	maxPending = 64
)

var (
	msgBlocks     = sync.Pool{New: func() any { return new(msgBlk) }}
	payloadBlocks = sync.Pool{New: func() any { return new(payloadBlk) }}
)

// msgBlk is a block of Messages. Guarded by the queue's lock.
type msgBlk struct {
	msgs [msgBlock]Message
	next int // Messages handed out
	blockCount
}

// payloadBlk is a block of payload bytes. Guarded by the queue's lock.
type payloadBlk struct {
	buf  [slabBlock]byte
	used int // bytes handed out
	blockCount
}

// blockCount is what tells that a block is free: the lane has moved on to
// another block (closed), and none of the queue's messages is in it.
type blockCount struct {
	live   int  // messages (or payloads) in the block still held by the queue
	closed bool // the lane moved on to another block
}

// close marks the block as no longer the lane's; it reports whether the
// block is free now. Only here, and when its last message leaves, is a
// block freed: it is freed once.
func (c *blockCount) close() bool {
	c.closed = true
	return c.live == 0
}

// release counts a message (or payload) leaving the queue; it reports
// whether the block is free now.
func (c *blockCount) release() bool {
	c.live--
	return c.live == 0 && c.closed
}

// recycler takes a queue's free blocks of one kind: to the pool at once,
// or, while batches handed out by Next are outstanding, to pending (at most
// maxPending; beyond, the garbage collector takes them) until they are all
// Done.
type recycler[T any] struct {
	pool    *sync.Pool
	pending []*T
}

func (r *recycler[T]) free(b *T, leases int) {
	switch {
	case leases == 0:
		r.pool.Put(b)
	case len(r.pending) < maxPending:
		r.pending = append(r.pending, b)
	}
}

// flush gives the pending blocks to the pool (no batch is outstanding).
func (r *recycler[T]) flush() {
	for _, b := range r.pending {
		r.pool.Put(b)
	}
	clear(r.pending)
	r.pending = r.pending[:0]
}

// copyPayload sets m's payload to a copy of p, in the lane's current block
// when p is small (m records the block). The copy's capacity is its
// length: an append cannot spill into the next payload. Called with the
// queue's lock held.
func (q *Queue) copyPayload(l *lane, m *Message, p []byte) {
	m.Payload, m.pb = nil, nil
	if len(p) == 0 {
		return
	}
	if len(p) > slabMax {
		m.Payload = make([]byte, len(p))
		copy(m.Payload, p)
		return
	}
	b := l.pb
	if b == nil || slabBlock-b.used < len(p) {
		if b != nil && b.close() {
			q.payloads.free(b, q.leases)
		}
		b = payloadBlocks.Get().(*payloadBlk)
		b.used, b.blockCount = 0, blockCount{}
		l.pb = b
	}
	out := b.buf[b.used : b.used+len(p) : b.used+len(p)]
	copy(out, p)
	b.used += len(p)
	b.live++
	m.Payload, m.pb = out, b
}

// copyIn returns a copy of m with payload p, in the lane's blocks. Called
// with the queue's lock held.
func (q *Queue) copyIn(l *lane, m *Message, p []byte) *Message {
	c, b := q.newMessage(l)
	*c = *m
	c.mb = b
	if len(m.Headers) > 0 {
		c.Headers = bytes.Clone(m.Headers) // rare: not worth a block
	}
	q.copyPayload(l, c, p)
	return c
}

// newMessage returns a Message slot from the lane's current block, and the
// block. Called with the queue's lock held.
func (q *Queue) newMessage(l *lane) (*Message, *msgBlk) {
	b := l.mb
	if b == nil || b.next == msgBlock {
		if b != nil && b.close() {
			q.messages.free(b, q.leases)
		}
		b = msgBlocks.Get().(*msgBlk)
		b.next, b.blockCount = 0, blockCount{}
		l.mb = b
	}
	m := &b.msgs[b.next]
	b.next++
	b.live++
	return m, b
}

// releaseLocked is called once m leaves the queue for good: its blocks may
// be free again. Calling it again does nothing.
func (q *Queue) releaseLocked(m *Message) {
	if b := m.mb; b != nil {
		m.mb = nil
		if b.release() {
			q.messages.free(b, q.leases)
		}
	}
	if b := m.pb; b != nil {
		m.pb = nil
		if b.release() {
			q.payloads.free(b, q.leases)
		}
	}
}

// Done tells the queue that the caller has finished reading the messages
// of the last non-empty batch Next returned to it: their blocks may be
// reused once they leave the queue. Call it once per non-empty batch (a
// link writer calls it once it has encoded the batch).
func (q *Queue) Done() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.leases == 0 {
		return
	}
	q.leases--
	if q.leases == 0 {
		q.messages.flush()
		q.payloads.flush()
	}
}

// push appends m to the lane's messages. Acks take messages off the front
// of l.msgs, so the window moves along its backing array; when it reaches
// the end, it slides back to the front of the array if it fills at most
// half of it, instead of appending into a new, larger array (which, at a
// backlog of a few thousand messages, meant an allocation per few dozen
// messages). A window under an eighth of a large array moves to a smaller
// one, so that a backlog once large does not keep its array.
func (l *lane) push(m *Message) {
	if len(l.msgs) == cap(l.msgs) && len(l.store) > 0 && len(l.msgs) <= len(l.store)/2 {
		if len(l.store) > 1024 && len(l.msgs) < len(l.store)/8 {
			store := make([]*Message, max(1024, 4*len(l.msgs)))
			n := copy(store, l.msgs)
			clear(l.msgs)
			l.store, l.msgs = store, store[:n]
		} else {
			n := copy(l.store, l.msgs)
			clear(l.store[n:]) // the old window's places: no stale pointers
			l.msgs = l.store[:n]
		}
	}
	c := cap(l.msgs)
	l.msgs = append(l.msgs, m)
	if cap(l.msgs) != c { // a new array
		l.store = l.msgs[:cap(l.msgs)]
	}
}
