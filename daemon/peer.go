package daemon

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/time/rate"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/transport"
)

// Link states shown by status.
const (
	StateUp         = "up"
	StateDown       = "down"
	StateConnecting = "connecting"
	// StateIdle: an on-demand peer (topology.go) with no link because
	// nothing waits for it.
	StateIdle = "idle"
)

var (
	errSimultaneous = errors.New("simultaneous dial: the peer's own dial wins")
	errAborted      = errors.New("dial abandoned: an inbound link from the peer won")
	errReplaced     = errors.New("link replaced by a newer link to the same peer")
	errShutdown     = errors.New("node stopping")
)

// peer is one configured remote node: its buffer, its link (if up) and the
// state of the simultaneous-dial resolution.
type peer struct {
	d   *Daemon
	id  auth.PeerID
	cfg configs.Peer // fixed, but for keys, buffer limits (Reload changes them under mu) and a discovered peer's Address (under mu)
	// discovered: the peer was made by discovery (discover.go), not by the
	// config; a reload leaves it alone. Fixed.
	discovered bool
	// goneAt: when its cluster declared it dead or left while messages
	// still waited for it (gone.go), in UnixNano; 0 when alive.
	goneAt atomic.Int64
	// relayFirst: the last dial reached the peer only through a relay
	// (handshake.go: connect); the next tries a relay first.
	relayFirst atomic.Bool
	// directFails: direct dials failed in a row (connect), owned by the
	// dial loop.
	directFails atomic.Int32
	ctx         context.Context
	stop        context.CancelFunc // ends the dial loop (set by startPeer)
	tr          transport.Transport
	queue       *buffer.Queue

	mu        sync.Mutex    // guards the fields below
	link      *link         // the up link, or nil
	dialing   bool          // an outbound handshake is in progress
	abortDial bool          // an inbound link was accepted while dialing: the dial must not complete
	pendingIn int           // inbound handshakes answered WelcomeOK, waiting for Ready
	changed   chan struct{} // closed and replaced whenever link, dialing or pendingIn change
	state     string
	since     time.Time
	lastErr   string
	ups       uint64 // times a link came up

	simultaneous atomic.Uint64 // dials answered WelcomeSimultaneous
	duplicates   atomic.Uint64 // redelivered messages dropped as already delivered
	undelivOut   atomic.Uint64 // messages of the peer for gone mailboxes, not yet reported to it
	undeliv      atomic.Uint64 // messages of this node the peer reported undeliverable (Undeliverable)

	// membershipIn bounds the bytes a second of membership frames read
	// from the peer, over all its links (groups.membership_rate); safe
	// for concurrent use.
	membershipIn *rate.Limiter

	rates     backlogRates
	alert     backlogAlert // owned by the janitor
	pastGrace atomic.Bool  // set by the janitor: the link has been down for groups.unreachable_grace

	durMu   sync.Mutex // orders durable Seq assignment with spool appends
	durNext uint64     // guarded by durMu: next durable Seq

	recvMu      sync.Mutex        // guards the receive positions below
	recvInc     uint64            // incarnation of the peer the reliable positions belong to
	recv        [2]recvLane       // lanes normal and high: what was received from recvInc
	recvDurable map[uint64]uint64 // durable lane: highest Seq delivered, per durable stream id of the peer
}

func newPeer(d *Daemon, id auth.PeerID, cfg configs.Peer, tr transport.Transport, q *buffer.Queue) *peer {
	g := d.cfg.Groups
	d.metrics.initPeer(id) // its series at zero from the start (metrics_init.go)
	return &peer{d: d, id: id, cfg: cfg, tr: tr, queue: q, changed: make(chan struct{}), state: StateDown, since: d.now(),
		recvDurable:  map[uint64]uint64{},
		membershipIn: rate.NewLimiter(rate.Limit(g.MembershipRate), max(membershipBurst, d.cfg.Link.MaxFrameSize))}
}

func (p *peer) nodeName() string { return p.id.Cluster + "/" + p.id.Node }

// address returns the address to dial the peer at ("" if none).
func (p *peer) address() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg.Address
}

// setAddress changes a discovered peer's address (an empty one is
// ignored); the next dial uses it.
func (p *peer) setAddress(addr string) {
	if addr == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg.Address != addr {
		p.cfg.Address = addr
		p.signalLocked()
	}
}

// signalLocked wakes everyone waiting for a change of the peer's state.
func (p *peer) signalLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// busy returns whether no dial is needed now (a link is up or a handshake
// is in progress) or possible (a discovered peer's address is not known
// yet, and no relay is up: relayFor), and the channel closed at the next
// change; links is closed at the next link up or down when the dial waits
// for an address or a relay.
//
// An on-demand peer (topology.go) needs a dial only while a message waits
// for it, and then one of its cluster's gateways must be up: demand is
// non-nil while it waits for a message.
func (p *peer) busy() (busy bool, changed, links <-chan struct{}, demand *[3]<-chan struct{}) {
	links = p.d.linkEvents() // before looking for a relay: no event is missed
	onDemand := p.d.onDemand(p)
	var ch [3]<-chan struct{}
	if onDemand {
		ch = p.demand() // before looking at the queue: no message is missed
	}
	p.mu.Lock()
	busy = p.link != nil || p.pendingIn > 0 || p.dialing
	noAddr := p.cfg.Address == ""
	changed = p.changed
	p.mu.Unlock()
	switch {
	case busy:
		return true, changed, nil, nil
	case onDemand && !p.wantsLink():
		return true, changed, links, &ch
	case onDemand && p.d.gatewayCluster(p) != nil:
		return p.d.relayFor(p) == nil, changed, links, nil
	case !noAddr || p.d.relayFor(p) != nil:
		return false, changed, nil, nil
	}
	return true, changed, links, nil
}

// dialLoop keeps a link to the peer, dialling with exponential backoff and
// full jitter, until ctx ends.
func (p *peer) dialLoop(ctx context.Context) {
	lc := p.d.cfg.Link
	rd := newRedial(lc.ReconnectMin, lc.ReconnectMax)
	var ups uint64     // links seen up so far, dialled or accepted
	var keyWarned bool // a refusal of our key was warned about since the last link up
	for ctx.Err() == nil {
		if n := p.linkUps(); n != ups {
			ups = n
			rd.linkWasUp() // dialled by either side
			keyWarned = false
		}
		if busy, ch, links, demand := p.busy(); busy {
			if !p.waitChange(ctx, ch, links, demand) {
				return
			}
			continue
		}
		if !p.beginDial() {
			continue
		}
		l, err := p.dial(ctx)
		p.endDial()
		var wait time.Duration
		switch {
		case err == nil:
			select {
			case <-l.ctx.Done():
			case <-ctx.Done():
				return
			}
			wait = rd.afterLink()
		case errors.Is(err, errSimultaneous), errors.Is(err, errAborted):
			if errors.Is(err, errSimultaneous) {
				p.simultaneous.Add(1)
				p.mu.Lock()
				p.signalLocked()
				p.mu.Unlock()
			}
			// The peer's dial wins; give it a handshake's time to arrive.
			wait = lc.HandshakeTimeout
			_, ch, _, _ := p.busy()
			select {
			case <-ch:
				continue
			case <-time.After(wait):
				continue
			case <-ctx.Done():
				return
			}
		default:
			if ctx.Err() != nil {
				return
			}
			p.setErr(err)
			keyWarned = p.logDialFailure(err, keyWarned) // dialhint.go
			wait = rd.afterFailure()
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// waitChange waits for a change of the peer's state, a link event or a
// message queued (each channel may be nil); false when ctx ends.
func (p *peer) waitChange(ctx context.Context, changed, links <-chan struct{}, demand *[3]<-chan struct{}) bool {
	var q [3]<-chan struct{}
	if demand != nil {
		q = *demand
	}
	select {
	case <-changed:
	case <-links:
	case <-q[0]:
	case <-q[1]:
	case <-q[2]:
	case <-ctx.Done():
		return false
	}
	return true
}

// redial is a dial loop's backoff: the wait grows (exponentially, from
// link.reconnect_min to link.reconnect_max) only while dials fail, and
// starts over once a link has been up, however briefly: a link that
// breaks is redialled within reconnect_min. Every wait is jittered ("full
// jitter"), so that the peers of a restarted node do not all dial it at
// once. Owned by the dial loop.
type redial struct {
	bo  *backoff.ExponentialBackOff
	min time.Duration
}

func newRedial(min, max time.Duration) *redial {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = min
	bo.MaxInterval = max
	bo.RandomizationFactor = 0 // full jitter is applied instead
	bo.Multiplier = 2
	bo.Reset()
	return &redial{bo: bo, min: min}
}

// linkWasUp starts the backoff over.
func (r *redial) linkWasUp() { r.bo.Reset() }

// afterLink is the wait before dialling again once a link this loop
// dialled ended (the loop calls linkWasUp when it sees the link counted).
func (r *redial) afterLink() time.Duration { return fullJitter(r.min) }

// afterFailure is the wait before dialling again after a failed dial.
func (r *redial) afterFailure() time.Duration { return fullJitter(r.bo.NextBackOff()) }

// fullJitter returns a random duration in [0, d) ("full jitter"), at least 1ms.
func fullJitter(d time.Duration) time.Duration {
	if d <= time.Millisecond {
		return time.Millisecond
	}
	return time.Duration(rand.Int64N(int64(d)))
}

func (p *peer) beginDial() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.link != nil || p.pendingIn > 0 || p.dialing {
		return false
	}
	p.dialing, p.abortDial = true, false
	if p.state != StateUp {
		p.state = StateConnecting
	}
	p.signalLocked()
	return true
}

func (p *peer) endDial() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dialing, p.abortDial = false, false
	if p.link == nil && p.state == StateConnecting {
		p.state = StateDown
	}
	p.signalLocked()
}

func (p *peer) setErr(err error) {
	p.mu.Lock()
	p.lastErr = err.Error()
	p.mu.Unlock()
}

// installLocked makes l the peer's up link, replacing (and closing) any
// older one.
func (p *peer) installLocked(l *link) {
	old := p.link
	p.link = l
	p.state, p.since, p.lastErr = StateUp, p.d.now(), ""
	p.ups++
	p.signalLocked()
	if old != nil {
		old.goAway(wire.GoAwayReplaced, "replaced by a newer link", errReplaced)
	}
	if p.ups > 1 {
		p.d.metrics.reconnects.WithLabelValues(p.id.Cluster, p.id.Node).Inc()
	}
	p.d.metrics.linkUp.WithLabelValues(p.id.Cluster, p.id.Node).Set(1)
	p.d.linksChanged()
	p.d.log.Info("link up", "peer", p.nodeName(), "transport", l.conn.Transport(), "remote", l.conn.RemoteAddr().String(), "dialer", l.dialer)
}

// linkDown is called by a link once all its goroutines ended.
func (p *peer) linkDown(l *link, cause error) {
	p.mu.Lock()
	current := p.link == l
	if current {
		p.link = nil
		p.state, p.since = StateDown, p.d.now()
		if cause != nil {
			p.lastErr = cause.Error()
		}
		p.signalLocked()
	}
	p.mu.Unlock()
	if !current {
		return
	}
	if !p.d.membersViaGateway(p.id) { // else its members still come through a gateway (gatewaymembers.go)
		p.d.groups.PeerDown(groupsID(p.id))
	}
	p.d.metrics.linkUp.WithLabelValues(p.id.Cluster, p.id.Node).Set(0) // after PeerDown: tests wait for it
	p.d.linksChanged()
	p.d.log.Info("link down", "peer", p.nodeName(), "cause", fmt.Sprint(cause))
}

// closeLink says GoAway(Shutdown) on the up link and waits until it ended.
func (p *peer) closeLink() {
	p.mu.Lock()
	l := p.link
	p.mu.Unlock()
	if l != nil {
		<-l.goAway(wire.GoAwayShutdown, "node stopping", errShutdown)
	}
}

// snapshot of the peer for status.
type peerStatus struct {
	state, lastErr, transport, remote string
	since                             time.Time
	rtt                               time.Duration
}

func (p *peer) status() peerStatus {
	idle := p.d.onDemand(p) && !p.wantsLink() // before p.mu: they take other locks
	p.mu.Lock()
	defer p.mu.Unlock()
	s := peerStatus{state: p.state, since: p.since, lastErr: p.lastErr, transport: p.cfg.Transport}
	if p.link == nil && !p.dialing && idle {
		s.state = StateIdle
	}
	if p.link != nil {
		s.rtt = p.link.rttValue()
		s.remote = p.link.conn.RemoteAddr().String()
		s.transport = p.link.conn.Transport() // an accepted link may use another transport than the one configured for dialling
	}
	return s
}

// linkUps returns how many times a link to the peer came up.
func (p *peer) linkUps() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ups
}

// currentLink returns the up link, or nil.
func (p *peer) currentLink() *link {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.link
}
