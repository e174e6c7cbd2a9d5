package wandist

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wandist/wandist/bench/netutil"
	"github.com/wandist/wandist/bench/proc"
	"github.com/wandist/wandist/bench/workload"
	"github.com/wandist/wandist/client"
	"golang.org/x/sync/errgroup"
)

// settle is how long a daemon is left idle before its memory is read.
const settle = 2 * time.Second

// steadyRSS samples p's resident memory every 250 ms for window and returns
// the lowest reading: what an idle daemon holds once the garbage of its
// start-up and handshakes has been collected and returned.
func steadyRSS(p *proc.Process, window time.Duration) (int64, error) {
	var low int64
	for end := time.Now().Add(window); ; {
		s, err := p.Read()
		if err != nil {
			return 0, err
		}
		if low == 0 || s.RSS < low {
			low = s.RSS
		}
		if time.Now().After(end) {
			return low, nil
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// IdleLinks starts a hub daemon with n peers configured, reads its resident
// memory, starts a fifth of the n peer daemons (each dials the hub), waits
// until their links are up and reads the hub's memory, then does the same
// with the rest. Each reading is taken after the links have been left idle.
// The System must not be started.
func (s *System) IdleLinks(ctx context.Context, n int) (res workload.IdleLinkResult, err error) {
	res.Links = n
	res.WarmLinks = max(1, n/5)
	if n < 2 {
		res.WarmLinks = 0
	}
	hub, err := newNode(ctx, s.Wandistd, s.Dir, "hub", "hub-1", netutil.Site{})
	if err != nil {
		return res, err
	}
	peers := make([]*node, n)
	hubPeers := make([]peer, n)
	for i := range peers {
		if peers[i], err = newNode(ctx, s.Wandistd, s.Dir, fmt.Sprintf("c%d", i), fmt.Sprintf("n%d", i), netutil.Site{}); err != nil {
			return res, err
		}
		peers[i].quic, peers[i].tcp, peers[i].admin = 0, 0, 0 // dial only
		hubPeers[i] = peer{Cluster: peers[i].cluster, Node: peers[i].name, Transport: s.Transport, Mode: "accept", Key: peers[i].pubKey}
	}
	cfg, err := hub.writeConfig(hubPeers, false)
	if err != nil {
		return res, err
	}
	hp, err := startDaemon(s.Wandistd, cfg, "hub-1", s.Dir, netutil.Site{})
	if err != nil {
		return res, err
	}
	procs := []*proc.Process{hp}
	defer func() {
		for _, p := range procs {
			err = errors.Join(err, p.Stop(10*time.Second))
		}
	}()
	if err := hub.waitLinks(ctx, hp, 0); err != nil {
		return res, err
	}
	if res.BaseRSS, err = steadyRSS(hp, 2*settle); err != nil {
		return res, err
	}
	// link starts the peer daemons from, to up to and reads the hub's
	// memory once their links are up and idle (keepalives only).
	link := func(from, upTo int) (int64, error) {
		for i := from; i < upTo; i++ {
			pcfg, err := peers[i].writeConfig([]peer{{Cluster: "hub", Node: "hub-1", Address: hub.linkAddr(s.Transport), Transport: s.Transport, Mode: "connect", Key: hub.pubKey}}, false)
			if err != nil {
				return 0, err
			}
			p, err := startDaemon(s.Wandistd, pcfg, fmt.Sprintf("idle-peer-%d", i), s.Dir, netutil.Site{})
			if err != nil {
				return 0, err
			}
			procs = append(procs, p)
		}
		if err := hub.waitLinks(ctx, hp, upTo); err != nil {
			return 0, err
		}
		return steadyRSS(hp, 2*settle)
	}
	if res.WarmLinks > 0 {
		if res.WarmRSS, err = link(0, res.WarmLinks); err != nil {
			return res, err
		}
	}
	if res.LinkedRSS, err = link(res.WarmLinks, n); err != nil {
		return res, err
	}
	res.Note = fmt.Sprintf("lowest RSS over %v of idleness at each reading", 2*settle)
	return res, nil
}

// groupTotal sums the members of every group n's daemon knows.
func (n *node) groupTotal(ctx context.Context) (int, error) {
	var gs []struct {
		Members int `json:"members"`
	}
	if err := netutil.GetJSON(ctx, fmt.Sprintf("http://127.0.0.1:%d/v1/groups", n.admin), &gs); err != nil {
		return 0, err
	}
	total := 0
	for _, g := range gs {
		total += g.Members
	}
	return total, nil
}

// GroupMembers joins members (mailbox, group) pairs on west, spread over
// groups groups (members/perMailbox mailboxes, each joining perMailbox
// groups), waits until east knows all of them, and reads both daemons'
// resident memory before and after.
func (s *System) GroupMembers(ctx context.Context, members, groups int) (res workload.GroupMemResult, err error) {
	const perMailbox = 100
	res.Members, res.Groups = members, groups
	east, west := s.procs[0], s.procs[1]
	before, err := s.east.groupTotal(ctx)
	if err != nil {
		return res, err
	}
	eb, err := east.Read()
	if err != nil {
		return res, err
	}
	wb, err := west.Read()
	if err != nil {
		return res, err
	}
	res.RemoteBase, res.LocalBase = eb.RSS, wb.RSS
	c, err := client.Connect(ctx, client.Options{Socket: s.west.socket, Name: "bench-members", NoReconnect: true})
	if err != nil {
		return res, fmt.Errorf("connect to west: %w", err)
	}
	defer c.Close()
	start := time.Now()
	var mu sync.Mutex
	var mbs []*client.Mailbox
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for m := 0; m*perMailbox < members; m++ {
		g.Go(func() error {
			mb, err := c.NewMailbox(gctx)
			if err != nil {
				return err
			}
			mu.Lock()
			mbs = append(mbs, mb)
			mu.Unlock()
			for j := range min(perMailbox, members-m*perMailbox) {
				if err := mb.Join(gctx, fmt.Sprintf("members%d", (m*perMailbox+j)%groups)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, fmt.Errorf("joining %d members: %w", members, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err = netutil.Poll(wctx, 20*time.Millisecond, fmt.Sprintf("%d members known on east", members), func() (bool, error) {
		n, err := s.east.groupTotal(wctx)
		return n >= before+members, err
	})
	if err != nil {
		return res, err
	}
	res.Propagate = time.Since(start)
	time.Sleep(settle)
	ea, err := east.Read()
	if err != nil {
		return res, err
	}
	wa, err := west.Read()
	if err != nil {
		return res, err
	}
	res.RemoteAfter, res.LocalAfter = ea.RSS, wa.RSS
	res.Note = fmt.Sprintf("%d mailboxes × %d groups each on west; east's daemon measured", len(mbs), perMailbox)
	return res, nil
}
