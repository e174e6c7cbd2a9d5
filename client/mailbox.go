package client

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wandist/wandist/internal/wire"
)

// Addr is a mailbox's address: cluster/node/id.
type Addr struct {
	Cluster string
	Node    string
	Mailbox uint64
}

func (a Addr) String() string {
	return a.Cluster + "/" + a.Node + "/" + strconv.FormatUint(a.Mailbox, 10)
}

// IsZero reports whether a is the zero address.
func (a Addr) IsZero() bool { return a == Addr{} }

// ParseAddr parses "cluster/node/id".
func ParseAddr(s string) (Addr, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return Addr{}, fmt.Errorf("address %q: want cluster/node/id", s)
	}
	id, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil || id == 0 {
		return Addr{}, fmt.Errorf("address %q: id must be a positive integer", s)
	}
	return Addr{Cluster: parts[0], Node: parts[1], Mailbox: id}, nil
}

// Message is one received message.
type Message struct {
	From  Addr   // sender's mailbox (Mailbox 0: an anonymous sender on that node)
	Group string // the group it was sent to, "" for a direct send
	// Payload is the receiver's to keep and modify. A small payload (under
	// 1 KiB) shares a 16 KiB block with the payloads delivered around it,
	// and the block stays in memory while any of them is referenced: copy a
	// small payload that is kept for long while the others are dropped.
	Payload []byte
	// Headers are the headers it was sent with (WithHeaders), nil if none.
	Headers Headers

	corr     uint64    // request: the caller's correlation id
	deadline time.Time // request: when its caller stops waiting (zero: no TTL)
	mb       *Mailbox  // the mailbox it arrived in (replies are sent from it)
}

// Mailbox is an address that receives messages. Safe for concurrent use.
type Mailbox struct {
	c    *Client
	addr Addr
	max  int
	hold bool // Options.HoldWhenFull

	mu      sync.Mutex       // guards the inbox, addr and groups
	groups  map[string]int   // joins per group, re-done after a reconnect
	claims  map[string]claim // partitions claimed per group
	inbox   []*Message
	head    int
	bytes   int
	closed  bool
	dropped uint64
	wake    chan struct{} // capacity 1: a message arrived, or the inbox closed
	room    chan struct{} // capacity 1: Receive took a message, or the inbox closed
}

// Addr returns the mailbox's address. It changes when the client
// reconnects to a restarted daemon.
func (m *Mailbox) Addr() Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addr
}

func (m *Mailbox) id() uint64 { return m.Addr().Mailbox }

func (m *Mailbox) setID(id uint64) {
	m.mu.Lock()
	m.addr.Mailbox = id
	m.mu.Unlock()
}

// joined returns a copy of the mailbox's join counts.
func (m *Mailbox) joined() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.groups))
	for g, n := range m.groups {
		out[g] = n
	}
	return out
}

func (m *Mailbox) countJoin(group string, d int) {
	m.mu.Lock()
	m.groups[group] += d
	if m.groups[group] <= 0 {
		delete(m.groups, group)
		delete(m.claims, group)
	}
	m.mu.Unlock()
}

// claim is a partition claim, kept for re-joining after a reconnect.
type claim struct {
	n     uint64
	parts []uint64
}

func (m *Mailbox) claimOf(group string) claim {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.claims[group]
}

// Dropped returns how many deliveries were dropped because the inbox was full.
func (m *Mailbox) Dropped() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropped
}

// pushBatch is push for each message of a batch, in order, under one
// lock (released only to wait for room under HoldWhenFull).
func (m *Mailbox) pushBatch(b *wire.DeliverBatch) {
	added, hold, i := false, m.hold || b.Seq != 0, 0
	m.mu.Lock()
	for rest := b.Payloads; len(rest) > 0; {
		var p []byte
		p, rest = rest.Next()
		if m.waitRoomLocked(len(p), added, hold) {
			added = false
		}
		if m.closed || m.bytes+len(p) > m.max && (!hold || m.bytes > 0) {
			m.dropped++
			i++
			continue
		}
		d := b.Deliver(i, p)
		i++
		m.inbox = append(m.inbox, newMessage(&m.c.alloc, &d, m))
		m.bytes += len(p)
		added = true
	}
	m.mu.Unlock()
	if added {
		m.wakeReceiver()
	}
}

// waitRoomLocked, under HoldWhenFull, waits until the inbox has room for
// size more bytes (m.mu is released meanwhile), or the client ends. The
// reader (the caller) so holds up its connection; an empty inbox takes any
// one message, so a message larger than the bound cannot hold it forever.
// With wake, it first wakes the receiver, whose reading makes the room; it
// reports whether it did.
func (m *Mailbox) waitRoomLocked(size int, wake, hold bool) (woke bool) {
	for hold && !m.closed && m.bytes > 0 && m.bytes+size > m.max {
		m.mu.Unlock()
		if wake && !woke {
			m.wakeReceiver()
			woke = true
		}
		select {
		case <-m.room:
		case <-m.c.stop:
		case <-m.c.done:
		}
		m.mu.Lock()
		if isDone(m.c.stop) || isDone(m.c.done) {
			return woke
		}
	}
	return woke
}

func (m *Mailbox) wakeReceiver() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Mailbox) push(d *wire.Deliver) {
	msg := newMessage(&m.c.alloc, d, m)
	hold := m.hold || d.Seq != 0
	m.mu.Lock()
	m.waitRoomLocked(len(msg.Payload), false, hold)
	if m.closed || m.bytes+len(msg.Payload) > m.max && (!hold || m.bytes > 0) {
		m.dropped++
		m.mu.Unlock()
		return
	}
	m.inbox = append(m.inbox, msg)
	m.bytes += len(msg.Payload)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Mailbox) closeInbox() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	for _, ch := range []chan struct{}{m.wake, m.room} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Receive returns the next message, waiting until one arrives, ctx ends, or
// the client closes (ErrClosed, or the reason the connection ended).
func (m *Mailbox) Receive(ctx context.Context) (*Message, error) {
	for {
		m.mu.Lock()
		if m.head < len(m.inbox) {
			msg := m.inbox[m.head]
			m.inbox[m.head] = nil
			m.head++
			m.bytes -= len(msg.Payload)
			if m.head == len(m.inbox) {
				m.inbox, m.head = m.inbox[:0], 0
			} else if m.head > 1024 && m.head*2 > len(m.inbox) {
				n := copy(m.inbox, m.inbox[m.head:])
				clear(m.inbox[n:])
				m.inbox, m.head = m.inbox[:n], 0
			}
			m.mu.Unlock()
			select { // a reader may wait for room (a reliable message, or HoldWhenFull)
			case m.room <- struct{}{}:
			default:
			}
			return msg, nil
		}
		closed := m.closed
		m.mu.Unlock()
		if closed {
			if err := m.c.Err(); err != nil {
				return nil, err
			}
			return nil, ErrClosed
		}
		select {
		case <-m.wake:
		case <-ctx.Done():
			return nil, ctxError(ctx.Err())
		}
	}
}

// Join adds the mailbox to group (once more: joins are counted, like pg).
func (m *Mailbox) Join(ctx context.Context, group string) error {
	req := m.c.reqSeq.Add(1)
	err := m.c.call(ctx, req, &wire.Join{Req: req, Mailbox: m.id(), Group: group})
	if err == nil {
		m.countJoin(group, 1)
	}
	return err
}

// JoinPartitions adds the mailbox to a partitioned group of n partitions,
// owning the given partitions (each < n). Every member of the group must use
// the same n. A send WithKey(k) goes to an owner of partition [KeyHash](k) mod n.
func (m *Mailbox) JoinPartitions(ctx context.Context, group string, n int, partitions ...int) error {
	ps := make([]uint64, len(partitions))
	for i, p := range partitions {
		if p < 0 || p >= n {
			return &Error{Kind: ErrBadRequest, Message: fmt.Sprintf("partition %d out of range [0, %d)", p, n)}
		}
		ps[i] = uint64(p)
	}
	req := m.c.reqSeq.Add(1)
	err := m.c.call(ctx, req, &wire.Join{Req: req, Mailbox: m.id(), Group: group, PartitionCount: uint64(n), Partitions: ps})
	if err == nil {
		m.mu.Lock()
		m.claims[group] = claim{n: uint64(n), parts: ps}
		m.mu.Unlock()
		m.countJoin(group, 1)
	}
	return err
}

// Leave undoes one Join.
func (m *Mailbox) Leave(ctx context.Context, group string) error {
	req := m.c.reqSeq.Add(1)
	err := m.c.call(ctx, req, &wire.Leave{Req: req, Mailbox: m.id(), Group: group})
	if err == nil {
		m.countJoin(group, -1)
	}
	return err
}

// Close removes the mailbox: it leaves all its groups.
func (m *Mailbox) Close(ctx context.Context) error {
	req := m.c.reqSeq.Add(1)
	id := m.id()
	err := m.c.call(ctx, req, &wire.CloseMailbox{Req: req, Mailbox: id})
	m.c.mmu.Lock()
	delete(m.c.mailboxes, id)
	m.c.mmu.Unlock()
	m.closeInbox()
	return err
}

// Send sends payload to the address to, from this mailbox.
func (m *Mailbox) Send(ctx context.Context, to Addr, payload []byte, opts ...SendOption) error {
	return m.c.send(ctx, m.id(), Target{Addr: to}, payload, opts)
}

// SendGroup sends payload to one member of group, from this mailbox.
func (m *Mailbox) SendGroup(ctx context.Context, group string, payload []byte, opts ...SendOption) error {
	return m.c.send(ctx, m.id(), Target{Group: group}, payload, opts)
}
