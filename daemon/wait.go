package daemon

import (
	"context"
	"fmt"
	"time"
)

// WaitLink waits until the link to cluster/node is up (up=true) or down.
// A node of a remote cluster (remotes[]) that discovery has not found yet
// is waited for.
func (d *Daemon) WaitLink(ctx context.Context, cluster, node string, up bool) error {
	p, err := d.waitPeer(ctx, cluster, node)
	if err != nil {
		return err
	}
	for {
		p.mu.Lock()
		isUp, ch := p.link != nil, p.changed
		p.mu.Unlock()
		if isUp == up {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for link to %s/%s (up=%v): %w", cluster, node, up, context.Cause(ctx))
		}
	}
}

// WaitMembers waits until group has at least n reachable members known here.
func (d *Daemon) WaitMembers(ctx context.Context, group string, n int) error {
	for {
		ch := d.groups.Changed()
		got := 0
		for _, m := range d.groups.Members(group) {
			if m.Reachable {
				got++
			}
		}
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d members of %q (have %d): %w", n, group, got, context.Cause(ctx))
		}
	}
}

// LinkUps returns how many times the link to cluster/node came up.
func (d *Daemon) LinkUps(cluster, node string) uint64 {
	p := d.peer(cluster, node)
	if p == nil {
		return 0
	}
	return p.linkUps()
}

// waitPeer returns the peer cluster/node, waiting for discovery to find it
// if its cluster is a remote one.
func (d *Daemon) waitPeer(ctx context.Context, cluster, node string) (*peer, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		p := d.peer(cluster, node)
		switch {
		case p != nil:
			return p, nil
		case d.disc.remotes[cluster] == nil:
			return nil, fmt.Errorf("%s/%s is not a peer", cluster, node)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for discovery to find %s/%s: %w", cluster, node, context.Cause(ctx))
		}
	}
}
