package daemon

import (
	"errors"
	"fmt"
	"time"

	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/wire"
)

// Sends from local clients: routing to a mailbox or a group member, and
// queueing in the destination node's buffer.

// handleSend sends m and answers it (a quiet send only if it failed; a
// durable one once it is on disk). m is not kept: its payload aliases the
// read buffer.
func (c *localClient) handleSend(m *wire.Send) {
	if m.From != 0 && c.mailboxes[m.From] == nil {
		c.result(m.Req, wire.StatusNoMailbox, fmt.Sprintf("send from mailbox %d, which is not yours", m.From))
		return
	}
	var reply func(uint8, string)
	if m.Flags&wire.FlagDurable != 0 {
		req := m.Req
		reply = func(st uint8, msg string) { c.result(req, st, msg) }
	}
	st, msg := c.d.send(m, c.now, &c.route, reply)
	quiet := m.Flags&(wire.FlagQuiet|wire.FlagDurable) == wire.FlagQuiet
	if st != statusPending && (st != wire.StatusOK || !quiet) {
		c.result(m.Req, st, msg)
	}
}

// handleSendBatch sends each message of the batch, in order, as a quiet
// Send: only a failure is answered (with the batch's Req).
func (c *localClient) handleSendBatch(b *wire.SendBatch) {
	if b.Flags&wire.FlagQuiet == 0 || b.Flags&wire.FlagDurable != 0 {
		c.result(b.Req, wire.StatusBadRequest, fmt.Sprintf("SendBatch of %d messages with flags %#x: a batch must be quiet and not durable (a durable or answered send goes alone)", b.Payloads.Count(), b.Flags))
		return
	}
	skip := c.sendBatchRouted(b)
	for p := range b.Payloads.All() {
		if skip > 0 {
			skip--
			continue
		}
		c.send = b.Send(p)
		c.handleSend(&c.send)
	}
}

// sendBatchRouted is the fast path of a batch: routed once (to the address,
// or the member Closest picks for the whole batch) and queued under one
// lock. It applies to a batch from one of the client's mailboxes (or
// none), to an address or a group by the Closest strategy, on another
// node. It returns how many messages it dealt with, from the first: those
// it queued, and the first it refused (answered here); the rest, all of
// them if it does not apply, take the path of single sends.
func (c *localClient) sendBatchRouted(b *wire.SendBatch) int {
	d := c.d
	if b.From != 0 && c.mailboxes[b.From] == nil || len(b.Payloads) > d.maxMessage() {
		return 0
	}
	cluster, node, to := b.Cluster, b.Node, b.Mailbox
	if b.Group != "" {
		if b.Strategy != wire.StrategyClosest || validGroup(b.Group) != nil {
			return 0
		}
		t, ok := d.groups.ClosestCached(b.Group, &c.route.closest)
		if !ok {
			return 0
		}
		cluster, node, to = t.Cluster, t.Node, t.Mailbox
	}
	if cluster == d.cfg.Cluster && node == d.cfg.Node {
		return 0
	}
	p := d.peerCached(&c.route, cluster, node)
	if p == nil {
		return 0
	}
	lane := uint8(buffer.LaneNormal)
	if b.Flags&wire.FlagHigh != 0 {
		lane = buffer.LaneHigh
	}
	tmpl := buffer.Message{Lane: lane, Flags: b.Flags &^ (wire.FlagHigh | wire.FlagQuiet), To: to, From: b.From, Group: b.Group}
	if b.TTL > 0 {
		tmpl.Deadline = c.now.Add(time.Duration(b.TTL) * time.Millisecond)
	}
	n, err := p.queue.EnqueueCopyBatch(&tmpl, b.Payloads.All(), c.now)
	if err != nil {
		st, msg := d.enqueueStatus(err, cluster, node)
		c.result(b.Req, st, msg)
		n++
	}
	return n
}

// maxMessage is the largest payload accepted: a frame minus room for headers.
func (d *Daemon) maxMessage() int { return d.cfg.Link.MaxFrameSize - 64<<10 }

// send routes one message from a local client, received at now, through
// the client's route cache rc (nil: none). A durable send answers later,
// through reply, once the message is on disk: then send returns
// statusPending.
func (d *Daemon) send(m *wire.Send, now time.Time, rc *routeCache, reply func(uint8, string)) (uint8, string) {
	if len(m.Payload) > d.maxMessage() {
		return wire.StatusTooLarge, fmt.Sprintf("payload of %d bytes exceeds the limit of %d", len(m.Payload), d.maxMessage())
	}
	if m.Flags&wire.FlagDurable != 0 && d.spool == nil {
		return wire.StatusBadRequest, "durable delivery needs a spool, and this node has none configured (spool.dir)"
	}
	if m.Group != "" {
		if err := validGroup(m.Group); err != nil {
			return wire.StatusBadRequest, err.Error()
		}
		if m.Strategy == wire.StrategyClosest { // the common case: no lock held exclusively, no allocation
			var t groups.Member
			var ok bool
			if rc != nil {
				t, ok = d.groups.ClosestCached(m.Group, &rc.closest)
			} else {
				t, ok = d.groups.Closest(m.Group)
			}
			if !ok {
				return wire.StatusNoMembers, fmt.Sprintf("group %q has no members", m.Group)
			}
			return d.sendTo(m, now, rc, t.Cluster, t.Node, t.Mailbox, reply)
		}
		targets, err := d.groups.Pick(m.Group, groups.Strategy(m.Strategy), m.Key, d.backlog)
		switch {
		case errors.Is(err, groups.ErrNoMembers):
			if m.Strategy == wire.StrategyKey {
				return wire.StatusNoMembers, fmt.Sprintf("group %q has no owner for key %q", m.Group, m.Key)
			}
			return wire.StatusNoMembers, fmt.Sprintf("group %q has no members", m.Group)
		case err != nil:
			return wire.StatusBadRequest, fmt.Sprintf("strategy %d: %v", m.Strategy, err)
		}
		if len(targets) > 1 {
			return d.broadcast(m, now, targets)
		}
		return d.sendTo(m, now, rc, targets[0].Cluster, targets[0].Node, targets[0].Mailbox, reply)
	}
	return d.sendTo(m, now, rc, m.Cluster, m.Node, m.Mailbox, reply)
}

// broadcast sends m to every target; it answers OK if all accepted it, else
// the first failure (the others were sent). Durable broadcasts are refused.
func (d *Daemon) broadcast(m *wire.Send, now time.Time, targets []groups.Member) (uint8, string) {
	if m.Flags&wire.FlagDurable != 0 {
		return wire.StatusBadRequest, "durable broadcast is not supported: send to each member"
	}
	st, msg := wire.StatusOK, ""
	for _, t := range targets {
		s, e := d.sendTo(m, now, nil, t.Cluster, t.Node, t.Mailbox, nil)
		if s != wire.StatusOK && st == wire.StatusOK {
			st, msg = s, fmt.Sprintf("%s/%s/%d: %s", t.Cluster, t.Node, t.Mailbox, e)
		}
	}
	return st, msg
}

// backlog is the number of messages queued towards a node (0 for this one).
func (d *Daemon) backlog(cluster, node string) int {
	if p := d.peer(cluster, node); p != nil {
		return p.queue.Stats().Messages
	}
	return 0
}

// sendTo sends m to one mailbox address, looking the peer up through rc
// (nil: no cache).
func (d *Daemon) sendTo(m *wire.Send, now time.Time, rc *routeCache, cluster, node string, to uint64, reply func(uint8, string)) (uint8, string) {
	var deadline time.Time
	if m.TTL > 0 {
		deadline = now.Add(time.Duration(m.TTL) * time.Millisecond)
	}
	if cluster == d.cfg.Cluster && node == d.cfg.Node {
		ok, found := d.deliverLocal(&wire.Deliver{Mailbox: to, FromCluster: d.cfg.Cluster, FromNode: d.cfg.Node, From: m.From, Group: m.Group, Payload: m.Payload,
			Corr: m.Corr, Flags: m.Flags & wire.FlagReply, TTL: m.TTL}, nil, false, false, nil)
		switch {
		case !found:
			return wire.StatusNoMailbox, fmt.Sprintf("no mailbox %d on %s/%s", to, cluster, node)
		case !ok:
			return wire.StatusBusy, fmt.Sprintf("inbox of mailbox %d is full", to)
		}
		return wire.StatusOK, ""
	}
	p := d.peerCached(rc, cluster, node)
	if p == nil {
		return wire.StatusUnreachable, fmt.Sprintf("%s/%s is not a peer of %s/%s", cluster, node, d.cfg.Cluster, d.cfg.Node)
	}
	lane := uint8(buffer.LaneNormal)
	if m.Flags&wire.FlagHigh != 0 {
		lane = buffer.LaneHigh
	}
	bm := buffer.Message{ // on the stack: EnqueueCopy keeps a copy
		Lane: lane, Flags: m.Flags &^ (wire.FlagHigh | wire.FlagQuiet), To: to, From: m.From, Group: m.Group, Corr: m.Corr,
		Payload: m.Payload, Deadline: deadline, // the payload aliases the read buffer until EnqueueCopy copies it
	}
	if m.Flags&wire.FlagDurable != 0 {
		dm := bm
		dm.Lane, dm.Flags, dm.Payload = buffer.LaneDurable, wire.FlagDurable, append([]byte(nil), m.Payload...)
		return d.sendDurable(p, &dm, reply)
	}
	return d.enqueueStatus(p.queue.EnqueueCopy(&bm, now), cluster, node)
}

// enqueueStatus answers a send with the outcome of queueing it towards
// cluster/node (err from buffer.Queue), counting a refusal for want of room.
func (d *Daemon) enqueueStatus(err error, cluster, node string) (uint8, string) {
	switch {
	case errors.Is(err, buffer.ErrBusy):
		d.metrics.busy.Inc()
		return wire.StatusBusy, fmt.Sprintf("buffer for %s/%s is full", cluster, node)
	case errors.Is(err, buffer.ErrExpired):
		return wire.StatusBadRequest, "ttl ran out before the message was queued"
	case err != nil:
		return wire.StatusBadRequest, err.Error()
	}
	return wire.StatusOK, ""
}
