package daemon

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/wire"
)

// The hold: reliable messages from other nodes that cannot be handed to a
// client now wait here, instead of being dropped or holding up their link
// lane for everyone:
//
//   - for room at their mailbox's client (local.inbox_full: park), keyed
//     by the mailbox;
//   - for a member of their group on this node (after a restart of this
//     node, its consumers are reconnecting; or the mailbox they were for
//     is gone), keyed by the group. When the group has no member here but
//     one elsewhere, a message is routed on to it (by its strategy and
//     key), except during groups.rejoin_grace after this node starts:
//     then it waits for its consumer here, which gets it in order and
//     whose client drops what it had already taken, where the member
//     elsewhere would get it behind newer messages, and again.
//
// A held message is not acknowledged (recvlane.go): its sender's buffer
// keeps it, so a crash of this node loses nothing, and the sender's
// backlog shows the wait. Messages for one key leave in the order they
// came, and a message for a mailbox or group with held messages queues
// behind them, so order per sender and mailbox is kept.
//
// A held message leaves when it is delivered (then it is done once its
// client confirms it), when its TTL or the buffer's max_age ends, or when
// it was for an address (not a group) whose mailbox is gone; the last two
// are counted by reason. The hold is bounded per node by
// local.hold_bytes and local.hold_messages; a link lane that brings more
// past them waits (waitRoom) until messages leave.

// holdKey names what held messages wait for.
type holdKey struct {
	mailbox uint64 // room at this mailbox's client; 0: a member of group
	group   string
}

// heldMsg is one message in the hold.
type heldMsg struct {
	dm     wire.Deliver // owns its payload
	ref    confirmRef
	rt     routing   // how its group send was routed (the zero value: closest)
	ttl    time.Time // when its TTL ends (zero: none)
	expiry time.Time // when it is discarded: its TTL, or the buffer's max_age (zero: never)
}

// hold is the node's hold; its drain goroutine (run) owns the delivery of
// what it holds.
type hold struct {
	d *Daemon

	mu     sync.Mutex            // guards the fields below
	queues map[holdKey][]heldMsg // in arrival order per key
	bytes  int                   // payload bytes held
	room   chan struct{}         // closed when messages leave, for lanes waiting; nil if none waits
	n      atomic.Int64          // messages held, read without mu on the delivery path
	wake   chan struct{}         // capacity 1: messages came in
	done   []confirmRef          // run's scratch: refs settled in a pass
	keys   []holdKey             // run's scratch

	// graceEnd is when groups.rejoin_grace ends: set by start, before the
	// drain runs; read only after.
	graceEnd time.Time

	// What left other than to a client, by reason (status; the metrics
	// count them too): guarded by mu.
	expired, undeliverable, routedOn uint64
}

func newHold(d *Daemon) *hold {
	return &hold{d: d, queues: map[holdKey][]heldMsg{}, wake: make(chan struct{}, 1)}
}

// start marks the daemon's start, now: the rejoin grace runs from it.
func (h *hold) start(now time.Time) {
	h.graceEnd = now.Add(h.d.cfg.Groups.RejoinGrace)
}

// rejoining reports whether the rejoin grace still runs: a group message
// with no member on this node waits for one instead of being routed to
// another node.
func (h *hold) rejoining() bool {
	return h.d.cfg.Groups.RejoinGrace > 0 && h.d.now().Before(h.graceEnd)
}

// waiting reports whether messages are held for key, so that one more for
// it must queue behind them.
func (h *hold) waiting(key holdKey) bool {
	if h.n.Load() == 0 {
		return false
	}
	h.mu.Lock()
	_, ok := h.queues[key]
	h.mu.Unlock()
	return ok
}

// park holds m (its payload copied) for key. The bound is checked before,
// by the link lane (waitRoom): park itself never refuses.
func (h *hold) park(key holdKey, m *wire.Deliver, ref confirmRef, rt *routing) {
	hm := heldMsg{dm: *m, ref: ref}
	hm.dm.Payload, hm.dm.Headers = bytes.Clone(m.Payload), bytes.Clone(m.Headers)
	if rt != nil {
		hm.rt = *rt
	}
	if m.TTL > 0 {
		hm.ttl = h.d.now().Add(wire.TTLDuration(m.TTL))
		hm.expiry = hm.ttl
	}
	if age := h.d.cfg.Buffer.MaxAge; age > 0 {
		if exp := h.d.now().Add(age); hm.expiry.IsZero() || exp.Before(hm.expiry) {
			hm.expiry = exp
		}
	}
	h.mu.Lock()
	h.queues[key] = append(h.queues[key], hm)
	h.bytes += len(m.Payload)
	h.n.Add(1)
	h.mu.Unlock()
	h.d.metrics.held.Inc()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// status returns what the hold holds and what left it other than to a
// client.
func (h *hold) status() HoldStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return HoldStatus{Messages: int(h.n.Load()), Bytes: h.bytes, MaxMessages: h.d.cfg.Local.HoldMessages, MaxBytes: h.d.cfg.Local.HoldBytes,
		Expired: h.expired, Undeliverable: h.undeliverable, RoutedOn: h.routedOn}
}

// full reports whether the hold is at its bound.
func (h *hold) full() bool {
	if n := h.n.Load(); n == 0 {
		return false
	} else if n < int64(h.d.cfg.Local.HoldMessages) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.bytes >= h.d.cfg.Local.HoldBytes
	}
	return true
}

// waitRoom waits until the hold is under its bound; false if ctx ended.
func (h *hold) waitRoom(ctx context.Context) bool {
	for {
		h.mu.Lock()
		if int(h.n.Load()) < h.d.cfg.Local.HoldMessages && h.bytes < h.d.cfg.Local.HoldBytes {
			h.mu.Unlock()
			return true
		}
		if h.room == nil {
			h.room = make(chan struct{})
		}
		room := h.room
		h.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return false
		}
	}
}

// holdPoll is how often the drain looks again at what waits for room at a
// client (a client makes room when it confirms; the drain does not wait on
// each client).
const holdPoll = 5 * time.Millisecond

// run drains the hold until ctx ends: after messages come in, after a
// change of the group registry, and every holdPoll while it holds any
// (so also soon after the rejoin grace ends).
func (h *hold) run(ctx context.Context) {
	t := time.NewTicker(holdPoll)
	defer t.Stop()
	for {
		changed := h.d.groups.Changed()
		if h.n.Load() == 0 {
			select {
			case <-h.wake:
			case <-ctx.Done():
				return
			}
		} else {
			select {
			case <-h.wake:
			case <-changed:
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
		h.drain()
	}
}

// drain delivers what can be delivered, in order per key, and settles what
// expired or has nowhere to go.
func (h *hold) drain() {
	d := h.d
	now := d.now()
	h.mu.Lock()
	h.keys = h.keys[:0]
	for k := range h.queues {
		h.keys = append(h.keys, k)
	}
	var moved []heldMsg // for mailboxes that are gone, to wait for their group
	out, outBytes := 0, 0
	for _, k := range h.keys {
		q := h.queues[k]
		i := 0
	queue:
		for ; i < len(q); i++ {
			m := &q[i]
			switch {
			case !m.expiry.IsZero() && now.After(m.expiry):
				d.metrics.dropped.WithLabelValues("expired_held").Inc()
				h.expired++
				h.done = append(h.done, m.ref)
			default:
				switch h.deliverHeld(k, m) {
				case heldWait:
					break queue
				case heldGone:
					d.metrics.dropped.WithLabelValues("no_mailbox").Inc()
					h.undeliverable++
					m.ref.p.reportUndeliverable(1)
					h.done = append(h.done, m.ref)
				case heldToGroup:
					moved = append(moved, *m)
					continue // still held
				case heldRerouted:
					d.metrics.reroutedRemote.Inc()
					h.routedOn++
					h.done = append(h.done, m.ref)
				}
			}
			out++
			outBytes += len(m.dm.Payload)
		}
		clear(q[:i])
		if i == len(q) {
			delete(h.queues, k)
		} else {
			h.queues[k] = q[i:]
		}
	}
	for _, m := range moved {
		k := holdKey{group: m.dm.Group}
		h.queues[k] = append(h.queues[k], m)
	}
	h.bytes -= outBytes
	h.n.Add(-int64(out))
	if out > 0 && h.room != nil {
		close(h.room)
		h.room = nil
	}
	done := h.done
	h.done = h.done[:0]
	h.mu.Unlock()
	d.metrics.held.Sub(float64(out))
	for _, r := range done {
		r.p.completeOne(r.inc, int(r.lane), r.seq)
	}
	clear(done)
}

// Outcomes of deliverHeld.
const (
	heldSent     = iota // queued to its client: done once the client confirms it
	heldWait            // no room yet, or no member yet: it and those behind it wait
	heldGone            // for an address whose mailbox is gone: undeliverable
	heldToGroup         // its mailbox is gone: it waits for a member of its group
	heldRerouted        // routed again, to its group's member on another node
)

// deliverHeld tries to hand m, held for k, to its client. Called under h.mu.
func (h *hold) deliverHeld(k holdKey, m *heldMsg) int {
	d := h.d
	var mb *mailbox
	if k.mailbox != 0 {
		if mb = d.localMailbox(k.mailbox, "", nil); mb == nil {
			if m.dm.Group != "" {
				return heldToGroup
			}
			return heldGone
		}
	} else {
		var out int
		if mb, out = h.memberFor(k.group, m); mb == nil {
			return out
		}
	}
	if mb.id != m.dm.Mailbox {
		m.dm.Mailbox = mb.id
		d.metrics.rerouted.Inc()
	}
	if !mb.c.deliver(&m.dm, nil, &m.ref, false, false) {
		return heldWait
	}
	mb.delivered.Add(1)
	d.metrics.delivered.Inc()
	return heldSent
}

// memberFor finds where m, held for group, goes: a mailbox on this node, or
// else (nil, heldRerouted) its group's member on another node, by its send's
// strategy and key, to whose node's buffer it was handed; (nil, heldWait) if
// the group has no member to take it now, or none on this node during the
// rejoin grace. Called under h.mu.
func (h *hold) memberFor(group string, m *heldMsg) (*mailbox, int) {
	d := h.d
	if m.rt.strategy == wire.StrategyBroadcast { // one copy per member was sent: no other member's
		if mb := d.localMailbox(0, group, nil); mb != nil {
			return mb, heldSent
		}
		return nil, heldWait
	}
	if h.rejoining() && d.localMailbox(0, group, nil) == nil {
		return nil, heldWait // this node's consumers may be rejoining: wait for them
	}
	var t groups.Member
	if m.rt.strategy == wire.StrategyClosest {
		if mb := d.localMailbox(0, group, nil); mb != nil {
			return mb, heldSent
		}
		var ok bool
		if t, ok = d.groups.Closest(group); !ok {
			return nil, heldWait
		}
	} else {
		ms, err := d.groups.Pick(group, strategyFromWire(m.rt.strategy), m.rt.key, d.backlog)
		if err != nil || len(ms) == 0 {
			return nil, heldWait
		}
		t = ms[0]
	}
	if d.isLocal(t) {
		if mb := d.localMailbox(t.Mailbox, "", nil); mb != nil {
			return mb, heldSent
		}
		return nil, heldWait
	}
	if !h.reroute(t, m) {
		return nil, heldWait
	}
	return nil, heldRerouted
}

// reroute hands m to the buffer of member t's node, with its strategy, key
// and origin; false if that buffer refused it (it stays held).
func (h *hold) reroute(t groups.Member, m *heldMsg) bool {
	d := h.d
	p := d.peer(t.Cluster, t.Node)
	if p == nil {
		return false
	}
	bm := buffer.Message{Lane: m.ref.lane, Flags: m.dm.Flags & wire.FlagReply, To: t.Mailbox, From: m.dm.From, Group: m.dm.Group,
		Corr: m.dm.Corr, Payload: m.dm.Payload, Headers: m.dm.Headers, Deadline: m.ttl,
		Route: &buffer.Route{Strategy: m.rt.strategy, Key: m.rt.key, OriginCluster: m.dm.FromCluster, OriginNode: m.dm.FromNode}}
	return p.queue.EnqueueCopy(&bm, d.now()) == nil
}
