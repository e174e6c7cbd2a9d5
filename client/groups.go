package client

import (
	"context"
	"sync"

	"github.com/wandist/wandist/internal/wire"
)

// Member is one member of a group.
type Member struct {
	Addr       Addr
	Count      int   // times it joined
	Reachable  bool  // false while its node's link is down
	Partitions []int // partitions it owns (partitioned groups)
}

// Members lists every member of group known to the local daemon: its own,
// and those published by linked nodes. A list larger than the daemon's
// local.client_buffer is refused with ErrTooLarge.
func (c *Client) Members(ctx context.Context, group string) ([]Member, error) {
	return c.members(ctx, group, false)
}

// LocalMembers lists the members of group on the local daemon's node.
func (c *Client) LocalMembers(ctx context.Context, group string) ([]Member, error) {
	return c.members(ctx, group, true)
}

// listAnswer is the answer to a Members request: the list, or the
// daemon's refusal (a list larger than its local.client_buffer: ErrTooLarge).
type listAnswer struct {
	l   *wire.MembersList
	err error
}

func (c *Client) members(ctx context.Context, group string, local bool) ([]Member, error) {
	req := c.reqSeq.Add(1)
	ch := make(chan listAnswer, 1)
	c.pmu.Lock()
	c.lists[req] = ch
	c.pmu.Unlock()
	defer func() {
		c.pmu.Lock()
		delete(c.lists, req)
		c.pmu.Unlock()
	}()
	if err := c.enqueue(&wire.Members{Req: req, Group: group, Local: local}); err != nil {
		return nil, err
	}
	select {
	case a, ok := <-ch:
		if !ok {
			return nil, ErrUnavailable
		}
		if a.err != nil {
			return nil, a.err
		}
		l := a.l
		out := make([]Member, len(l.Members))
		for i, m := range l.Members {
			out[i] = Member{Addr: Addr{Cluster: m.Cluster, Node: m.Node, Mailbox: m.Mailbox}, Count: int(m.Count), Reachable: m.Reachable}
			for _, p := range m.Partitions {
				out[i].Partitions = append(out[i].Partitions, int(p))
			}
		}
		return out, nil
	case <-ctx.Done():
		return nil, ctxError(ctx.Err())
	}
}

// EventOp is what happened in a watched group.
type EventOp uint8

// Watch events.
const (
	// Joined: a member joined (once more).
	Joined = EventOp(wire.OpJoin)
	// Left: a member left (once).
	Left = EventOp(wire.OpLeave)
	// Reset: events may have been lost. After a reconnect to the daemon,
	// Joined events for every current member follow, as at the start of the
	// watch; after the client fell behind (the daemon's or the watcher's
	// buffer overflowed), list the members again with Members.
	Reset = EventOp(wire.OpOverflow)
)

// Event is one change of a watched group.
type Event struct {
	Op     EventOp
	Member Addr
}

// Watcher receives a group's membership events, in order: first a Joined
// for every current member, then every change.
type Watcher struct {
	c     *Client
	group string
	req   uint64 // guarded by c.pmu: changes after a reconnect

	mu     sync.Mutex
	events []Event
	closed bool
	wake   chan struct{} // capacity 1
}

// maxWatchBacklog bounds the events waiting in a Watcher; past it the
// watcher keeps a single Reset and the daemon's next events.
const maxWatchBacklog = 1 << 16

// Watch starts watching group.
func (c *Client) Watch(ctx context.Context, group string) (*Watcher, error) {
	req := c.reqSeq.Add(1)
	w := &Watcher{c: c, group: group, req: req, wake: make(chan struct{}, 1)}
	c.pmu.Lock()
	c.watchers[req] = w
	c.pmu.Unlock()
	if err := c.call(ctx, req, &wire.Watch{Req: req, Group: group}); err != nil {
		c.pmu.Lock()
		delete(c.watchers, req)
		c.pmu.Unlock()
		return nil, err
	}
	return w, nil
}

func (w *Watcher) push(e Event) {
	w.mu.Lock()
	switch {
	case w.closed:
	case len(w.events) >= maxWatchBacklog:
		w.events = append(w.events[:0], Event{Op: Reset})
	default:
		w.events = append(w.events, e)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Next returns the next event, waiting for one until ctx ends or the
// watcher is closed (ErrClosed).
func (w *Watcher) Next(ctx context.Context) (Event, error) {
	for {
		w.mu.Lock()
		if len(w.events) > 0 {
			e := w.events[0]
			w.events = w.events[1:]
			w.mu.Unlock()
			return e, nil
		}
		closed := w.closed
		w.mu.Unlock()
		if closed {
			return Event{}, ErrClosed
		}
		select {
		case <-w.wake:
		case <-ctx.Done():
			return Event{}, ctxError(ctx.Err())
		case <-w.c.done:
			return Event{}, ErrClosed
		}
	}
}

// Close ends the watch.
func (w *Watcher) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	w.c.pmu.Lock()
	watch := w.req
	delete(w.c.watchers, watch)
	w.c.pmu.Unlock()
	req := w.c.reqSeq.Add(1)
	return w.c.call(ctx, req, &wire.Unwatch{Req: req, Watch: watch})
}

// pending reports whether an event waits in the watcher.
func (w *Watcher) pending() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events) > 0
}
