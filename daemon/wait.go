package daemon

import (
	"context"
	"fmt"
)

// WaitLink waits until the link to cluster/node is up (up=true) or down.
func (d *Daemon) WaitLink(ctx context.Context, cluster, node string, up bool) error {
	p := d.peer(cluster, node)
	if p == nil {
		return fmt.Errorf("%s/%s is not a peer", cluster, node)
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
