package daemon

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

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
// behind them, so order per sender and mailbox is kept; only a message
// keyed to a partition without an owner lets those of other partitions
// pass it (hold_drain.go).
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
	// noOwner is run's scratch: the partition memberFor found without an
	// owner (heldNoOwner).
	noOwner groups.NoOwnerError

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
