package client

import (
	"context"
	"fmt"
	"time"

	"github.com/wandist/wandist/internal/wire"
)

// Target is where a message goes: an address, or a group (then Addr is ignored).
type Target struct {
	Addr  Addr
	Group string
}

// Mode is a message's delivery guarantee.
type Mode int

const (
	// Reliable (the default): delivered once, in order per lane, across
	// reconnects, while both daemons live.
	Reliable Mode = iota
	// AtMostOnce is never retransmitted: cheaper, may be lost on a link break.
	AtMostOnce
	// Durable is written to the daemon's spool before the send is confirmed.
	Durable
)

// ParseMode maps "reliable", "at-most-once" and "durable" to a Mode.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "reliable":
		return Reliable, nil
	case "at-most-once":
		return AtMostOnce, nil
	case "durable":
		return Durable, nil
	}
	return Reliable, fmt.Errorf("mode %q: want reliable, at-most-once or durable", s)
}

type sendOpts struct {
	high     bool
	ttl      time.Duration
	mode     Mode
	key      string
	strategy Strategy
	headers  Headers
}

// Strategy chooses which member(s) of a group a send goes to.
type Strategy uint8

// Routing strategies of a group send.
const (
	// Closest (the default): a member on this node, else in this cluster,
	// else the remote node with the lowest round-trip time.
	Closest = Strategy(wire.StrategyClosest)
	// Random: uniformly among reachable members.
	Random = Strategy(wire.StrategyRandom)
	// RoundRobin: in turn among reachable members (per sending node).
	RoundRobin = Strategy(wire.StrategyRoundRobin)
	// LeastBacklog: the less backlogged of two random reachable members.
	LeastBacklog = Strategy(wire.StrategyLeastBacklog)
	// ByKey: the owner of the key's partition (partitioned groups), or the
	// member chosen by rendezvous hashing; set with WithKey.
	ByKey = Strategy(wire.StrategyKey)
	// Broadcast: every member.
	Broadcast = Strategy(wire.StrategyBroadcast)
)

// SendOption sets an option of one send: WithMode, WithTTL, WithKey,
// WithStrategy, WithHighPriority, WithHeaders. The zero SendOption sets
// nothing.
//
// It is a small value, not a function, so that applying options does not
// allocate on every send.
type SendOption struct {
	set      optField
	ttl      time.Duration
	mode     Mode
	key      string
	strategy Strategy
	headers  Headers
}

// optField says which option a SendOption sets.
type optField uint8

const (
	optNone optField = iota
	optHigh
	optTTL
	optMode
	optKey
	optStrategy
	optHeaders
)

// WithStrategy sets the routing strategy of a group send.
func WithStrategy(s Strategy) SendOption { return SendOption{set: optStrategy, strategy: s} }

// WithHighPriority sends on the high-priority lane.
func WithHighPriority() SendOption { return SendOption{set: optHigh} }

// WithTTL discards the message if it is not delivered within d (d <= 0:
// no TTL; longer than wire.MaxTTL, about 34 years: that).
func WithTTL(d time.Duration) SendOption { return SendOption{set: optTTL, ttl: d} }

// WithMode sets the delivery mode.
func WithMode(m Mode) SendOption { return SendOption{set: optMode, mode: m} }

// WithKey routes a group send by key (strategy ByKey): every node sends the
// same key to the same member, the owner of partition [KeyHash](k) mod N in a
// partitioned group.
func WithKey(k string) SendOption { return SendOption{set: optKey, key: k} }

// applyOpts applies opts in order: a later option overrides an earlier one.
func applyOpts(opts []SendOption) sendOpts {
	var o sendOpts
	for i := range opts {
		switch x := &opts[i]; x.set {
		case optHigh:
			o.high = true
		case optTTL:
			o.ttl = x.ttl
		case optMode:
			o.mode = x.mode
		case optKey:
			o.key, o.strategy = x.key, ByKey
		case optStrategy:
			o.strategy = x.strategy
		case optHeaders:
			o.headers = x.headers
		}
	}
	return o
}

// buildSend fills s (zero) with a send of payload from mailbox from to t.
// It fills in place: a wire.Send is large, and returning it cost two
// copies per message on the path of SendAsync.
func (c *Client) buildSend(s *wire.Send, req, from uint64, t Target, payload []byte, opts []SendOption) error {
	o := applyOpts(opts)
	if t.Group == "" && t.Addr.IsZero() {
		return errNoTarget
	}
	if max := c.MaxMessage(); max > 0 && len(payload) > max {
		return &Error{Kind: ErrTooLarge, Message: fmt.Sprintf("payload of %d bytes exceeds the daemon's limit of %d", len(payload), max)}
	}
	s.Req, s.From, s.Cluster, s.Node, s.Mailbox, s.Group, s.Key, s.Payload, s.Strategy =
		req, from, t.Addr.Cluster, t.Addr.Node, t.Addr.Mailbox, t.Group, o.key, payload, uint8(o.strategy)
	if o.high {
		s.Flags |= wire.FlagHigh
	}
	switch o.mode {
	case AtMostOnce:
		s.Flags |= wire.FlagAtMostOnce
	case Durable:
		s.Flags |= wire.FlagDurable
	}
	s.TTL = wire.TTLMillis(o.ttl)
	if len(o.headers) > 0 {
		if c.noHeaders.Load() {
			return errNoHeaders
		}
		h, err := o.headers.encode()
		if err != nil {
			return err
		}
		s.Headers = h
	}
	return nil
}

func (c *Client) send(ctx context.Context, from uint64, t Target, payload []byte, opts []SendOption) error {
	req := c.reqSeq.Add(1)
	var s wire.Send
	err := c.buildSend(&s, req, from, t, payload, opts)
	if err != nil {
		return err
	}
	return c.call(ctx, req, &s)
}

// Send sends payload to an address, anonymously, and waits until the local
// daemon accepted it (into the destination's buffer) or refused it.
func (c *Client) Send(ctx context.Context, to Addr, payload []byte, opts ...SendOption) error {
	return c.send(ctx, 0, Target{Addr: to}, payload, opts)
}

// SendGroup sends payload to one member of group, anonymously.
func (c *Client) SendGroup(ctx context.Context, group string, payload []byte, opts ...SendOption) error {
	return c.send(ctx, 0, Target{Group: group}, payload, opts)
}

// SendAsync queues a send without waiting for the daemon's answer; writes
// are coalesced. Failures are collected: Flush returns the first one. It
// returns an error at once only if the message is invalid or the client is
// closed. The payload is copied.
//
// Consecutive non-durable SendAsync calls with the same target and options
// travel together, in one SendBatch frame (up to 64 KiB), and the daemon
// routes such a batch once: a group send by the Closest strategy goes to
// one member per batch, chosen as for a single send.
func (c *Client) SendAsync(t Target, payload []byte, opts ...SendOption) error {
	req := c.reqSeq.Add(1)
	var s wire.Send
	err := c.buildSend(&s, req, 0, t, payload, opts)
	if err != nil {
		return err
	}
	if s.Flags&wire.FlagDurable == 0 {
		// Quiet: the daemon answers only a failure, and Flush learns of
		// the successes from one Sync round trip.
		s.Flags |= wire.FlagQuiet
		s.Req |= quietReq
		// Counted before the frame is queued, so that a connection lost
		// in between reports it to Flush (a failed enqueue counted too
		// only costs Flush a Sync).
		c.quietSent.Add(1)
		if s.Corr == 0 && len(s.Headers) == 0 {
			return c.enqueueQuiet(&s)
		}
		return c.enqueueSend(&s)
	}
	c.pmu.Lock()
	c.pending[req] = nil
	c.asyncN++
	c.pmu.Unlock()
	if err := c.enqueueSend(&s); err != nil {
		c.answer(req, err)
		return err
	}
	return nil
}

// quietReq marks the request id of a quiet async send: the daemon answers
// it only with a failure, collected for Flush.
const quietReq = 1 << 63

// callReq marks, with quietReq, the request of a Call: its failure goes to
// the Call (or nowhere, once the Call gave up), never to Flush.
const callReq = 1 << 62

// Flush waits until the daemon has dealt with every SendAsync (and quiet
// Reply) so far, and returns the first failure among them (then forgets it). A connection lost
// before that is a failure (ErrUnavailable): the daemon may or may not have
// accepted the sends in flight. Non-durable async sends are "quiet" on the
// socket: the daemon answers only failures, and Flush costs one round trip.
func (c *Client) Flush(ctx context.Context) error {
	// Quiet sends: a Sync answered means the daemon processed every frame
	// before it, so the failures among them have already arrived.
	if sent := c.quietSent.Load(); sent > c.quietSynced.Load() {
		req := c.reqSeq.Add(1)
		// Past the write buffer's bound: Flush is what comes after ErrBusy.
		if err := c.callBound(ctx, req, &wire.Sync{Req: req}, false, false); err != nil {
			c.pmu.Lock()
			if c.asyncErr != nil {
				err, c.asyncErr = c.asyncErr, nil
			}
			c.pmu.Unlock()
			return err
		}
		for {
			synced := c.quietSynced.Load()
			if synced >= sent || c.quietSynced.CompareAndSwap(synced, sent) {
				break
			}
		}
	}
	c.pmu.Lock()
	if c.asyncN == 0 {
		err := c.asyncErr
		c.asyncErr = nil
		c.pmu.Unlock()
		return err
	}
	if c.asyncCh == nil {
		c.asyncCh = make(chan struct{})
	}
	ch := c.asyncCh
	c.pmu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return ctxError(ctx.Err())
	}
	c.pmu.Lock()
	err := c.asyncErr
	c.asyncErr = nil
	c.pmu.Unlock()
	return err
}
