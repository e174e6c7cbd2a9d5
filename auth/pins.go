package auth

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// PinSet maps each known peer to the public keys it may present. A peer may
// have several keys at once, so that a key can be rotated without downtime:
// pin old and new, switch the peer to the new key, then unpin the old one.
//
// A PinSet is safe for concurrent use, and changes apply to the next check,
// hence to every handshake that starts afterwards. The zero value is an
// empty set ready for use.
//
// Beside the pins it holds the trust anchors of clusters (the CA
// certificates that vouch for any node of a cluster) and a revocation list;
// see anchors.go.
type PinSet struct {
	mu     sync.RWMutex
	byPeer map[PeerID][]ed25519.PublicKey // guarded by mu
	byKey  map[string][]PeerID            // raw key bytes -> peers pinning it; guarded by mu

	// trust is what anchors.go checks against, guarded by mu; its maps are
	// replaced whole, never changed in place, so a reader may use them
	// after releasing mu.
	trust trustState
}

// NewPinSet returns an empty PinSet.
func NewPinSet() *PinSet {
	return &PinSet{}
}

// Set pins exactly keys for id, replacing its previous pins. An empty keys
// removes id. The keys are copied. A key that is not 32 bytes long can
// never match and so pins nothing.
func (p *PinSet) Set(id PeerID, keys []ed25519.PublicKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	p.unpinLocked(id)
	p.pinLocked(id, keys)
}

// Remove unpins every key of id.
func (p *PinSet) Remove(id PeerID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unpinLocked(id)
}

// Replace swaps the whole set for pins, e.g. after reloading the
// configuration: peers absent from pins are no longer known.
func (p *PinSet) Replace(pins map[PeerID][]ed25519.PublicKey) {
	fresh := &PinSet{}
	fresh.init()
	for id, keys := range pins {
		fresh.pinLocked(id, keys)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.byPeer, p.byKey = fresh.byPeer, fresh.byKey
}

// Keys returns a copy of the keys pinned for id, nil if none.
func (p *PinSet) Keys(id PeerID) []ed25519.PublicKey {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []ed25519.PublicKey
	for _, k := range p.byPeer[id] {
		out = append(out, slices.Clone(k))
	}
	return out
}

// Peers returns the peers that have pins, in no particular order.
func (p *PinSet) Peers() []PeerID {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]PeerID, 0, len(p.byPeer))
	for id := range p.byPeer {
		out = append(out, id)
	}
	return out
}

// Check reports whether a peer claiming to be id may use key. It returns nil
// or a *RejectError: ReasonNameMismatch if key is pinned for other peers
// only, ReasonUnknownPeer if nothing is pinned for id, else
// ReasonUnpinnedKey.
func (p *PinSet) Check(id PeerID, key ed25519.PublicKey) error {
	if r := p.check(id, key); r != nil {
		return r
	}
	return nil
}

func (p *PinSet) check(id PeerID, key ed25519.PublicKey) *RejectError {
	p.mu.RLock()
	owners := p.byKey[string(key)]
	known := len(p.byPeer[id]) > 0
	p.mu.RUnlock()

	if slices.Contains(owners, id) {
		return nil
	}
	if len(owners) > 0 {
		names := make([]string, len(owners))
		for i, o := range owners {
			names[i] = o.String()
		}
		slices.Sort(names)
		return newReject(ReasonNameMismatch, id, key, fmt.Sprintf(
			"peer claiming to be %s presented key %s, which is pinned for %s, not for it",
			id, FormatPublicKey(key), strings.Join(names, ", ")))
	}
	if !known {
		return newReject(ReasonUnknownPeer, id, key, fmt.Sprintf(
			"peer claiming to be %s (key %s) is unknown: no keys are pinned for it",
			id, FormatPublicKey(key)))
	}
	return newReject(ReasonUnpinnedKey, id, key, fmt.Sprintf(
		"%s presented key %s which is not pinned for it", id, FormatPublicKey(key)))
}

func (p *PinSet) init() {
	if p.byPeer == nil {
		p.byPeer = make(map[PeerID][]ed25519.PublicKey)
		p.byKey = make(map[string][]PeerID)
	}
}

// pinLocked adds keys for id, which has no pins yet; p is initialised.
func (p *PinSet) pinLocked(id PeerID, keys []ed25519.PublicKey) {
	var kept []ed25519.PublicKey
	for _, k := range keys {
		if len(k) != ed25519.PublicKeySize || slices.ContainsFunc(kept, func(o ed25519.PublicKey) bool { return bytes.Equal(o, k) }) {
			continue
		}
		kept = append(kept, slices.Clone(k))
		p.byKey[string(k)] = append(p.byKey[string(k)], id)
	}
	if len(kept) > 0 {
		p.byPeer[id] = kept
	}
}

// unpinLocked removes every pin of id.
func (p *PinSet) unpinLocked(id PeerID) {
	for _, k := range p.byPeer[id] {
		owners := slices.DeleteFunc(slices.Clone(p.byKey[string(k)]), func(o PeerID) bool { return o == id })
		if len(owners) == 0 {
			delete(p.byKey, string(k))
		} else {
			p.byKey[string(k)] = owners
		}
	}
	delete(p.byPeer, id)
}
