package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/internal/wire"
)

// ErrNeedsRestart wraps a reload that changes what only a restart changes.
var ErrNeedsRestart = errors.New("daemon: the change needs a restart")

// Reload applies a new config to the running daemon: peers added or
// removed, pinned keys rotated (a link whose key is no longer pinned is
// closed), buffer limits and export and import rules changed (every up
// peer is then asked for a fresh snapshot, taken under the new rules). Links to peers whose
// entry did not change are not touched. An invalid config, or one that
// changes what needs a restart (identity, names, listeners, socket, admin,
// spool, link timing, log format), is refused and the running config stays
// in force. A changed log.level is applied (with Options.LogLevel).
func (d *Daemon) Reload(cfg *configs.Config) error {
	c := *cfg
	c.Peers = append([]configs.Peer(nil), cfg.Peers...)
	if err := c.Validate(); err != nil {
		return err
	}
	old := d.cfg
	for _, f := range []struct {
		name     string
		old, new any
	}{
		{"cluster", old.Cluster, c.Cluster}, {"node", old.Node, c.Node}, {"identity", old.Identity, c.Identity},
		{"listen", old.Listen, c.Listen}, {"local", old.Local, c.Local}, {"admin", old.Admin, c.Admin},
		{"spool", old.Spool, c.Spool}, {"link", old.Link, c.Link}, {"groups", old.Groups, c.Groups},
		{"certificate", old.Certificate, c.Certificate},
	} {
		if !reflect.DeepEqual(f.old, f.new) {
			return fmt.Errorf("%w: %s changed", ErrNeedsRestart, f.name)
		}
	}
	if err := d.checkLogChange(c.Log); err != nil {
		return err
	}
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	want := map[auth.PeerID]configs.Peer{}
	for _, pc := range c.Peers {
		if d.transports[pc.Transport] == nil {
			return fmt.Errorf("peer %s/%s: transport %q not available", pc.Cluster, pc.Node, pc.Transport)
		}
		want[auth.PeerID{Cluster: pc.Cluster, Node: pc.Node}] = pc
	}
	if err := d.applyTrust(&c); err != nil {
		return err
	}
	prev := d.current.Swap(&c)
	d.applyLogLevel(prev.Log, c.Log)
	d.closeRevoked()
	if !reflect.DeepEqual(prev.Exports, c.Exports) || !reflect.DeepEqual(prev.Imports, c.Imports) {
		d.resyncAll() // the import rules (which follow the exports by default) apply to every member again
	}
	for _, p := range d.peerList() {
		if p.discovered {
			continue
		}
		pc, keep := want[p.id]
		switch {
		case !keep:
			d.removePeer(p, "removed from the config")
			if n := p.queue.Discard(); n > 0 {
				d.metrics.removedDiscards.WithLabelValues(p.id.Cluster, p.id.Node).Add(float64(n))
				d.log.Warn("messages for a removed peer discarded", "peer", p.nodeName(), "messages", n)
			}
			if d.retired == nil {
				d.retired = map[auth.PeerID]*peer{}
			}
			d.retired[p.id] = p
		case pc.Address != p.cfg.Address || pc.Transport != p.cfg.Transport || pc.Mode != p.cfg.Mode:
			// Another way to reach it: a new peer entry, the same buffer
			// and positions.
			d.removePeer(p, "its address, transport or mode changed")
			d.addPeer(pc, p, false)
		default:
			if !reflect.DeepEqual(pc.PublicKeys, p.cfg.PublicKeys) {
				d.pins.Set(p.id, pc.PublicKeys)
				p.mu.Lock()
				l := p.link
				p.cfg.PublicKeys = pc.PublicKeys
				p.mu.Unlock()
				if l != nil && !keyPinned(l.peerKey, pc.PublicKeys) {
					d.metrics.handshakeRejects.WithLabelValues(string(auth.ReasonUnpinnedKey)).Inc()
					d.log.Warn("closing a link whose key is no longer pinned", "peer", p.nodeName())
					l.goAway(wire.GoAwayNormal, "key revoked", fmt.Errorf("%w: key no longer pinned", auth.ErrRejected))
				}
			}
			if pc.Buffer != p.cfg.Buffer {
				p.queue.SetLimits(queueLimits(pc))
				p.mu.Lock()
				p.cfg.Buffer = pc.Buffer
				p.mu.Unlock()
			}
		}
		delete(want, p.id)
	}
	for _, pc := range c.Peers {
		id := auth.PeerID{Cluster: pc.Cluster, Node: pc.Node}
		if _, added := want[id]; added {
			d.addPeer(pc, d.retired[id], false)
			delete(d.retired, id)
		}
	}
	d.log.Info("config reloaded", "peers", len(c.Peers))
	return nil
}

func keyPinned(k ed25519.PublicKey, keys []ed25519.PublicKey) bool {
	for _, p := range keys {
		if p.Equal(k) {
			return true
		}
	}
	return false
}

// addPeer adds a peer and starts dialling it (unless it is accept-only).
// prev, if not nil, is the same node's peer removed before (by this reload
// or an earlier one): the new one takes over its buffer, its sequence
// numbers and its receive positions, once prev's link has ended (its last
// delivery counted).
func (d *Daemon) addPeer(pc configs.Peer, prev *peer, discovered bool) *peer {
	id := auth.PeerID{Cluster: pc.Cluster, Node: pc.Node}
	var p *peer
	if prev == nil {
		p = newPeer(d, id, pc, d.transports[pc.Transport], d.newQueue(pc))
		p.discovered = discovered
	} else {
		if !prev.waitNoLink(linkEndWait) {
			d.log.Warn("the removed link of a re-added peer has not ended; its last deliveries may come again", "peer", prev.nodeName())
		}
		prev.queue.SetLimits(queueLimits(pc))
		p = newPeer(d, id, pc, d.transports[pc.Transport], prev.queue)
		p.discovered = discovered
		prev.recvMu.Lock()
		p.recvInc, p.recvDurable = prev.recvInc, maps.Clone(prev.recvDurable)
		for lane := range p.recv {
			p.recv[lane] = prev.recv[lane].clone()
		}
		prev.recvMu.Unlock()
		prev.durMu.Lock()
		p.durNext = prev.durNext
		prev.durMu.Unlock()
	}
	d.pins.Set(id, pc.PublicKeys)
	d.peersMu.Lock()
	d.peers[id] = p
	d.peersGen.Add(1)
	d.peersMu.Unlock()
	d.startPeer(p)
	d.log.Info("peer added", "peer", p.nodeName(), "address", pc.Address, "mode", pc.Mode, "discovered", discovered)
	return p
}

// startPeer starts the peer's dial loop, under its own context.
func (d *Daemon) startPeer(p *peer) {
	p.ctx, p.stop = context.WithCancel(d.ctx)
	if p.cfg.Mode != "accept" {
		d.wg.Go(func() { p.dialLoop(p.ctx) })
	}
}

// linkEndWait bounds how long a reload waits for the link of a removed
// peer to end before the peer is added again (a GoAway waits goAwayWait
// for the remote to close).
const linkEndWait = 2 * time.Second

// waitNoLink waits until p has no link, at most timeout; it reports
// whether that happened.
func (p *peer) waitNoLink(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		p.mu.Lock()
		l, ch := p.link, p.changed
		p.mu.Unlock()
		if l == nil {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		}
	}
}

// removePeer stops dialling the peer, closes its link and forgets it.
func (d *Daemon) removePeer(p *peer, why string) {
	d.peersMu.Lock()
	delete(d.peers, p.id)
	d.peersGen.Add(1)
	d.peersMu.Unlock()
	d.pins.Remove(p.id)
	if p.stop != nil {
		p.stop()
	}
	p.mu.Lock()
	l := p.link
	p.mu.Unlock()
	if l != nil {
		l.goAway(wire.GoAwayNormal, "peer removed", errors.New("peer removed from the config"))
	}
	d.groups.ForgetPeer(groupsID(p.id))
	d.log.Info("peer removed", "peer", p.nodeName(), "why", why)
}

// ReloadFromSource reads the config again (Options.Source) and applies it.
func (d *Daemon) ReloadFromSource() error {
	if d.source == nil {
		return errors.New("daemon: no config source to reload from")
	}
	cfg, err := d.source()
	if err != nil {
		return err
	}
	return d.Reload(cfg)
}
