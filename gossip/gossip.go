package gossip

import (
	"context"
	"fmt"
	"log"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"golang.org/x/time/rate"
)

// State is a member's state as this node sees it.
type State string

// The states of a member.
const (
	StateAlive State = "alive" // alive, or suspected and not yet declared dead (memberlist v0.7.0 tells its delegates nothing of suspicion)
	StateDead  State = "dead"  // declared dead by the failure detector
	StateLeft  State = "left"  // left on its own (Close)
)

// Member is one node of the cluster.
type Member struct {
	Node  string
	Addr  string // its gossip address, host:port
	Meta  Meta
	State State
	Since time.Time // when it entered State, as this node saw it
}

// Gossip is this node's membership in its cluster. Its methods are safe
// for concurrent use.
type Gossip struct {
	cfg     Config
	ml      *memberlist.Memberlist
	meta    atomic.Pointer[[]byte] // this node's Meta, encoded
	joins   *rate.Limiter
	logs    *logBridge
	changed chan struct{} // capacity 1: a wake-up after any change
	// forgetAfter is how long a dead or left member stays in members.
	forgetAfter time.Duration

	mu      sync.Mutex
	members map[string]*Member // by node name, dead and left ones too; guarded by mu

	cancel    context.CancelFunc
	wg        sync.WaitGroup // the seed loop
	closeOnce sync.Once
	closeErr  error
}

// Start joins the cluster: it listens on cfg.Bind at once and joins the
// seeds in the background, again and again (see Config.ReresolveInterval),
// so a node started before its seeds joins them later. ctx bounds Start
// only; Close stops what Start started.
func Start(ctx context.Context, cfg Config) (*Gossip, error) {
	c := cfg.withDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mc, err := c.memberlistConfig()
	if err != nil {
		return nil, err
	}
	g := &Gossip{
		cfg:     c,
		joins:   rate.NewLimiter(c.JoinRate, c.JoinBurst),
		changed: make(chan struct{}, 1),
		members: map[string]*Member{},
	}
	mb, _ := c.Meta.Encode() // validated
	g.meta.Store(&mb)
	g.logs = newLogBridge(c.Logger, c.LogInterval, g.refused)
	mc.Logger = log.New(g.logs, "", 0)
	d := &delegate{g: g}
	mc.Delegate, mc.Events, mc.Alive, mc.Merge, mc.Conflict = d, d, d, d, d
	if c.Tune != nil {
		c.Tune(mc)
	}
	g.forgetAfter = max(mc.GossipToTheDeadTime, 10*time.Minute)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start on %s: %w", c.Bind, err)
	}
	g.ml = ml
	loopCtx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.wg.Add(1)
	go g.seedLoop(loopCtx)
	return g, nil
}

// Addr is the address this node gossips at (host:port), as announced.
func (g *Gossip) Addr() string {
	n := g.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Changed wakes up (capacity 1, never closed) after any change of Members.
func (g *Gossip) Changed() <-chan struct{} { return g.changed }

// Members is every node of the cluster this node knows, itself included,
// dead and left ones for a while (see forgetAfter); sorted by name.
func (g *Gossip) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// Close leaves the cluster (waiting at most Config.LeaveTimeout for the
// leave to go out), stops memberlist and waits for every goroutine Start
// started. It is idempotent.
func (g *Gossip) Close() error {
	g.stop(true)
	return g.closeErr
}

// stop is Close, or (leave false) a hard stop that the cluster has to
// detect by probing, as if the process died.
func (g *Gossip) stop(leave bool) {
	g.closeOnce.Do(func() {
		g.cancel()
		if leave {
			g.leave()
		}
		g.closeErr = g.ml.Shutdown()
		// The seed loop stops between two joins: after at most one dial
		// (memberlist's TCPTimeout) to an address that does not answer.
		g.wg.Wait()
	})
}

func (g *Gossip) signal() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

func (g *Gossip) refused(reason string) { g.cfg.OnRefused(reason) }

// leave says Leaving in the meta, then leaves, within LeaveTimeout.
func (g *Gossip) leave() {
	m := g.cfg.Meta
	m.Leaving = true
	if b, err := m.Encode(); err == nil {
		g.meta.Store(&b)
		if err := g.ml.UpdateNode(g.cfg.LeaveTimeout / 2); err != nil {
			g.cfg.Logger.Warn("gossip: announce leaving", "err", err)
		}
	}
	if err := g.ml.Leave(g.cfg.LeaveTimeout / 2); err != nil {
		g.cfg.Logger.Warn("gossip: leave", "err", err)
	}
}
