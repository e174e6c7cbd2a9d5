package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/transport"
)

// pathGate stands between a test node and its transports, as the network
// would: it can hold every dial until released (two nodes dialling each
// other at once), and cut the path to a peer (a partition: the link
// breaks without GoAway, dials hang, inbound connections vanish) until
// it heals. The daemon sees only what a network would show it.
type pathGate struct {
	addrs map[string]auth.PeerID // dial address -> peer, from the node's config

	mu      sync.Mutex
	hold    <-chan struct{}                    // non-nil: dials wait until it is closed
	blocked map[auth.PeerID]chan struct{}      // closed when the path to the peer heals
	conns   map[auth.PeerID]map[*gateConn]bool // open connections, by peer
}

func newPathGate() *pathGate {
	return &pathGate{addrs: map[string]auth.PeerID{}, blocked: map[auth.PeerID]chan struct{}{}, conns: map[auth.PeerID]map[*gateConn]bool{}}
}

// install wraps d's transports (before Start), for its peers too.
func (g *pathGate) install(d *Daemon) {
	for _, pc := range d.cfg.Peers {
		g.addrs[pc.Address] = auth.PeerID{Cluster: pc.Cluster, Node: pc.Node}
	}
	wrapped := map[transport.Transport]transport.Transport{}
	ts := map[string]transport.Transport{} // not the test's Options.Transports: a restart wraps the bare ones again
	for name, tr := range d.transports {
		if wrapped[tr] == nil {
			wrapped[tr] = &gateTransport{Transport: tr, g: g}
		}
		ts[name] = wrapped[tr]
	}
	d.transports = ts
	for _, p := range d.peerList() {
		p.tr = wrapped[p.tr]
	}
}

// holdDials makes every dial wait until release is closed.
func (g *pathGate) holdDials(release chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold = release
}

// setBlocked cuts (on) or heals the path to peer.
func (g *pathGate) setBlocked(peer auth.PeerID, on bool) {
	g.mu.Lock()
	var cut []*gateConn
	switch ch, was := g.blocked[peer]; {
	case on && !was:
		g.blocked[peer] = make(chan struct{})
		for c := range g.conns[peer] {
			cut = append(cut, c)
		}
	case !on && was:
		close(ch)
		delete(g.blocked, peer)
	}
	g.mu.Unlock()
	for _, c := range cut {
		c.Close()
	}
}

// wait returns once a dial to peer may go on (nil), or ctx's error.
func (g *pathGate) wait(ctx context.Context, peer auth.PeerID) error {
	for {
		g.mu.Lock()
		hold, healed := g.hold, g.blocked[peer]
		g.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if healed == nil {
			return nil
		}
		select {
		case <-healed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// track registers c, or closes it and is false if its peer is cut off.
func (g *pathGate) track(c *gateConn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.blocked[c.peer] != nil {
		c.Conn.Close()
		return false
	}
	if g.conns[c.peer] == nil {
		g.conns[c.peer] = map[*gateConn]bool{}
	}
	g.conns[c.peer][c] = true
	return true
}

func (g *pathGate) untrack(c *gateConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.conns[c.peer], c)
}

type gateTransport struct {
	transport.Transport
	g *pathGate
}

func (t *gateTransport) Dial(ctx context.Context, addr string, tc *tls.Config) (transport.Conn, error) {
	peer := t.g.addrs[addr]
	if err := t.g.wait(ctx, peer); err != nil {
		return nil, err
	}
	c, err := t.Transport.Dial(ctx, addr, tc)
	if err != nil {
		return nil, err
	}
	gc := &gateConn{Conn: c, g: t.g, peer: peer}
	if !t.g.track(gc) {
		return nil, errors.New("path cut while dialling")
	}
	return gc, nil
}

func (t *gateTransport) Listen(addr string, tc *tls.Config) (transport.Listener, error) {
	ln, err := t.Transport.Listen(addr, tc)
	if err != nil {
		return nil, err
	}
	return &gateListener{Listener: ln, g: t.g}, nil
}

type gateListener struct {
	transport.Listener
	g *pathGate
}

// Accept drops the connections of peers whose path is cut: they never
// arrived.
func (l *gateListener) Accept(ctx context.Context) (transport.Conn, error) {
	for {
		c, err := l.Listener.Accept(ctx)
		if err != nil {
			return nil, err
		}
		peer, _, _ := auth.PeerFromConnectionState(c.ConnectionState())
		if gc := (&gateConn{Conn: c, g: l.g, peer: peer}); l.g.track(gc) {
			return gc, nil
		}
	}
}

type gateConn struct {
	transport.Conn
	g    *pathGate
	peer auth.PeerID
	once sync.Once
}

func (c *gateConn) Close() error {
	c.once.Do(func() { c.g.untrack(c) })
	return c.Conn.Close()
}

// RefusedStreams is the wrapped connection's (transport.RefusedStreams).
func (c *gateConn) RefusedStreams() uint64 {
	if r, ok := c.Conn.(transport.RefusedStreams); ok {
		return r.RefusedStreams()
	}
	return 0
}
