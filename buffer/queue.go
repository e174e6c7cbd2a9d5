// Package buffer holds the bounded outbound queue that stands in front of
// every remote node: messages wait there while the link is down, stay there
// until the peer acknowledges them, and are handed again to the link after a
// reconnect. A full queue answers at once with ErrBusy (or drops its oldest
// message, by policy); the sender is never suspended.
package buffer

import (
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"
)

// Lanes. Each lane has its own sequence numbers and its own stream on a link.
const (
	LaneNormal  = 0
	LaneHigh    = 1
	LaneDurable = 2 // durable messages: Seqs are assigned by the caller (the spool), not by Enqueue
	NumLanes    = 3
)

// Policy says what Enqueue does when the queue is full.
type Policy int

const (
	// Reject fails the new message with ErrBusy (the default).
	Reject Policy = iota
	// DropOldest discards the oldest queued message of the same lane that
	// has not been sent yet, counted as DropOverflow, and accepts the new one.
	DropOldest
)

// ParsePolicy maps a config word to a Policy.
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "", "reject":
		return Reject, nil
	case "drop-oldest":
		return DropOldest, nil
	}
	return Reject, fmt.Errorf("overflow policy %q: want reject or drop-oldest", s)
}

// ErrBusy is returned by Enqueue when the queue is full under the Reject
// policy (like Erlang's send_nosuspend returning false).
var ErrBusy = errors.New("buffer: destination busy (outbound buffer full)")

// ErrBadAck is returned by Ack for a sequence number never queued.
var ErrBadAck = errors.New("buffer: ack of a sequence number never sent")

// ErrExpired is returned by Enqueue for a message whose TTL has already run out.
var ErrExpired = errors.New("buffer: message expired before it was queued")

// Limits bound a queue. The zero value means: 64 MiB, 1,000,000 messages,
// no age limit, Reject.
type Limits struct {
	MaxBytes    int64         // payload and header bytes held (sent or not, until acked); default 64 MiB
	MaxMessages int           // messages held; default 1,000,000
	MaxAge      time.Duration // a message older than this is discarded unsent; 0 = none
	Overflow    Policy        // default Reject
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = 64 << 20
	}
	if l.MaxMessages <= 0 {
		l.MaxMessages = 1_000_000
	}
	return l
}

// Message is one queued message. The queue owns it after Enqueue.
type Message struct {
	Seq      uint64    // set by Enqueue for reliable messages (per lane, from 1); 0 for at-most-once
	Lane     uint8     // LaneNormal or LaneHigh
	Flags    uint64    // wire.Data flags
	To       uint64    // destination mailbox
	From     uint64    // source mailbox
	Group    string    // group it was sent to, if any
	Corr     uint64    // request-reply correlation id, 0 if none
	Payload  []byte    // owned by the queue
	Headers  []byte    // the message's header block (wire.FlagHeaders), nil for none; owned by the queue
	Enqueued time.Time // set by Enqueue
	Deadline time.Time // zero = no TTL
	Route    *Route    // a group send's routing (nil: closest, or not a group send); read only

	dead bool        // guarded by Queue.mu: dropped unsent, a tombstone
	mb   *msgBlk     // guarded by Queue.mu: the block m is in (EnqueueCopy), nil once released
	pb   *payloadBlk // guarded by Queue.mu: the block its payload is in, nil if none or released
}

// size is what m counts towards the queue's bytes: its payload and its
// headers.
func (m *Message) size() int64 { return int64(len(m.Payload) + len(m.Headers)) }

// Route is how a group send was routed, carried with the message so that
// its receiving node can route it again; and, for a message a node routed
// on, the node it came from first. Read only once queued.
type Route struct {
	Strategy      uint8 // wire.Strategy*
	Key           string
	OriginCluster string
	OriginNode    string
}

// FlagAtMostOnce in Message.Flags marks a message that is never
// retransmitted (wire.FlagAtMostOnce: the daemon checks that the two agree).
const FlagAtMostOnce uint64 = 1 << 0

// AtMostOnce reports whether the message is never retransmitted.
func (m *Message) AtMostOnce() bool { return m.Flags&FlagAtMostOnce != 0 }

// Drop reasons, the keys of Stats.Dropped.
const (
	DropOverflow = "overflow"  // drop-oldest made room
	DropExpired  = "ttl"       // TTL ran out before sending
	DropMaxAge   = "max_age"   // older than Limits.MaxAge
	DropReset    = "discarded" // Discard was called (peer gone for good)
	DropTaken    = "taken"     // Take handed it on (to be routed elsewhere)
)

// Stats are a queue's figures, cheap to read.
type Stats struct {
	Messages    int               // held (unsent + sent but unacked)
	Bytes       int64             // payload and header bytes held
	Unsent      int               // not yet handed to a link
	OldestAge   time.Duration     // age of the oldest held message
	Enqueued    uint64            // accepted by Enqueue
	Rejected    uint64            // ErrBusy answers
	Sent        uint64            // handed to a link (first time)
	Redelivered uint64            // handed to a link again after a reconnect
	Acked       uint64            // removed by an ack
	Dequeued    uint64            // left the queue delivered: acked, or sent at most once
	Dropped     map[string]uint64 // discarded, by reason
}

type lane struct {
	msgs     []*Message  // held messages in Seq order (with tombstones); msgs[:sent] were handed to the link
	store    []*Message  // msgs's backing array, whole (len = cap); msgs is a window of it (push)
	sent     int         // index of the next message to hand out
	unsent   int         // messages at or after sent that are not tombstones (Stats.Unsent)
	dead     int         // tombstones in msgs (dropped before they were sent)
	nextSeq  uint64      // next reliable Seq to assign
	resent   uint64      // after Rewind: messages with Seq <= resent are redeliveries
	inflight int64       // payload bytes handed out since the last Rewind and not yet acked (reliable messages)
	mb       *msgBlk     // the block EnqueueCopy copies messages into (slab.go)
	pb       *payloadBlk // the block EnqueueCopy copies small payloads into
}

// Queue is a bounded per-destination queue with per-lane sequence numbers.
// It is safe for concurrent use: any goroutine may Enqueue; the link writer
// of each lane calls Next; the link reader calls Ack.
type Queue struct {
	limits Limits // guarded by mu (SetLimits changes it)
	now    func() time.Time
	notify [NumLanes]chan struct{} // capacity 1 each: wakes the lane's link writer

	mu    sync.Mutex // guards everything below
	lanes [NumLanes]lane
	count int
	bytes int64
	st    Stats
	gen   uint64 // generation: bumped by Rewind; Next for an older one returns nothing

	// Recycled blocks (slab.go).
	leases   int                  // batches handed out by Next and not yet Done
	messages recycler[msgBlk]     // free message blocks
	payloads recycler[payloadBlk] // free payload blocks
}

// New returns an empty queue. now may be nil (time.Now).
func New(limits Limits, now func() time.Time) *Queue {
	if now == nil {
		now = time.Now
	}
	q := &Queue{limits: limits.withDefaults(), now: now}
	q.messages.pool, q.payloads.pool = &msgBlocks, &payloadBlocks
	for i := range q.lanes {
		q.lanes[i].nextSeq = 1
		q.notify[i] = make(chan struct{}, 1)
	}
	q.st.Dropped = map[string]uint64{}
	return q
}

// Limits returns the queue's limits with defaults applied.
func (q *Queue) Limits() Limits {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.limits
}

// Notify returns a channel that receives a value whenever new messages of
// the lane may be ready for Next. It has capacity 1: several wake-ups may
// merge into one.
func (q *Queue) Notify(lane int) <-chan struct{} { return q.notify[lane] }

func (q *Queue) wake(lane int) {
	select {
	case q.notify[lane] <- struct{}{}:
	default:
	}
}

// Enqueue adds m. It never blocks: a full queue answers ErrBusy at once
// (Reject) or makes room by dropping the oldest unsent message of m's lane
// (DropOldest). It assigns m.Seq for reliable messages.
func (q *Queue) Enqueue(m *Message) error {
	now := q.now()
	size := m.size()
	if err := q.admit(m, now); err != nil {
		return err
	}
	defer q.mu.Unlock()
	if err := q.roomLocked(m.Lane, size, now); err != nil {
		return err
	}
	q.addLocked(&q.lanes[m.Lane], m, now, size)
	q.wake(int(m.Lane))
	return nil
}

// EnqueueCopy is Enqueue for a message that arrived at now (a time read
// from the queue's clock a moment earlier, shared by the messages of one
// read) and that the caller will reuse, payload included: once the message
// is accepted, the queue holds a copy of it and of its payload (see
// slab.go), and m itself is not kept, nor is its Seq set.
//
// Its body repeats Enqueue's on purpose: Enqueue keeps m, so m escapes to
// the heap there; here it does not, and a caller's Message stays on its
// stack (one allocation per send fewer).
func (q *Queue) EnqueueCopy(m *Message, now time.Time) error {
	size := m.size()
	if err := q.admit(m, now); err != nil {
		return err
	}
	defer q.mu.Unlock()
	if err := q.roomLocked(m.Lane, size, now); err != nil {
		return err
	}
	l := &q.lanes[m.Lane]
	q.addLocked(l, q.copyIn(l, m, m.Payload), now, size)
	q.wake(int(m.Lane))
	return nil
}

// EnqueueCopyBatch is EnqueueCopy for a run of messages that are tmpl but
// for their payloads, in order, under one lock. It returns how many it
// accepted: all of them, or those before the first it refused, with the
// reason (the rest are not tried).
func (q *Queue) EnqueueCopyBatch(tmpl *Message, payloads iter.Seq[[]byte], now time.Time) (int, error) {
	if err := q.admit(tmpl, now); err != nil {
		return 0, err
	}
	defer q.mu.Unlock()
	l := &q.lanes[tmpl.Lane]
	n := 0
	defer func() {
		if n > 0 {
			q.wake(int(tmpl.Lane))
		}
	}()
	for p := range payloads {
		size := int64(len(p))
		if err := q.roomLocked(tmpl.Lane, size, now); err != nil {
			return n, err
		}
		q.addLocked(l, q.copyIn(l, tmpl, p), now, size)
		n++
	}
	return n, nil
}

// admit checks m's lane and deadline; when they are good it returns with
// q.mu locked.
func (q *Queue) admit(m *Message, now time.Time) error {
	if int(m.Lane) >= NumLanes {
		return fmt.Errorf("buffer: lane %d out of range", m.Lane)
	}
	q.mu.Lock()
	if !m.Deadline.IsZero() && !now.Before(m.Deadline) {
		q.st.Dropped[DropExpired]++
		q.mu.Unlock()
		return ErrExpired
	}
	return nil
}

// roomLocked makes room for a message of size bytes in lane ln, or answers
// ErrBusy.
func (q *Queue) roomLocked(ln uint8, size int64, now time.Time) error {
	if q.count+1 <= q.limits.MaxMessages && q.bytes+size <= q.limits.MaxBytes {
		return nil
	}
	q.expireHeadLocked(now)
	full := q.count+1 > q.limits.MaxMessages || q.bytes+size > q.limits.MaxBytes
	if full && q.limits.Overflow == DropOldest {
		full = !q.dropOldestLocked(ln, size)
	}
	for i := range q.lanes {
		q.compactLocked(&q.lanes[i])
	}
	if full {
		q.st.Rejected++
		return ErrBusy
	}
	return nil
}

// addLocked appends the admitted message m to lane l; the caller then
// wakes the lane's writer.
func (q *Queue) addLocked(l *lane, m *Message, now time.Time, size int64) {
	m.Enqueued = now
	if !m.AtMostOnce() {
		m.Seq = l.nextSeq
		l.nextSeq++
	} else {
		m.Seq = 0
	}
	l.push(m)
	l.unsent++
	q.count++
	q.bytes += size
	q.st.Enqueued++
}

// handedOut reports whether m, held at or after l.sent, was handed to a link
// before the latest Rewind (and so still awaits its ack).
func (l *lane) handedOut(m *Message) bool { return m.Seq != 0 && m.Seq <= l.resent }

// dropOldestLocked makes room for a new message of size bytes in lane ln by
// discarding the oldest messages of the lane that were never handed to a
// link. It drops nothing and reports false when dropping all of them would
// still not make room.
func (q *Queue) dropOldestLocked(ln uint8, size int64) bool {
	if size > q.limits.MaxBytes {
		return false
	}
	l := &q.lanes[ln]
	needN, needB := q.count+1-q.limits.MaxMessages, q.bytes+size-q.limits.MaxBytes
	last := -1
	for i := l.sent; i < len(l.msgs) && (needN > 0 || needB > 0); i++ {
		if m := l.msgs[i]; !m.dead && !l.handedOut(m) {
			needN--
			needB -= m.size()
			last = i
		}
	}
	if needN > 0 || needB > 0 {
		return false
	}
	for i := l.sent; i <= last; i++ {
		if m := l.msgs[i]; !m.dead && !l.handedOut(m) {
			q.killLocked(l, i, DropOverflow)
		}
	}
	return true
}

// killLocked turns msgs[i] (at or after l.sent) into a tombstone, counted
// under reason. Tombstones are skipped by Next, trimmed by Ack, and compacted
// away (compactLocked) when they outnumber the live messages, so they never
// hold memory unbounded.
func (q *Queue) killLocked(l *lane, i int, reason string) {
	m := l.msgs[i]
	if i >= l.sent {
		l.unsent--
	}
	m.dead = true
	q.count--
	q.bytes -= m.size()
	if !l.handedOut(m) {
		// A link writer that got m before a Rewind may still be reading
		// its payload: only a never-sent message lets it go at once.
		m.Payload = nil
	}
	l.dead++
	if reason != "" {
		q.st.Dropped[reason]++
	}
}

// compactLocked removes the lane's tombstones once they outnumber the live
// messages. Indexes into l.msgs are not stable across it.
func (q *Queue) compactLocked(l *lane) {
	if l.dead <= 64 || l.dead <= len(l.msgs)/2 {
		return
	}
	j, sent := 0, l.sent
	for k, m := range l.msgs {
		if m.dead {
			q.releaseLocked(m)
			if k < l.sent {
				sent--
			}
			continue
		}
		l.msgs[j] = m
		j++
	}
	clear(l.msgs[j:])
	l.msgs = l.msgs[:j]
	l.sent = sent
	l.dead = 0
}

// expireHeadLocked drops never-sent messages at the front of each lane whose
// max age ran out (they are in enqueue order, so it stops at the first young
// one). Messages handed out before a Rewind are kept, as Next keeps them.
func (q *Queue) expireHeadLocked(now time.Time) {
	if q.limits.MaxAge <= 0 {
		return
	}
	for li := range q.lanes {
		l := &q.lanes[li]
		for i := l.sent; i < len(l.msgs); i++ {
			m := l.msgs[i]
			if m.dead || l.handedOut(m) {
				continue
			}
			if now.Sub(m.Enqueued) < q.limits.MaxAge {
				break
			}
			q.killLocked(l, i, DropMaxAge)
		}
	}
}

// Next appends to dst up to max messages of the lane that were not handed
// out since the last Rewind, and marks them handed out. Expired messages are
// discarded on the way (TTL always; max age only if never sent before).
// At-most-once messages leave the queue here. gen must be the value the
// latest Rewind returned: a writer of a replaced link gets nothing, so it
// cannot take messages meant for the new link.
func (q *Queue) Next(gen uint64, ln int, max int, dst []*Message) []*Message {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	if gen != q.gen {
		return dst
	}
	l := &q.lanes[ln]
	n0 := len(dst)
	for len(dst) < max && l.sent < len(l.msgs) {
		m := l.msgs[l.sent]
		if m.dead {
			l.sent++
			continue
		}
		again := l.handedOut(m)
		if !m.Deadline.IsZero() && !now.Before(m.Deadline) {
			q.killLocked(l, l.sent, DropExpired)
			continue
		}
		if !again && q.limits.MaxAge > 0 && now.Sub(m.Enqueued) >= q.limits.MaxAge {
			q.killLocked(l, l.sent, DropMaxAge)
			continue
		}
		l.unsent--
		if len(dst) == n0 {
			// Until the caller's Done: the messages handed out stay in
			// their blocks even if they leave the queue (below, for
			// at-most-once ones).
			q.leases++
		}
		dst = append(dst, m)
		if again {
			q.st.Redelivered++
		} else {
			q.st.Sent++
		}
		if !m.AtMostOnce() {
			l.inflight += m.size()
		}
		if m.AtMostOnce() {
			// never retransmitted: it leaves the queue now.
			q.st.Dequeued++
			q.count--
			q.bytes -= m.size()
			m.dead = true
			l.dead++
		}
		l.sent++
	}
	q.trimLocked(l)
	q.compactLocked(l)
	return dst
}

// Ready reports whether Next(gen, ln, ...) would find a message to hand out
// now (an expired one counts too: Next discards it). A link starts a lane's
// writer, and opens its stream, only once the lane is Ready.
func (q *Queue) Ready(gen uint64, ln int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if gen != q.gen {
		return false
	}
	l := &q.lanes[ln]
	for _, m := range l.msgs[l.sent:] {
		if !m.dead {
			return true
		}
	}
	return false
}

// trimLocked drops tombstones at the front of the lane.
func (q *Queue) trimLocked(l *lane) {
	n := 0
	for n < l.sent && l.msgs[n].dead {
		q.releaseLocked(l.msgs[n])
		n++
	}
	if n > 0 {
		clear(l.msgs[:n])
		l.msgs = l.msgs[n:]
		l.sent -= n
		l.dead -= n
	}
}

// Ack removes every message of the lane with Seq <= seq. It returns an error
// for an ack of a sequence number never queued.
func (q *Queue) Ack(ln int, seq uint64) error {
	if ln < 0 || ln >= NumLanes {
		return fmt.Errorf("buffer: ack for lane %d out of range", ln)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	l := &q.lanes[ln]
	if seq >= l.nextSeq {
		return fmt.Errorf("%w: seq %d on lane %d, but only up to %d was ever queued", ErrBadAck, seq, ln, l.nextSeq-1)
	}
	// An at-most-once message (Seq 0) still held was never handed out: an
	// ack does not cover it, nor anything queued after it.
	n := 0
	for n < len(l.msgs) && (l.msgs[n].dead || (l.msgs[n].Seq != 0 && l.msgs[n].Seq <= seq)) {
		m := l.msgs[n]
		q.releaseLocked(m)
		if m.dead {
			l.dead--
		} else {
			if n >= l.sent {
				l.unsent-- // acknowledged before it went out again (after a Rewind)
			}
			if n < l.sent {
				l.inflight -= m.size()
			}
			q.bytes -= m.size()
			q.count--
			q.st.Acked++
			q.st.Dequeued++
		}
		n++
	}
	clear(l.msgs[:n])
	l.msgs = l.msgs[n:]
	l.sent = max(0, l.sent-n)
	if n > 0 {
		q.wake(ln) // a writer may wait for room in flight
	}
	return nil
}

// InFlight returns the payload bytes of the lane handed to the current link
// and not yet acknowledged.
func (q *Queue) InFlight(lane int) int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lanes[lane].inflight
}

// Rewind makes every held message of every lane eligible for Next again:
// called when a new link to the destination comes up, so whatever the old
// link did not get acknowledged is sent again (the receiver drops duplicates).
// It returns the new generation, to pass to Next.
func (q *Queue) Rewind() uint64 {
	q.mu.Lock()
	q.gen++
	gen := q.gen
	for i := range q.lanes {
		l := &q.lanes[i]
		for k := l.sent - 1; k >= 0; k-- {
			if !l.msgs[k].dead && l.msgs[k].Seq > l.resent {
				l.resent = l.msgs[k].Seq
				break
			}
		}
		for _, m := range l.msgs[:l.sent] {
			if !m.dead {
				l.unsent++
			}
		}
		l.sent = 0
		l.inflight = 0
	}
	q.mu.Unlock()
	for i := range q.lanes {
		q.wake(i)
	}
	return gen
}

// Discard drops every held message of the normal and high lanes (the
// destination is gone for good) and returns how many.
// Durable messages stay: the spool holds them and they were confirmed.
func (q *Queue) Discard() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.clearLocked()
	q.st.Dropped[DropReset] += uint64(n)
	return n
}

// Take hands every held message of the normal and high lanes to fn, in
// Seq order per lane (normal first), then removes them as Discard does,
// counted as taken: the destination is gone, and its messages go
// elsewhere. fn runs under the queue's lock: it must copy what it keeps
// (the payload is the queue's) and must not call q. Durable messages stay.
func (q *Queue) Take(fn func(*Message)) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range q.lanes {
		if i == LaneDurable {
			continue
		}
		for _, m := range q.lanes[i].msgs {
			if !m.dead {
				fn(m)
			}
		}
	}
	n := q.clearLocked()
	q.st.Dropped[DropTaken] += uint64(n)
	return n
}

// clearLocked removes every message of the normal and high lanes and
// returns how many were live.
func (q *Queue) clearLocked() int {
	n := 0
	for i := range q.lanes {
		if i == LaneDurable {
			continue
		}
		l := &q.lanes[i]
		for _, m := range l.msgs {
			if !m.dead {
				n++
				q.count--
				q.bytes -= m.size()
			}
			q.releaseLocked(m)
		}
		clear(l.msgs)
		l.msgs = l.msgs[:0]
		l.sent, l.dead, l.inflight, l.unsent = 0, 0, 0, 0
	}
	return n
}

// Stats returns a copy of the queue's figures.
func (q *Queue) Stats() Stats {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.st
	s.Dropped = make(map[string]uint64, len(q.st.Dropped))
	for k, v := range q.st.Dropped {
		s.Dropped[k] = v
	}
	s.Messages, s.Bytes = q.count, q.bytes
	for i := range q.lanes {
		l := &q.lanes[i]
		s.Unsent += l.unsent
		for _, m := range l.msgs {
			if !m.dead {
				if age := now.Sub(m.Enqueued); age > s.OldestAge {
					s.OldestAge = age
				}
				break
			}
		}
	}
	return s
}
