package gossip

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// seedLoop resolves the seeds and joins those that are not alive members,
// at once, then every ReresolveInterval; while this node is alone it tries
// again sooner, with backoff up to ReresolveInterval. So a node started
// before its seeds joins them later, and a partitioned cluster merges
// again once its halves reach each other.
func (g *Gossip) seedLoop(ctx context.Context) {
	defer g.wg.Done()
	if len(g.cfg.Seeds) == 0 {
		return
	}
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     min(time.Second, g.cfg.ReresolveInterval),
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         g.cfg.ReresolveInterval,
	}
	bo.Reset()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.joinSeeds(ctx)
		wait := g.cfg.ReresolveInterval
		if g.ml.NumMembers() <= 1 {
			wait = bo.NextBackOff()
		} else {
			bo.Reset()
		}
		t.Reset(wait)
	}
}

// joinSeeds joins every address of every seed that is not this node nor an
// alive member.
func (g *Gossip) joinSeeds(ctx context.Context) {
	known := map[string]bool{g.Addr(): true}
	for _, n := range g.ml.Members() {
		known[n.Address()] = true
	}
	var todo []string
	for _, s := range g.cfg.Seeds {
		for _, a := range g.resolve(ctx, s) {
			if !known[a] {
				known[a] = true
				todo = append(todo, a)
			}
		}
	}
	if len(todo) == 0 || ctx.Err() != nil {
		return
	}
	joined := 0
	for _, a := range todo { // one at a time, so that Close need not wait for them all
		if ctx.Err() != nil {
			return
		}
		if _, err := g.ml.Join([]string{a}); err != nil {
			g.logs.once("join", "gossip: cannot join a seed", "addr", a, "err", err)
			continue
		}
		joined++
	}
	g.cfg.Logger.Debug("gossip: joined seeds", "tried", len(todo), "joined", joined)
}

// resolve is every host:port a seed names ("" hosts are skipped).
func (g *Gossip) resolve(ctx context.Context, seed string) []string {
	host, port, err := splitHostPort(seed)
	if err != nil || host == "" {
		return nil
	}
	ps := strconv.Itoa(port)
	if ip, err := netip.ParseAddr(host); err == nil {
		return []string{net.JoinHostPort(ip.Unmap().String(), ps)}
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := g.cfg.Resolver(rctx, host)
	if err != nil {
		g.logs.once("resolve", "gossip: cannot resolve a seed", "seed", seed, "err", err)
		return nil
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.Unmap().String(), ps))
	}
	return out
}
