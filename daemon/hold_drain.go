package daemon

import (
	"errors"

	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/wire"
)

// hold_drain.go: the hold's drain pass, which hands held messages on.
//
// A group's held messages leave in the order they came, each once it has
// somewhere to go, and a message that must wait holds up the ones behind
// it, with one exception: a message routed by key to a partition of a
// partitioned group that has no owner (its owner left with it unconfirmed)
// holds up only the later messages of its partition. The other
// partitions' messages go on to their owners; its own wait for a new
// owner, in order, or for their TTL or buffer.max_age.

// drain delivers what can be delivered, in order per key, and settles what
// expired or has nowhere to go.
func (h *hold) drain() {
	d := h.d
	h.mu.Lock()
	h.keys = h.keys[:0]
	for k := range h.queues {
		h.keys = append(h.keys, k)
	}
	var moved []heldMsg // for mailboxes that are gone, to wait for their group
	out, outBytes := 0, 0
	for _, k := range h.keys {
		q := h.queues[k]
		kept, n, nb := h.drainQueue(k, q, &moved)
		out, outBytes = out+n, outBytes+nb
		clear(q[len(kept):])
		if len(kept) == 0 {
			delete(h.queues, k)
		} else {
			h.queues[k] = kept
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

// drainQueue delivers what it can of q, held for k, in order: it returns
// what stays held, in order (in q's array), and the count and payload
// bytes of what left. Messages whose mailbox is gone are appended to moved
// (they stay held, for their group). Called under h.mu.
func (h *hold) drainQueue(k holdKey, q []heldMsg, moved *[]heldMsg) (kept []heldMsg, out, outBytes int) {
	d := h.d
	now := d.now()
	kept = q[:0]
	var stalled unownedParts // partitions without an owner, in this pass
	wait := false            // a message waits: those behind it too
	for i := range q {
		m := &q[i]
		switch {
		case wait:
			kept = append(kept, *m)
			continue
		case !m.expiry.IsZero() && now.After(m.expiry):
			d.metrics.dropped.WithLabelValues("expired_held").Inc()
			h.expired++
			h.done = append(h.done, m.ref)
		case stalled.holds(m):
			kept = append(kept, *m)
			continue
		default:
			switch h.deliverHeld(k, m) {
			case heldWait:
				wait = true
				kept = append(kept, *m)
				continue
			case heldNoOwner:
				stalled.add(h.noOwner)
				kept = append(kept, *m)
				continue
			case heldGone:
				d.metrics.dropped.WithLabelValues("no_mailbox").Inc()
				h.undeliverable++
				m.ref.p.reportUndeliverable(1)
				h.done = append(h.done, m.ref)
			case heldToGroup:
				*moved = append(*moved, *m)
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
	return kept, out, outBytes
}

// unownedParts is the set of partitions of a group found without an owner
// in a drain pass: the later messages of those partitions wait behind the
// first one. The zero value is empty.
type unownedParts struct {
	n     uint64 // the group's number of partitions
	parts map[uint64]struct{}
}

func (u *unownedParts) add(e groups.NoOwnerError) {
	if u.parts == nil {
		u.parts = map[uint64]struct{}{}
	}
	u.n = e.N
	u.parts[e.Partition] = struct{}{}
}

// holds reports whether m is routed by key to one of the partitions.
func (u *unownedParts) holds(m *heldMsg) bool {
	if len(u.parts) == 0 || m.rt.strategy != wire.StrategyKey {
		return false
	}
	_, ok := u.parts[groups.Partition(m.rt.key, u.n)]
	return ok
}

// Outcomes of deliverHeld.
const (
	heldSent     = iota // queued to its client: done once the client confirms it
	heldWait            // no room yet, or no member yet: it and those behind it wait
	heldGone            // for an address whose mailbox is gone: undeliverable
	heldToGroup         // its mailbox is gone: it waits for a member of its group
	heldRerouted        // routed again, to its group's member on another node
	heldNoOwner         // keyed to a partition without an owner (h.noOwner): it and its partition's later messages wait
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
// strategy and key, to whose node's buffer it was handed; (nil,
// heldNoOwner) if its key's partition has no owner (set in h.noOwner);
// (nil, heldWait) if the group has no member to take it now, or none on
// this node during the rejoin grace. Called under h.mu.
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
		if no := (*groups.NoOwnerError)(nil); errors.As(err, &no) {
			h.noOwner = *no
			return nil, heldNoOwner
		}
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
