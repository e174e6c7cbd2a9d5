package daemon

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/internal/wire"
)

// mailbox is a local address that messages are delivered to.
type mailbox struct {
	id        uint64
	c         *localClient
	delivered atomic.Uint64
	dropped   atomic.Uint64
	removed   atomic.Bool // set before it leaves d.mailboxes (a mailboxCache may hold it)
}

// mailboxCache is one goroutine's memory of the last mailbox it looked up:
// a link's data reader, whose stream mostly goes to one mailbox, looks it
// up in d.mailboxes once instead of once or twice per message. The zero
// value is empty.
type mailboxCache struct {
	id uint64
	mb *mailbox // nil: empty
}

func (d *Daemon) removeMailbox(id uint64) {
	if v, ok := d.mailboxes.Load(id); ok {
		v.(*mailbox).removed.Store(true)
	}
	d.mailboxes.Delete(id)
	d.groups.RemoveMailbox(id)
}

// deliverRemote hands a message received on a link to its mailbox. stream
// is the sender's incarnation (reliable) or durable stream id, floor the
// lane's floor (acceptDelivery).
//
// handled (durable) runs once the message is written to its client or
// dropped; ref (reliable) is marked done once the client confirms it. It
// returns ok false if the message was dropped (counted): then the caller
// marks ref done, once it no longer holds the peer's recvMu; found false if
// its mailbox (or group member) does not exist here.
//
// Under local.inbox_full: hold the caller has waited for room (holdForRoom),
// so the message is not dropped for a full buffer.
func (d *Daemon) deliverRemote(from auth.PeerID, stream, floor uint64, m *wire.Data, handled func(), ref *confirmRef, now bool, mc *mailboxCache) (ok, found bool) {
	if m.Group != "" && !d.exported(m.Group, from.Cluster) {
		// This node never published the group to that cluster.
		d.metrics.dropped.WithLabelValues("not_exported").Inc()
		d.warnPeer(from, "not_exported", "message to a group not exported to the sender's cluster dropped (counted in wandist_messages_dropped_total)",
			"group", abbrevGroup(m.Group))
		if handled != nil {
			handled()
		}
		return false, true
	}
	dm := &wire.Deliver{Mailbox: m.To, FromCluster: from.Cluster, FromNode: from.Node, From: m.From, Group: m.Group, Payload: m.Payload,
		Corr: m.Corr, Flags: m.Flags & wire.FlagReply, TTL: m.TTL, Headers: m.Headers}
	var rt *routing
	if m.Flags&wire.FlagRouted != 0 {
		rt = &routing{strategy: m.Strategy, key: m.Key}
		if m.OriginCluster != "" { // routed on by the peer: From is a mailbox of the origin
			dm.FromCluster, dm.FromNode = m.OriginCluster, m.OriginNode
		}
	}
	if m.Seq != 0 {
		dm.Stream, dm.Seq, dm.Floor = stream, m.Seq, floor
		switch {
		case m.Flags&wire.FlagDurable != 0:
			dm.Flags |= wire.FlagDurable
		case ref != nil && ref.lane == buffer.LaneHigh:
			dm.Flags |= wire.FlagHigh
		}
	}
	return d.deliverLocal(dm, handled, ref, rt, d.cfg.Local.InboxFull == configs.InboxHold, now, mc)
}

// routing is how a group send from another node was routed (wire.Data's
// Strategy and Key): what the hold needs to route it again.
type routing struct {
	strategy uint8
	key      string
}

// deliverLocal hands a message to a local mailbox: found is false if there
// is no such mailbox, ok false if its client's buffer is full (counted).
// A message for a mailbox that is gone but sent to a group goes to another
// local member of that group (the mailbox may have died with an earlier run
// of this node, or its client reconnected).
//
// handled, if not nil, runs once the message is dealt with: written to its
// client's connection, or dropped (counted). It is never run for a message
// queued to a client whose connection ends before the write. ref, if not
// nil, is done once the client confirms the message; if the message is
// dropped, marking it done is the caller's.
//
// force skips the client's buffer bound (see localClient.deliver). mc, if
// not nil, is the caller's mailbox cache.
func (d *Daemon) deliverLocal(m *wire.Deliver, handled func(), ref *confirmRef, rt *routing, force, now bool, mc *mailboxCache) (ok, found bool) {
	mb := d.localMailbox(m.Mailbox, m.Group, mc)
	if ref != nil {
		if held, found := d.holdIfWaiting(m, ref, rt, mb); held {
			return true, found
		}
	}
	if mb == nil {
		d.metrics.dropped.WithLabelValues("no_mailbox").Inc()
		if handled != nil {
			handled()
		}
		return false, false
	}
	if mb.id != m.Mailbox {
		m.Mailbox = mb.id
		d.metrics.rerouted.Inc()
	}
	if !mb.c.deliver(m, handled, ref, force, now) {
		if ref != nil && d.cfg.Local.InboxFull == configs.InboxPark {
			d.hold.park(holdKey{mailbox: mb.id}, m, *ref, rt)
			return true, true
		}
		mb.dropped.Add(1)
		d.metrics.dropped.WithLabelValues("inbox_full").Inc()
		if handled != nil {
			handled()
		}
		return false, true
	}
	mb.delivered.Add(1)
	d.metrics.delivered.Inc()
	return true, true
}

// holdIfWaiting puts a reliable message from another node in the hold
// (hold.go) if it must wait or be routed again: its group has no member
// on this node (yet), its mailbox is gone and it was routed by a strategy
// of its own (the hold routes it again by that strategy and key), or
// messages are held for its group or mailbox (it queues behind them). mb
// is the mailbox it would go to (nil: none). held reports whether it went
// in the hold, found whether its destination exists.
func (d *Daemon) holdIfWaiting(m *wire.Deliver, ref *confirmRef, rt *routing, mb *mailbox) (held, found bool) {
	gone := mb == nil || mb.id != m.Mailbox
	switch {
	case mb == nil && m.Group == "":
		return false, false // an address whose mailbox is gone: undeliverable
	case gone && (mb == nil || rt != nil), m.Group != "" && d.hold.waiting(holdKey{group: m.Group}):
		// Behind the group's held messages, even for a member that is
		// here now: it joined, and they go to it first.
		d.hold.park(holdKey{group: m.Group}, m, *ref, rt)
		return true, mb != nil
	case d.hold.waiting(holdKey{mailbox: mb.id}):
		m.Mailbox = mb.id
		d.hold.park(holdKey{mailbox: mb.id}, m, *ref, rt)
		return true, true
	}
	return false, true
}

// localMailbox returns the mailbox a message to mailbox id, sent to group,
// goes to on this node: that mailbox, or if it is gone (it died with an
// earlier run of this node, or its client reconnected) a local member of
// the group; nil if neither exists. mc (nil: none) is the caller's cache:
// the mailbox found by id is remembered there.
func (d *Daemon) localMailbox(id uint64, group string, mc *mailboxCache) *mailbox {
	if mc != nil && mc.mb != nil && mc.id == id && !mc.mb.removed.Load() {
		return mc.mb
	}
	v, _ := d.mailboxes.Load(id)
	mb, _ := v.(*mailbox)
	if mb != nil && mc != nil {
		mc.id, mc.mb = id, mb
	}
	if mb == nil && group != "" {
		if mem, ok := d.groups.Closest(group); ok && mem.Cluster == d.cfg.Cluster && mem.Node == d.cfg.Node {
			v, _ = d.mailboxes.Load(mem.Mailbox)
			mb, _ = v.(*mailbox)
		}
	}
	return mb
}

// holdForRoom waits until the client of the message's mailbox has room in
// its buffer, under local.inbox_full: hold, and for the durable lane under
// park too; under park, a reliable lane waits instead while the node's
// hold is full. It is false if ctx (the link) ended first: the message was
// not delivered, and the link's resume will bring it again. mc is as for
// localMailbox.
func (d *Daemon) holdForRoom(ctx context.Context, lane int, m *wire.Data, mc *mailboxCache) bool {
	switch mode := d.cfg.Local.InboxFull; {
	case mode == configs.InboxPark && lane != buffer.LaneDurable:
		if m.Seq != 0 && d.hold.full() {
			d.metrics.holdFullWaits.Inc()
			return d.hold.waitRoom(ctx)
		}
		return true
	case mode == configs.InboxDrop:
		return true
	}
	// A message rerouted to another local member (deliverLocal) waits for
	// that member's client.
	mb := d.localMailbox(m.To, m.Group, mc)
	if mb == nil {
		return true
	}
	return mb.c.waitRoom(ctx)
}

// waitDeliverable waits until m has somewhere to go on this node, for at most
// durableWait; it reports whether it has.
func (d *Daemon) waitDeliverable(ctx context.Context, fromCluster string, m *wire.Data) bool {
	if m.Group != "" && !d.exported(m.Group, fromCluster) {
		return true // dropped on delivery; nothing to wait for
	}
	var timer *time.Timer
	for {
		ch := d.groups.Changed()
		if d.localMailbox(m.To, m.Group, nil) != nil {
			return true
		}
		if m.Group == "" {
			return false
		}
		if timer == nil {
			timer = time.NewTimer(durableWait)
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// durableWait bounds how long a durable message waits for its mailbox (or a
// local member of its group) to appear.
const durableWait = 10 * time.Second
