package daemon

import (
	"fmt"

	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/wire"
)

// The requests of a local client other than sends (send.go): mailboxes,
// group membership, watches and member lists. Each is answered with a
// Result (statusOf) or its own reply frame.

// open makes a new mailbox for the client.
func (c *localClient) open(m *wire.Open) {
	d := c.d
	id := d.mailboxSeq.Add(1)
	mb := &mailbox{id: id, c: c}
	c.mailboxes[id] = mb
	d.mailboxes.Store(id, mb)
	c.reply(&wire.Opened{Req: m.Req, Mailbox: id})
}

// closeMailbox removes one of the client's mailboxes (and its memberships).
func (c *localClient) closeMailbox(m *wire.CloseMailbox) error {
	if c.mailboxes[m.Mailbox] == nil {
		return refuse(errNoMailbox, "mailbox %d is not yours", m.Mailbox)
	}
	delete(c.mailboxes, m.Mailbox)
	c.d.removeMailbox(m.Mailbox)
	return nil
}

// join makes one of the client's mailboxes a member of a group, with the
// partitions it claims.
func (c *localClient) join(m *wire.Join) error {
	if err := c.checkGroupOp(m.Mailbox, m.Group); err != nil {
		return err
	}
	claim, err := groups.NewClaim(m.PartitionCount, m.Partitions)
	if err == nil {
		err = c.d.groups.JoinClaim(m.Group, m.Mailbox, claim)
	}
	if err != nil {
		return refuse(errBadRequest, "%v", err)
	}
	return nil
}

// leave takes one of the client's mailboxes out of a group.
func (c *localClient) leave(m *wire.Leave) error {
	if err := c.checkGroupOp(m.Mailbox, m.Group); err != nil {
		return err
	}
	if !c.d.groups.Leave(m.Group, m.Mailbox) {
		return refuse(errBadRequest, "mailbox %d is not in group %q", m.Mailbox, m.Group)
	}
	return nil
}

// watch starts sending the client the membership changes of a group,
// under the watch's Req; the Result comes before the first event.
func (c *localClient) watch(m *wire.Watch) {
	d := c.d
	var err error
	switch {
	case validGroup(m.Group) != nil:
		err = refuse(errBadRequest, "%v", validGroup(m.Group))
	case c.watches[m.Req] != nil:
		err = refuse(errBadRequest, "watch %d already exists", m.Req)
	case len(c.watches) >= maxWatches:
		err = refuse(errBusy, "at most %d watches per client", maxWatches)
	}
	c.answer(m.Req, err)
	if err != nil {
		return
	}
	req := m.Req
	overflowed := false
	c.watches[req] = d.groups.Watch(m.Group, func(e groups.Event) {
		ev := &wire.WatchEvent{Watch: req, Op: opToWire(e.Op), Cluster: e.Member.Cluster, Node: e.Member.Node, Mailbox: e.Member.Mailbox}
		if !c.event(ev, &overflowed) {
			d.metrics.dropped.WithLabelValues("watch_overflow").Inc()
		}
	})
}

// unwatch ends one of the client's watches.
func (c *localClient) unwatch(m *wire.Unwatch) error {
	cancel := c.watches[m.Watch]
	if cancel == nil {
		return refuse(errBadRequest, "no watch %d", m.Watch)
	}
	cancel()
	delete(c.watches, m.Watch)
	return nil
}

// members answers with the members of a group (only this node's if Local),
// with their partitions, once the client's buffer has room for more.
func (c *localClient) members(m *wire.Members) {
	d := c.d
	if !c.awaitRoom() {
		return
	}
	ms := d.groups.Members(m.Group)
	if m.Local {
		ms = d.groups.LocalMembers(m.Group)
	}
	claims := d.groups.ClaimsOf(m.Group)
	out := &wire.MembersList{Req: m.Req, Members: make([]wire.MemberInfo, 0, len(ms))}
	for _, x := range ms {
		out.Members = append(out.Members, wire.MemberInfo{Cluster: x.Cluster, Node: x.Node, Mailbox: x.Mailbox,
			Count: uint64(x.Count), Reachable: x.Reachable, Partitions: claims[groups.MemberKey{Cluster: x.Cluster, Node: x.Node, Mailbox: x.Mailbox}].List()})
	}
	c.answerBytes(m.Req, wire.AppendFrame(nil, out), fmt.Sprintf("the %d members of group %q", len(ms), m.Group))
}
