package daemon

import (
	"time"

	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/wire"
)

// gone.go: a discovered node its cluster declared dead or left.
//
// Its members leave every view at once (nodeGone), so new sends go to the
// surviving members. What was accepted for it and waits in its buffer
// stays for groups.rejoin_grace: a node that restarts comes back under its
// name within it, takes its messages and hands them to its consumers as
// they rejoin (hold.go), in order and without duplicates. Past the grace,
// group messages are routed on to their group's member now, by their
// strategy and key (routeOn); they may reach it behind newer messages, and
// one the gone node delivered before it died may come again. A message for
// a mailbox, not a group, has nowhere else to go: it is discarded and
// counted. The peer is removed once nothing waits for it (sweepGone).

// nodeGone is a discovered node its cluster declared dead or left.
func (d *Daemon) nodeGone(p *peer, why string) {
	d.groups.ForgetPeer(groupsID(p.id))
	defer d.topologyChanged()
	if p.queue.Stats().Messages == 0 {
		d.removeDiscovered(p, why)
		return
	}
	if p.goneAt.CompareAndSwap(0, d.now().UnixNano()) {
		d.log.Info("node gone: its members leave the views; what waits for it stays for groups.rejoin_grace, then goes to other members",
			"peer", p.nodeName(), "why", why, "messages", p.queue.Stats().Messages)
	}
}

// sweepGone routes on what waits for a gone node once groups.rejoin_grace
// has passed without it coming back (and its link down), and removes the
// peer once nothing waits. Run by the janitor.
func (d *Daemon) sweepGone() {
	now := d.now()
	for _, p := range d.peerList() {
		at := p.goneAt.Load()
		if !p.discovered || at == 0 {
			continue
		}
		if now.Sub(time.Unix(0, at)) >= d.cfg.Groups.RejoinGrace && p.currentLink() == nil {
			d.rerouteGone(p, now)
		}
		if p.queue.Stats().Messages == 0 {
			d.removeDiscovered(p, "declared gone by its cluster, and nothing waits for it")
		}
	}
}

// rerouteGone takes what waits for gone peer p and routes each group
// message on; the rest is discarded and counted.
func (d *Daemon) rerouteGone(p *peer, now time.Time) {
	moved, lost := 0, 0
	p.queue.Take(func(m *buffer.Message) {
		if d.routeOn(m, now) {
			moved++
		} else {
			lost++
		}
	})
	d.metrics.reroutedRemote.Add(float64(moved))
	d.metrics.removedDiscards.WithLabelValues(p.id.Cluster, p.id.Node).Add(float64(lost))
	if moved+lost > 0 {
		d.log.Warn("a gone node did not come back within groups.rejoin_grace: its messages routed to other members",
			"peer", p.nodeName(), "routed", moved, "discarded", lost)
	}
}

// routeOn hands m, taken from a gone node's buffer, to its group's member
// on another node now, by its strategy and key; false if it has none (a
// message for a mailbox, a broadcast's copy, no member elsewhere, or that
// member's buffer full).
func (d *Daemon) routeOn(m *buffer.Message, now time.Time) bool {
	if m.Group == "" {
		return false
	}
	strategy, key := wire.StrategyClosest, ""
	if m.Route != nil {
		strategy, key = m.Route.Strategy, m.Route.Key
	}
	var t groups.Member
	switch strategy {
	case wire.StrategyBroadcast:
		return false // every member was sent its own copy
	case wire.StrategyClosest:
		var ok bool
		if t, ok = d.groups.Closest(m.Group); !ok {
			return false
		}
	default:
		ms, err := d.groups.Pick(m.Group, strategyFromWire(strategy), key, d.backlog)
		if err != nil || len(ms) == 0 {
			return false
		}
		t = ms[0]
	}
	q := d.peer(t.Cluster, t.Node)
	if d.isLocal(t) || q == nil {
		return false
	}
	bm := buffer.Message{Lane: m.Lane, Flags: m.Flags, To: t.Mailbox, From: m.From, Group: m.Group, Corr: m.Corr,
		Payload: m.Payload, Headers: m.Headers, Deadline: m.Deadline, Route: m.Route}
	return q.queue.EnqueueCopy(&bm, now) == nil
}
