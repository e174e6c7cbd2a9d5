package daemon

import (
	"errors"
	"fmt"
	"time"

	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/wire"
)

// Sends from local clients: routing to a mailbox or a group member, and
// queueing in the destination node's buffer.

// handleSend sends m and answers it: a quiet send only if it failed, a
// durable one through its own completion (sendDurable). m is not kept: its
// payload aliases the read buffer.
func (c *localClient) handleSend(m *wire.Send) {
	if m.From != 0 && c.mailboxes[m.From] == nil {
		c.answer(m.Req, refuse(errNoMailbox, "send from mailbox %d, which is not yours", m.From))
		return
	}
	if m.Flags&wire.FlagDurable != 0 {
		// Its Result comes from another goroutine, without waiting: the
		// reader waits here instead, before taking the request.
		if !c.awaitRoom() {
			return
		}
		req := m.Req
		c.d.sendDurable(m, c.now, &c.route, func(err error) { c.answerLater(req, err) })
		return
	}
	err := c.d.send(m, c.now, &c.route)
	if err != nil || m.Flags&wire.FlagQuiet == 0 {
		c.answer(m.Req, err)
	}
}

// handleSendBatch sends each message of the batch, in order, as a quiet
// Send: only a failure is answered (with the batch's Req).
func (c *localClient) handleSendBatch(b *wire.SendBatch) {
	if b.Flags&wire.FlagQuiet == 0 || b.Flags&wire.FlagDurable != 0 {
		c.answer(b.Req, refuse(errBadRequest, "SendBatch of %d messages with flags %#x: a batch must be quiet and not durable (a durable or answered send goes alone)", b.Payloads.Count(), b.Flags))
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
	lane, flags := queuedFlags(b.Flags)
	tmpl := buffer.Message{Lane: lane, Flags: flags, To: to, From: b.From, Group: b.Group}
	if b.TTL > 0 {
		tmpl.Deadline = c.now.Add(wire.TTLDuration(b.TTL))
	}
	n, err := p.queue.EnqueueCopyBatch(&tmpl, b.Payloads.All(), c.now)
	if err != nil {
		c.answer(b.Req, d.enqueueErr(err, cluster, node))
		n++
	}
	return n
}

// maxMessage is the largest payload accepted: a frame minus room for headers.
func (d *Daemon) maxMessage() int { return d.cfg.Link.MaxFrameSize - 64<<10 }

// send routes one message from a local client (not a durable one: see
// sendDurable), received at now, through the client's route cache rc (nil:
// none), and queues it towards its destination or delivers it here.
func (d *Daemon) send(m *wire.Send, now time.Time, rc *routeCache) error {
	if err := d.checkSend(m); err != nil {
		return err
	}
	t, all, err := d.route(m, rc)
	switch {
	case err != nil:
		return err
	case all != nil:
		return d.broadcast(m, now, all)
	}
	return d.sendTo(m, now, rc, t)
}

// checkSend refuses a send that no route can take.
func (d *Daemon) checkSend(m *wire.Send) error {
	if len(m.Payload) > d.maxMessage() {
		return refuse(errTooLarge, "payload of %d bytes exceeds the limit of %d", len(m.Payload), d.maxMessage())
	}
	if m.Flags&wire.FlagDurable != 0 && d.spool == nil {
		return refuse(errBadRequest, "durable delivery needs a spool, and this node has none configured (spool.dir)")
	}
	if m.Group != "" {
		if err := validGroup(m.Group); err != nil {
			return refuse(errBadRequest, "%v", err)
		}
	}
	return nil
}

// route returns where m goes: its address, or the member of its group that
// the group's strategy picks; all instead when the strategy picks several
// (Broadcast).
func (d *Daemon) route(m *wire.Send, rc *routeCache) (t groups.Member, all []groups.Member, err error) {
	if m.Group == "" {
		return groups.Member{Cluster: m.Cluster, Node: m.Node, Mailbox: m.Mailbox}, nil, nil
	}
	if m.Strategy == wire.StrategyClosest { // the common case: no lock held exclusively, no allocation
		var ok bool
		if rc != nil {
			t, ok = d.groups.ClosestCached(m.Group, &rc.closest)
		} else {
			t, ok = d.groups.Closest(m.Group)
		}
		if !ok {
			return t, nil, refuse(errNoMembers, "group %q has no members", m.Group)
		}
		return t, nil, nil
	}
	targets, err := d.groups.Pick(m.Group, strategyFromWire(m.Strategy), m.Key, d.backlog)
	switch {
	case errors.Is(err, groups.ErrNoMembers) && m.Strategy == wire.StrategyKey:
		return t, nil, refuse(errNoMembers, "group %q has no owner for key %q", m.Group, m.Key)
	case errors.Is(err, groups.ErrNoMembers):
		return t, nil, refuse(errNoMembers, "group %q has no members", m.Group)
	case err != nil:
		return t, nil, refuse(errBadRequest, "strategy %d: %v", m.Strategy, err)
	case len(targets) > 1:
		return t, targets, nil
	}
	return targets[0], nil, nil
}

// broadcast sends m to every target; it is nil if all accepted it, else
// the first failure (the others were sent).
func (d *Daemon) broadcast(m *wire.Send, now time.Time, targets []groups.Member) error {
	var first error
	for _, t := range targets {
		if err := d.sendTo(m, now, nil, t); err != nil && first == nil {
			st, msg := statusOf(err)
			first = &requestError{status: st, msg: fmt.Sprintf("%s/%s/%d: %s", t.Cluster, t.Node, t.Mailbox, msg)}
		}
	}
	return first
}

// backlog is the number of messages queued towards a node (0 for this one).
func (d *Daemon) backlog(cluster, node string) int {
	if p := d.peer(cluster, node); p != nil {
		return p.queue.Stats().Messages
	}
	return 0
}

// isLocal says whether t is a mailbox of this node.
func (d *Daemon) isLocal(t groups.Member) bool {
	return t.Cluster == d.cfg.Cluster && t.Node == d.cfg.Node
}

// sendLocal delivers m to mailbox t of this node.
func (d *Daemon) sendLocal(m *wire.Send, t groups.Member) error {
	ok, found := d.deliverLocal(&wire.Deliver{Mailbox: t.Mailbox, FromCluster: d.cfg.Cluster, FromNode: d.cfg.Node, From: m.From, Group: m.Group, Payload: m.Payload,
		Corr: m.Corr, Flags: m.Flags & wire.FlagReply, TTL: m.TTL, Headers: m.Headers}, nil, nil, nil, false, false, nil)
	switch {
	case !found:
		return refuse(errNoMailbox, "no mailbox %d on %s/%s", t.Mailbox, t.Cluster, t.Node)
	case !ok:
		return refuse(errBusy, "inbox of mailbox %d is full", t.Mailbox)
	}
	return nil
}

// peerOf returns the peer that mailbox t lives on, looked up through rc
// (nil: no cache).
func (d *Daemon) peerOf(rc *routeCache, t groups.Member) (*peer, error) {
	p := d.peerCached(rc, t.Cluster, t.Node)
	if p == nil {
		return nil, refuse(errUnreachable, "%s/%s is not a peer of %s/%s", t.Cluster, t.Node, d.cfg.Cluster, d.cfg.Node)
	}
	return p, nil
}

// outbound is m as it waits in a peer's buffer for mailbox to, on its
// lane. Its payload aliases m's (the read buffer) until the queue copies it.
func outbound(m *wire.Send, now time.Time, to uint64) buffer.Message {
	var deadline time.Time
	if m.TTL > 0 {
		deadline = now.Add(wire.TTLDuration(m.TTL))
	}
	lane, flags := queuedFlags(m.Flags)
	bm := buffer.Message{Lane: lane, Flags: flags, To: to, From: m.From, Group: m.Group, Corr: m.Corr,
		Payload: m.Payload, Headers: m.Headers, Deadline: deadline}
	if m.Group != "" && m.Strategy != wire.StrategyClosest {
		bm.Route = &buffer.Route{Strategy: m.Strategy}
		if m.Strategy == wire.StrategyKey {
			bm.Route.Key = m.Key
		}
	}
	return bm
}

// sendTo sends m to mailbox t: delivered if it is on this node, else
// queued in its node's buffer (the peer looked up through rc, nil: no
// cache).
func (d *Daemon) sendTo(m *wire.Send, now time.Time, rc *routeCache, t groups.Member) error {
	if d.isLocal(t) {
		return d.sendLocal(m, t)
	}
	p, err := d.peerOf(rc, t)
	if err != nil {
		return err
	}
	bm := outbound(m, now, t.Mailbox) // on the stack: EnqueueCopy keeps a copy
	return d.enqueueErr(p.queue.EnqueueCopy(&bm, now), t.Cluster, t.Node)
}

// enqueueErr is the outcome of a send that buffer.Queue answered with err
// for cluster/node; a refusal for want of room is counted.
func (d *Daemon) enqueueErr(err error, cluster, node string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, buffer.ErrBusy):
		d.metrics.busy.Inc()
		return refuse(errBusy, "buffer for %s/%s is full", cluster, node)
	case errors.Is(err, buffer.ErrExpired):
		return refuse(errBadRequest, "ttl ran out before the message was queued")
	}
	return refuse(errBadRequest, "%v", err)
}
