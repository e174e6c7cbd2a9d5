package transport

import (
	"fmt"
	"io"
	"time"
)

// stripeMode is whether a Conn of several QUIC connections stripes its
// streams. Both sides must agree, and a peer of one connection (or of an
// older version) never stripes:
//   - a dialer that got a join token stripes once a join succeeded before
//     Dial returns (its Dial fails if none did); without a token it does
//     not stripe;
//   - a listener stripes from the first join it takes; it does not stripe
//     if the dialer opens a stream on the first connection before any join
//     or if HandshakeTimeout passes without one, and then takes no join.
//
// A dialer opens streams only after Dial returned, that is after its
// joins were taken; a listener opens them only once resolved.
type stripeMode int

const (
	modeUnknown stripeMode = iota
	modePlain
	modeStriped
)

// resolve sets the mode unless it is known already; it returns the mode.
func (c *stripedConn) resolve(m stripeMode) stripeMode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resolveLocked(m)
}

func (c *stripedConn) resolveLocked(m stripeMode) stripeMode {
	if c.mode == modeUnknown {
		c.mode = m
		close(c.resolved)
	}
	return c.mode
}

func (c *stripedConn) modeNow() stripeMode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mode
}

// resolveOnStream is called for each stream the peer opens: on a listener,
// one before any join means the dialer does not stripe.
func (c *stripedConn) resolveOnStream() stripeMode {
	if c.o.QUICConns > 1 && c.isListener {
		return c.resolve(modePlain)
	}
	return c.modeNow()
}

// join adds m, a connection that joined on a listener, and makes the Conn
// stripe; false if the Conn does not stripe, has limit members already,
// or is dying.
func (c *stripedConn) join(m *quicConn, limit int) bool {
	c.mu.Lock()
	if c.mode == modePlain {
		c.mu.Unlock()
		return false
	}
	c.mu.Unlock()
	if !c.add(m, limit) {
		return false
	}
	if c.resolve(modeStriped) != modeStriped {
		m.abort(errJoinRefused) // a stream came first: the Conn dies
		return false
	}
	return true
}

// resolveLater makes a listener's Conn not stripe if no connection joined
// within HandshakeTimeout.
func (c *stripedConn) resolveLater() {
	c.wg.Go(func() {
		t := time.NewTimer(c.o.HandshakeTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			c.resolve(modePlain)
		case <-c.resolved:
		case <-c.ctx.Done():
		}
	})
}

// stripeGroup is a striped stream whose members are arriving.
type stripeGroup struct {
	members  []*quicStream
	got      int
	full     chan struct{} // closed once every member arrived
	deadline time.Time
}

// groupTimeout bounds how long the members of a striped stream may take
// to arrive, and maxPendingGroups how many may be arriving at a time.
func (c *stripedConn) groupTimeout() time.Duration { return 2 * c.o.IdleTimeout }
func (c *stripedConn) maxPendingGroups() int       { return c.o.MaxIncomingStreams }

// classify reads the header of a member stream s and hands its striped
// stream to AcceptStream once every member arrived; it refuses s (and
// its group when it is late) otherwise.
func (c *stripedConn) classify(s *quicStream) {
	select {
	case <-c.resolved:
	case <-c.ctx.Done():
		s.Close()
		return
	}
	if c.modeNow() == modePlain {
		c.deliver(s)
		return
	}
	deadline := time.Now().Add(c.groupTimeout())
	_ = s.SetReadDeadline(deadline)
	var b [stripeHeaderLen]byte
	if _, err := io.ReadFull(s, b[:]); err != nil {
		if c.ctx.Err() != nil {
			s.Close()
			return
		}
		c.refuse([]*quicStream{s}, fmt.Errorf("reading a striped stream header: %w", err))
		return
	}
	_ = s.SetReadDeadline(time.Time{})
	h, err := parseStripeHeader(b[:])
	if err != nil {
		c.refuse([]*quicStream{s}, err)
		return
	}
	g, complete, err := c.addMember(h, s, deadline)
	if err != nil {
		c.refuse([]*quicStream{s}, err)
		return
	}
	if complete {
		c.deliver(c.newStripedStream(g.members))
		return
	}
	c.await(h.id, g)
}

// addMember puts s into its group; complete tells whether it was the last.
func (c *stripedConn) addMember(h stripeHeader, s *quicStream, deadline time.Time) (*stripeGroup, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.pending[h.id]
	if g == nil {
		if len(c.pending) >= c.maxPendingGroups() {
			return nil, false, fmt.Errorf("striped stream %d: %d others are arriving already", h.id, len(c.pending))
		}
		g = &stripeGroup{members: make([]*quicStream, h.size), full: make(chan struct{}), deadline: deadline}
		c.pending[h.id] = g
	}
	switch {
	case len(g.members) != h.size:
		return nil, false, fmt.Errorf("%w: striped stream %d of %d members, member %d says %d", errBadStripe, h.id, len(g.members), h.index, h.size)
	case g.members[h.index] != nil:
		return nil, false, fmt.Errorf("%w: striped stream %d: member %d twice", errBadStripe, h.id, h.index)
	}
	g.members[h.index] = s
	g.got++
	if g.got < h.size {
		return g, false, nil
	}
	delete(c.pending, h.id)
	close(g.full)
	return g, true, nil
}

// await refuses g if it is not complete by its deadline.
func (c *stripedConn) await(id uint64, g *stripeGroup) {
	t := time.NewTimer(time.Until(g.deadline))
	defer t.Stop()
	select {
	case <-g.full: // the classifier of the last member delivers it
	case <-c.ctx.Done(): // the members die with their connections
	case <-t.C:
		c.mu.Lock()
		late := c.pending[id] == g
		var arrived []*quicStream
		if late {
			delete(c.pending, id)
			for _, m := range g.members {
				if m != nil {
					arrived = append(arrived, m)
				}
			}
		}
		c.mu.Unlock()
		if late {
			c.refuse(arrived, fmt.Errorf("striped stream %d: %d of %d members arrived within %v", id, len(arrived), len(g.members), c.groupTimeout()))
		}
	}
}

// refuse closes member streams, counts them and says why.
func (c *stripedConn) refuse(ss []*quicStream, err error) {
	for _, s := range ss {
		s.Close()
	}
	c.refused.Add(uint64(len(ss)))
	c.o.Logger.Warn("transport: quic member streams refused", "remote", c.first.RemoteAddr(), "streams", len(ss), "err", err)
	if c.o.OnStreamRefused != nil {
		c.o.OnStreamRefused(c.first.RemoteAddr())
	}
}
